/*
 * shape.c - the shape and dtype rule of every op (the "shape rule" column of
 * ops.h).
 *
 * A rule reads n->src and n->a, sets n->shape and n->dtype, and returns true;
 * or it reports why the operands are wrong at n->loc and returns false.  The
 * rules follow numpy/TF: right-aligned broadcasting, TF reduction shapes, TF
 * dtype strictness (f32 + i32 is an error, not a silent promotion), except
 * that a bare numeric literal takes the dtype of the tensor it meets, so
 * `x / 255` works on f32 x as it does in numpy.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

const char *op_symbol(OpKind op) {
  switch (op) {
  case OP_ADD: return "+";
  case OP_SUB: return "-";
  case OP_MUL: return "*";
  case OP_DIV: return "/";
  case OP_POW: return "**";
  case OP_FLOORDIV: return "//";
  case OP_FLOORMOD: return "%";
  case OP_EQ: return "==";
  case OP_NE: return "!=";
  case OP_LT: return "<";
  case OP_LE: return "<=";
  case OP_GT: return ">";
  case OP_GE: return ">=";
  case OP_MATMUL: return "@";
  default: return op_info[op].name;
  }
}

static const char *sh(const Graph *g, const Shape *s, char *b) {
  return shape_str(g, s, b, SHAPE_STR_MAX);
}

bool shape_broadcast2(Graph *g, const Shape *a, const Shape *b, Shape *out,
                      Loc loc, const char *opname) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  Shape o = {.rank = r};
  for (int i = 0; i < r; i++) {
    int ia = a->rank - r + i, ib = b->rank - r + i;
    Dim da = ia >= 0 ? a->d[ia] : (Dim){1, 0};
    Dim db = ib >= 0 ? b->d[ib] : (Dim){1, 0};
    if (dim_eq(da, db) || dim_is_one(db)) o.d[i] = da;
    else if (dim_is_one(da)) o.d[i] = db;
    else {
      char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX], d1[48], d2[48];
      return graph_error(g, loc,
                         "shape mismatch: %s %s %s cannot be broadcast "
                         "(axis %d: %s vs %s)",
                         sh(g, a, b1), opname, sh(g, b, b2), i,
                         dim_str(g, da, d1, sizeof d1),
                         dim_str(g, db, d2, sizeof d2));
    }
  }
  *out = o;
  return true;
}

/* Unify the dtypes of n's first k operands; weak literals adopt. */
static bool unify(Graph *g, Node *n, int first, int k, DType *out) {
  Node *strong = NULL;
  for (int i = first; i < first + k; i++)
    if (!(n->src[i]->flags & N_WEAK)) {
      if (strong && strong->dtype != n->src[i]->dtype)
        return graph_error(g, n->loc,
                           "dtype mismatch in %s: %s and %s; convert one with "
                           "cast(x, %s)",
                           op_symbol(n->op), dtype_names[strong->dtype],
                           dtype_names[n->src[i]->dtype],
                           dtype_names[strong->dtype]);
      if (!strong) strong = n->src[i];
    }
  DType t = n->src[first]->dtype;
  if (strong) t = strong->dtype;
  else
    for (int i = first; i < first + k; i++)
      if (dtype_is_float(n->src[i]->dtype)) t = n->src[i]->dtype;
  for (int i = first; i < first + k; i++) {
    Node *s = n->src[i];
    if (!(s->flags & N_WEAK)) continue;
    /* An integer literal can become a float, never the reverse. */
    if ((s->flags & N_FLOAT_LIT) && !dtype_is_float(t)) {
      int64_t cnt = shape_static_count(&s->shape), at = 0;
      for (int64_t e = 0; e < cnt; e++)
        /* floor, not a cast to int64_t: 1e308 is out of its range (UB). */
        if (s->a.values[e] != floor(s->a.values[e])) {
          at = e;                 /* name the value that is not whole */
          break;
        }
      return graph_error(g, s->loc,
                         "literal %g is not an integer but the other operand "
                         "of %s is %s",
                         s->a.values[at], op_symbol(n->op), dtype_names[t]);
    }
    if (s->dtype != t && (s->flags & N_ADOPTED)) {
      /* A literal bound to a name can meet an f32 here and an i32 there:
       * each use gets its own typed copy. */
      Node *c = graph_leaf(g, OP_CONST, NULL, t, &s->shape, s->loc);
      c->a.values = s->a.values;
      c->flags |= N_WEAK | N_USED | (s->flags & N_FLOAT_LIT);
      n->src[i] = s = c;
    }
    s->dtype = t;
    s->flags |= N_ADOPTED;
  }
  *out = t;
  return true;
}

static bool need_numeric(Graph *g, Node *n, Node *x) {
  if (x->dtype != DT_BOOL) return true;
  return graph_error(g, n->loc, "%s needs a numeric operand, got bool; use "
                     "cast(x, f32)", op_symbol(n->op));
}

static bool need_float(Graph *g, Node *n, Node *x) {
  if (dtype_is_float(x->dtype)) return true;
  if (x->flags & N_WEAK) {
    x->dtype = DT_F32;
    return true;
  }
  return graph_error(g, n->loc,
                     "%s needs a floating-point operand, got %s; use "
                     "cast(x, f32)", op_symbol(n->op), dtype_names[x->dtype]);
}

bool shape_leaf(Graph *g, Node *n) {
  (void)g, (void)n;
  return true;
}

bool shape_arith(Graph *g, Node *n) {
  DType t = DT_F32;
  if (!unify(g, n, 0, 2, &t)) return false;
  if (!need_numeric(g, n, n->src[0])) return false;
  n->dtype = t;
  return shape_broadcast2(g, &n->src[0]->shape, &n->src[1]->shape, &n->shape,
                          n->loc, op_symbol(n->op));
}

bool shape_float_arith(Graph *g, Node *n) {
  if (!shape_arith(g, n)) return false;
  if (!need_float(g, n, n->src[0]) || !need_float(g, n, n->src[1])) return false;
  n->dtype = n->src[0]->dtype;
  return true;
}

bool shape_compare(Graph *g, Node *n) {
  DType t = DT_F32;
  if (!unify(g, n, 0, 2, &t)) return false;
  if (t == DT_BOOL && n->op != OP_EQ && n->op != OP_NE)
    return graph_error(g, n->loc, "'%s' orders numbers, got bool operands",
                       op_symbol(n->op));
  n->dtype = DT_BOOL;
  return shape_broadcast2(g, &n->src[0]->shape, &n->src[1]->shape, &n->shape,
                          n->loc, op_symbol(n->op));
}

bool shape_same_signed(Graph *g, Node *n) {
  if (!need_numeric(g, n, n->src[0])) return false;
  n->dtype = n->src[0]->dtype;
  n->shape = n->src[0]->shape;
  return true;
}

bool shape_same_num(Graph *g, Node *n) {
  if (n->op == OP_CLIP && n->a.lo > n->a.hi)
    return graph_error(g, n->loc, "clip bounds are reversed: min %g > max %g",
                       n->a.lo, n->a.hi);
  return shape_same_signed(g, n);
}

bool shape_same_float(Graph *g, Node *n) {
  Node *x = n->src[0];
  if (!need_float(g, n, x)) return false;
  n->dtype = x->dtype;
  n->shape = x->shape;
  if (op_info[n->op].kind == K_AXIS) {
    if (x->shape.rank == 0)
      return graph_error(g, n->loc, "%s needs a tensor of rank >= 1, got a "
                         "scalar", op_info[n->op].name);
    GRADC_ASSERT(n->a.axis >= 0 && n->a.axis < x->shape.rank);
  }
  return true;
}

bool shape_cast(Graph *g, Node *n) {
  (void)g;
  n->dtype = n->a.dtype;
  n->shape = n->src[0]->shape;
  return true;
}

bool shape_where(Graph *g, Node *n) {
  Node *c = n->src[0];
  if (c->dtype != DT_BOOL)
    return graph_error(g, n->loc, "where needs a bool condition, got %s; "
                       "compare it first, e.g. where(x > 0, a, b)",
                       dtype_names[c->dtype]);
  DType t = DT_F32;
  if (!unify(g, n, 1, 2, &t)) return false;
  Shape ab;
  if (!shape_broadcast2(g, &n->src[1]->shape, &n->src[2]->shape, &ab, n->loc,
                        ","))
    return false;
  n->dtype = t;
  return shape_broadcast2(g, &c->shape, &ab, &n->shape, n->loc, ",");
}

bool shape_matmul(Graph *g, Node *n) {
  const Shape *a = &n->src[0]->shape, *b = &n->src[1]->shape;
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (a->rank < 2 || b->rank < 2)
    return graph_error(g, n->loc,
                       "matmul needs operands of rank >= 2, got %s @ %s; use "
                       "expand_dims or reshape for vectors",
                       sh(g, a, b1), sh(g, b, b2));
  DType t = DT_F32;
  if (!unify(g, n, 0, 2, &t) || !need_numeric(g, n, n->src[0])) return false;
  /* ta/tb: the operand's last two axes are read transposed (set by autodiff
   * so backward products need no transpose copies). */
  int ar = a->rank, br = b->rank;
  Dim am = a->d[ar - (n->a.ta ? 1 : 2)], ak = a->d[ar - (n->a.ta ? 2 : 1)];
  Dim bk = b->d[br - (n->a.tb ? 1 : 2)], bn = b->d[br - (n->a.tb ? 2 : 1)];
  Dim k1 = ak, k2 = bk;
  if (!dim_eq(k1, k2)) {
    char d1[48], d2[48];
    return graph_error(g, n->loc,
                       "matmul inner dimensions differ: %s @ %s (%s vs %s)",
                       sh(g, a, b1), sh(g, b, b2), dim_str(g, k1, d1, sizeof d1),
                       dim_str(g, k2, d2, sizeof d2));
  }
  Shape ba = {.rank = a->rank - 2}, bb = {.rank = b->rank - 2}, out;
  memcpy(ba.d, a->d, sizeof(Dim) * (size_t)ba.rank);
  memcpy(bb.d, b->d, sizeof(Dim) * (size_t)bb.rank);
  if (!shape_broadcast2(g, &ba, &bb, &out, n->loc, "@ (batch dimensions)"))
    return false;
  out.d[out.rank++] = am;
  out.d[out.rank++] = bn;
  n->shape = out;
  n->dtype = t;
  return true;
}

static void reduce_dims(Node *n, uint32_t axes) {
  const Shape *x = &n->src[0]->shape;
  Shape o = {0};
  for (int i = 0; i < x->rank; i++) {
    if (axes & (1u << i)) {
      if (n->a.keepdims) o.d[o.rank++] = (Dim){1, 0};
    } else {
      o.d[o.rank++] = x->d[i];
    }
  }
  n->shape = o;
}

bool shape_reduce(Graph *g, Node *n) {
  Node *x = n->src[0];
  GRADC_ASSERT((n->a.axes >> x->shape.rank) == 0);
  reduce_dims(n, n->a.axes);
  if (n->op == OP_MEAN) n->dtype = dtype_is_float(x->dtype) ? x->dtype : DT_F32;
  else if (n->op == OP_SUM) n->dtype = x->dtype == DT_BOOL ? DT_I32 : x->dtype;
  else n->dtype = x->dtype;
  (void)g;
  return true;
}

/* tf.norm's Euclidean norm: float operands only, TF's reduction shape. */
bool shape_norm(Graph *g, Node *n) {
  if (!need_float(g, n, n->src[0])) return false;
  return shape_reduce(g, n);
}

bool shape_argreduce(Graph *g, Node *n) {
  Node *x = n->src[0];
  if (x->shape.rank == 0)
    return graph_error(g, n->loc, "%s needs a tensor of rank >= 1, got a scalar",
                       op_info[n->op].name);
  GRADC_ASSERT(n->a.axis >= 0 && n->a.axis < x->shape.rank);
  if (!need_numeric(g, n, x)) return false;
  reduce_dims(n, 1u << n->a.axis);
  n->dtype = DT_I32;
  return true;
}

/* Element count as K * (product of symbols), symbols as a count per name. */
typedef struct Count {
  int64_t k;
  int syms[MAX_SYMS + 1];
} Count;

/* False when the count passes MAX_ELEMENTS: a target shape is user input,
 * its product is not bounded yet. */
static bool count_of(const Shape *s, Count *c, int skip) {
  memset(c, 0, sizeof *c);
  c->k = 1;
  for (int i = 0; i < s->rank; i++) {
    if (i == skip) continue;
    int64_t n = s->d[i].n;
    if (n < 1 || c->k > MAX_ELEMENTS / n) return false;
    c->k *= n;
    c->syms[s->d[i].sym]++;
  }
  c->syms[0] = 0;
  return true;
}

bool shape_reshape(Graph *g, Node *n) {
  const Shape *x = &n->src[0]->shape;
  Shape to = n->a.to;
  int infer = -1;
  for (int i = 0; i < to.rank; i++)
    if (to.d[i].n == -1) infer = i;
  Count cin, cout;
  /* x's count is bounded when x is built and no axis is empty (slices
   * refuse that), so this is only a guard. */
  if (!count_of(x, &cin, -1)) {
    char b[SHAPE_STR_MAX];
    return graph_error(g, n->loc, "cannot reshape %s: it has no elements", sh(g, x, b));
  }
  if (!count_of(&to, &cout, infer)) {
    char b[SHAPE_STR_MAX];
    return graph_error(g, n->loc, "cannot reshape to %s: more than 2^40 elements",
                       sh(g, &n->a.to, b));
  }
  bool ok = true;
  if (infer >= 0) {
    int left = 0;
    for (int s = 1; s <= MAX_SYMS; s++) {
      int d = cin.syms[s] - cout.syms[s];
      if (d < 0) ok = false;
      else if (d > 0) {
        if (d > 1 || left) ok = false;
        left = s;
      }
    }
    if (cout.k == 0 || cin.k % cout.k != 0) ok = false;
    if (ok) to.d[infer] = (Dim){cin.k / cout.k, left};
  } else {
    ok = cin.k == cout.k && memcmp(cin.syms, cout.syms, sizeof cin.syms) == 0;
  }
  if (!ok) {
    char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
    return graph_error(g, n->loc,
                       "cannot reshape %s to %s: the element counts differ",
                       sh(g, x, b1), sh(g, &n->a.to, b2));
  }
  n->a.to = to;
  n->shape = to;
  n->dtype = n->src[0]->dtype;
  return true;
}

bool shape_transpose(Graph *g, Node *n) {
  const Shape *x = &n->src[0]->shape;
  unsigned seen = 0;
  for (int i = 0; i < x->rank; i++) {
    int p = n->a.perm[i];
    if (p < 0 || p >= x->rank || (seen & (1u << p)))
      return graph_error(g, n->loc, "transpose: the permutation is not a "
                         "permutation of 0..%d", x->rank - 1);
    seen |= 1u << p;
    n->shape.d[i] = x->d[p];
  }
  n->shape.rank = x->rank;
  n->dtype = n->src[0]->dtype;
  return true;
}

bool shape_broadcast(Graph *g, Node *n) {
  const Shape *x = &n->src[0]->shape, *to = &n->a.to;
  Shape out;
  if (x->rank > to->rank ||
      !shape_broadcast2(g, x, to, &out, n->loc, "broadcast_to") ||
      !shape_eq(&out, to)) {
    char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
    if (g->diags->last && g->diags->last->loc.off == n->loc.off)
      return false;                /* shape_broadcast2 already said why */
    return graph_error(g, n->loc, "cannot broadcast %s to %s", sh(g, x, b1),
                       sh(g, to, b2));
  }
  n->shape = *to;
  n->dtype = n->src[0]->dtype;
  return true;
}

bool shape_slice(Graph *g, Node *n) {
  const Shape *x = &n->src[0]->shape;
  n->shape.rank = x->rank;
  for (int i = 0; i < x->rank; i++) {
    int64_t b = n->a.begin[i], e = n->a.end[i], s = n->a.step[i];
    if (x->d[i].sym) {
      /* Only the whole of a symbolic axis can be taken: its size is unknown. */
      if (!(b == 0 && e == INT64_MAX && s == 1))
        return graph_error(g, n->loc, "cannot slice the symbolic dimension "
                           "'%s' (its size is only known at run time)",
                           g->sym[x->d[i].sym]);
      n->shape.d[i] = x->d[i];
      continue;
    }
    GRADC_ASSERT(s != 0);
    int64_t len = s > 0 ? (e - b + s - 1) / s : (b - e - s - 1) / -s;
    /* numpy allows empty results; a model has no use for one, and every
     * later count assumes each axis holds at least one element. */
    if (len <= 0)
      return graph_error(g, n->loc, "the slice of axis %d (length %lld) is empty", i,
                         (long long)x->d[i].n);
    n->shape.d[i] = (Dim){len, 0};
  }
  n->dtype = n->src[0]->dtype;
  return true;
}

/* The gradient of a slice: the slice's values placed back into zeros of
 * the sliced operand's shape (a.to), at the same begin/end/step. */
bool shape_unslice(Graph *g, Node *n) {
  (void)g;
  n->shape = n->a.to;
  n->dtype = n->src[0]->dtype;
  return true;
}

bool shape_assign(Graph *g, Node *n) {
  Node *dst = n->src[0], *v = n->src[1];
  GRADC_ASSERT(dst->op == OP_PARAM || dst->op == OP_STATE);
  GRADC_ASSERT(dst->dtype == v->dtype && shape_eq(&dst->shape, &v->shape));
  (void)g;
  n->shape = dst->shape;
  n->dtype = dst->dtype;
  return true;
}

bool shape_concat(Graph *g, Node *n) {
  DType t = DT_F32;
  if (!unify(g, n, 0, n->nsrc, &t)) return false;
  const Shape *f = &n->src[0]->shape;
  int ax = n->a.axis;
  GRADC_ASSERT(ax >= 0 && ax < f->rank);
  Shape o = *f;
  for (int k = 1; k < n->nsrc; k++) {
    const Shape *s = &n->src[k]->shape;
    char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
    bool ok = s->rank == f->rank;
    for (int i = 0; ok && i < f->rank; i++)
      if (i != ax && !dim_eq(s->d[i], f->d[i])) ok = false;
    if (ok && s->d[ax].sym != o.d[ax].sym) ok = false;
    if (!ok)
      return graph_error(g, n->loc,
                         "concat along axis %d: operand %d has shape %s, which "
                         "does not match %s",
                         ax, k + 1, sh(g, s, b1), sh(g, f, b2));
    o.d[ax].n += s->d[ax].n;
  }
  /* [batch] + [batch] would be [2*batch], which no later slice (the
   * gradient) or count could take apart; one operand alone is refused too,
   * so the rule does not depend on how many there are. */
  if (o.d[ax].sym)
    return graph_error(g, n->loc, "cannot concat along the symbolic dimension '%s' "
                       "(axis %d)", g->sym[o.d[ax].sym], ax);
  n->shape = o;
  n->dtype = t;
  return true;
}

bool shape_one_hot(Graph *g, Node *n) {
  Node *x = n->src[0];
  if (x->dtype != DT_I32)
    return graph_error(g, n->loc, "one_hot needs i32 class indices, got %s",
                       dtype_names[x->dtype]);
  if (x->shape.rank == MAX_RANK)
    return graph_error(g, n->loc, "one_hot result would exceed rank %d", MAX_RANK);
  n->shape = x->shape;
  n->shape.d[n->shape.rank++] = (Dim){n->a.depth, 0};
  n->dtype = DT_F32;
  return true;
}

/* gather(table, ids): rows of a static [V, D] float table picked by i32
 * ids of any shape -> ids.shape + [D] (tf.gather on axis 0, Keras
 * Embedding). */
bool shape_gather(Graph *g, Node *n) {
  Node *t = n->src[0], *ids = n->src[1];
  char b[SHAPE_STR_MAX];
  if (!need_float(g, n, t)) return false;
  if (t->shape.rank != 2 || t->shape.d[0].sym || t->shape.d[1].sym)
    return graph_error(g, n->loc, "gather needs a static [rows, columns] table, got %s",
                       sh(g, &t->shape, b));
  if (ids->dtype != DT_I32)
    return graph_error(g, n->loc, "gather needs i32 indices, got %s", dtype_names[ids->dtype]);
  if (ids->shape.rank == MAX_RANK)
    return graph_error(g, n->loc, "gather result would exceed rank %d", MAX_RANK);
  n->shape = ids->shape;
  n->shape.d[n->shape.rank++] = t->shape.d[1];
  n->dtype = t->dtype;
  return true;
}

/* ------------------------------------------------ issue 24: index ops */

static bool static_shape(Graph *g, Node *n, const Shape *s, const char *what) {
  char b[SHAPE_STR_MAX];
  for (int i = 0; i < s->rank; i++)
    if (s->d[i].sym)
      return graph_error(g, n->loc, "%s needs a static shape, got %s", what, sh(g, s, b));
  return true;
}

/* take(x, idx): x's elements at idx's (flat, row-major) positions. */
bool shape_take(Graph *g, Node *n) {
  Node *x = n->src[0], *idx = n->src[1];
  if (!static_shape(g, n, &x->shape, "take's operand")) return false;
  if (idx->dtype != DT_I32)
    return graph_error(g, n->loc, "take needs i32 indices, got %s", dtype_names[idx->dtype]);
  n->shape = idx->shape;
  n->dtype = x->dtype;
  return true;
}

/* take_add(u, idx, shape=a.to): u added into zeros of a.to at idx. */
bool shape_take_add(Graph *g, Node *n) {
  Node *u = n->src[0], *idx = n->src[1];
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (!need_numeric(g, n, u)) return false;
  if (idx->dtype != DT_I32)
    return graph_error(g, n->loc, "take_add needs i32 indices, got %s", dtype_names[idx->dtype]);
  if (!shape_eq(&u->shape, &idx->shape))
    return graph_error(g, n->loc, "take_add: the updates %s must have the indices' shape %s",
                       sh(g, &u->shape, b1), sh(g, &idx->shape, b2));
  if (!static_shape(g, n, &n->a.to, "take_add's result")) return false;
  n->shape = n->a.to;
  n->dtype = u->dtype;
  return true;
}

bool shape_argsort(Graph *g, Node *n) {
  Node *x = n->src[0];
  if (!need_numeric(g, n, x)) return false;
  if (x->shape.rank == 0)
    return graph_error(g, n->loc, "%s needs a tensor of rank >= 1, got a scalar", op_info[n->op].name);
  GRADC_ASSERT(n->a.axis >= 0 && n->a.axis < x->shape.rank);
  n->shape = x->shape;
  n->dtype = n->op == OP_ARGSORT ? DT_I32 : x->dtype;
  return true;
}

bool shape_cumsum(Graph *g, Node *n) { return shape_argsort(g, n); }

/* scatter_add(updates, ids, depth): updates ids.shape + [D] summed into the
 * rows of a [depth, D] result (gather's adjoint). */
bool shape_scatter_add(Graph *g, Node *n) {
  Node *u = n->src[0], *ids = n->src[1];
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (!need_float(g, n, u)) return false;
  if (ids->dtype != DT_I32)
    return graph_error(g, n->loc, "scatter_add needs i32 indices, got %s", dtype_names[ids->dtype]);
  Shape rows = u->shape;
  rows.rank = rows.rank ? rows.rank - 1 : 0;
  if (u->shape.rank != ids->shape.rank + 1 || !shape_eq(&rows, &ids->shape) ||
      u->shape.d[u->shape.rank - 1].sym)
    return graph_error(g, n->loc, "scatter_add: the updates %s must be the indices' shape %s "
                       "and a static row length", sh(g, &u->shape, b1), sh(g, &ids->shape, b2));
  if (n->a.depth < 1)
    return graph_error(g, n->loc, "scatter_add: depth must be a positive integer");
  n->shape = (Shape){2, {{n->a.depth, 0}, u->shape.d[u->shape.rank - 1]}};
  n->dtype = u->dtype;
  return true;
}

bool shape_softmax_ce(Graph *g, Node *n) {
  Node *lg = n->src[0], *lb = n->src[1];
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (!need_float(g, n, lg)) return false;
  if (lg->shape.rank == 0)
    return graph_error(g, n->loc, "softmax_cross_entropy needs logits of rank "
                       ">= 1 (classes on the last axis), got a scalar");
  Shape per = lg->shape;
  per.rank--;
  if (lb->dtype == DT_I32) {           /* sparse: one class index per row */
    if (!shape_eq(&lb->shape, &per))
      return graph_error(g, n->loc,
                         "softmax_cross_entropy: integer labels must have shape "
                         "%s (the logits %s without the class axis), got %s",
                         sh(g, &per, b1), sh(g, &lg->shape, b2),
                         sh(g, &lb->shape, (char[SHAPE_STR_MAX]){0}));
  } else if (dtype_is_float(lb->dtype)) { /* dense: a distribution per row */
    if (lb->dtype != lg->dtype || !shape_eq(&lb->shape, &lg->shape))
      return graph_error(g, n->loc,
                         "softmax_cross_entropy: probability targets must match "
                         "the logits: %s %s vs %s %s",
                         dtype_names[lb->dtype], sh(g, &lb->shape, b1),
                         dtype_names[lg->dtype], sh(g, &lg->shape, b2));
  } else {
    return graph_error(g, n->loc, "softmax_cross_entropy: labels must be i32 "
                       "class indices or float probabilities, got bool");
  }
  n->shape = per;
  n->dtype = lg->dtype;
  return true;
}

bool shape_sigmoid_ce(Graph *g, Node *n) {
  Node *lg = n->src[0], *lb = n->src[1];
  if (!need_float(g, n, lg)) return false;
  DType t = DT_F32;
  if (!unify(g, n, 0, 2, &t)) return false;
  if (!shape_eq(&lg->shape, &lb->shape)) {
    char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
    return graph_error(g, n->loc, "sigmoid_cross_entropy: logits %s and labels "
                       "%s must have the same shape",
                       sh(g, &lg->shape, b1), sh(g, &lb->shape, b2));
  }
  n->shape = lg->shape;
  n->dtype = t;
  return true;
}

/* ------------------------------------------------------------ windows */

/* TF's output size: (padded - effective kernel) / stride + 1, where the
 * effective kernel of a dilated window is (k - 1) * dilation + 1. */
bool window_out(const Window *w, const Shape *x, int64_t *oh, int64_t *ow) {
  int64_t o[2];
  for (int i = 0; i < 2; i++) {
    int64_t padded = x->d[1 + i].n + w->pad[2 * i] + w->pad[2 * i + 1];
    int64_t eff = (w->k[i] - 1) * w->dil[i] + 1;
    if (padded < eff) return false;
    o[i] = (padded - eff) / w->stride[i] + 1;
  }
  *oh = o[0], *ow = o[1];
  return true;
}

/* An NHWC operand with static height, width and channels (the batch may be
 * symbolic) and a window that fits it. */
static bool window_input(Graph *g, Node *n, const Node *x, int64_t *oh, int64_t *ow) {
  char b[SHAPE_STR_MAX];
  const char *nm = op_info[n->op].name;
  if (x->shape.rank != 4)
    return graph_error(g, n->loc, "%s needs an NHWC tensor [batch, height, width, "
                       "channels], got %s", nm, sh(g, &x->shape, b));
  for (int i = 1; i < 4; i++)
    if (x->shape.d[i].sym)
      return graph_error(g, n->loc, "%s: height, width and channels must be static, "
                         "got %s", nm, sh(g, &x->shape, b));
  if (!need_float(g, n, (Node *)x)) return false;
  const Window *w = &n->a.win;
  if (!window_out(w, &x->shape, oh, ow))
    return graph_error(g, n->loc, "%s: the %lldx%lld window (dilation %lld, %lld) does "
                       "not fit the %lldx%lld input padded by [%lld, %lld, %lld, %lld]",
                       nm, (long long)w->k[0], (long long)w->k[1], (long long)w->dil[0],
                       (long long)w->dil[1], (long long)x->shape.d[1].n,
                       (long long)x->shape.d[2].n, (long long)w->pad[0],
                       (long long)w->pad[1], (long long)w->pad[2], (long long)w->pad[3]);
  return true;
}

/* [b, h, w, c] -> [b, oh, ow, kh*kw*c]: one row of patch values per output
 * position, in (kh, kw, c) order - the layout of a [kh, kw, c, f] kernel
 * read as a [kh*kw*c, f] matrix. */
bool shape_im2col(Graph *g, Node *n) {
  const Node *x = n->src[0];
  int64_t oh = 0, ow = 0;
  if (!window_input(g, n, x, &oh, &ow)) return false;
  int64_t k = n->a.win.k[0] * n->a.win.k[1] * x->shape.d[3].n;
  n->shape = (Shape){4, {x->shape.d[0], {oh, 0}, {ow, 0}, {k, 0}}};
  n->dtype = x->dtype;
  return true;
}

/* The adjoint of im2col (and of average pooling): back to a.to, the shape
 * of the forward operand.  autodiff builds both from checked forward
 * nodes; col2im is also written in model files (conv2d_transpose's dump),
 * so its operand must be what im2col of a.to gives: [b, oh, ow, kh*kw*c]. */
bool shape_col2im(Graph *g, Node *n) {
  const Node *y = n->src[0];
  const Shape *to = &n->a.to;
  n->shape = *to;
  n->dtype = y->dtype;
  if (n->op != OP_COL2IM) return true;
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  int64_t oh = 0, ow = 0;
  bool fits = to->rank == 4 && y->shape.rank == 4 && !to->d[1].sym && !to->d[2].sym &&
              !to->d[3].sym && window_out(&n->a.win, to, &oh, &ow);
  if (!fits || !dim_eq(y->shape.d[0], to->d[0]) || !dim_eq(y->shape.d[1], (Dim){oh, 0}) ||
      !dim_eq(y->shape.d[2], (Dim){ow, 0}) ||
      !dim_eq(y->shape.d[3], (Dim){n->a.win.k[0] * n->a.win.k[1] * to->d[3].n, 0}))
    return graph_error(g, n->loc, "col2im: the patches %s are not those of the %lldx%lld "
                       "window over %s", sh(g, &y->shape, b1), (long long)n->a.win.k[0],
                       (long long)n->a.win.k[1], sh(g, to, b2));
  return need_float(g, n, (Node *)y);
}

/* [b, h, w, c] -> [b, oh, ow, c]; padding never wins a max and is not
 * counted in an average (TF's rule for padding=same). */
bool shape_pool(Graph *g, Node *n) {
  const Node *x = n->src[0];
  int64_t oh = 0, ow = 0;
  if (!window_input(g, n, x, &oh, &ow)) return false;
  const Window *w = &n->a.win;
  for (int i = 0; i < 4; i++)
    if (w->pad[i] >= w->k[i / 2])
      return graph_error(g, n->loc, "%s: padding %lld is not smaller than the pool size "
                         "%lld; a window would hold only padding", op_info[n->op].name,
                         (long long)w->pad[i], (long long)w->k[i / 2]);
  n->shape = (Shape){4, {x->shape.d[0], {oh, 0}, {ow, 0}, x->shape.d[3]}};
  n->dtype = x->dtype;
  return true;
}

bool shape_maxpool_grad(Graph *g, Node *n) {
  (void)g;
  n->shape = n->src[0]->shape;
  n->dtype = n->src[0]->dtype;
  return true;
}

/* ------------------------------------------------------------ train vs inference */

bool shape_train_select(Graph *g, Node *n) {
  const Node *a = n->src[0], *b = n->src[1];
  char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
  if (!shape_eq(&a->shape, &b->shape) || a->dtype != b->dtype)
    return graph_error(g, n->loc, "train_select needs two values of one type, got %s%s "
                       "and %s%s", dtype_names[a->dtype], sh(g, &a->shape, b1),
                       dtype_names[b->dtype], sh(g, &b->shape, b2));
  n->shape = a->shape;
  n->dtype = a->dtype;
  return true;
}

bool shape_dropout_mask(Graph *g, Node *n) {
  Node *x = n->src[0];
  if (!need_float(g, n, x)) return false;
  if (!(n->a.lo >= 0 && n->a.lo < 1))
    return graph_error(g, n->loc, "dropout: the rate must lie in [0, 1), got %g", n->a.lo);
  GRADC_ASSERT(n->nsrc == 1 || (n->nsrc == 2 && graph_random_step(n)));
  n->shape = x->shape;
  n->dtype = x->dtype;
  return true;
}

/* random_normal and kin: the shape and dtype the parser put in a.to and
 * a.dtype; the only operand, once optimizer.c adds it, is the step. */
bool shape_random(Graph *g, Node *n) {
  GRADC_ASSERT(n->nsrc == 0 || (n->nsrc == 1 && graph_random_step(n)));
  if (!dtype_is_float(n->a.dtype))
    return graph_error(g, n->loc, "%s: draws are floating-point (f32 or f64), not %s",
                       op_info[n->op].name, dtype_names[n->a.dtype]);
  if (n->op == OP_RANDOM_UNIFORM && !(n->a.hi > n->a.lo))
    return graph_error(g, n->loc, "random_uniform: maxval must be greater than minval, got "
                       "minval=%g, maxval=%g", n->a.lo, n->a.hi);
  if (n->op != OP_RANDOM_UNIFORM && !(n->a.hi >= 0 && isfinite(n->a.hi)))
    return graph_error(g, n->loc, "%s: stddev must be a non-negative number, got %g",
                       op_info[n->op].name, n->a.hi);
  n->shape = n->a.to;
  n->dtype = n->a.dtype;
  return true;
}

/* ------------------------------------------------------------ loops */

static const Scan *scan_of(const Graph *g, const Node *n) {
  GRADC_ASSERT(n->a.loop >= 1 && n->a.loop <= g->nscans);
  return &g->scans[n->a.loop - 1];
}

bool shape_carry(Graph *g, Node *n) {
  (void)scan_of(g, n);
  n->shape = n->src[0]->shape;
  n->dtype = n->src[0]->dtype;
  return true;
}

bool shape_scan_slice(Graph *g, Node *n) {
  const Node *xs = n->src[0];
  const Scan *l = scan_of(g, n);
  int axis = n->a.axis;
  char b1[SHAPE_STR_MAX], b2[32], b3[32];
  if (axis < 0 || axis >= xs->shape.rank)
    return graph_error(g, n->loc, "scan: a sequence of shape %s has no axis %d to loop over",
                       sh(g, &xs->shape, b1), axis);
  if (!dim_eq(xs->shape.d[axis], l->len))
    return graph_error(g, n->loc, "scan: the sequences must have the same length along the "
                       "loop's axis: %s has %s, the loop %s", sh(g, &xs->shape, b1),
                       dim_str(g, xs->shape.d[axis], b2, sizeof b2),
                       dim_str(g, l->len, b3, sizeof b3));
  n->shape.rank = xs->shape.rank - 1;
  for (int i = 0, k = 0; i < xs->shape.rank; i++)
    if (i != axis) n->shape.d[k++] = xs->shape.d[i];
  n->dtype = xs->dtype;
  return true;
}

bool shape_loop_end(Graph *g, Node *n) {
  (void)scan_of(g, n);
  GRADC_ASSERT(n->a.slot >= 0 && n->a.slot <= n->nsrc);
  n->shape.rank = 0;
  n->dtype = DT_BOOL;
  return true;
}

bool shape_scan_stack(Graph *g, Node *n) {
  const Node *e = n->src[0];
  GRADC_ASSERT(e->op == OP_LOOP_END && n->a.slot >= e->a.slot && n->a.slot < e->nsrc);
  const Node *v = e->src[n->a.slot];
  if (v->shape.rank + 1 > MAX_RANK) {
    char b1[SHAPE_STR_MAX];
    return graph_error(g, n->loc, "scan: stacking values of shape %s over the loop needs "
                       "rank %d; the limit is %d", sh(g, &v->shape, b1), v->shape.rank + 1,
                       MAX_RANK);
  }
  int axis = n->a.axis;
  GRADC_ASSERT(axis >= 0 && axis <= v->shape.rank);
  n->shape.rank = v->shape.rank + 1;
  for (int i = 0, k = 0; i < n->shape.rank; i++)
    n->shape.d[i] = i == axis ? scan_of(g, e)->len : v->shape.d[k++];
  n->dtype = v->dtype;
  return true;
}

bool shape_scan_last(Graph *g, Node *n) {
  const Node *e = n->src[0];
  (void)g;
  GRADC_ASSERT(e->op == OP_LOOP_END && n->a.slot >= 0 && n->a.slot < e->a.slot);
  n->shape = e->src[n->a.slot]->shape;
  n->dtype = e->src[n->a.slot]->dtype;
  return true;
}

/* ------------------------------------------------------------ grad */

/* grad(y, x): x's shape and dtype (the gradient of the sum of y's elements);
 * both float.  Whether y depends on x at all is autodiff's question. */
bool shape_grad(Graph *g, Node *n) {
  Node *y = n->src[0], *x = n->src[1];
  if (!dtype_is_float(y->dtype) || !dtype_is_float(x->dtype))
    return graph_error(g, n->loc, "grad(y, x) needs floating-point y and x, got %s and %s",
                       dtype_names[y->dtype], dtype_names[x->dtype]);
  n->shape = x->shape;
  n->dtype = x->dtype;
  return true;
}
