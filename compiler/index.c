/*
 * index.c - the subscript of an expression, x[...], numpy's basic
 * indexing: integers (the axis goes), slices (start:stop:step, Python's
 * clamping), one ellipsis `...` (as many full slices as the other items
 * leave axes) and `newaxis` (a new axis of size 1 where it stands).
 *
 * The items are read first and placed after, since an ellipsis's length
 * depends on the items that follow it.  The result is one slice of the
 * operand (none when every axis is taken whole) and, when an axis goes or
 * comes, one reshape: both views, no copy for the common cases.
 */
#include <string.h>

#include "compiler.h"

typedef enum { IX_INDEX, IX_SLICE, IX_ELLIPSIS, IX_NEWAXIS } IxKind;

typedef struct Ix {
  IxKind kind;
  int64_t v[3];          /* start, stop, step as written */
  bool has[3];
  Loc loc;
} Ix;

/* Up to this many items: each axis once, and as many new axes as the
 * result's rank allows. */
enum { MAX_ITEMS = 2 * MAX_RANK + 1 };

/* item = "..." | "newaxis" | INT | INT? ":" INT? (":" INT?)? */
static void parse_item(Parser *p, Ix *it) {
  memset(it, 0, sizeof *it);
  it->v[2] = 1;
  it->loc = p->tok->loc;
  if (parse_accept(p, "...")) {
    it->kind = IX_ELLIPSIS;
    return;
  }
  if (p->tok->kind == T_IDENT && p->tok->len == 7 && memcmp(p->tok->text, "newaxis", 7) == 0) {
    p->tok = p->tok->next;
    it->kind = IX_NEWAXIS;
    return;
  }
  bool colon = false;
  for (int part = 0; part < 3; part++) {
    double num;
    bool is_int;
    Loc nl;
    if (parse_number(p, &num, &is_int, &nl)) {
      if (!is_int) parse_fail(p, nl, "index must be an integer");
      if (part == 0) it->loc = nl;
      it->v[part] = (int64_t)num;
      it->has[part] = true;
    }
    if (part == 2 || !parse_accept(p, ":")) break;
    colon = true;
  }
  if (!colon && !it->has[0])
    parse_expected(p, "an index, a slice, '...' or 'newaxis'");
  if (it->has[2] && it->v[2] == 0) parse_fail(p, it->loc, "slice step cannot be zero");
  it->kind = colon ? IX_SLICE : IX_INDEX;
}

static void whole_axis(const Shape *s, int ax, Attrs *a) {
  a->begin[ax] = 0, a->end[ax] = s->d[ax].sym ? INT64_MAX : s->d[ax].n, a->step[ax] = 1;
}

/* The slice of axis ax that item it asks for; true when the axis goes. */
static bool place_item(Parser *p, const Shape *s, int ax, const Ix *it, Attrs *a) {
  Dim d = s->d[ax];
  int64_t len = d.n;
  const int64_t *v = it->v;
  const bool *has = it->has;
  if (d.sym) {
    if (has[0] || has[1] || has[2] || it->kind == IX_INDEX)
      parse_fail(p, it->loc, "cannot index the symbolic dimension '%s'; only ':' "
                 "(all of it) is allowed", p->g->sym[d.sym]);
    whole_axis(s, ax, a);
    return false;
  }
  if (it->kind == IX_INDEX) {
    int64_t i = v[0] < 0 ? v[0] + len : v[0];
    if (i < 0 || i >= len)
      parse_fail(p, it->loc, "index %lld is out of range for axis %d of size %lld",
                 (long long)v[0], ax, (long long)len);
    a->begin[ax] = i, a->end[ax] = i + 1, a->step[ax] = 1;
    return true;
  }
  /* Python slice semantics, clamped to the axis. */
  int64_t st = v[2];
  int64_t lo = st > 0 ? 0 : -1, hi = st > 0 ? len : len - 1;
  int64_t b = has[0] ? v[0] : (st > 0 ? 0 : len - 1);
  int64_t e = has[1] ? v[1] : (st > 0 ? len : -len - 1);
  if (has[0] && b < 0) b += len;
  if (has[1] && e < 0) e += len;
  if (!has[1] && st < 0) e = -1;
  b = b < lo ? lo : b > hi ? hi : b;
  e = e < lo ? lo : e > hi ? hi : e;
  a->begin[ax] = b, a->end[ax] = e, a->step[ax] = st;
  return false;
}

/* index = "[" item ("," item)* "]" */
Node *parse_index(Parser *p, Node *x) {
  Token *open = p->tok;
  parse_skip(p, "[");
  const Shape *s = &x->shape;
  Ix items[MAX_ITEMS];
  int n = 0, axes = 0, ellipsis = -1;
  do {
    if (n == MAX_ITEMS)
      parse_fail(p, p->tok->loc, "more than %d items in one index", MAX_ITEMS);
    Ix *it = &items[n];
    parse_item(p, it);
    if (it->kind == IX_ELLIPSIS) {
      if (ellipsis >= 0)
        parse_fail(p, it->loc, "an index can have only one ellipsis ('...'); the first is at "
                   "column %d", items[ellipsis].loc.col);
      ellipsis = n;
    } else if (it->kind != IX_NEWAXIS && ++axes > s->rank) {
      parse_fail(p, it->loc, "too many indices for a tensor of rank %d", s->rank);
    }
    n++;
  } while (parse_accept(p, ","));
  parse_skip(p, "]");

  /* Each result axis: the operand's axis it shows, or -1 for a new one. */
  int from[MAX_RANK], rank = 0, ax = 0;
  bool sliced = false, dropped = false;
  Attrs a = {0};
  for (int k = 0; k <= n; k++) {
    /* the ellipsis, or the implicit one after the last item */
    int fill = k == ellipsis || (k == n && ellipsis < 0) ? s->rank - axes : 0;
    for (int j = 0; j < fill; j++, ax++) {
      whole_axis(s, ax, &a);
      if (rank == MAX_RANK) goto too_big;
      from[rank++] = ax;
    }
    if (k == n || items[k].kind == IX_ELLIPSIS) continue;
    if (items[k].kind == IX_NEWAXIS) {
      if (rank == MAX_RANK) goto too_big;
      from[rank++] = -1;
      continue;
    }
    sliced = true;
    if (place_item(p, s, ax, &items[k], &a)) {
      dropped = true;
    } else {
      if (rank == MAX_RANK) goto too_big;
      from[rank++] = ax;
    }
    ax++;
  }
  Node *y = sliced ? parse_mk1(p, OP_SLICE, x, &a, open->loc) : x;
  if (!dropped && rank == s->rank) return y;
  Attrs r = {0};
  r.to.rank = rank;
  for (int i = 0; i < rank; i++) r.to.d[i] = from[i] < 0 ? (Dim){1, 0} : y->shape.d[from[i]];
  return parse_mk1(p, OP_RESHAPE, y, &r, open->loc);
too_big:
  parse_fail(p, open->loc, "this index gives more than %d axes, the rank limit", MAX_RANK);
}
