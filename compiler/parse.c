/*
 * parse.c - tokens -> checked IR graph (the front end's entry point).
 *
 * A recursive-descent parser that builds graph nodes directly: every
 * expression becomes nodes through graph_node(), whose shape rules reject bad
 * operands at the operator's token.  The first error stops the parse (errors
 * cascade otherwise); warnings are collected and parsing goes on.
 *
 * Statements, one per line:
 *   input  NAME : type
 *   param  NAME : type (= init)?
 *   const  NAME (: type)? = literal
 *   output NAME (= expr)?          metric NAME (= expr)?
 *   train  NAME with optimizer(kwargs)
 *   NAME = expr
 * Surface functions (dense, mse, expand_dims, ...) are sugar that expands into
 * primitive ops here; there is no second IR.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

typedef struct Sym {
  const char *name;
  Node *node;
  Loc loc;
  struct Sym *next;
} Sym;

typedef struct P {
  Arena *arena;
  Graph *g;
  Diags *diags;
  Token *tok;
  Sym *syms;
  int depth;
  int ndense;              /* Keras-style numbering of unnamed layers */
  const char *bind_name;   /* the name a let-binding is about to get */
  jmp_buf fail;            /* the first error unwinds the whole parse */
} P;

/* A call argument before the callee decides what it must be. */
typedef enum { V_NODE, V_NUM, V_LIST, V_NAME } ValKind;

typedef struct Item {      /* an element of a bracketed list */
  double v;
  bool is_int;
  const char *name;
  Loc loc;
} Item;

typedef struct Val {
  ValKind kind;
  const char *key;         /* keyword argument name, or NULL */
  Loc keyloc;
  Loc loc;
  Node *node;
  double num;
  bool is_int;
  const char *name;
  Item *items;             /* V_LIST, flattened row-major */
  Shape lshape;            /* V_LIST nesting */
  bool used;
} Val;

enum { MAX_ARGS = MAX_OPERANDS + 8, MAX_LITERAL = 1 << 20 };

typedef struct Call {
  Token *fn;
  Val args[MAX_ARGS];
  int nargs, npos;
} Call;

static _Noreturn void fail_at(P *p, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void fail_at(P *p, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vadd(p->arena, p->diags, DIAG_ERROR, loc, fmt, ap);
  va_end(ap);
  longjmp(p->fail, 1);
}

/* A node constructor that unwinds when the shape rule refused. */
static Node *mk(P *p, OpKind op, Node **src, int nsrc, const Attrs *a, Loc loc) {
  Node *n = graph_node(p->g, op, src, nsrc, a, loc);
  if (!n) longjmp(p->fail, 1);
  return n;
}

static Node *mk1(P *p, OpKind op, Node *x, const Attrs *a, Loc loc) {
  return mk(p, op, &x, 1, a, loc);
}

static Node *mk2(P *p, OpKind op, Node *x, Node *y, Loc loc) {
  Node *s[2] = {x, y};
  return mk(p, op, s, 2, NULL, loc);
}

static char *tok_str(P *p, const Token *t) {
  return arena_strndup(p->arena, t->text, (size_t)t->len);
}

static const char *describe(const Token *t, char *buf, size_t n) {
  if (t->kind == T_EOF) return "end of file";
  if (t->kind == T_NEWLINE) return "end of line";
  snprintf(buf, n, "'%.*s'", t->len > 40 ? 40 : t->len, t->text);
  return buf;
}

static _Noreturn void expected(P *p, const char *what) {
  char b[64];
  fail_at(p, p->tok->loc, "expected %s, found %s", what,
          describe(p->tok, b, sizeof b));
}

static bool at(P *p, const char *s) { return tok_is(p->tok, s); }

static bool accept(P *p, const char *s) {
  if (!at(p, s)) return false;
  p->tok = p->tok->next;
  return true;
}

static void skip(P *p, const char *s) {
  if (!accept(p, s)) {
    char w[32];
    snprintf(w, sizeof w, "'%s'", s);
    expected(p, w);
  }
}

static Token *ident(P *p, const char *what) {
  if (p->tok->kind != T_IDENT) expected(p, what);
  Token *t = p->tok;
  p->tok = t->next;
  return t;
}

static void end_of_statement(P *p) {
  if (p->tok->kind == T_EOF) return;
  if (p->tok->kind != T_NEWLINE) expected(p, "end of line");
  p->tok = p->tok->next;
}

/* ------------------------------------------------------------ names */

static Sym *lookup(P *p, const char *name) {
  for (Sym *s = p->syms; s; s = s->next)
    if (strcmp(s->name, name) == 0) return s;
  return NULL;
}

static const char *const keywords[] = {"input", "param", "const", "output",
                                       "metric", "train", "with"};

static void define(P *p, const char *name, Node *n, Loc loc) {
  Sym *old = lookup(p, name);
  if (old)
    fail_at(p, loc, "redefinition of '%s' (first defined at line %d)", name,
            old->loc.line);
  for (int i = 1; i <= p->g->nsym; i++)
    if (strcmp(p->g->sym[i], name) == 0)
      fail_at(p, loc, "'%s' is already used as a symbolic dimension", name);
  Sym *s = arena_alloc(p->arena, sizeof *s);
  *s = (Sym){name, n, loc, p->syms};
  p->syms = s;
  if (!n->name) n->name = name;
}

static const char *nearest_sym(P *p, const char *name) {
  const char *best = NULL;
  int bd = 1 << 30;
  for (Sym *s = p->syms; s; s = s->next) {
    int d = edit_distance(name, s->name);
    if (d < bd) bd = d, best = s->name;
  }
  size_t len = strlen(name);
  return bd <= (len < 4 ? 1 : 2) ? best : NULL;
}

static _Noreturn void unknown_ident(P *p, const char *name, Loc loc) {
  const char *near = nearest_sym(p, name);
  if (near)
    fail_at(p, loc, "unknown identifier '%s'; did you mean '%s'?", name, near);
  fail_at(p, loc, "unknown identifier '%s'", name);
}

/* ------------------------------------------------------------ literals */

static Node *const_node(P *p, DType t, const Shape *s, double *values,
                        bool weak, Loc loc) {
  Node *n = graph_leaf(p->g, OP_CONST, NULL, t, s, loc);
  n->a.values = values;
  if (weak) n->flags |= N_WEAK;
  return n;
}

static Node *scalar(P *p, double v, bool is_int, Loc loc) {
  double *d = arena_alloc(p->arena, sizeof *d);
  *d = v;
  Shape s = {0};
  return const_node(p, is_int ? DT_I32 : DT_F32, &s, d, true, loc);
}

static bool number_token(P *p, double *v, bool *is_int, Loc *loc) {
  Token *t = p->tok;
  bool neg = false;
  if (tok_is(t, "-") && (t->next->kind == T_INT || t->next->kind == T_FLOAT)) {
    neg = true;
    t = t->next;
  }
  if (t->kind != T_INT && t->kind != T_FLOAT) return false;
  *loc = p->tok->loc;
  *v = neg ? -t->fval : t->fval;
  *is_int = t->kind == T_INT;
  p->tok = t->next;
  return true;
}

/* list = "[" (list | item) ("," (list | item))* "]", rectangular. */
static void parse_list(P *p, Val *v, int level, Item **buf, int64_t *n,
                       int64_t *cap) {
  Token *open = p->tok;
  skip(p, "[");
  if (level >= MAX_RANK) fail_at(p, open->loc, "list nested deeper than rank %d", MAX_RANK);
  int64_t count = 0;
  if (!at(p, "]")) {
    do {
      if (at(p, "[")) {
        parse_list(p, v, level + 1, buf, n, cap);
      } else {
        if (level + 1 < v->lshape.rank)
          fail_at(p, p->tok->loc, "ragged list: expected a nested list here");
        if (v->lshape.rank == 0) v->lshape.rank = level + 1;
        if (level + 1 != v->lshape.rank)
          fail_at(p, p->tok->loc, "ragged list: mixed nesting depths");
        Item it = {0};
        if (!number_token(p, &it.v, &it.is_int, &it.loc)) {
          if (p->tok->kind != T_IDENT) expected(p, "a number");
          it.loc = p->tok->loc;
          it.name = tok_str(p, p->tok);
          p->tok = p->tok->next;
        }
        if (*n == MAX_LITERAL)
          fail_at(p, it.loc, "list literal has more than %d elements", MAX_LITERAL);
        if (*n == *cap) {
          int64_t nc = *cap ? *cap * 2 : 16;
          Item *g = arena_alloc(p->arena, sizeof(Item) * (size_t)nc);
          if (*n) memcpy(g, *buf, sizeof(Item) * (size_t)*n);
          *buf = g, *cap = nc;
        }
        (*buf)[(*n)++] = it;
      }
      count++;
    } while (accept(p, ","));
  }
  if (v->lshape.rank == 0) v->lshape.rank = level + 1;   /* [] or [[]] */
  Dim *d = &v->lshape.d[level];
  if (d->sym == 0 && d->n == 0 && count != 0 && level < v->lshape.rank) {
    /* first row at this depth fixes the length (sym marks "seen") */
  }
  if (d->sym == 1 && d->n != count)
    fail_at(p, open->loc, "ragged list: %lld elements here, %lld in the first "
            "row at this depth", (long long)count, (long long)d->n);
  *d = (Dim){count, 1};
  skip(p, "]");
}

static void parse_list_val(P *p, Val *v) {
  Item *buf = NULL;
  int64_t n = 0, cap = 0;
  v->kind = V_LIST;
  v->loc = p->tok->loc;
  parse_list(p, v, 0, &buf, &n, &cap);
  for (int i = 0; i < v->lshape.rank; i++) v->lshape.d[i].sym = 0;
  v->items = buf;
}

static Node *list_to_tensor(P *p, Val *v) {
  int64_t n = shape_static_count(&v->lshape);
  double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(n ? n : 1));
  bool all_int = true;
  for (int64_t i = 0; i < n; i++) {
    if (v->items[i].name)
      unknown_ident(p, v->items[i].name, v->items[i].loc);
    d[i] = v->items[i].v;
    all_int &= v->items[i].is_int;
  }
  return const_node(p, all_int ? DT_I32 : DT_F32, &v->lshape, d, true, v->loc);
}

/* ------------------------------------------------------------ expressions */

static Node *expr(P *p);

static Node *call(P *p);

/* index = item ("," item)*;  item = INT | INT? ":" INT? (":" INT?)? */
static Node *postfix_index(P *p, Node *x) {
  Token *open = p->tok;
  skip(p, "[");
  const Shape *s = &x->shape;
  Attrs a = {0};
  bool drop[MAX_RANK] = {0};
  int ax = 0;
  do {
    if (ax >= s->rank)
      fail_at(p, p->tok->loc, "too many indices for a tensor of rank %d", s->rank);
    Dim d = s->d[ax];
    int64_t len = d.n;
    int64_t v[3] = {0, 0, 1};
    bool has[3] = {0}, colon = false;
    Loc loc = p->tok->loc;
    for (int part = 0; part < 3; part++) {
      double num;
      bool is_int;
      Loc nl;
      if (number_token(p, &num, &is_int, &nl)) {
        if (!is_int) fail_at(p, nl, "index must be an integer");
        v[part] = (int64_t)num;
        has[part] = true;
      }
      if (part == 2 || !accept(p, ":")) break;
      colon = true;
    }
    if (has[2] && v[2] == 0) fail_at(p, loc, "slice step cannot be zero");
    if (d.sym) {
      if (has[0] || has[1] || has[2] || !colon)
        fail_at(p, loc, "cannot index the symbolic dimension '%s'; only ':' "
                "(all of it) is allowed", p->g->sym[d.sym]);
      a.begin[ax] = 0, a.end[ax] = INT64_MAX, a.step[ax] = 1;
    } else if (!colon) {
      int64_t i = v[0] < 0 ? v[0] + len : v[0];
      if (!has[0] || i < 0 || i >= len)
        fail_at(p, loc, "index %lld is out of range for axis %d of size %lld",
                (long long)v[0], ax, (long long)len);
      a.begin[ax] = i, a.end[ax] = i + 1, a.step[ax] = 1;
      drop[ax] = true;
    } else {
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
      a.begin[ax] = b, a.end[ax] = e, a.step[ax] = st;
    }
    ax++;
  } while (accept(p, ","));
  skip(p, "]");
  for (int i = ax; i < s->rank; i++) {
    if (s->d[i].sym) a.begin[i] = 0, a.end[i] = INT64_MAX, a.step[i] = 1;
    else a.begin[i] = 0, a.end[i] = s->d[i].n, a.step[i] = 1;
  }
  Node *y = mk1(p, OP_SLICE, x, &a, open->loc);
  bool any_drop = false;
  Attrs r = {0};
  for (int i = 0; i < s->rank; i++) {
    if (drop[i]) any_drop = true;
    else r.to.d[r.to.rank++] = y->shape.d[i];
  }
  return any_drop ? mk1(p, OP_RESHAPE, y, &r, open->loc) : y;
}

/* primary = NUMBER | IDENT | call | "(" expr ")" | list */
static Node *primary(P *p) {
  Token *t = p->tok;
  if (t->kind == T_INT || t->kind == T_FLOAT) {
    p->tok = t->next;
    return scalar(p, t->fval, t->kind == T_INT, t->loc);
  }
  if (accept(p, "(")) {
    Node *n = expr(p);
    skip(p, ")");
    return n;
  }
  if (at(p, "[")) {
    Val v = {0};
    parse_list_val(p, &v);
    return list_to_tensor(p, &v);
  }
  if (t->kind == T_IDENT) {
    if (tok_is(t->next, "(")) return call(p);
    char *name = tok_str(p, t);
    Sym *s = lookup(p, name);
    if (!s) unknown_ident(p, name, t->loc);
    p->tok = t->next;
    return s->node;
  }
  expected(p, "an expression");
}

static Node *postfix(P *p) {
  Node *n = primary(p);
  while (at(p, "[")) n = postfix_index(p, n);
  return n;
}

/* unary = "-" unary | postfix ("**" unary)? */
static Node *unary(P *p) {
  if (++p->depth > MAX_DEPTH)
    fail_at(p, p->tok->loc, "expression nested too deeply (more than %d levels)",
            MAX_DEPTH);
  Node *n;
  Token *t = p->tok;
  if (accept(p, "-")) {
    n = mk1(p, OP_NEG, unary(p), NULL, t->loc);
  } else {
    n = postfix(p);
    Token *op = p->tok;
    if (accept(p, "**")) n = mk2(p, OP_POW, n, unary(p), op->loc);
  }
  p->depth--;
  return n;
}

/* term = unary (("*" | "/" | "@") unary)* */
static Node *term(P *p) {
  Node *n = unary(p);
  for (;;) {
    Token *op = p->tok;
    if (accept(p, "*")) n = mk2(p, OP_MUL, n, unary(p), op->loc);
    else if (accept(p, "/")) n = mk2(p, OP_DIV, n, unary(p), op->loc);
    else if (accept(p, "@")) n = mk2(p, OP_MATMUL, n, unary(p), op->loc);
    else return n;
  }
}

/* additive = term (("+" | "-") term)* */
static Node *additive(P *p) {
  Node *n = term(p);
  for (;;) {
    Token *op = p->tok;
    if (accept(p, "+")) n = mk2(p, OP_ADD, n, term(p), op->loc);
    else if (accept(p, "-")) n = mk2(p, OP_SUB, n, term(p), op->loc);
    else return n;
  }
}

/* expr = additive (("==" | "!=" | "<" | "<=" | ">" | ">=") additive)? */
static Node *expr(P *p) {
  static const struct { const char *s; OpKind op; } cmp[] = {
      {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
      {"<", OP_LT}, {">", OP_GT},
  };
  Node *n = additive(p);
  for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++) {
    Token *op = p->tok;
    if (accept(p, cmp[i].s)) {
      n = mk2(p, cmp[i].op, n, additive(p), op->loc);
      break;
    }
  }
  return n;
}

/* ------------------------------------------------------------ calls */

/* arg = IDENT "=" value | value
 * value = list | number | IDENT (a bare name, when it is no tensor) | expr */
static void parse_arg(P *p, Call *c) {
  if (c->nargs == MAX_ARGS)
    fail_at(p, p->tok->loc, "too many arguments (at most %d)", MAX_ARGS);
  Val *v = &c->args[c->nargs++];
  memset(v, 0, sizeof *v);
  if (p->tok->kind == T_IDENT && tok_is(p->tok->next, "=")) {
    v->key = tok_str(p, p->tok);
    v->keyloc = p->tok->loc;
    p->tok = p->tok->next->next;
  } else if (c->nargs > c->npos + 1) {
    fail_at(p, p->tok->loc, "positional argument after keyword arguments");
  } else {
    c->npos++;
  }
  v->loc = p->tok->loc;
  Token *t = p->tok;
  Token *after = t->next;
  if (tok_is(t, "-") && (after->kind == T_INT || after->kind == T_FLOAT))
    after = after->next;
  bool ends = tok_is(after, ",") || tok_is(after, ")");
  if (at(p, "[") && v->key) {
    parse_list_val(p, v);
  } else if (at(p, "[")) {
    /* A positional list is a tensor literal unless followed by an operator;
     * keep both readings: the callee asks for what it needs. */
    Token *save = p->tok;
    parse_list_val(p, v);
    if (!at(p, ",") && !at(p, ")")) {
      p->tok = save;
      v->kind = V_NODE;
      v->node = expr(p);
    }
  } else if ((t->kind == T_INT || t->kind == T_FLOAT || tok_is(t, "-")) && ends) {
    Loc l;
    number_token(p, &v->num, &v->is_int, &l);
    v->kind = V_NUM;
  } else if (t->kind == T_IDENT && ends && !lookup(p, tok_str(p, t))) {
    v->kind = V_NAME;
    v->name = tok_str(p, t);
    p->tok = t->next;
  } else {
    v->kind = V_NODE;
    v->node = expr(p);
  }
}

static Val *kwarg(Call *c, const char *key) {
  for (int i = 0; i < c->nargs; i++)
    if (c->args[i].key && strcmp(c->args[i].key, key) == 0) {
      c->args[i].used = true;
      return &c->args[i];
    }
  return NULL;
}

/* The i-th positional argument, or else the keyword argument key. */
static Val *arg(Call *c, int i, const char *key) {
  if (i < c->npos) {
    c->args[i].used = true;
    return &c->args[i];
  }
  return key ? kwarg(c, key) : NULL;
}

static const char *fn_name(P *p, Call *c) { return tok_str(p, c->fn); }

static Node *as_tensor(P *p, Call *c, Val *v) {
  (void)c;
  switch (v->kind) {
  case V_NODE: return v->node;
  case V_NUM: return scalar(p, v->num, v->is_int, v->loc);
  case V_LIST: return list_to_tensor(p, v);
  case V_NAME: unknown_ident(p, v->name, v->loc);
  }
  return NULL;
}

static Node *tensor_arg(P *p, Call *c, int i, const char *key) {
  Val *v = arg(c, i, key);
  if (!v)
    fail_at(p, c->fn->loc, "%s: missing argument %d%s%s%s", fn_name(p, c), i + 1,
            key ? " (" : "", key ? key : "", key ? ")" : "");
  return as_tensor(p, c, v);
}

static double num_arg(P *p, Call *c, Val *v, bool want_int) {
  if (v->kind != V_NUM)
    fail_at(p, v->loc, "%s: expected a number here", fn_name(p, c));
  if (want_int && !v->is_int)
    fail_at(p, v->loc, "%s: expected an integer, got %g", fn_name(p, c), v->num);
  return v->num;
}

static bool bool_arg(P *p, Call *c, Val *v) {
  if (v->kind == V_NAME && (strcmp(v->name, "true") == 0 || strcmp(v->name, "True") == 0))
    return true;
  if (v->kind == V_NAME && (strcmp(v->name, "false") == 0 || strcmp(v->name, "False") == 0))
    return false;
  if (v->kind == V_NUM && v->is_int && (v->num == 0 || v->num == 1)) return v->num != 0;
  fail_at(p, v->loc, "%s: expected true or false", fn_name(p, c));
}

static int norm_axis(P *p, Call *c, Loc loc, double ax, int rank) {
  if (ax != floor(ax) || ax < -rank || ax >= rank || rank == 0)
    fail_at(p, loc, "%s: axis %g is out of range for a tensor of rank %d",
            fn_name(p, c), ax, rank);
  return ax < 0 ? (int)ax + rank : (int)ax;
}

static int axis_arg(P *p, Call *c, Val *v, int rank, int dflt) {
  if (!v) return dflt < 0 ? dflt + rank : dflt;
  return norm_axis(p, c, v->loc, num_arg(p, c, v, true), rank);
}

/* axis = None | int | [int, ...] -> bit mask over the operand's axes */
static uint32_t axes_arg(P *p, Call *c, Val *v, int rank) {
  if (!v || (v->kind == V_NAME && strcmp(v->name, "None") == 0))
    return rank ? (uint32_t)((1u << rank) - 1) : 0;
  uint32_t m = 0;
  if (v->kind == V_LIST) {
    if (v->lshape.rank != 1)
      fail_at(p, v->loc, "%s: axis must be an integer or a list of integers",
              fn_name(p, c));
    for (int64_t i = 0; i < v->lshape.d[0].n; i++) {
      Item *it = &v->items[i];
      if (it->name || !it->is_int)
        fail_at(p, it->loc, "%s: axis must be an integer", fn_name(p, c));
      uint32_t bit = 1u << norm_axis(p, c, it->loc, it->v, rank);
      if (m & bit) fail_at(p, it->loc, "%s: axis %g is repeated", fn_name(p, c), it->v);
      m |= bit;
    }
    return m;
  }
  return 1u << norm_axis(p, c, v->loc, num_arg(p, c, v, true), rank);
}

/* A shape given as a list: ints (-1 once, to infer) and symbolic names. */
static Shape shape_arg(P *p, Call *c, Val *v) {
  if (!v || v->kind != V_LIST || v->lshape.rank != 1)
    fail_at(p, v ? v->loc : c->fn->loc, "%s: expected a shape such as [batch, 784]",
            fn_name(p, c));
  Shape s = {0};
  int64_t n = v->lshape.d[0].n;
  if (n > MAX_RANK)
    fail_at(p, v->loc, "%s: rank %lld exceeds the limit of %d", fn_name(p, c),
            (long long)n, MAX_RANK);
  int infer = 0;
  for (int64_t i = 0; i < n; i++) {
    Item *it = &v->items[i];
    if (it->name) {
      if (lookup(p, it->name))
        fail_at(p, it->loc, "'%s' is a tensor, not a dimension", it->name);
      int k = graph_sym(p->g, it->name);
      if (!k) fail_at(p, it->loc, "too many symbolic dimensions (at most %d)", MAX_SYMS);
      s.d[s.rank++] = (Dim){1, k};
    } else if (!it->is_int || (it->v < 1 && it->v != -1) || it->v > MAX_ELEMENTS) {
      fail_at(p, it->loc, "%s: dimension %g must be a positive integer or -1",
              fn_name(p, c), it->v);
    } else {
      if (it->v == -1 && infer++)
        fail_at(p, it->loc, "%s: only one dimension can be -1", fn_name(p, c));
      s.d[s.rank++] = (Dim){(int64_t)it->v, 0};
    }
  }
  return s;
}

static Node *reshape_to(P *p, Node *x, const Shape *to, Loc loc) {
  Attrs a = {0};
  a.to = *to;
  return mk1(p, OP_RESHAPE, x, &a, loc);
}

static DType dtype_by_name(const char *s, bool *ok) {
  static const struct { const char *n; DType t; } names[] = {
      {"f32", DT_F32}, {"float32", DT_F32}, {"f64", DT_F64}, {"float64", DT_F64},
      {"i32", DT_I32}, {"int32", DT_I32}, {"bool", DT_BOOL},
  };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(s, names[i].n) == 0) {
      *ok = true;
      return names[i].t;
    }
  *ok = false;
  return DT_F32;
}

static Node *parse_init_into(P *p, Node *param, Call *c, Val *v);

static Node *new_param(P *p, const char *name, const Shape *s, Init init, Loc loc) {
  Node *n = graph_leaf(p->g, OP_PARAM, NULL, DT_F32, s, loc);
  n->a.init = init;
  define(p, name, n, loc);
  return n;
}

/* Activation names allowed in layer sugar: the unary ops plus linear. */
static Node *activate(P *p, Call *c, Val *v, Node *x) {
  if (!v || (v->kind == V_NAME && (strcmp(v->name, "linear") == 0 ||
                                   strcmp(v->name, "None") == 0)))
    return x;
  if (v->kind == V_NAME) {
    static const OpKind acts[] = {OP_RELU, OP_SIGMOID, OP_TANH, OP_EXP};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
      if (strcmp(v->name, op_info[acts[i]].name) == 0)
        return mk1(p, acts[i], x, NULL, v->loc);
    if (strcmp(v->name, "softmax") == 0) {
      Attrs a = {.axis = x->shape.rank - 1};
      return mk1(p, OP_SOFTMAX, x, &a, v->loc);
    }
  }
  fail_at(p, v->loc, "%s: unknown activation; use relu, sigmoid, tanh, exp, "
          "softmax or linear", fn_name(p, c));
}

/* dense(x, units, activation=linear, use_bias=true,
 *       kernel_initializer=glorot_uniform, bias_initializer=zeros, name=...)
 * Keras Dense: kernel [in, units], bias [units]. */
static Node *fn_dense(P *p, Call *c) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *u = arg(c, 1, "units");
  if (!u) fail_at(p, c->fn->loc, "dense: missing the number of units");
  double units = num_arg(p, c, u, true);
  if (units < 1 || units > MAX_ELEMENTS)
    fail_at(p, u->loc, "dense: units must be a positive integer, got %g", units);
  if (x->shape.rank < 1 || x->shape.d[x->shape.rank - 1].sym)
    fail_at(p, c->fn->loc, "dense: the input's last dimension must be static");
  if (!dtype_is_float(x->dtype))
    fail_at(p, c->fn->loc, "dense: the input must be floating-point, got %s",
            dtype_names[x->dtype]);
  Val *nm = kwarg(c, "name");
  const char *base;
  if (nm && nm->kind == V_NAME) base = nm->name;
  else if (nm) fail_at(p, nm->loc, "dense: name must be an identifier");
  else if (p->bind_name) base = p->bind_name;
  else base = p->ndense ? arena_printf(p->arena, "dense_%d", p->ndense) : "dense";
  p->ndense++;
  Shape ks = {2, {{x->shape.d[x->shape.rank - 1].n, 0}, {(int64_t)units, 0}}};
  Node *k = new_param(p, arena_printf(p->arena, "%s.kernel", base), &ks,
                      (Init){INIT_GLOROT_UNIFORM, 0, 0}, c->fn->loc);
  Val *ki = kwarg(c, "kernel_initializer");
  if (ki) parse_init_into(p, k, c, ki);
  Node *y = mk2(p, OP_MATMUL, x, k, c->fn->loc);
  Val *ub = kwarg(c, "use_bias");
  if (!ub || bool_arg(p, c, ub)) {
    Shape bs = {1, {{(int64_t)units, 0}}};
    Node *b = new_param(p, arena_printf(p->arena, "%s.bias", base), &bs,
                        (Init){INIT_ZEROS, 0, 0}, c->fn->loc);
    Val *bi = kwarg(c, "bias_initializer");
    if (bi) parse_init_into(p, b, c, bi);
    y = mk2(p, OP_ADD, y, b, c->fn->loc);
  }
  return activate(p, c, kwarg(c, "activation"), y);
}

typedef Node *CallFn(P *p, Call *c, OpKind op);

static Node *fn_unary(P *p, Call *c, OpKind op) {
  return mk1(p, op, tensor_arg(p, c, 0, NULL), NULL, c->fn->loc);
}

static Node *fn_binary(P *p, Call *c, OpKind op) {
  Node *a = tensor_arg(p, c, 0, NULL), *b = tensor_arg(p, c, 1, NULL);
  return mk2(p, op, a, b, c->fn->loc);
}

static Node *fn_where(P *p, Call *c, OpKind op) {
  Node *s[3] = {tensor_arg(p, c, 0, NULL), tensor_arg(p, c, 1, NULL),
                tensor_arg(p, c, 2, NULL)};
  return mk(p, op, s, 3, NULL, c->fn->loc);
}

static Node *fn_clip(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *lo = arg(c, 1, "min"), *hi = arg(c, 2, "max");
  if (!lo || !hi) fail_at(p, c->fn->loc, "clip: expected clip(x, min, max)");
  Attrs a = {.lo = num_arg(p, c, lo, false), .hi = num_arg(p, c, hi, false)};
  return mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_cast(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *t = arg(c, 1, "dtype");
  bool ok = false;
  Attrs a = {0};
  if (t && t->kind == V_NAME) a.dtype = dtype_by_name(t->name, &ok);
  if (!ok)
    fail_at(p, t ? t->loc : c->fn->loc, "cast: expected a dtype: f32, f64, i32 "
            "or bool");
  return mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_axis(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Attrs a = {.axis = axis_arg(p, c, arg(c, 1, "axis"), x->shape.rank, -1)};
  if (x->shape.rank == 0) a.axis = 0;
  return mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_reduce(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *kd = kwarg(c, "keepdims");
  Attrs a = {.axes = axes_arg(p, c, arg(c, 1, "axis"), x->shape.rank),
             .keepdims = kd && bool_arg(p, c, kd)};
  return mk1(p, op, x, &a, c->fn->loc);
}

/* argmax(x, axis=0): TF's default axis is 0, not numpy's flatten. */
static Node *fn_argreduce(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *kd = kwarg(c, "keepdims");
  Attrs a = {.axis = x->shape.rank ? axis_arg(p, c, arg(c, 1, "axis"), x->shape.rank, 0) : 0,
             .keepdims = kd && bool_arg(p, c, kd)};
  return mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_reshape(P *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Shape s = shape_arg(p, c, arg(c, 1, "shape"));
  return reshape_to(p, x, &s, c->fn->loc);
}

static Node *fn_broadcast(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Attrs a = {.to = shape_arg(p, c, arg(c, 1, "shape"))};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n == -1)
      fail_at(p, c->fn->loc, "broadcast_to: -1 is not allowed in the target shape");
  return mk1(p, op, x, &a, c->fn->loc);
}

/* transpose(x, perm): default reverses the axes, as in TF. */
static Node *fn_transpose(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "perm");
  Attrs a = {0};
  int r = x->shape.rank;
  if (!v) {
    for (int i = 0; i < r; i++) a.perm[i] = r - 1 - i;
  } else {
    if (v->kind != V_LIST || v->lshape.rank != 1 || v->lshape.d[0].n != r)
      fail_at(p, v->loc, "transpose: perm must list %d axes", r);
    for (int i = 0; i < r; i++) {
      if (v->items[i].name || !v->items[i].is_int)
        fail_at(p, v->items[i].loc, "transpose: perm entries must be integers");
      a.perm[i] = norm_axis(p, c, v->items[i].loc, v->items[i].v, r);
    }
  }
  return mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_concat(P *p, Call *c, OpKind op) {
  Node *s[MAX_OPERANDS];
  int n = 0;
  for (int i = 0; i < c->npos; i++) {
    if (n == MAX_OPERANDS)
      fail_at(p, c->args[i].loc, "concat: at most %d operands", MAX_OPERANDS);
    s[n++] = tensor_arg(p, c, i, NULL);
  }
  if (n < 1) fail_at(p, c->fn->loc, "concat: expected concat(a, b, ..., axis=k)");
  Val *ax = kwarg(c, "axis");
  if (!ax) fail_at(p, c->fn->loc, "concat: missing axis=");
  Attrs a = {.axis = axis_arg(p, c, ax, s[0]->shape.rank, 0)};
  return mk(p, op, s, n, &a, c->fn->loc);
}

static Node *fn_one_hot(P *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *d = arg(c, 1, "depth");
  if (!d) fail_at(p, c->fn->loc, "one_hot: missing depth");
  double depth = num_arg(p, c, d, true);
  if (depth < 1 || depth > MAX_ELEMENTS)
    fail_at(p, d->loc, "one_hot: depth must be a positive integer, got %g", depth);
  Attrs a = {.depth = (int64_t)depth};
  return mk1(p, op, x, &a, c->fn->loc);
}

/* expand_dims(x, axis): a reshape that inserts a 1 (axis may be -rank-1..rank) */
static Node *fn_expand_dims(P *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "axis");
  if (!v) fail_at(p, c->fn->loc, "expand_dims: missing axis");
  int r = x->shape.rank;
  if (r == MAX_RANK) fail_at(p, c->fn->loc, "expand_dims: rank would exceed %d", MAX_RANK);
  int ax = norm_axis(p, c, v->loc, num_arg(p, c, v, true), r + 1);
  Shape s = {.rank = r + 1};
  for (int i = 0, j = 0; i <= r; i++) s.d[i] = i == ax ? (Dim){1, 0} : x->shape.d[j++];
  return reshape_to(p, x, &s, c->fn->loc);
}

/* squeeze(x, axis=None): drops size-1 axes; naming a larger one is an error */
static Node *fn_squeeze(P *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "axis");
  uint32_t m = 0;
  if (v) m = axes_arg(p, c, v, x->shape.rank);
  Shape s = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    bool one = dim_is_one(x->shape.d[i]);
    if ((m & (1u << i)) && !one) {
      char b[48];
      fail_at(p, v->loc, "squeeze: axis %d has size %s, not 1", i,
              dim_str(p->g, x->shape.d[i], b, sizeof b));
    }
    if (v ? !(m & (1u << i)) : !one) s.d[s.rank++] = x->shape.d[i];
  }
  return reshape_to(p, x, &s, c->fn->loc);
}

/* flatten(x): Keras Flatten, keeps the first (batch) axis */
static Node *fn_flatten(P *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  if (x->shape.rank < 1) fail_at(p, c->fn->loc, "flatten: needs a tensor of rank >= 1");
  Shape s = {2, {x->shape.d[0], {-1, 0}}};
  return reshape_to(p, x, &s, c->fn->loc);
}

/* mse(a, b): Keras MeanSquaredError per sample = mean over the last axis */
static Node *fn_mse(P *p, Call *c, OpKind op) {
  (void)op;
  Node *a = tensor_arg(p, c, 0, NULL), *b = tensor_arg(p, c, 1, NULL);
  Node *d = mk1(p, OP_SQUARE, mk2(p, OP_SUB, a, b, c->fn->loc), NULL, c->fn->loc);
  Attrs r = {.axes = d->shape.rank ? 1u << (d->shape.rank - 1) : 0};
  return mk1(p, OP_MEAN, d, &r, c->fn->loc);
}

static Node *fn_dense_call(P *p, Call *c, OpKind op) {
  (void)op;
  return fn_dense(p, c);
}

static const struct Builtin {
  const char *name;
  CallFn *fn;
  OpKind op;
  int min_pos, max_pos;      /* positional arguments accepted */
  const char *kw;            /* comma-separated keyword arguments */
} builtins[] = {
    {"add", fn_binary, OP_ADD, 2, 2, ""},
    {"sub", fn_binary, OP_SUB, 2, 2, ""},
    {"mul", fn_binary, OP_MUL, 2, 2, ""},
    {"div", fn_binary, OP_DIV, 2, 2, ""},
    {"pow", fn_binary, OP_POW, 2, 2, ""},
    {"maximum", fn_binary, OP_MAXIMUM, 2, 2, ""},
    {"minimum", fn_binary, OP_MINIMUM, 2, 2, ""},
    {"equal", fn_binary, OP_EQ, 2, 2, ""},
    {"not_equal", fn_binary, OP_NE, 2, 2, ""},
    {"less", fn_binary, OP_LT, 2, 2, ""},
    {"less_equal", fn_binary, OP_LE, 2, 2, ""},
    {"greater", fn_binary, OP_GT, 2, 2, ""},
    {"greater_equal", fn_binary, OP_GE, 2, 2, ""},
    {"matmul", fn_binary, OP_MATMUL, 2, 2, ""},
    {"neg", fn_unary, OP_NEG, 1, 1, ""},
    {"abs", fn_unary, OP_ABS, 1, 1, ""},
    {"square", fn_unary, OP_SQUARE, 1, 1, ""},
    {"relu", fn_unary, OP_RELU, 1, 1, ""},
    {"sigmoid", fn_unary, OP_SIGMOID, 1, 1, ""},
    {"tanh", fn_unary, OP_TANH, 1, 1, ""},
    {"exp", fn_unary, OP_EXP, 1, 1, ""},
    {"log", fn_unary, OP_LOG, 1, 1, ""},
    {"sqrt", fn_unary, OP_SQRT, 1, 1, ""},
    {"clip", fn_clip, OP_CLIP, 1, 3, "min,max"},
    {"cast", fn_cast, OP_CAST, 1, 2, "dtype"},
    {"where", fn_where, OP_WHERE, 3, 3, ""},
    {"softmax", fn_axis, OP_SOFTMAX, 1, 2, "axis"},
    {"log_softmax", fn_axis, OP_LOG_SOFTMAX, 1, 2, "axis"},
    {"sum", fn_reduce, OP_SUM, 1, 2, "axis,keepdims"},
    {"mean", fn_reduce, OP_MEAN, 1, 2, "axis,keepdims"},
    {"max", fn_reduce, OP_MAX, 1, 2, "axis,keepdims"},
    {"min", fn_reduce, OP_MIN, 1, 2, "axis,keepdims"},
    {"argmax", fn_argreduce, OP_ARGMAX, 1, 2, "axis,keepdims"},
    {"argmin", fn_argreduce, OP_ARGMIN, 1, 2, "axis,keepdims"},
    {"reshape", fn_reshape, OP_RESHAPE, 1, 2, "shape"},
    {"transpose", fn_transpose, OP_TRANSPOSE, 1, 2, "perm"},
    {"broadcast_to", fn_broadcast, OP_BROADCAST, 1, 2, "shape"},
    {"concat", fn_concat, OP_CONCAT, 1, MAX_OPERANDS, "axis"},
    {"one_hot", fn_one_hot, OP_ONE_HOT, 1, 2, "depth"},
    {"softmax_cross_entropy", fn_binary, OP_SOFTMAX_CE, 2, 2, ""},
    {"sigmoid_cross_entropy", fn_binary, OP_SIGMOID_CE, 2, 2, ""},
    {"expand_dims", fn_expand_dims, OP_RESHAPE, 1, 2, "axis"},
    {"squeeze", fn_squeeze, OP_RESHAPE, 1, 2, "axis"},
    {"flatten", fn_flatten, OP_RESHAPE, 1, 1, ""},
    {"mse", fn_mse, OP_MEAN, 2, 2, ""},
    {"dense", fn_dense_call, OP_MATMUL, 1, 2,
     "units,activation,use_bias,kernel_initializer,bias_initializer,name"},
};

static bool in_list(const char *list, const char *key) {
  size_t n = strlen(key);
  for (const char *s = list; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == n && memcmp(s, key, n) == 0) return true;
    if (!e) break;
    s = e + 1;
  }
  return false;
}

static const struct Builtin *find_builtin(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

/* call = IDENT "(" (arg ("," arg)*)? ")" */
static Node *call(P *p) {
  Call *c = arena_alloc(p->arena, sizeof *c);
  c->fn = p->tok;
  char *name = tok_str(p, c->fn);
  const struct Builtin *b = find_builtin(name);
  if (!b) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
      int d = edit_distance(name, builtins[i].name);
      if (d < bd) bd = d, best = builtins[i].name;
    }
    if (lookup(p, name))
      fail_at(p, c->fn->loc, "'%s' is a tensor, not a function", name);
    if (bd <= 2)
      fail_at(p, c->fn->loc, "unknown function '%s'; did you mean '%s'?", name, best);
    fail_at(p, c->fn->loc, "unknown function '%s'", name);
  }
  const char *outer = p->bind_name;
  if (b->fn != fn_dense_call) p->bind_name = NULL;  /* only the outermost call */
  p->tok = p->tok->next;
  skip(p, "(");
  if (!at(p, ")")) {
    do parse_arg(p, c);
    while (accept(p, ","));
  }
  skip(p, ")");
  p->bind_name = NULL;
  if (c->npos < b->min_pos || c->npos > b->max_pos) {
    bool has_kw_for_missing = c->npos < b->min_pos && *b->kw;
    if (!has_kw_for_missing || c->npos == 0) {
      if (b->min_pos == b->max_pos)
        fail_at(p, c->fn->loc, "%s takes %d argument%s, got %d", name, b->min_pos,
                b->min_pos == 1 ? "" : "s", c->npos);
      if (c->npos > b->max_pos)
        fail_at(p, c->fn->loc, "%s takes at most %d positional arguments, got %d",
                name, b->max_pos, c->npos);
    }
  }
  for (int i = 0; i < c->nargs; i++)
    if (c->args[i].key && !in_list(b->kw, c->args[i].key))
      fail_at(p, c->args[i].keyloc, "%s has no argument '%s'%s%s", name,
              c->args[i].key, *b->kw ? "; it takes: " : "", b->kw);
  if (b->fn == fn_dense_call) p->bind_name = outer;
  Node *n = b->fn(p, c, b->op);
  p->bind_name = NULL;
  for (int i = 0; i < c->nargs; i++)
    if (!c->args[i].used && c->args[i].kind == V_NAME && !c->args[i].key)
      unknown_ident(p, c->args[i].name, c->args[i].loc);
  (void)outer;
  return n;
}

/* ------------------------------------------------------------ declarations */

/* type = DTYPE ("[" (dim ("," dim)*)? "]")?   dim = INT | IDENT */
static void parse_type(P *p, DType *t, Shape *s) {
  Token *tt = ident(p, "a dtype (f32, f64, i32, bool)");
  bool ok;
  *t = dtype_by_name(tok_str(p, tt), &ok);
  if (!ok) fail_at(p, tt->loc, "unknown dtype '%.*s'; use f32, f64, i32 or bool",
                   tt->len, tt->text);
  memset(s, 0, sizeof *s);
  if (!accept(p, "[")) return;
  if (!at(p, "]")) {
    do {
      if (s->rank == MAX_RANK)
        fail_at(p, p->tok->loc, "rank exceeds the limit of %d", MAX_RANK);
      Token *d = p->tok;
      if (d->kind == T_INT) {
        if (d->ival < 1 || d->ival > MAX_ELEMENTS)
          fail_at(p, d->loc, "dimension %lld must be a positive integer",
                  (long long)d->ival);
        s->d[s->rank++] = (Dim){d->ival, 0};
      } else if (d->kind == T_IDENT) {
        char *name = tok_str(p, d);
        if (lookup(p, name))
          fail_at(p, d->loc, "'%s' is a tensor, not a dimension", name);
        int k = graph_sym(p->g, name);
        if (!k) fail_at(p, d->loc, "too many symbolic dimensions (at most %d)", MAX_SYMS);
        s->d[s->rank++] = (Dim){1, k};
      } else {
        expected(p, "a dimension (an integer or a name such as batch)");
      }
      p->tok = d->next;
    } while (accept(p, ","));
  }
  skip(p, "]");
  if (shape_static_count(s) < 0)
    fail_at(p, tt->loc, "tensor has more than 2^40 elements");
}

static Val *init_arg(P *p, Call *c, int i, const char *k1, const char *k2,
                     double *out) {
  Val *v = arg(c, i, k1);
  if (!v && k2) v = kwarg(c, k2);
  if (v) *out = num_arg(p, c, v, false);
  return v;
}

/* init = NAME ("(" args ")")? | number | list
 * Keras definitions and defaults: RandomUniform(-0.05, 0.05),
 * RandomNormal(0, 0.05), TruncatedNormal(0, 0.05) cut at 2 std. */
static Node *parse_init_into(P *p, Node *param, Call *outer, Val *v) {
  (void)outer;
  Init in = {0};
  Loc loc = v->loc;
  int64_t count = shape_static_count(&param->shape);
  if (v->kind == V_NUM) {
    in = (Init){INIT_CONSTANT, v->num, 0};
  } else if (v->kind == V_LIST) {
    if (!shape_eq(&v->lshape, &param->shape) &&
        !(v->lshape.rank == 1 && v->lshape.d[0].n == count)) {
      char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
      fail_at(p, loc, "initial values have shape %s but '%s' is %s",
              shape_str(p->g, &v->lshape, b1, sizeof b1), param->name,
              shape_str(p->g, &param->shape, b2, sizeof b2));
    }
    double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(count ? count : 1));
    for (int64_t i = 0; i < count; i++) {
      if (v->items[i].name) unknown_ident(p, v->items[i].name, v->items[i].loc);
      d[i] = v->items[i].v;
    }
    in.kind = INIT_VALUES;
    param->a.values = d;
  } else if (v->kind == V_NAME) {
    bool found = false;
    for (int k = 0; k < INIT_VALUES; k++)
      if (strcmp(v->name, init_names[k]) == 0) in.kind = (InitKind)k, found = true;
    if (!found || in.kind == INIT_CONSTANT || in.kind == INIT_UNIFORM ||
        in.kind == INIT_NORMAL || in.kind == INIT_TRUNCATED_NORMAL) {
      if (found) goto defaults;
      fail_at(p, loc, "unknown initializer '%s'; use zeros, ones, constant(v), "
              "uniform(a,b), normal(mean,std), truncated_normal(std), "
              "glorot_uniform, glorot_normal, he_normal, he_uniform, "
              "lecun_normal or lecun_uniform", v->name);
    }
  } else {
    fail_at(p, loc, "expected an initializer such as glorot_uniform, a number or "
            "a list of values");
  }
  param->a.init = in;
  return param;
defaults:
  switch (in.kind) {
  case INIT_CONSTANT: fail_at(p, loc, "constant needs a value: constant(0.1)");
  case INIT_UNIFORM: in.a = -0.05, in.b = 0.05; break;
  default: in.a = 0, in.b = 0.05; break;
  }
  param->a.init = in;
  return param;
}

/* An initializer written as a call: constant(v), uniform(a, b), ... */
static void parse_init(P *p, Node *param) {
  if (p->tok->kind == T_IDENT && tok_is(p->tok->next, "(")) {
    Call *c = arena_alloc(p->arena, sizeof *c);
    c->fn = p->tok;
    char *name = tok_str(p, c->fn);
    p->tok = p->tok->next->next;
    if (!at(p, ")")) {
      do parse_arg(p, c);
      while (accept(p, ","));
    }
    skip(p, ")");
    Init in = {0};
    bool found = false;
    for (int k = 0; k < INIT_VALUES; k++)
      if (strcmp(name, init_names[k]) == 0) in.kind = (InitKind)k, found = true;
    if (!found) {
      Val v = {.kind = V_NAME, .name = name, .loc = c->fn->loc};
      parse_init_into(p, param, c, &v);     /* reports the unknown name */
    }
    const char *keys = "";
    switch (in.kind) {
    case INIT_CONSTANT:
      keys = "value";
      if (!init_arg(p, c, 0, "value", NULL, &in.a))
        fail_at(p, c->fn->loc, "constant needs a value: constant(0.1)");
      break;
    case INIT_UNIFORM:
      keys = "minval,maxval";
      in.a = -0.05, in.b = 0.05;
      init_arg(p, c, 0, "minval", NULL, &in.a);
      init_arg(p, c, 1, "maxval", NULL, &in.b);
      if (in.a >= in.b)
        fail_at(p, c->fn->loc, "uniform needs minval < maxval, got (%g, %g)", in.a, in.b);
      break;
    case INIT_NORMAL:
      keys = "mean,stddev,std";
      in.a = 0, in.b = 0.05;
      init_arg(p, c, 0, "mean", NULL, &in.a);
      init_arg(p, c, 1, "stddev", "std", &in.b);
      break;
    case INIT_TRUNCATED_NORMAL:
      /* truncated_normal(std) as in the TF course; mean= by keyword. */
      keys = "mean,stddev,std";
      in.a = 0, in.b = 0.05;
      init_arg(p, c, 0, "stddev", "std", &in.b);
      if (kwarg(c, "mean")) in.a = num_arg(p, c, kwarg(c, "mean"), false);
      break;
    default:
      if (c->nargs)
        fail_at(p, c->args[0].loc, "%s takes no arguments", name);
    }
    for (int i = 0; i < c->nargs; i++) {
      if (c->args[i].key && !in_list(keys, c->args[i].key))
        fail_at(p, c->args[i].keyloc, "%s has no argument '%s'", name, c->args[i].key);
      if (!c->args[i].used)
        fail_at(p, c->args[i].loc, "%s: too many arguments", name);
    }
    if ((in.kind == INIT_NORMAL || in.kind == INIT_TRUNCATED_NORMAL) && !(in.b > 0))
      fail_at(p, c->fn->loc, "%s needs a positive standard deviation", name);
    param->a.init = in;
    return;
  }
  Val v = {.loc = p->tok->loc};
  Call c = {.fn = p->tok};
  if (at(p, "[")) {
    parse_list_val(p, &v);
  } else if (number_token(p, &v.num, &v.is_int, &v.loc)) {
    v.kind = V_NUM;
  } else if (p->tok->kind == T_IDENT) {
    v.kind = V_NAME;
    v.name = tok_str(p, p->tok);
    p->tok = p->tok->next;
  } else {
    fail_at(p, v.loc, "expected an initializer such as glorot_uniform, a "
            "number or a list of values");
  }
  parse_init_into(p, param, &c, &v);
}

static void stmt_input(P *p, bool is_param) {
  Token *name = ident(p, "a name");
  skip(p, ":");
  DType t;
  Shape s;
  parse_type(p, &t, &s);
  if (is_param) {
    for (int i = 0; i < s.rank; i++)
      if (s.d[i].sym)
        fail_at(p, name->loc, "parameter shapes must be static, but '%s' is "
                "symbolic", p->g->sym[s.d[i].sym]);
    if (!dtype_is_float(t))
      fail_at(p, name->loc, "parameters must be floating-point, got %s",
              dtype_names[t]);
  }
  Node *n = graph_leaf(p->g, is_param ? OP_PARAM : OP_INPUT, NULL, t, &s,
                       name->loc);
  define(p, tok_str(p, name), n, name->loc);
  if (is_param) {
    /* Keras Dense defaults when no initializer is given. */
    n->a.init.kind = s.rank >= 2 ? INIT_GLOROT_UNIFORM : INIT_ZEROS;
    if (accept(p, "=")) parse_init(p, n);
  }
}

static void stmt_const(P *p) {
  Token *name = ident(p, "a name");
  DType t = DT_F32;
  Shape s = {0};
  bool typed = accept(p, ":");
  if (typed) parse_type(p, &t, &s);
  skip(p, "=");
  Loc loc = p->tok->loc;
  double num;
  bool is_int;
  Node *n;
  if (number_token(p, &num, &is_int, &loc)) {
    int64_t count = shape_static_count(&s);
    for (int i = 0; i < s.rank; i++)
      if (s.d[i].sym) fail_at(p, name->loc, "constants must have static shapes");
    if (count > MAX_LITERAL)
      fail_at(p, name->loc, "constant has more than %d elements", MAX_LITERAL);
    double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(count ? count : 1));
    for (int64_t i = 0; i < count; i++) d[i] = num;
    if (!typed) t = is_int ? DT_I32 : DT_F32;
    n = const_node(p, t, &s, d, false, loc);
  } else if (at(p, "[")) {
    Val v = {0};
    parse_list_val(p, &v);
    n = list_to_tensor(p, &v);
    n->flags &= ~(unsigned)N_WEAK;
    if (typed) {
      if (!shape_eq(&n->shape, &s)) {
        char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
        fail_at(p, loc, "the values have shape %s but the declared shape is %s",
                shape_str(p->g, &n->shape, b1, sizeof b1),
                shape_str(p->g, &s, b2, sizeof b2));
      }
      n->dtype = t;
    }
  } else {
    expected(p, "a number or a list of values");
  }
  if (!dtype_is_float(n->dtype))
    for (int64_t i = 0, c = shape_static_count(&n->shape); i < c; i++)
      if (n->a.values[i] != floor(n->a.values[i]))
        fail_at(p, loc, "value %g is not an integer but the constant is %s",
                n->a.values[i], dtype_names[n->dtype]);
  define(p, tok_str(p, name), n, name->loc);
}

static void stmt_bind(P *p, Token *name, unsigned flag) {
  char *nm = tok_str(p, name);
  Node *n;
  if (flag && !at(p, "=")) {
    Sym *s = lookup(p, nm);         /* output h: mark an existing binding */
    if (!s) unknown_ident(p, nm, name->loc);
    n = s->node;
  } else {
    skip(p, "=");
    p->bind_name = nm;
    n = expr(p);
    p->bind_name = NULL;
    define(p, nm, n, name->loc);
  }
  n->flags |= flag;
  if (flag == N_OUTPUT) graph_add_output(p->g, &p->g->outputs, &p->g->noutputs, nm, n);
  if (flag == N_METRIC) graph_add_output(p->g, &p->g->metrics, &p->g->nmetrics, nm, n);
}

/* train NAME with OPT(kwargs); Keras defaults for every hyperparameter. */
static void stmt_train(P *p, Token *kw) {
  if (p->g->has_train)
    fail_at(p, kw->loc, "only one train statement is allowed");
  if (at(p, "with") || p->tok->kind != T_IDENT)
    fail_at(p, p->tok->loc, "train needs the name of a loss: train <loss> with "
            "<optimizer>(...)");
  Token *name = p->tok;
  p->tok = p->tok->next;
  char *nm = tok_str(p, name);
  Sym *s = lookup(p, nm);
  if (!s) unknown_ident(p, nm, name->loc);
  Node *loss = s->node;
  char b[SHAPE_STR_MAX];
  if (loss->shape.rank != 0)
    fail_at(p, name->loc, "the loss '%s' must be a scalar, but it has shape %s; "
            "reduce it, e.g. mean(...)", nm, shape_str(p->g, &loss->shape, b, sizeof b));
  if (!dtype_is_float(loss->dtype))
    fail_at(p, name->loc, "the loss '%s' must be floating-point, got %s", nm,
            dtype_names[loss->dtype]);
  if (!accept(p, "with")) expected(p, "'with' and an optimizer");
  Token *ot = ident(p, "an optimizer (sgd, rmsprop, adam, adagrad)");
  char *on = tok_str(p, ot);
  Optimizer o = {.loc = ot->loc, .eps = 1e-7};
  bool found = false;
  for (int k = 0; k < OPT_COUNT; k++)
    if (strcmp(on, opt_names[k]) == 0) o.kind = (OptKind)k, found = true;
  if (!found) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int k = 0; k < OPT_COUNT; k++) {
      int d = edit_distance(on, opt_names[k]);
      if (d < bd) bd = d, best = opt_names[k];
    }
    if (bd <= 2)
      fail_at(p, ot->loc, "unknown optimizer '%s'; did you mean '%s'?", on, best);
    fail_at(p, ot->loc, "unknown optimizer '%s'; use sgd, rmsprop, adam or adagrad", on);
  }
  const char *keys = "";
  switch (o.kind) {
  case OPT_SGD: o.lr = 0.01; keys = "lr,learning_rate,momentum,nesterov"; break;
  case OPT_RMSPROP:
    o.lr = 0.001, o.rho = 0.9;
    keys = "lr,learning_rate,rho,momentum,eps,epsilon,centered";
    break;
  case OPT_ADAM:
    o.lr = 0.001, o.beta1 = 0.9, o.beta2 = 0.999;
    keys = "lr,learning_rate,beta1,beta_1,beta2,beta_2,eps,epsilon";
    break;
  case OPT_ADAGRAD:
    o.lr = 0.001, o.initial_accumulator = 0.1;
    keys = "lr,learning_rate,initial_accumulator,initial_accumulator_value,eps,epsilon";
    break;
  case OPT_COUNT: break;
  }
  Call *c = arena_alloc(p->arena, sizeof *c);
  c->fn = ot;
  if (accept(p, "(")) {
    if (!at(p, ")")) {
      do parse_arg(p, c);
      while (accept(p, ","));
    }
    skip(p, ")");
  }
  for (int i = 0; i < c->nargs; i++) {
    Val *v = &c->args[i];
    if (!v->key) {
      if (i > 0) fail_at(p, v->loc, "%s: only the learning rate may be positional", on);
      o.lr = num_arg(p, c, v, false);
      continue;
    }
    if (!in_list(keys, v->key))
      fail_at(p, v->keyloc, "%s has no argument '%s'; it takes: %s", on, v->key, keys);
    const char *k = v->key;
    if (!strcmp(k, "nesterov")) o.nesterov = bool_arg(p, c, v);
    else if (!strcmp(k, "centered")) o.centered = bool_arg(p, c, v);
    else {
      double x = num_arg(p, c, v, false);
      if (!strcmp(k, "lr") || !strcmp(k, "learning_rate")) o.lr = x;
      else if (!strcmp(k, "momentum")) o.momentum = x;
      else if (!strcmp(k, "rho")) o.rho = x;
      else if (!strcmp(k, "eps") || !strcmp(k, "epsilon")) o.eps = x;
      else if (!strcmp(k, "beta1") || !strcmp(k, "beta_1")) o.beta1 = x;
      else if (!strcmp(k, "beta2") || !strcmp(k, "beta_2")) o.beta2 = x;
      else o.initial_accumulator = x;
    }
  }
  if (!(o.lr > 0)) fail_at(p, ot->loc, "%s: the learning rate must be positive", on);
  if (o.momentum < 0 || o.momentum >= 1 || o.rho < 0 || o.rho >= 1 ||
      o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1)
    fail_at(p, ot->loc, "%s: momentum, rho and betas must lie in [0, 1)", on);
  if (o.eps < 0) fail_at(p, ot->loc, "%s: eps must not be negative", on);
  p->g->opt = o;
  p->g->has_train = true;
  p->g->loss = loss;
  loss->flags |= N_LOSS;
}

static void statement(P *p) {
  Token *t = p->tok;
  if (t->kind == T_NEWLINE) {
    p->tok = t->next;
    return;
  }
  if (t->kind != T_IDENT) expected(p, "a statement");
  p->tok = t->next;
  if (tok_is(t, "input")) stmt_input(p, false);
  else if (tok_is(t, "param")) stmt_input(p, true);
  else if (tok_is(t, "const")) stmt_const(p);
  else if (tok_is(t, "output") || tok_is(t, "metric"))
    stmt_bind(p, ident(p, "a name"), tok_is(t, "output") ? N_OUTPUT : N_METRIC);
  else if (tok_is(t, "train")) stmt_train(p, t);
  else if (at(p, "=")) {
    char *nm = tok_str(p, t);
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
      if (strcmp(nm, keywords[i]) == 0)
        fail_at(p, t->loc, "'%s' is a keyword and cannot be a name", nm);
    stmt_bind(p, t, 0);
  } else {
    char *nm = tok_str(p, t);
    static const char *const stmts[] = {"input", "param", "const", "output",
                                        "metric", "train"};
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++)
      if (edit_distance(nm, stmts[i]) <= 2 && strlen(nm) > 3)
        fail_at(p, t->loc, "unknown statement '%s'; did you mean '%s'?", nm, stmts[i]);
    p->tok = t;
    expected(p, "a statement (input, param, const, output, metric, train or "
             "NAME = expression)");
  }
  end_of_statement(p);
}

static const char *stem(Arena *a, const char *path) {
  const char *s = strrchr(path, '/');
  s = s ? s + 1 : path;
  const char *dot = strrchr(s, '.');
  size_t n = dot && dot != s ? (size_t)(dot - s) : strlen(s);
  char *r = arena_strndup(a, s, n);
  for (char *q = r; *q; q++)
    if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
          (*q >= '0' && *q <= '9') || *q == '_'))
      *q = '_';
  return r;
}

Graph *parse(Arena *a, const Source *src, Diags *d) {
  P *p = arena_alloc(a, sizeof *p);
  p->arena = a;
  p->diags = d;
  if (src->len > MAX_SOURCE_BYTES) {
    diag_add(a, d, DIAG_ERROR, (Loc){0},
             "%s: model file is %zu bytes; the limit is %u", src->name, src->len,
             MAX_SOURCE_BYTES);
    return NULL;
  }
  p->g = graph_new(a, d, src);
  p->g->model_name = stem(a, src->name);
  Token *toks = lex(a, src, d);
  if (!toks) return NULL;
  p->tok = toks;
  if (setjmp(p->fail)) return NULL;
  while (p->tok->kind != T_EOF) statement(p);
  for (int i = 0; i < p->g->nnodes; i++) {
    Node *n = p->g->nodes[i];
    if (n->op == OP_PARAM && !(n->flags & N_USED))
      diag_add(a, d, DIAG_WARNING, n->loc, "parameter '%s' is never used", n->name);
  }
  return p->g;
}
