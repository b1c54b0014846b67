/*
 * tensor.c - the tensor toolkit of the seeds' chapter 2 (issue 24), as
 * builtins of the parser: gather with axis and batch_dims, gather_nd,
 * scatter_nd, tile, repeat, stack, unstack, split, range, linspace,
 * meshgrid, sort, argsort, top_k, cumsum, reverse, fill, zeros_like,
 * ones_like and top_k_accuracy, with TensorFlow's semantics and shapes;
 * and boolean_mask, unique and one-argument where, whose sizes depend on
 * the data: padded to a static bound, the valid extent beside them (see
 * the last section).
 *
 * None of them is an op of its own.  Every one that moves elements is a
 * `take` (x's elements at the flat positions an i32 tensor holds): the
 * positions are a constant where they follow from the shapes alone
 * (tile, repeat), or ordinary i32 arithmetic on the indices and
 * constants of per-axis offsets, broadcast against each other (gather,
 * gather_nd, sort, top_k).  So the one gradient rule of take - take_add,
 * gy added back at the same positions - is the gradient of all of them:
 * gather's is a scatter-add, sort's and top_k's values go back through
 * their indices.  scatter_nd, boolean_mask, unique and where(cond) are
 * take_adds.  An index outside its axis gives 0 (and its gradient adds
 * nothing), as our embedding gather does and TF on GPU; TF on CPU raises
 * an error instead.
 *
 * Positions are computed from static shapes, so the tensor moved must
 * have one; indices may have symbolic dimensions (a batch of ids).
 * Functions with several results (unstack, split, meshgrid, top_k) set
 * c->results and are assigned with a tuple: `v, i = top_k(x, 2)`.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

/* ------------------------------------------------------------ helpers */

static Loc at(Call *c) { return c->fn->loc; }

static Node *int_const(Parser *p, const Shape *s, double *values, Loc loc) {
  Node *n = graph_leaf(p->g, OP_CONST, NULL, DT_I32, s, loc);
  n->a.values = values;
  return n;
}

static double *values(Parser *p, int64_t n) { return arena_alloc(p->arena, sizeof(double) * (size_t)(n ? n : 1)); }

static Node *iscalar(Parser *p, int64_t v, Loc loc) { return parse_scalar(p, (double)v, true, loc); }

static void need_static(Parser *p, Call *c, const Node *x) {
  for (int i = 0; i < x->shape.rank; i++)
    if (x->shape.d[i].sym)
      parse_fail(p, at(c), "%s needs a tensor of static shape: axis %d is the symbolic dimension '%s'",
                 call_name(p, c), i, p->g->sym[x->shape.d[i].sym]);
}

static int64_t prod(const Shape *s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; i++) n *= s->d[i].n;
  return n;
}

/* Integers given as one number or a flat list; returns how many. */
static int int_list(Parser *p, Call *c, Val *v, int64_t *out, int max) {
  if (v->kind == V_NUM) {
    out[0] = (int64_t)call_num(p, c, v, true);
    return 1;
  }
  if (v->kind != V_LIST || v->lshape.rank != 1)
    parse_fail(p, v->loc, "%s: expected an integer or a list of integers", call_name(p, c));
  int n = (int)v->lshape.d[0].n;
  if (n > max) parse_fail(p, v->loc, "%s: at most %d values here, got %d", call_name(p, c), max, n);
  for (int i = 0; i < n; i++) {
    if (v->items[i].name || !v->items[i].is_int)
      parse_fail(p, v->items[i].loc, "%s: expected an integer", call_name(p, c));
    out[i] = (int64_t)v->items[i].v;
  }
  return n;
}

/* where(lo <= i < hi, flat, -1): an index out of its axis takes 0. */
static Node *guard(Parser *p, Node *i, int64_t hi, Node *flat, Loc loc) {
  Node *minus = iscalar(p, -1, loc);
  Node *in_hi = parse_mk(p, OP_WHERE, (Node *[]){parse_mk2(p, OP_LT, i, iscalar(p, hi, loc), loc), flat, minus}, 3,
                         NULL, loc);
  return parse_mk(p, OP_WHERE, (Node *[]){parse_mk2(p, OP_GE, i, iscalar(p, 0, loc), loc), in_hi, minus}, 3,
                  NULL, loc);
}

static Node *take(Parser *p, Node *x, Node *flat, Loc loc) {
  return parse_mk(p, OP_TAKE, (Node *[]){x, flat}, 2, NULL, loc);
}

static Node *reshape(Parser *p, Node *x, const Shape *s, Loc loc) {
  return shape_eq(&x->shape, s) ? x : call_reshape(p, x, s, loc);
}

/* The constant of flat offsets of shape x with axis `axis` kept at 1:
 * element (o, 0, in) holds (o * len) * inner + in, the start of its row. */
static Node *row_starts(Parser *p, const Shape *x, int axis, Loc loc) {
  Shape s = *x;
  s.d[axis] = (Dim){1, 0};
  int64_t inner = prod(x, axis + 1, x->rank), len = x->d[axis].n, n = prod(&s, 0, s.rank);
  double *v = values(p, n);
  for (int64_t k = 0; k < n; k++) v[k] = (double)((k / inner) * len * inner + k % inner);
  return int_const(p, &s, v, loc);
}

static Node *padded(Parser *p, Node *y, Node *count, int axis, Loc loc);

/* ------------------------------------------------------------ gathers */

/* gather(x, indices, axis=0, batch_dims=0): tf.gather.  The result is
 * x.shape[:axis] + indices.shape[batch_dims:] + x.shape[axis+1:]; the
 * first batch_dims axes of x and indices are shared. */
Node *tensor_gather(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, "params"), *idx = call_tensor(p, c, 1, "indices");
  Val *av = call_kwarg(c, "axis"), *bv = call_kwarg(c, "batch_dims");
  int64_t bd = bv ? (int64_t)call_num(p, c, bv, true) : 0;
  if (bd < 0) bd += idx->shape.rank;
  if (bd < 0 || bd > idx->shape.rank)
    parse_fail(p, bv->loc, "gather: batch_dims %lld is out of range for indices of rank %d", (long long)bd,
               idx->shape.rank);
  int R = x->shape.rank, Q = idx->shape.rank, b = (int)bd;
  if (R == 0) parse_fail(p, at(c), "gather needs a tensor of rank >= 1, got a scalar");
  int axis = call_axis(p, c, av, R, b);
  /* The embedding lookup keeps its own op: rows of a [V, D] table. */
  if (!av && !bv && R == 2 && dtype_is_float(x->dtype) && !x->shape.d[0].sym && !x->shape.d[1].sym)
    return parse_mk(p, op, (Node *[]){x, idx}, 2, NULL, at(c));
  need_static(p, c, x);
  if (idx->dtype != DT_I32)
    parse_fail(p, at(c), "gather needs i32 indices, got %s", dtype_names[idx->dtype]);
  if (axis < b)
    parse_fail(p, av ? av->loc : at(c), "gather: axis %d must not be below batch_dims %d", axis, b);
  for (int i = 0; i < b; i++)
    if (idx->shape.d[i].sym || idx->shape.d[i].n != x->shape.d[i].n)
      parse_fail(p, at(c), "gather: batch dimension %d differs: %lld in the params, %s in the indices", i,
                 (long long)x->shape.d[i].n, idx->shape.d[i].sym ? p->g->sym[idx->shape.d[i].sym] : "another size");
  int out_rank = axis + (Q - b) + (R - axis - 1);
  if (out_rank > MAX_RANK) parse_fail(p, at(c), "gather: the result would exceed rank %d", MAX_RANK);
  int64_t len = x->shape.d[axis].n, inner = prod(&x->shape, axis + 1, R);
  /* indices as idx.shape[:b] + 1s + idx.shape[b:] + 1s */
  Shape is = {0};
  for (int i = 0; i < b; i++) is.d[is.rank++] = idx->shape.d[i];
  for (int i = b; i < axis; i++) is.d[is.rank++] = (Dim){1, 0};
  for (int i = b; i < Q; i++) is.d[is.rank++] = idx->shape.d[i];
  for (int i = axis + 1; i < R; i++) is.d[is.rank++] = (Dim){1, 0};
  /* the offsets of x.shape[:axis] and x.shape[axis+1:], 1s between */
  Shape cs = {0};
  for (int i = 0; i < axis; i++) cs.d[cs.rank++] = x->shape.d[i];
  for (int i = b; i < Q; i++) cs.d[cs.rank++] = (Dim){1, 0};
  for (int i = axis + 1; i < R; i++) cs.d[cs.rank++] = x->shape.d[i];
  int64_t n = prod(&cs, 0, cs.rank);
  double *v = values(p, n);
  for (int64_t k = 0; k < n; k++) v[k] = (double)((k / inner) * len * inner + k % inner);
  Loc loc = at(c);
  Node *ir = reshape(p, idx, &is, loc);
  Node *flat = parse_mk2(p, OP_ADD, int_const(p, &cs, v, loc), parse_mk2(p, OP_MUL, ir, iscalar(p, inner, loc), loc),
                         loc);
  return take(p, x, guard(p, ir, len, flat, loc), loc);
}

/* The flat offsets that gather_nd and scatter_nd address: each row of
 * indices [..., m] names an element (m = rank) or a slice of a tensor of
 * shape s; the result has shape indices.shape[:-1] + s[m:], -1 where a
 * row is out of range. */
static Node *nd_offsets(Parser *p, Call *c, Node *idx, const Shape *s) {
  Loc loc = at(c);
  if (idx->dtype != DT_I32)
    parse_fail(p, loc, "%s needs i32 indices, got %s", call_name(p, c), dtype_names[idx->dtype]);
  int Q = idx->shape.rank;
  if (Q == 0 || idx->shape.d[Q - 1].sym)
    parse_fail(p, loc, "%s needs indices whose last axis has a static size", call_name(p, c));
  int m = (int)idx->shape.d[Q - 1].n, R = s->rank;
  if (m > R)
    parse_fail(p, loc, "%s: index rows of length %d address a tensor of rank %d", call_name(p, c), m, R);
  if (Q - 1 + R - m > MAX_RANK)
    parse_fail(p, loc, "%s: the result would exceed rank %d", call_name(p, c), MAX_RANK);
  Shape ms = {1, {{m, 0}}};
  double *stride = values(p, m), *dim = values(p, m);
  for (int k = 0; k < m; k++) stride[k] = (double)prod(s, k + 1, R), dim[k] = (double)s->d[k].n;
  Attrs last = {.axes = 1u << (Q - 1)};
  Node *flat = parse_mk1(p, OP_SUM, parse_mk2(p, OP_MUL, idx, int_const(p, &ms, stride, loc), loc), &last, loc);
  /* rows with any component outside its axis */
  Node *zero = iscalar(p, 0, loc), *one = iscalar(p, 1, loc);
  Node *hi = parse_mk(p, OP_WHERE, (Node *[]){parse_mk2(p, OP_LT, idx, int_const(p, &ms, dim, loc), loc), zero, one}, 3,
                      NULL, loc);
  Node *bad = parse_mk1(p, OP_SUM, parse_mk(p, OP_WHERE, (Node *[]){parse_mk2(p, OP_GE, idx, zero, loc), hi, one}, 3,
                                            NULL, loc), &last, loc);
  Shape rs = {0}, ks = {0};
  for (int i = 0; i < Q - 1; i++) rs.d[rs.rank++] = idx->shape.d[i], ks.d[ks.rank++] = (Dim){1, 0};
  for (int i = m; i < R; i++) rs.d[rs.rank++] = (Dim){1, 0}, ks.d[ks.rank++] = s->d[i];
  flat = reshape(p, flat, &rs, loc);
  bad = reshape(p, bad, &rs, loc);
  if (m < R) {
    int64_t n = prod(s, m, R);
    double *v = values(p, n);
    for (int64_t k = 0; k < n; k++) v[k] = (double)k;
    flat = parse_mk2(p, OP_ADD, flat, int_const(p, &ks, v, loc), loc);
  }
  Node *ok = parse_mk2(p, OP_EQ, bad, iscalar(p, 0, loc), loc);
  return parse_mk(p, OP_WHERE, (Node *[]){ok, flat, iscalar(p, -1, loc)}, 3, NULL, loc);
}

/* gather_nd(x, indices): tf.gather_nd (batch_dims 0). */
Node *tensor_gather_nd(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "params"), *idx = call_tensor(p, c, 1, "indices");
  need_static(p, c, x);
  Node *y = take(p, x, nd_offsets(p, c, idx, &x->shape), at(c));
  /* rows of padding address element 0: the result is padded where idx is */
  const Padded *pad = tensor_padded(p, idx);
  if (pad && pad->axis < idx->shape.rank - 1) return padded(p, y, pad->count, pad->axis, at(c));
  return y;
}

/* scatter_nd(indices, updates, shape): zeros of shape with each update
 * added at its index (tf.scatter_nd: repeated indices add up). */
Node *tensor_scatter_nd(Parser *p, Call *c, OpKind op) {
  Node *idx = call_tensor(p, c, 0, "indices"), *u = call_tensor(p, c, 1, "updates");
  Val *sv = call_arg(c, 2, "shape");
  if (!sv) parse_fail(p, at(c), "scatter_nd: missing shape");
  Attrs a = {.to = call_shape(p, c, sv)};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n < 1 || a.to.d[i].sym) parse_fail(p, sv->loc, "scatter_nd: the shape must be static and positive");
  Node *flat = nd_offsets(p, c, idx, &a.to);
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (!shape_eq(&u->shape, &flat->shape))
    parse_fail(p, at(c), "scatter_nd: the updates %s must have shape indices.shape[:-1] + shape[m:] = %s",
               shape_str(p->g, &u->shape, b1, sizeof b1), shape_str(p->g, &flat->shape, b2, sizeof b2));
  return parse_mk(p, op, (Node *[]){u, flat}, 2, &a, at(c));
}

Node *tensor_take(Parser *p, Call *c, OpKind op) {
  return parse_mk(p, op, (Node *[]){call_tensor(p, c, 0, NULL), call_tensor(p, c, 1, NULL)}, 2, NULL, at(c));
}

Node *tensor_take_add(Parser *p, Call *c, OpKind op) {
  Node *u = call_tensor(p, c, 0, NULL), *idx = call_tensor(p, c, 1, NULL);
  Val *sv = call_arg(c, 2, "shape");
  if (!sv) parse_fail(p, at(c), "take_add: missing shape");
  Attrs a = {.to = call_shape(p, c, sv)};
  return parse_mk(p, op, (Node *[]){u, idx}, 2, &a, at(c));
}

/* ------------------------------------------------------------ layout */

/* A take by a constant: output element k reads source[k]. */
static Node *take_const(Parser *p, Node *x, const Shape *s, double *source, Loc loc) {
  return take(p, x, int_const(p, s, source, loc), loc);
}

/* tile(x, multiples): x repeated multiples[i] times along axis i. */
Node *tensor_tile(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "input");
  need_static(p, c, x);
  Val *mv = call_arg(c, 1, "multiples");
  if (!mv) parse_fail(p, at(c), "tile: missing multiples");
  int64_t m[MAX_RANK];
  int R = x->shape.rank;
  if (int_list(p, c, mv, m, MAX_RANK) != R)
    parse_fail(p, mv->loc, "tile: multiples must have one entry per axis of the input (%d)", R);
  Shape s = x->shape;
  for (int i = 0; i < R; i++) {
    if (m[i] < 1) parse_fail(p, mv->loc, "tile: multiples must be positive, got %lld", (long long)m[i]);
    s.d[i].n *= m[i];
  }
  int64_t n = prod(&s, 0, R);
  if (n > MAX_ELEMENTS) parse_fail(p, at(c), "tile: the result is too large");
  double *v = values(p, n);
  for (int64_t k = 0; k < n; k++) {
    int64_t rest = k, src = 0, stride = 1;
    for (int i = R - 1; i >= 0; i--) {
      src += (rest % s.d[i].n) % x->shape.d[i].n * stride;
      rest /= s.d[i].n, stride *= x->shape.d[i].n;
    }
    v[k] = (double)src;
  }
  return take_const(p, x, &s, v, at(c));
}

/* repeat(x, repeats, axis=None): np.repeat / tf.repeat; without an axis,
 * of the flattened tensor. */
Node *tensor_repeat(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "input");
  need_static(p, c, x);
  Val *rv = call_arg(c, 1, "repeats"), *av = call_arg(c, 2, "axis");
  if (!rv) parse_fail(p, at(c), "repeat: missing repeats");
  if (!av || (av->kind == V_NAME && !strcmp(av->name, "None"))) {
    Shape f = {1, {{shape_static_count(&x->shape), 0}}};
    x = reshape(p, x, &f, at(c));
    av = NULL;
  }
  int R = x->shape.rank, axis = call_axis(p, c, av, R, 0);
  int64_t len = x->shape.d[axis].n;
  int64_t *reps = arena_alloc(p->arena, sizeof(int64_t) * (size_t)(len + 1));
  int nr;
  if (rv->kind == V_LIST) {
    if (rv->lshape.rank != 1 || rv->lshape.d[0].n > len)
      parse_fail(p, rv->loc, "repeat: expected one repeat count or %lld of them", (long long)len);
    nr = int_list(p, c, rv, reps, (int)len);
  } else {
    nr = int_list(p, c, rv, reps, 1);
  }
  if (nr != 1 && nr != len)
    parse_fail(p, rv->loc, "repeat: expected one repeat count or %lld of them, got %d", (long long)len, nr);
  int64_t total = 0, *from = arena_alloc(p->arena, sizeof(int64_t) * (size_t)(len + 1));
  for (int64_t i = 0; i < len; i++) {
    int64_t r = reps[nr == 1 ? 0 : i];
    if (r < 0) parse_fail(p, rv->loc, "repeat: counts must not be negative, got %lld", (long long)r);
    from[i] = total, total += r;
  }
  if (total < 1) parse_fail(p, rv->loc, "repeat: the result would be empty");
  Shape s = x->shape;
  s.d[axis].n = total;
  int64_t inner = prod(&s, axis + 1, R), n = prod(&s, 0, R);
  if (n > MAX_ELEMENTS) parse_fail(p, at(c), "repeat: the result is too large");
  double *v = values(p, n);
  for (int64_t k = 0; k < n; k++) {
    int64_t o = k / (inner * total), j = k / inner % total, in = k % inner, src = 0;
    while (src + 1 < len && from[src + 1] <= j) src++;
    v[k] = (double)((o * len + src) * inner + in);
  }
  return take_const(p, x, &s, v, at(c));
}

/* stack(a, b, ..., axis=0): each with a new axis, concatenated. */
Node *tensor_stack(Parser *p, Call *c, OpKind op) {
  Node *s[MAX_OPERANDS];
  int n = 0;
  for (int i = 0; i < c->npos; i++) s[n++] = call_tensor(p, c, i, NULL);
  if (n < 1) parse_fail(p, at(c), "stack: expected stack(a, b, ..., axis=k)");
  int R = s[0]->shape.rank;
  if (R == MAX_RANK) parse_fail(p, at(c), "stack: the result would exceed rank %d", MAX_RANK);
  int axis = call_axis(p, c, call_kwarg(c, "axis"), R + 1, 0);
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  Shape first = s[0]->shape;
  for (int i = 0; i < n; i++) {
    if (!shape_eq(&s[i]->shape, &first))
      parse_fail(p, c->args[i].loc, "stack: operand %d has shape %s, the first %s", i + 1,
                 shape_str(p->g, &s[i]->shape, b1, sizeof b1), shape_str(p->g, &first, b2, sizeof b2));
    Shape e = {.rank = R + 1};
    for (int k = 0, j = 0; k <= R; k++) e.d[k] = k == axis ? (Dim){1, 0} : s[i]->shape.d[j++];
    s[i] = call_reshape(p, s[i], &e, at(c));
  }
  if (n == 1) return s[0];
  Attrs a = {.axis = axis};
  return parse_mk(p, op, s, n, &a, at(c));
}

/* The part [from, from + len) of axis of x, as a slice. */
static Node *part(Parser *p, Node *x, int axis, int64_t from, int64_t len, Loc loc) {
  Attrs a = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    Dim d = x->shape.d[i];
    a.begin[i] = 0, a.step[i] = 1, a.end[i] = d.sym ? INT64_MAX : d.n;
  }
  a.begin[axis] = from, a.end[axis] = from + len;
  return parse_mk1(p, OP_SLICE, x, &a, loc);
}

static int static_axis(Parser *p, Call *c, Node *x, Val *v, int dflt) {
  int axis = call_axis(p, c, v, x->shape.rank, dflt);
  if (x->shape.d[axis].sym)
    parse_fail(p, v ? v->loc : at(c), "%s: axis %d is the symbolic dimension '%s'; its size is only known at run time",
               call_name(p, c), axis, p->g->sym[x->shape.d[axis].sym]);
  return axis;
}

static Node **results(Parser *p, Call *c, int64_t n) {
  if (n > MAX_CALL_RESULTS)
    parse_fail(p, at(c), "%s would give %lld results; at most %d are assigned", call_name(p, c), (long long)n,
               MAX_CALL_RESULTS);
  c->nresults = (int)n;
  return c->results = arena_alloc(p->arena, sizeof(Node *) * (size_t)n);
}

/* unstack(x, axis=0): the slices along axis, the axis dropped. */
Node *tensor_unstack(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "value");
  if (x->shape.rank == 0) parse_fail(p, at(c), "unstack needs a tensor of rank >= 1, got a scalar");
  int axis = static_axis(p, c, x, call_arg(c, 1, "axis"), 0);
  int64_t n = x->shape.d[axis].n;
  Node **r = results(p, c, n);
  Shape s = {0};
  for (int i = 0; i < x->shape.rank; i++)
    if (i != axis) s.d[s.rank++] = x->shape.d[i];
  for (int64_t k = 0; k < n; k++) r[k] = call_reshape(p, part(p, x, axis, k, 1, at(c)), &s, at(c));
  return r[0];
}

/* split(x, num_or_size_splits, axis=0): equal parts, or parts of the
 * sizes given (one of them -1: the rest). */
Node *tensor_split(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "value");
  Val *nv = call_arg(c, 1, "num_or_size_splits");
  if (!nv) parse_fail(p, at(c), "split: missing num_or_size_splits");
  if (x->shape.rank == 0) parse_fail(p, at(c), "split needs a tensor of rank >= 1, got a scalar");
  int axis = static_axis(p, c, x, call_arg(c, 2, "axis"), 0);
  int64_t len = x->shape.d[axis].n, *sizes = arena_alloc(p->arena, sizeof(int64_t) * (MAX_CALL_RESULTS + 1));
  int n;
  if (nv->kind == V_NUM) {
    int64_t k = (int64_t)call_num(p, c, nv, true);
    if (k < 1 || len % k)
      parse_fail(p, nv->loc, "split: %lld equal parts do not divide axis %d of size %lld", (long long)k, axis,
                 (long long)len);
    if (k > MAX_CALL_RESULTS) results(p, c, k);
    n = (int)k;
    for (int i = 0; i < n; i++) sizes[i] = len / k;
  } else {
    n = int_list(p, c, nv, sizes, MAX_CALL_RESULTS);
    int64_t sum = 0, infer = -1;
    for (int i = 0; i < n; i++) {
      if (sizes[i] == -1 && infer < 0) infer = i;
      else if (sizes[i] < 1) parse_fail(p, nv->loc, "split: sizes must be positive (one may be -1)");
      else sum += sizes[i];
    }
    if (infer >= 0) sizes[infer] = len - sum, sum = len;
    if (sum != len || (infer >= 0 && sizes[infer] < 1))
      parse_fail(p, nv->loc, "split: the sizes add up to %lld, but axis %d has %lld", (long long)sum, axis,
                 (long long)len);
  }
  Node **r = results(p, c, n);
  for (int i = 0, from = 0; i < n; from += (int)sizes[i++]) r[i] = part(p, x, axis, from, sizes[i], at(c));
  return r[0];
}

/* reverse(x, axis): the elements of each axis given in reverse order. */
Node *tensor_reverse(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "tensor");
  Val *av = call_arg(c, 1, "axis");
  if (!av) parse_fail(p, at(c), "reverse: missing axis");
  int64_t ax[MAX_RANK];
  int n = int_list(p, c, av, ax, MAX_RANK);
  Attrs a = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    Dim d = x->shape.d[i];
    a.begin[i] = 0, a.step[i] = 1, a.end[i] = d.sym ? INT64_MAX : d.n;
  }
  for (int k = 0; k < n; k++) {
    Val one = {.kind = V_NUM, .num = (double)ax[k], .is_int = true, .loc = av->loc};
    int i = static_axis(p, c, x, &one, 0);
    a.begin[i] = x->shape.d[i].n - 1, a.end[i] = -1, a.step[i] = -1;
  }
  return parse_mk1(p, OP_SLICE, x, &a, at(c));
}

/* ------------------------------------------------------------ creation */

/* range(limit) or range(start, limit, delta=1): i32 when every bound is
 * an integer, else f32, each value start + i * delta in that type. */
Node *tensor_range(Parser *p, Call *c, OpKind op) {
  (void)op;
  Val *v[3] = {call_arg(c, 0, "start"), call_arg(c, 1, "limit"), call_arg(c, 2, "delta")};
  double x[3] = {0, 0, 1};
  bool is_int = true;
  for (int i = 0; i < 3; i++)
    if (v[i]) x[i] = call_num(p, c, v[i], false), is_int &= v[i]->is_int;
  if (!v[1]) x[1] = x[0], x[0] = 0;
  if (x[2] == 0) parse_fail(p, v[2]->loc, "range: delta must not be 0");
  double count = ceil((x[1] - x[0]) / x[2]);
  if (!(count >= 1) || count > MAX_ELEMENTS)
    parse_fail(p, at(c), "range: [%g, %g) in steps of %g is empty or too long", x[0], x[1], x[2]);
  int64_t n = (int64_t)count;
  double *d = values(p, n);
  for (int64_t i = 0; i < n; i++)
    d[i] = is_int ? x[0] + (double)i * x[2] : (double)((float)x[0] + (float)i * (float)x[2]);
  Shape s = {1, {{n, 0}}};
  Node *r = graph_leaf(p->g, OP_CONST, NULL, is_int ? DT_I32 : DT_F32, &s, at(c));
  r->a.values = d;
  return r;
}

/* linspace(start, stop, num): f32, TF's kernel: start + i * step in f32,
 * step = (stop - start) / (num - 1), the last value stop itself. */
Node *tensor_linspace(Parser *p, Call *c, OpKind op) {
  (void)op;
  Val *v[3] = {call_arg(c, 0, "start"), call_arg(c, 1, "stop"), call_arg(c, 2, "num")};
  if (!v[0] || !v[1] || !v[2]) parse_fail(p, at(c), "linspace: expected linspace(start, stop, num)");
  float start = (float)call_num(p, c, v[0], false), stop = (float)call_num(p, c, v[1], false);
  double num = call_num(p, c, v[2], true);
  if (num < 1 || num > MAX_ELEMENTS) parse_fail(p, v[2]->loc, "linspace: num must be a positive integer");
  int64_t n = (int64_t)num;
  float step = n > 1 ? (stop - start) / (float)(n - 1) : 0;
  double *d = values(p, n);
  for (int64_t i = 0; i < n; i++) d[i] = i == n - 1 && n > 1 ? stop : (double)(start + step * (float)i);
  Shape s = {1, {{n, 0}}};
  Node *r = graph_leaf(p->g, OP_CONST, NULL, DT_F32, &s, at(c));
  r->a.values = d;
  return r;
}

/* meshgrid(x1, ..., xn, indexing=xy|ij): tf.meshgrid.  Each result has
 * the shape [len(x1), ..., len(xn)] (ij) or that with the first two
 * swapped (xy, the default: x along the rows, y down the columns), and
 * result k repeats xk along its own axis. */
Node *tensor_meshgrid(Parser *p, Call *c, OpKind op) {
  (void)op;
  int n = c->npos;
  Val *iv = call_kwarg(c, "indexing");
  bool xy = true;
  if (iv) {
    if (iv->kind != V_NAME || (strcmp(iv->name, "xy") && strcmp(iv->name, "ij")))
      parse_fail(p, iv->loc, "meshgrid: indexing is xy or ij, got '%.*s'", iv->loc.len,
                 iv->loc.src->text + iv->loc.off);
    xy = !strcmp(iv->name, "xy");
  }
  if (n < 1) parse_fail(p, at(c), "meshgrid needs at least one vector");
  Node *x[MAX_RANK];
  Attrs a = {.to = {.rank = n}};
  for (int k = 0; k < n; k++) {
    x[k] = call_tensor(p, c, k, NULL);
    if (x[k]->shape.rank != 1)
      parse_fail(p, c->args[k].loc, "meshgrid needs vectors; argument %d has rank %d", k + 1,
                 x[k]->shape.rank);
  }
  for (int k = 0; k < n; k++) {
    int ax = xy && n >= 2 && k < 2 ? 1 - k : k;
    a.to.d[ax] = x[k]->shape.d[0];
  }
  Node **r = results(p, c, n);
  for (int k = 0; k < n; k++) {
    int ax = xy && n >= 2 && k < 2 ? 1 - k : k;
    Shape s = {.rank = n};
    for (int i = 0; i < n; i++) s.d[i] = i == ax ? x[k]->shape.d[0] : (Dim){1, 0};
    r[k] = parse_mk1(p, OP_BROADCAST, call_reshape(p, x[k], &s, at(c)), &a, at(c));
  }
  return r[0];
}

/* fill(dims, value), zeros_like(x), ones_like(x): a broadcast scalar. */
Node *tensor_fill(Parser *p, Call *c, OpKind op) {
  Val *dv = call_arg(c, 0, "dims"), *vv = call_arg(c, 1, "value");
  if (!dv || !vv) parse_fail(p, at(c), "fill: expected fill(dims, value)");
  Attrs a = {.to = call_shape(p, c, dv)};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n < 1) parse_fail(p, dv->loc, "fill: dimensions must be positive");
  double v = call_num(p, c, vv, false);
  Node *s = graph_scalar(p->g, v, vv->is_int ? DT_I32 : DT_F32, at(c));
  return parse_mk1(p, op, s, &a, at(c));
}

Node *tensor_like(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, "input");
  Attrs a = {.to = x->shape};
  double v = strcmp(call_name(p, c), "ones_like") == 0;
  return parse_mk1(p, op, graph_scalar(p->g, v, x->dtype, at(c)), &a, at(c));
}

/* ------------------------------------------------------------ ordering */

static bool descending(Parser *p, Call *c) {
  Val *d = call_kwarg(c, "direction");
  if (!d) return false;
  if (d->kind == V_NAME && !strcmp(d->name, "DESCENDING")) return true;
  if (d->kind == V_NAME && !strcmp(d->name, "ASCENDING")) return false;
  parse_fail(p, d->loc, "%s: direction must be ASCENDING or DESCENDING", call_name(p, c));
}

/* The positions that order x along axis: argsort of x, or of -x for a
 * descending order (ties stay in index order either way, as TF's). */
static Node *order(Parser *p, Call *c, Node *x, int axis, bool desc) {
  if (x->dtype == DT_BOOL) parse_fail(p, at(c), "%s needs numbers, got bool", call_name(p, c));
  Attrs a = {.axis = axis};
  return parse_mk1(p, OP_ARGSORT, desc ? parse_mk1(p, OP_NEG, x, NULL, at(c)) : x, &a, at(c));
}

Node *tensor_argsort(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "values");
  if (x->shape.rank == 0) parse_fail(p, at(c), "argsort needs a tensor of rank >= 1, got a scalar");
  return order(p, c, x, call_axis(p, c, call_arg(c, 1, "axis"), x->shape.rank, -1), descending(p, c));
}

/* sort: x taken at its argsort's positions (so its gradient goes back
 * through them). */
Node *tensor_sort(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "values");
  if (x->shape.rank == 0) parse_fail(p, at(c), "sort needs a tensor of rank >= 1, got a scalar");
  need_static(p, c, x);
  int axis = call_axis(p, c, call_arg(c, 1, "axis"), x->shape.rank, -1);
  Node *pos = order(p, c, x, axis, descending(p, c));
  int64_t inner = prod(&x->shape, axis + 1, x->shape.rank);
  Node *flat = parse_mk2(p, OP_ADD, row_starts(p, &x->shape, axis, at(c)),
                         parse_mk2(p, OP_MUL, pos, iscalar(p, inner, at(c)), at(c)), at(c));
  return take(p, x, flat, at(c));
}

/* values, indices = top_k(x, k=1): the k largest along the last axis,
 * largest first, ties in index order (tf.math.top_k, sorted=True). */
Node *tensor_top_k(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, "input");
  int R = x->shape.rank;
  if (R == 0) parse_fail(p, at(c), "top_k needs a tensor of rank >= 1, got a scalar");
  need_static(p, c, x);
  Val *kv = call_arg(c, 1, "k");
  int64_t len = x->shape.d[R - 1].n, k = kv ? (int64_t)call_num(p, c, kv, true) : 1;
  if (k < 1 || k > len)
    parse_fail(p, kv ? kv->loc : at(c), "top_k: k = %lld must lie in [1, %lld], the last axis' size", (long long)k,
               (long long)len);
  Node *pos = part(p, order(p, c, x, R - 1, true), R - 1, 0, k, at(c));
  Shape rows = x->shape;
  rows.d[R - 1] = (Dim){1, 0};
  int64_t n = prod(&rows, 0, R);
  double *v = values(p, n);
  for (int64_t i = 0; i < n; i++) v[i] = (double)(i * len);
  Node **r = results(p, c, 2);
  r[0] = take(p, x, parse_mk2(p, OP_ADD, int_const(p, &rows, v, at(c)), pos, at(c)), at(c));
  r[1] = pos;
  return r[0];
}

/* x moved one along axis, a 1 first and its last dropped: cumprod of it
 * is the exclusive cumprod, with no division (so right at zeros). */
static Node *shift_in_ones(Parser *p, Call *c, Node *x, int axis) {
  int64_t len = x->shape.d[axis].n;
  Attrs one = {.to = x->shape}, keep = {0}, cat = {.axis = axis};
  one.to.d[axis] = (Dim){1, 0};
  Node *ones = parse_mk1(p, OP_BROADCAST, graph_scalar(p->g, 1, x->dtype, at(c)), &one, at(c));
  if (len == 1) return ones;
  for (int i = 0; i < x->shape.rank; i++) {
    Dim d = x->shape.d[i];
    keep.begin[i] = 0, keep.step[i] = 1, keep.end[i] = d.sym ? INT64_MAX : d.n;
  }
  keep.end[axis] = len - 1;
  Node *src[2] = {ones, parse_mk1(p, OP_SLICE, x, &keep, at(c))};
  return parse_mk(p, OP_CONCAT, src, 2, &cat, at(c));
}

/* cumsum(x, axis=0, exclusive=false, reverse=false): tf.cumsum; cumprod
 * the same with a product (tf.math.cumprod). */
Node *tensor_cumsum(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, "x");
  if (x->shape.rank == 0)
    parse_fail(p, at(c), "%s needs a tensor of rank >= 1, got a scalar", op_info[op].name);
  Val *ev = call_kwarg(c, "exclusive"), *rv = call_kwarg(c, "reverse");
  bool excl = ev && ev->kind == V_NAME && !strcmp(ev->name, "true");
  bool rev = rv && rv->kind == V_NAME && !strcmp(rv->name, "true");
  Attrs a = {.axis = call_axis(p, c, call_arg(c, 1, "axis"), x->shape.rank, 0)};
  Attrs flip = {0};
  if (rev) {
    if (x->shape.d[a.axis].sym) static_axis(p, c, x, call_arg(c, 1, "axis"), 0);
    for (int i = 0; i < x->shape.rank; i++) {
      Dim d = x->shape.d[i];
      flip.begin[i] = 0, flip.step[i] = 1, flip.end[i] = d.sym ? INT64_MAX : d.n;
    }
    flip.begin[a.axis] = x->shape.d[a.axis].n - 1, flip.end[a.axis] = -1, flip.step[a.axis] = -1;
    x = parse_mk1(p, OP_SLICE, x, &flip, at(c));
  }
  Node *y;
  if (excl && op == OP_CUMPROD) {
    if (x->shape.d[a.axis].sym) static_axis(p, c, x, call_arg(c, 1, "axis"), 0);
    y = parse_mk1(p, op, shift_in_ones(p, c, x, a.axis), &a, at(c));
  } else {
    y = parse_mk1(p, op, x, &a, at(c));
    if (excl) y = parse_mk2(p, OP_SUB, y, x, at(c));
  }
  if (rev) y = parse_mk1(p, OP_SLICE, y, &flip, at(c));
  return y;
}

/* top_k_accuracy(logits, labels, k=5): Keras'
 * sparse_top_k_categorical_accuracy, averaged over the batch: a row
 * counts when fewer than k classes score above its label's (TF's
 * in_top_k, so ties at the boundary count as in). */
Node *tensor_top_k_accuracy(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *z = call_tensor(p, c, 0, "y_pred"), *y = call_tensor(p, c, 1, "y_true");
  Val *kv = call_arg(c, 2, "k");
  int64_t k = kv ? (int64_t)call_num(p, c, kv, true) : 5;
  Loc loc = at(c);
  int R = z->shape.rank;
  if (R < 1 || !dtype_is_float(z->dtype) || z->shape.d[R - 1].sym)
    parse_fail(p, loc, "top_k_accuracy needs float scores with a static class axis last");
  if (y->dtype != DT_I32) parse_fail(p, loc, "top_k_accuracy needs i32 labels, got %s", dtype_names[y->dtype]);
  if (k < 1) parse_fail(p, kv->loc, "top_k_accuracy: k must be positive");
  Attrs oh = {.depth = z->shape.d[R - 1].n}, last = {.axes = 1u << (R - 1), .keepdims = true};
  Node *hot = parse_mk1(p, OP_ONE_HOT, y, &oh, loc);
  Node *mine = parse_mk1(p, OP_SUM, parse_mk2(p, OP_MUL, z, parse_mk1(p, OP_CAST, hot, &(Attrs){.dtype = z->dtype},
                                                                      loc), loc), &last, loc);
  Node *above = parse_mk1(p, OP_CAST, parse_mk2(p, OP_GT, z, mine, loc), &(Attrs){.dtype = DT_I32}, loc);
  Attrs all = {.axes = 1u << (R - 1)};
  Node *rank = parse_mk1(p, OP_SUM, above, &all, loc);
  /* a label outside the classes matches nothing (its one_hot row is 0) */
  Node *valid = parse_mk1(p, OP_SUM, parse_mk1(p, OP_CAST, hot, &(Attrs){.dtype = DT_I32}, loc), &all, loc);
  Node *hit = parse_mk(p, OP_WHERE, (Node *[]){parse_mk2(p, OP_LT, rank, iscalar(p, k, loc), loc), valid,
                                                iscalar(p, 0, loc)}, 3, NULL, loc);
  Attrs every = {.axes = rank->shape.rank ? (1u << rank->shape.rank) - 1 : 0};
  return parse_mk1(p, OP_MEAN, hit, &every, loc);
}

/* ------------------------------------------------------------ data-dependent sizes */

/* boolean_mask, unique and one-argument where give as many elements as
 * their data selects, which a static compiler cannot know.  As XLA does
 * with padded shapes, each gives a tensor of a static upper bound - the
 * size of the input along the axes it selects from - whose valid part is
 * a leading block, the rest zeros, and beside it the valid extent per
 * axis: an i32 vector of the result's rank, every entry the static size
 * but the selected axis', which holds the count.  The pair is recorded
 * here (Parser.padded) and nowhere in the graph: an `output` of the
 * padded value also outputs its extent, as NAME#valid (`#` starts a
 * comment in a model file, so no tensor of the model can have that
 * name), which gradc run reads to print and write only the valid block;
 * valid_shape(y) gives it to the model.  The record follows the value
 * through elementwise ops (y * 2) and gather_nd by padded indices
 * (gather_nd(a, where(m))), padded along the same leading axes; past any
 * other op (a reduction, a reshape) the zeros of the padding take part
 * like any value.
 *
 * Each is a take_add: the selected elements scattered to the positions
 * an exclusive cumsum of the selection gives them, the others to -1
 * (nowhere), so they have that op's gradient - a scatter back to the
 * selected positions, zero elsewhere - its evaluator and its code. */

static Node *as_i32(Parser *p, Node *x, Loc loc) {
  return x->dtype == DT_I32 ? x : parse_mk1(p, OP_CAST, x, &(Attrs){.dtype = DT_I32}, loc);
}

/* Where each selected element goes: its rank among the selected ones
 * (sel is i32 0/1 along its last axis), -1 for the others. */
static Node *compact_positions(Parser *p, Node *sel, Loc loc) {
  Attrs a = {.axis = sel->shape.rank - 1};
  Node *before = parse_mk2(p, OP_SUB, parse_mk1(p, OP_CUMSUM, sel, &a, loc), sel, loc);
  Node *chosen = parse_mk2(p, OP_GT, sel, iscalar(p, 0, loc), loc);
  return parse_mk(p, OP_WHERE, (Node *[]){chosen, before, iscalar(p, -1, loc)}, 3, NULL, loc);
}

/* Records y as padded along axis, count valid there; returns y. */
static Node *padded(Parser *p, Node *y, Node *count, int axis, Loc loc) {
  int R = y->shape.rank;
  Shape s = {1, {{R, 0}}};
  double *dims = values(p, R), *is_axis = values(p, R);
  for (int i = 0; i < R; i++) dims[i] = (double)y->shape.d[i].n, is_axis[i] = i == axis;
  Node *pick = graph_leaf(p->g, OP_CONST, NULL, DT_BOOL, &s, loc);
  pick->a.values = is_axis;
  Node *valid = parse_mk(p, OP_WHERE, (Node *[]){pick, count, int_const(p, &s, dims, loc)}, 3, NULL, loc);
  Padded *r = arena_alloc(p->arena, sizeof *r);
  *r = (Padded){y, valid, count, axis, p->padded};
  p->padded = r;
  return y;
}

const Padded *tensor_padded(const Parser *p, const Node *y) {
  for (const Padded *r = p->padded; r; r = r->next)
    if (r->value == y) return r;
  return NULL;
}

/* An elementwise op keeps the layout of its operands: with a padded
 * operand of its own shape, its valid block is that operand's (y * 2,
 * cast(y, f32), y + 1: the padding changes, the block is still where
 * it was).  Two padded operands of different counts would be a shape
 * mismatch in TF, found only at run time: their result stays unpadded. */
void tensor_follow_padding(Parser *p, Node *n) {
  if (!(op_info[n->op].flags & F_ELEMENTWISE) || tensor_padded(p, n)) return;
  const Padded *from = NULL;
  for (int i = 0; i < n->nsrc; i++) {
    const Padded *r = tensor_padded(p, n->src[i]);
    if (!r || !shape_eq(&n->src[i]->shape, &n->shape)) continue;
    if (from && (from->count != r->count || from->axis != r->axis)) return;
    from = r;
  }
  if (from) padded(p, n, from->count, from->axis, n->loc);
}

/* boolean_mask(x, mask, axis=0): tf.boolean_mask.  mask (bool, static
 * shape) covers x.shape[axis:axis+K]; the result is x.shape[:axis] +
 * [count] + x.shape[axis+K:], padded to the mask's size. */
Node *tensor_boolean_mask(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, "tensor"), *m = call_tensor(p, c, 1, "mask");
  Val *av = call_arg(c, 2, "axis");
  Loc loc = at(c);
  need_static(p, c, x);
  need_static(p, c, m);
  if (m->dtype != DT_BOOL)
    parse_fail(p, c->args[1].loc, "boolean_mask needs a bool mask, got %s; compare it, e.g. m > 0",
               dtype_names[m->dtype]);
  int R = x->shape.rank, K = m->shape.rank;
  if (K == 0) parse_fail(p, c->args[1].loc, "boolean_mask needs a mask of rank >= 1, got a scalar");
  if (K > R) parse_fail(p, c->args[1].loc, "boolean_mask: the mask has rank %d, the tensor only %d", K, R);
  int axis = call_axis(p, c, av, R - K + 1, 0);
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  for (int i = 0; i < K; i++)
    if (m->shape.d[i].n != x->shape.d[axis + i].n)
      parse_fail(p, c->args[1].loc, "boolean_mask: the mask %s must match the tensor %s on axes %d..%d",
                 shape_str(p->g, &m->shape, b1, sizeof b1), shape_str(p->g, &x->shape, b2, sizeof b2), axis,
                 axis + K - 1);
  int64_t L = shape_static_count(&m->shape), inner = prod(&x->shape, axis + K, R);
  Shape ys = {0};
  for (int i = 0; i < axis; i++) ys.d[ys.rank++] = x->shape.d[i];
  ys.d[ys.rank++] = (Dim){L, 0};
  for (int i = axis + K; i < R; i++) ys.d[ys.rank++] = x->shape.d[i];
  Shape flat = {1, {{L, 0}}}, bs = {0};
  Node *sel = as_i32(p, reshape(p, m, &flat, loc), loc);
  /* the destination row of each row of the mask, broadcast over ys */
  for (int i = 0; i < ys.rank; i++) bs.d[bs.rank++] = i == axis ? (Dim){L, 0} : (Dim){1, 0};
  Node *to = reshape(p, compact_positions(p, sel, loc), &bs, loc);
  Node *dest = parse_mk2(p, OP_ADD, row_starts(p, &ys, axis, loc), parse_mk2(p, OP_MUL, to, iscalar(p, inner, loc), loc),
                         loc);
  Node *keep = parse_mk2(p, OP_GE, to, iscalar(p, 0, loc), loc);
  dest = parse_mk(p, OP_WHERE, (Node *[]){keep, dest, iscalar(p, -1, loc)}, 3, NULL, loc);
  Attrs a = {.to = ys};
  /* take_add adds numbers: a bool tensor goes through i32 and back */
  Node *y = parse_mk(p, op, (Node *[]){reshape(p, x->dtype == DT_BOOL ? as_i32(p, x, loc) : x, &ys, loc), dest}, 2,
                     &a, loc);
  if (x->dtype == DT_BOOL) y = parse_mk1(p, OP_CAST, y, &(Attrs){.dtype = DT_BOOL}, loc);
  return padded(p, y, parse_mk1(p, OP_SUM, sel, &(Attrs){.axes = 1}, loc), axis, loc);
}

/* y, idx = unique(x): tf.unique of a vector, y the distinct values in
 * the order of their first occurrence (padded to x's length), idx[i] the
 * position of x[i] in y.  By a stable argsort, so O(n log n): equal
 * values are neighbours in sorted order, the first of each run is the
 * lowest index holding it (stability); each element learns its first
 * occurrence from its run's start, and the first occurrences, ranked in
 * index order, are y. */
Node *tensor_unique(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, "x");
  Loc loc = at(c);
  if (x->shape.rank != 1) parse_fail(p, at(c), "unique needs a vector, got rank %d", x->shape.rank);
  need_static(p, c, x);
  int64_t n = x->shape.d[0].n;
  Shape s = x->shape;
  Attrs to = {.to = s};
  Node *perm = order(p, c, x, 0, false);
  Node *sorted = take(p, x, perm, loc);
  /* run starts: sorted[k] != sorted[k-1], and k = 0 */
  double *prev = values(p, n), *first_slot = values(p, n), *iota = values(p, n);
  for (int64_t k = 0; k < n; k++) prev[k] = (double)(k - 1), first_slot[k] = k == 0, iota[k] = (double)k;
  Node *differs = as_i32(p, parse_mk2(p, OP_NE, sorted, take(p, sorted, int_const(p, &s, prev, loc), loc), loc), loc);
  Node *starts = parse_mk2(p, OP_MAXIMUM, differs, int_const(p, &s, first_slot, loc), loc);
  Node *run = parse_mk2(p, OP_SUB, parse_mk1(p, OP_CUMSUM, starts, &(Attrs){.axis = 0}, loc), iscalar(p, 1, loc), loc);
  Node *run_first = parse_mk(p, op, (Node *[]){perm, compact_positions(p, starts, loc)}, 2, &to, loc);
  Node *first = parse_mk(p, op, (Node *[]){take(p, run_first, run, loc), perm}, 2, &to, loc);
  Node *is_first = as_i32(p, parse_mk2(p, OP_EQ, first, int_const(p, &s, iota, loc), loc), loc);
  Node *slot = compact_positions(p, is_first, loc);
  Node **r = results(p, c, 2);
  r[0] = padded(p, parse_mk(p, op, (Node *[]){x, slot}, 2, &to, loc),
                parse_mk1(p, OP_SUM, is_first, &(Attrs){.axes = 1}, loc), 0, loc);
  r[1] = take(p, slot, first, loc);
  return r[0];
}

/* where(cond): tf.where with one argument, the coordinates of cond's
 * true (non-zero) elements in row-major order, [count, rank], padded to
 * cond's size with rows of zeros; i32, since gradc has no 64-bit integer
 * (TF's are int64). */
Node *tensor_where_true(Parser *p, Call *c, OpKind op) {
  Node *cond = call_tensor(p, c, 0, "condition");
  Loc loc = at(c);
  need_static(p, c, cond);
  int r = cond->shape.rank;
  if (r == 0) parse_fail(p, loc, "where needs a condition of rank >= 1, got a scalar");
  int64_t N = shape_static_count(&cond->shape);
  if (N * r > MAX_ELEMENTS) parse_fail(p, loc, "where: the result is too large");
  Shape flat = {1, {{N, 0}}}, ys = {2, {{N, 0}, {r, 0}}}, col = {2, {{N, 0}, {1, 0}}}, row = {2, {{1, 0}, {r, 0}}};
  Node *truth = cond->dtype == DT_BOOL ? cond : parse_mk2(p, OP_NE, cond, iscalar(p, 0, loc), loc);
  Node *sel = as_i32(p, reshape(p, truth, &flat, loc), loc);
  Node *to = reshape(p, compact_positions(p, sel, loc), &col, loc);
  double *coords = values(p, N * r), *axes = values(p, r);
  for (int64_t e = 0; e < N; e++)
    for (int64_t d = r - 1, rest = e; d >= 0; d--) {
      coords[e * r + d] = (double)(rest % cond->shape.d[d].n);
      rest /= cond->shape.d[d].n;
    }
  for (int d = 0; d < r; d++) axes[d] = d;
  Node *dest = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, to, iscalar(p, r, loc), loc), int_const(p, &row, axes, loc),
                         loc);
  Node *keep = parse_mk2(p, OP_GE, to, iscalar(p, 0, loc), loc);
  dest = parse_mk(p, OP_WHERE, (Node *[]){keep, dest, iscalar(p, -1, loc)}, 3, NULL, loc);
  (void)op;
  Attrs a = {.to = ys};
  Node *y = parse_mk(p, OP_TAKE_ADD, (Node *[]){int_const(p, &ys, coords, loc), dest}, 2, &a, loc);
  return padded(p, y, parse_mk1(p, OP_SUM, sel, &(Attrs){.axes = 1}, loc), 0, loc);
}

/* valid_shape(y): the valid extent of a padded result, i32 [rank(y)]. */
Node *tensor_valid_shape(Parser *p, Call *c, OpKind op) {
  (void)op;
  const Padded *v = tensor_padded(p, call_tensor(p, c, 0, "input"));
  if (!v)
    parse_fail(p, c->args[0].loc, "valid_shape: this value is not padded; only the results of boolean_mask, "
               "unique, one-argument where (and gather_nd by them) are");
  return v->valid;
}
