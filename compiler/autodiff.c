/*
 * autodiff.c - reverse-mode differentiation into the same IR.
 *
 * gradients(g, loss, targets) appends to g the backward nodes of d(loss)/
 * d(target) for any scalar and any nodes, backward nodes included, so that
 * it can run on its own results (a gradient of a gradient); each call is
 * independent of the others.  The stage, autodiff(g), calls it once per
 * train step (g->steps) with the parameters that step trains (its `of`
 * patterns, else every parameter) and records d(loss)/d(param) in the
 * step's grads.  Each backward node records the forward node and the rule
 * that made it.  The optimizer's update of each parameter is the next
 * stage's (optimizer.c).  The stage before writes out the model's grad(y,
 * x) expressions with gradients() (gradexpr.c), so a loss may hold
 * backward nodes: every op a rule emits has a rule of its own, or stops
 * gradients by definition (test_autodiff checks both, and every rule's
 * gradient against finite differences).
 *
 * Invariants the rest of the pipeline relies on:
 *  - the backward graph is built once, at compile time; nothing is recorded
 *    at run time (no tape);
 *  - a value that fans out gets the sum of its consumers' gradients
 *    (ad_accum), and a broadcast operand gets its gradient summed back to its
 *    own shape (unbroadcast) - the bias of [512] added to [batch,512].
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

struct AD {
  Graph *g;
  Node **grad;          /* by forward node id */
  bool *wants;          /* float and depends on some target */
  int nfwd;
  Node *fwd;            /* the forward node whose rule runs now */
  const char *rule;
  /* While the body of forward loop `loop` is differentiated into the
   * gradient loop `into`: an outside value's gradient is summed over the
   * iterations in a carry of the gradient loop (acc), this iteration's
   * running sum in sum; outer lists them in order. */
  int loop, into;
  Node **acc, **sum, **outer;
  int nouter;
  /* Contributions summed over the iterations after the loop instead
   * (sum_terms): x gets matmul(stack(a)^T, stack(b)) (b NULL: the sum of
   * stack(a) over the iterations and axes). */
  struct Term { Node *x, *a, *b; uint32_t axes; } *terms;
  int nterms;
  Node *end;            /* the forward loop's loop_end */
};

/* ------------------------------------------------------------ builders */

static Node *node(AD *ad, OpKind op, Node **src, int n, const Attrs *a) {
  Node *r = graph_node(ad->g, op, src, n, a, ad->fwd->loc);
  GRADC_ASSERT(r);      /* backward shapes follow from checked forward ones */
  r->fwd = ad->fwd;
  r->rule = ad->rule;
  return r;
}

static Node *un(AD *ad, OpKind op, Node *x) { return node(ad, op, &x, 1, NULL); }

static Node *bin(AD *ad, OpKind op, Node *x, Node *y) {
  Node *s[2] = {x, y};
  return node(ad, op, s, 2, NULL);
}

static Node *konst(AD *ad, double v, DType t) {
  Node *k = graph_scalar(ad->g, v, t, ad->fwd->loc);
  k->fwd = ad->fwd;
  k->rule = ad->rule;
  return k;
}

static Node *choose(AD *ad, Node *c, Node *a, Node *b) {
  Node *s[3] = {c, a, b};
  return node(ad, OP_WHERE, s, 3, NULL);
}

static Node *reshape(AD *ad, Node *x, const Shape *to) {
  if (shape_eq(&x->shape, to)) return x;
  Attrs a = {.to = *to};
  return node(ad, OP_RESHAPE, &x, 1, &a);
}

static Node *matmul(AD *ad, Node *x, Node *y, bool ta, bool tb) {
  Node *s[2] = {x, y};
  Attrs a = {.ta = ta, .tb = tb};
  return node(ad, OP_MATMUL, s, 2, &a);
}

static Node *sum_keep(AD *ad, Node *x, uint32_t axes) {
  Attrs a = {.axes = axes, .keepdims = true};
  return node(ad, OP_SUM, &x, 1, &a);
}

/* Sum dx (a broadcast result) back down to shape s. */
static Node *unbroadcast(AD *ad, Node *dx, const Shape *s) {
  const Shape *o = &dx->shape;
  int lead = o->rank - s->rank;
  GRADC_ASSERT(lead >= 0);
  uint32_t axes = 0;
  for (int i = 0; i < o->rank; i++)
    if (i < lead || (dim_is_one(s->d[i - lead]) && !dim_is_one(o->d[i])))
      axes |= 1u << i;
  if (axes) dx = sum_keep(ad, dx, axes);
  return reshape(ad, dx, s);
}

/* The reverse of a reduction: gy back to the operand's shape, repeated. */
static Node *expand(AD *ad, Node *gy, const Node *n) {
  const Shape *xs = &n->src[0]->shape;
  uint32_t axes = n->op == OP_ARGMAX || n->op == OP_ARGMIN ? 1u << n->a.axis : n->a.axes;
  Shape kept = *xs;
  for (int i = 0; i < xs->rank; i++)
    if (axes & (1u << i)) kept.d[i] = (Dim){1, 0};
  gy = reshape(ad, gy, &kept);
  if (shape_eq(&kept, xs)) return gy;
  Attrs a = {.to = *xs};
  return node(ad, OP_BROADCAST, &gy, 1, &a);
}

static bool wants(const AD *ad, const Node *x) {
  return x->id < ad->nfwd && ad->wants[x->id];
}

static Node *zeros_like(AD *ad, const Node *x) {
  Node *z = konst(ad, 0, x->dtype);
  if (x->shape.rank == 0) return z;
  Attrs a = {.to = x->shape};
  return node(ad, OP_BROADCAST, &z, 1, &a);
}

static Node *loop_node(AD *ad, OpKind op, Node **src, int n, int axis, int slot) {
  Attrs a = {.axis = axis, .slot = slot};
  return node(ad, op, src, n, &a);
}

/* A value of the body, one per iteration: can it be stacked?  (Values of
 * both loops can; a slice of a sequence only along axis 0, where the
 * sequence itself is the stack.) */
static bool stackable(const AD *ad, const Node *v) {
  if (v->a.loop == ad->into) return true;
  if (v->a.loop != ad->loop) return false;
  return v->op != OP_SCAN_SLICE || v->a.axis == 0;
}

/* The sum over the iterations of a weight's gradient x^T gy (matmul's
 * rule for x @ W) is one product of the stacked rows, [T*b, m]^T [T*b, n],
 * and that of a bias' (a sum over the batch) one sum of the stack: both
 * after the loop, rather than a small product and an add per iteration. */
static bool sum_term(AD *ad, Node *x, Node *dx) {
  struct Term t = {x, NULL, NULL, 0};
  const Scan *sc = &ad->g->scans[ad->loop - 1];
  if (dx->op == OP_MATMUL && dx->a.ta && !dx->a.tb && dx->src[0]->shape.rank == 2 &&
      dx->src[1]->shape.rank == 2) {
    Dim b = dx->src[0]->shape.d[0];
    if (b.sym && sc->len.sym) return false;
    t.a = dx->src[0], t.b = dx->src[1];
  } else if (dx->op == OP_SUM && dx->a.keepdims) {   /* unbroadcast to a kept shape */
    t.a = dx->src[0], t.axes = dx->a.axes;
    if (t.a->shape.rank + 1 > MAX_RANK) return false;
  } else if (dx->op == OP_RESHAPE && dx->src[0]->op == OP_SUM && dx->src[0]->a.keepdims) {
    t.a = dx->src[0]->src[0], t.axes = dx->src[0]->a.axes;
    if (t.a->shape.rank + 1 > MAX_RANK) return false;
  } else {
    return false;
  }
  if (!stackable(ad, t.a) || (t.b && !stackable(ad, t.b))) return false;
  ad->terms[ad->nterms++] = t;
  return true;
}

/* add_or_set: accumulate a gradient contribution for x. */
void ad_accum(AD *ad, Node *x, Node *dx) {
  if (!wants(ad, x)) return;
  if (!shape_eq(&dx->shape, &x->shape)) dx = unbroadcast(ad, dx, &x->shape);
  GRADC_ASSERT(dx->dtype == x->dtype);
  if (ad->into && x->a.loop != ad->loop) {
    /* a value from outside the body: its gradient is the sum over the
     * iterations, computed after the loop where it can be (sum_term), or
     * added up in a carry */
    if (sum_term(ad, x, dx)) return;
    if (!ad->acc[x->id]) {
      Node *z = zeros_like(ad, x);
      ad->acc[x->id] = ad->sum[x->id] = loop_node(ad, OP_CARRY, &z, 1, 0, 0);
      ad->outer[ad->nouter++] = x;
    }
    ad->sum[x->id] = bin(ad, OP_ADD, ad->sum[x->id], dx);
    return;
  }
  Node **slot = &ad->grad[x->id];
  *slot = *slot ? bin(ad, OP_ADD, *slot, dx) : dx;
}

/* ------------------------------------------------------------ rules */

void grad_none(AD *ad, Node *n, Node *gy) {
  (void)ad, (void)n, (void)gy;
  GRADC_ASSERT(!"grad_none is a marker and never runs");
}

/* Replica r's loss L_r reads the mean M = sum_s w_s m_s of every replica's
 * m_s, and the step's gradients are summed as sum_r w_r (dL_r/dtheta): so
 * the share of dL/dm_r that replica r must carry, divided by its weight
 * w_r, is sum_s w_s dL_s/dM, the replicas' mean of the gradient. */
void grad_replica_mean(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], un(ad, OP_REPLICA_MEAN, gy));
}

void grad_add(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], gy);
  ad_accum(ad, n->src[1], gy);
}

void grad_sub(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], gy);
  if (wants(ad, n->src[1])) ad_accum(ad, n->src[1], un(ad, OP_NEG, gy));
}

void grad_mul(AD *ad, Node *n, Node *gy) {
  Node *a = n->src[0], *b = n->src[1];
  if (wants(ad, a)) ad_accum(ad, a, bin(ad, OP_MUL, gy, b));
  if (wants(ad, b)) ad_accum(ad, b, bin(ad, OP_MUL, gy, a));
}

/* d(a/b) = g/b, -g*(a/b)/b */
void grad_div(AD *ad, Node *n, Node *gy) {
  Node *a = n->src[0], *b = n->src[1];
  if (wants(ad, a)) ad_accum(ad, a, bin(ad, OP_DIV, gy, b));
  if (wants(ad, b))
    ad_accum(ad, b, un(ad, OP_NEG, bin(ad, OP_DIV, bin(ad, OP_MUL, gy, n), b)));
}

/* d(a^b) = g*b*a^(b-1), g*a^b*log(a) where a > 0 (TF's choice: 0 elsewhere) */
void grad_pow(AD *ad, Node *n, Node *gy) {
  Node *a = n->src[0], *b = n->src[1];
  DType t = n->dtype;
  if (wants(ad, a)) {
    Node *am1 = bin(ad, OP_POW, a, bin(ad, OP_SUB, b, konst(ad, 1, t)));
    ad_accum(ad, a, bin(ad, OP_MUL, bin(ad, OP_MUL, gy, b), am1));
  }
  if (wants(ad, b)) {
    Node *pos = bin(ad, OP_GT, a, konst(ad, 0, t));
    Node *safe = choose(ad, pos, a, konst(ad, 1, t));
    Node *d = bin(ad, OP_MUL, bin(ad, OP_MUL, gy, n), un(ad, OP_LOG, safe));
    ad_accum(ad, b, choose(ad, pos, d, konst(ad, 0, t)));
  }
}

/* a // b is piecewise constant: a zero gradient to both (the jumps at
 * the integers have none), so a model through it trains nothing rather than
 * failing to compile. */
void grad_floordiv(AD *ad, Node *n, Node *gy) {
  (void)gy;
  for (int k = 0; k < 2; k++)
    if (wants(ad, n->src[k])) ad_accum(ad, n->src[k], zeros_like(ad, n->src[k]));
}

/* a % b = a - floor(a/b)*b: g to a and -g*floor(a/b) to b, as TF's
 * FloorModGrad (right away from the jumps where a/b is an integer). */
void grad_floormod(AD *ad, Node *n, Node *gy) {
  Node *a = n->src[0], *b = n->src[1];
  if (wants(ad, a)) ad_accum(ad, a, gy);
  if (wants(ad, b))
    ad_accum(ad, b, un(ad, OP_NEG, bin(ad, OP_MUL, gy, bin(ad, OP_FLOORDIV, a, b))));
}

/* maximum: a gets the gradient where a >= b, b elsewhere (TF). */
void grad_minmax(AD *ad, Node *n, Node *gy) {
  Node *a = n->src[0], *b = n->src[1], *zero = konst(ad, 0, n->dtype);
  Node *mask = bin(ad, n->op == OP_MAXIMUM ? OP_GE : OP_LE, a, b);
  if (wants(ad, a)) ad_accum(ad, a, choose(ad, mask, gy, zero));
  if (wants(ad, b)) ad_accum(ad, b, choose(ad, mask, zero, gy));
}

void grad_neg(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], un(ad, OP_NEG, gy));
}

/* sign(x) * g, with sign(0) = 0 */
void grad_abs(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0], *zero = konst(ad, 0, n->dtype);
  Node *neg = choose(ad, bin(ad, OP_LT, x, zero), un(ad, OP_NEG, gy), zero);
  ad_accum(ad, x, choose(ad, bin(ad, OP_GT, x, zero), gy, neg));
}

void grad_square(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  ad_accum(ad, x, bin(ad, OP_MUL, bin(ad, OP_MUL, gy, x), konst(ad, 2, n->dtype)));
}

/* relu'(0) = 0, as TF (the seed's notes say 1; tests at exactly 0 differ).
 * The mask is a comparison, which gradients stop at (F_NO_GRAD), and
 * where's rule routes a gradient of this gradient through the same mask:
 * relu'' is 0. */
void grad_relu(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0], *zero = konst(ad, 0, n->dtype);
  ad_accum(ad, x, choose(ad, bin(ad, OP_GT, x, zero), gy, zero));
}

/* TF's LeakyReluGrad: g where x > 0, alpha g elsewhere (at 0 too). */
void grad_leaky_relu(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  Node *below = bin(ad, OP_MUL, gy, konst(ad, n->a.alpha, n->dtype));
  ad_accum(ad, x, choose(ad, bin(ad, OP_GT, x, konst(ad, 0, n->dtype)), gy, below));
}

void grad_sigmoid(AD *ad, Node *n, Node *gy) {
  Node *one_minus = bin(ad, OP_SUB, konst(ad, 1, n->dtype), n);
  ad_accum(ad, n->src[0], bin(ad, OP_MUL, bin(ad, OP_MUL, gy, n), one_minus));
}

void grad_tanh(AD *ad, Node *n, Node *gy) {
  Node *d = bin(ad, OP_SUB, konst(ad, 1, n->dtype), un(ad, OP_SQUARE, n));
  ad_accum(ad, n->src[0], bin(ad, OP_MUL, gy, d));
}

/* sin' = cos, cos' = -sin, (1/x)' = -1/x^2 = -y^2 */
void grad_sin(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], bin(ad, OP_MUL, gy, un(ad, OP_COS, n->src[0])));
}

void grad_cos(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], un(ad, OP_NEG, bin(ad, OP_MUL, gy, un(ad, OP_SIN, n->src[0]))));
}

void grad_reciprocal(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], un(ad, OP_NEG, bin(ad, OP_MUL, gy, un(ad, OP_SQUARE, n))));
}

void grad_exp(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], bin(ad, OP_MUL, gy, n));
}

void grad_log(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], bin(ad, OP_DIV, gy, n->src[0]));
}

/* softplus' = sigmoid, which saturates where softplus does not overflow. */
void grad_softplus(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  ad_accum(ad, x, bin(ad, OP_MUL, gy, un(ad, OP_SIGMOID, x)));
}

/* erf' = 2/sqrt(pi) exp(-x^2) */
void grad_erf(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  Node *d = bin(ad, OP_MUL, un(ad, OP_EXP, un(ad, OP_NEG, un(ad, OP_SQUARE, x))), konst(ad, 1.1283791670955126, n->dtype));
  ad_accum(ad, x, bin(ad, OP_MUL, gy, d));
}

void grad_sqrt(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0],
           bin(ad, OP_DIV, gy, bin(ad, OP_MUL, n, konst(ad, 2, n->dtype))));
}

/* TF's clip_by_value passes the gradient where lo <= x <= hi. */
void grad_clip(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0], *zero = konst(ad, 0, n->dtype);
  Node *in_hi = choose(ad, bin(ad, OP_LE, x, konst(ad, n->a.hi, n->dtype)), gy, zero);
  ad_accum(ad, x, choose(ad, bin(ad, OP_GE, x, konst(ad, n->a.lo, n->dtype)), in_hi, zero));
}

/* Between float types the gradient is cast back; to int or bool it stops. */
void grad_cast(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  if (!dtype_is_float(n->dtype) || !wants(ad, x)) return;
  Attrs a = {.dtype = x->dtype};
  ad_accum(ad, x, x->dtype == gy->dtype ? gy : node(ad, OP_CAST, &gy, 1, &a));
}

void grad_where(AD *ad, Node *n, Node *gy) {
  Node *c = n->src[0], *zero = konst(ad, 0, n->dtype);
  if (wants(ad, n->src[1])) ad_accum(ad, n->src[1], choose(ad, c, gy, zero));
  if (wants(ad, n->src[2])) ad_accum(ad, n->src[2], choose(ad, c, zero, gy));
}

/* C = op(A) op(B) with op = transpose or not; the products that give dA and
 * dB carry transpose flags instead of materialising transposes. */
void grad_matmul(AD *ad, Node *n, Node *gy) {
  Node *a = n->src[0], *b = n->src[1];
  bool ta = n->a.ta, tb = n->a.tb;
  if (wants(ad, a))
    ad_accum(ad, a, ta ? matmul(ad, b, gy, tb, true) : matmul(ad, gy, b, false, !tb));
  if (wants(ad, b))
    ad_accum(ad, b, tb ? matmul(ad, gy, a, true, ta) : matmul(ad, a, gy, !ta, false));
}

/* dx = y * (g - sum(g*y, axis)); the Jacobian is never materialised. */
void grad_softmax(AD *ad, Node *n, Node *gy) {
  Node *s = sum_keep(ad, bin(ad, OP_MUL, gy, n), 1u << n->a.axis);
  ad_accum(ad, n->src[0], bin(ad, OP_MUL, n, bin(ad, OP_SUB, gy, s)));
}

/* dx = g - exp(y) * sum(g, axis) */
void grad_log_softmax(AD *ad, Node *n, Node *gy) {
  Node *s = sum_keep(ad, gy, 1u << n->a.axis);
  ad_accum(ad, n->src[0], bin(ad, OP_SUB, gy, bin(ad, OP_MUL, un(ad, OP_EXP, n), s)));
}

void grad_sum(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], expand(ad, gy, n));
}

/* The count may involve the symbolic batch: a SIZE node carries it to run time. */
static Node *reduced_count(AD *ad, const Node *n) {
  const Shape *xs = &n->src[0]->shape;
  Attrs a = {0};
  bool symbolic = false;
  double k = 1;
  for (int i = 0; i < xs->rank; i++)
    if (n->a.axes & (1u << i)) {
      a.to.d[a.to.rank++] = xs->d[i];
      symbolic |= xs->d[i].sym != 0;
      k *= (double)xs->d[i].n;
    }
  if (!symbolic) return konst(ad, k, n->dtype);
  Shape s = {0};
  Node *c = graph_leaf(ad->g, OP_SIZE, NULL, n->dtype, &s, ad->fwd->loc);
  c->a.to = a.to;
  c->fwd = ad->fwd;
  c->rule = ad->rule;
  return c;
}

void grad_mean(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], bin(ad, OP_DIV, expand(ad, gy, n), reduced_count(ad, n)));
}

/* max/min: the gradient is shared equally by the elements equal to the
 * result (TF's reduce_max gradient). */
void grad_reduce_max(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  Attrs c = {.dtype = n->dtype};
  Node *eq = bin(ad, OP_EQ, x, expand(ad, n, n));
  Node *mask = node(ad, OP_CAST, &eq, 1, &c);
  Node *cnt = sum_keep(ad, mask, n->a.axes);
  ad_accum(ad, x, bin(ad, OP_DIV, bin(ad, OP_MUL, mask, expand(ad, gy, n)), cnt));
}

/* d|x|/dx = x / |x| per reduced group, and 0 where the norm is 0 (then x
 * is 0 too): the subgradient 0, where TF's tf.norm gives NaN (0/0) and
 * WGAN-GP code adds an epsilon under the root.  Written x * (g / safe)
 * with safe = where(|x| > 0, |x|, 1), so no node of this gradient, nor of
 * its own gradient (the gradient penalty differentiates it again),
 * divides by zero: where's rule sends nothing into the branch not taken. */
void grad_norm(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0];
  Node *pos = bin(ad, OP_GT, n, konst(ad, 0, n->dtype));
  Node *safe = choose(ad, pos, n, konst(ad, 1, n->dtype));
  ad_accum(ad, x, bin(ad, OP_MUL, x, expand(ad, bin(ad, OP_DIV, gy, safe), n)));
}

void grad_reshape(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], reshape(ad, gy, &n->src[0]->shape));
}

void grad_transpose(AD *ad, Node *n, Node *gy) {
  Attrs a = {0};
  for (int i = 0; i < n->shape.rank; i++) a.perm[n->a.perm[i]] = i;
  ad_accum(ad, n->src[0], node(ad, OP_TRANSPOSE, &gy, 1, &a));
}

void grad_broadcast(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], gy);          /* ad_accum sums it back down */
}

void grad_slice(AD *ad, Node *n, Node *gy) {
  Attrs a = n->a;
  a.to = n->src[0]->shape;
  ad_accum(ad, n->src[0], node(ad, OP_UNSLICE, &gy, 1, &a));
}

void grad_unslice(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], node(ad, OP_SLICE, &gy, 1, &n->a));
}

void grad_concat(AD *ad, Node *n, Node *gy) {
  int ax = n->a.axis;
  int64_t off = 0;
  for (int k = 0; k < n->nsrc; k++) {
    Node *x = n->src[k];
    Attrs a = {0};
    for (int i = 0; i < n->shape.rank; i++) {
      Dim d = n->shape.d[i];
      a.begin[i] = 0, a.step[i] = 1;
      a.end[i] = d.sym ? INT64_MAX : d.n;
    }
    int64_t len = x->shape.d[ax].n;
    a.begin[ax] = off, a.end[ax] = off + len;
    off += len;
    if (wants(ad, x)) ad_accum(ad, x, node(ad, OP_SLICE, &gy, 1, &a));
  }
}

/* Embedding rows: the table's gradient adds each row of gy into the row
 * its id picked (a scatter-add, never a one-hot product); and back. */
void grad_gather(AD *ad, Node *n, Node *gy) {
  Node *s[2] = {gy, n->src[1]};
  Attrs a = {.depth = n->src[0]->shape.d[0].n};
  ad_accum(ad, n->src[0], node(ad, OP_SCATTER_ADD, s, 2, &a));
}

void grad_scatter_add(AD *ad, Node *n, Node *gy) {
  Node *s[2] = {gy, n->src[1]};
  ad_accum(ad, n->src[0], node(ad, OP_GATHER, s, 2, NULL));
}

/* issue 24: a take's gradient adds gy back where each element came from
 * (scatter_nd, as gather's); take_add's reads it back. */
void grad_take(AD *ad, Node *n, Node *gy) {
  Node *s[2] = {gy, n->src[1]};
  Attrs a = {.to = n->src[0]->shape};
  ad_accum(ad, n->src[0], node(ad, OP_TAKE_ADD, s, 2, &a));
}

void grad_take_add(AD *ad, Node *n, Node *gy) {
  Node *s[2] = {gy, n->src[1]};
  ad_accum(ad, n->src[0], node(ad, OP_TAKE, s, 2, NULL));
}

/* d/dx_j of sum_i g_i cumsum(x)_i is the sum of g from j on:
 * sum(g) - cumsum(g) + g along the axis. */
void grad_cumsum(AD *ad, Node *n, Node *gy) {
  Attrs r = {.axes = 1u << n->a.axis, .keepdims = true}, c = {.axis = n->a.axis};
  Node *total = node(ad, OP_SUM, &gy, 1, &r);
  Node *run = node(ad, OP_CUMSUM, &gy, 1, &c);
  ad_accum(ad, n->src[0], bin(ad, OP_ADD, bin(ad, OP_SUB, total, run), gy));
}

/* y = cumprod(x): d/dx_j of sum_i g_i y_i is sum_{i>=j} g_i y_i / x_j, the
 * sum from j on of g*y (as cumsum's rule) over x_j: TF's CumprodGrad.
 * Right where no x is zero; at a zero x_j it divides by zero (inf or nan,
 * as TF), since the terms' common factor x_j cannot be cancelled without a
 * product that skips it. */
void grad_cumprod(AD *ad, Node *n, Node *gy) {
  Attrs r = {.axes = 1u << n->a.axis, .keepdims = true}, c = {.axis = n->a.axis};
  Node *gyy = bin(ad, OP_MUL, gy, n);
  Node *total = node(ad, OP_SUM, &gyy, 1, &r);
  Node *run = node(ad, OP_CUMSUM, &gyy, 1, &c);
  Node *from_j = bin(ad, OP_ADD, bin(ad, OP_SUB, total, run), gyy);
  ad_accum(ad, n->src[0], bin(ad, OP_DIV, from_j, n->src[0]));
}

/* The fused form: d/dlogits = (softmax(logits) - target) * g per row. */
/* Does every row of t along its last axis sum to one, whatever the
 * inputs: class indices, a one_hot, a softmax over that axis, or a
 * constant whose rows do (to within the rounding of [0.1, 0.2, 0.7]). */
static bool rows_sum_to_one(const Node *t) {
  if (t->dtype == DT_I32) return true;
  if (t->op == OP_CAST && dtype_is_float(t->dtype)) t = t->src[0];
  int last = t->shape.rank - 1;
  if (t->op == OP_ONE_HOT) return true;
  if (t->op == OP_SOFTMAX) return t->a.axis == last;
  if (t->op != OP_CONST || last < 0 || t->shape.d[last].sym) return false;
  int64_t count = shape_static_count(&t->shape), row = t->shape.d[last].n;
  for (int64_t r = 0; row > 0 && r < count; r += row) {
    double sum = 0;
    for (int64_t k = 0; k < row; k++) sum += t->a.values[r + k];
    if (!(fabs(sum - 1) <= 1e-6)) return false;
  }
  return count > 0;
}

/* l = -sum(t * log_softmax(x)):  dl/dx = sum(t) * softmax(x) - t, which is
 * TF's softmax(x) - t where each row of t is a distribution; dl/dt =
 * -log_softmax(x).  The general form keeps the rule the gradient of the
 * value for any weights (canon.c makes this op from any written-out
 * cross-entropy). */
void grad_softmax_ce(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0], *y = n->src[1];
  Shape col = gy->shape;
  col.d[col.rank++] = (Dim){1, 0};
  Node *g = reshape(ad, gy, &col);
  int last = x->shape.rank - 1;
  if (wants(ad, x)) {
    Attrs sa = {.axis = last};
    Node *p = node(ad, OP_SOFTMAX, &x, 1, &sa);
    Node *t = y;
    if (y->dtype == DT_I32) {
      Attrs oh = {.depth = x->shape.d[last].n};
      t = node(ad, OP_ONE_HOT, &y, 1, &oh);
      if (t->dtype != x->dtype) {
        Attrs c = {.dtype = x->dtype};
        t = node(ad, OP_CAST, &t, 1, &c);
      }
    }
    if (!rows_sum_to_one(y)) {
      Attrs ra = {.axes = 1u << last, .keepdims = true};
      p = bin(ad, OP_MUL, p, node(ad, OP_SUM, &t, 1, &ra));
    }
    ad_accum(ad, x, bin(ad, OP_MUL, bin(ad, OP_SUB, p, t), g));
  }
  if (wants(ad, y)) {
    Attrs sa = {.axis = last};
    Node *ls = node(ad, OP_LOG_SOFTMAX, &x, 1, &sa);
    ad_accum(ad, y, un(ad, OP_NEG, bin(ad, OP_MUL, ls, g)));
  }
}

/* l = max(x,0) - x*z + log(1 + exp(-|x|)):  dl/dx = sigmoid(x) - z, dl/dz = -x */
void grad_sigmoid_ce(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0], *z = n->src[1];
  if (wants(ad, x))
    ad_accum(ad, x, bin(ad, OP_MUL, gy, bin(ad, OP_SUB, un(ad, OP_SIGMOID, x), z)));
  if (wants(ad, z)) ad_accum(ad, z, un(ad, OP_NEG, bin(ad, OP_MUL, gy, x)));
}

/* Windows: each rule's product is the adjoint of the forward map, so the
 * backward graph is again windows of the same geometry. */
static Node *window(AD *ad, OpKind op, Node **src, int n, const Window *w, const Shape *to) {
  Attrs a = {.win = *w};
  if (to) a.to = *to;
  return node(ad, op, src, n, &a);
}

void grad_im2col(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], window(ad, OP_COL2IM, &gy, 1, &n->a.win, &n->src[0]->shape));
}

void grad_col2im(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], window(ad, OP_IM2COL, &gy, 1, &n->a.win, NULL));
}

void grad_maxpool(AD *ad, Node *n, Node *gy) {
  Node *s[2] = {n->src[0], gy};
  ad_accum(ad, n->src[0], window(ad, OP_MAXPOOL_GRAD, s, 2, &n->a.win, NULL));
}

/* maxpool2d_grad(x, gy) routes each window's gy to the first maximum of
 * x in it: linear in gy, constant in x between ties (no gradient to x).
 * Its adjoint reads back, for each window, the value at that position:
 * the windows of g (im2col) weighted by a one-hot of argmax over the
 * windows of x, whose first-index ties are maxpool2d_grad's.  Taps in the
 * padding are -inf there, as they never win a max.  Only a gradient of a
 * gradient through max pooling needs it, so it is built from existing ops
 * rather than a kernel of its own. */
void grad_maxpool_grad(AD *ad, Node *n, Node *gy) {
  Node *x = n->src[0], *g = n->src[1];
  if (!wants(ad, g)) return;
  const Window *w = &n->a.win;
  const Shape *xs = &x->shape;
  int64_t taps = w->k[0] * w->k[1];
  Node *px = window(ad, OP_IM2COL, &x, 1, w, NULL);
  Shape s5 = {5, {px->shape.d[0], px->shape.d[1], px->shape.d[2], {taps, 0}, xs->d[3]}};
  px = reshape(ad, px, &s5);
  if (w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3]) {
    Attrs all = {.to = *xs};
    Node *one = konst(ad, 1, x->dtype);
    Node *ones = node(ad, OP_BROADCAST, &one, 1, &all);
    Node *inside = reshape(ad, window(ad, OP_IM2COL, &ones, 1, w, NULL), &s5);
    Node *in = bin(ad, OP_GT, inside, konst(ad, 0.5, x->dtype));
    px = choose(ad, in, px, konst(ad, -INFINITY, x->dtype));
  }
  Attrs am = {.axis = 3};
  Node *best = node(ad, OP_ARGMAX, &px, 1, &am);               /* [b, oh, ow, c] */
  Attrs oh = {.depth = taps};
  Node *pick = node(ad, OP_ONE_HOT, &best, 1, &oh);            /* [b, oh, ow, c, taps] */
  if (pick->dtype != x->dtype) {
    Attrs c = {.dtype = x->dtype};
    pick = node(ad, OP_CAST, &pick, 1, &c);
  }
  Attrs tr = {.perm = {0, 1, 2, 4, 3}};
  pick = node(ad, OP_TRANSPOSE, &pick, 1, &tr);
  Node *pg = reshape(ad, window(ad, OP_IM2COL, &gy, 1, w, NULL), &s5);
  Attrs sa = {.axes = 1u << 3};
  Node *prod = bin(ad, OP_MUL, pick, pg);
  ad_accum(ad, g, node(ad, OP_SUM, &prod, 1, &sa));
}

void grad_avgpool(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], window(ad, OP_AVGPOOL_GRAD, &gy, 1, &n->a.win, &n->src[0]->shape));
}

void grad_avgpool_grad(AD *ad, Node *n, Node *gy) {
  ad_accum(ad, n->src[0], window(ad, OP_AVGPOOL, &gy, 1, &n->a.win, NULL));
}

void grad_train_select(AD *ad, Node *n, Node *gy) { ad_accum(ad, n->src[0], gy); }

void grad_loop(AD *ad, Node *n, Node *gy) {
  (void)ad, (void)n, (void)gy;
  GRADC_ASSERT(!"a loop is differentiated whole, at its loop_end");
}

/* ------------------------------------------------------------ loops */

static bool run_rule(AD *ad, Node *x, Node *gy) {
  const OpInfo *info = &op_info[x->op];
  if (info->grad == grad_none) {
    graph_error(ad->g, x->loc, "cannot differentiate through '%s': it has no "
                "gradient rule", info->name);
    return false;
  }
  ad->fwd = x;
  ad->rule = info->name;
  info->grad(ad, x, gy);
  return true;
}

/* v at every iteration, stacked along a new first axis [len, ...]: a
 * value of either loop (saved by its loop_end) or a sequence sliced along
 * its first axis (the sequence itself). */
static Node *stack_of(AD *ad, Node *v, Node *eb) {
  if (v->op == OP_SCAN_SLICE && v->a.axis == 0 && v->a.loop == ad->loop) return v->src[0];
  Node *e = v->a.loop == ad->loop ? ad->end : eb;
  return loop_node(ad, OP_SCAN_STACK, &e, 1, 0, graph_loop_add(ad->g, e, v));
}

/* Each row of [len, d0, ...] as [len * d0, ...]. */
static Node *rows(AD *ad, Node *s) {
  Shape r = {.rank = s->shape.rank - 1};
  r.d[0] = (Dim){s->shape.d[0].n * s->shape.d[1].n, s->shape.d[0].sym | s->shape.d[1].sym};
  for (int i = 2; i < s->shape.rank; i++) r.d[i - 1] = s->shape.d[i];
  return reshape(ad, s, &r);
}

/* The terms sum_term deferred, after the gradient loop eb. */
static void sum_terms(AD *ad, Node *eb) {
  for (int k = 0; k < ad->nterms; k++) {
    struct Term *t = &ad->terms[k];
    ad->fwd = ad->end, ad->rule = "scan";
    Node *sa = stack_of(ad, t->a, eb), *d;
    if (t->b) {
      d = matmul(ad, rows(ad, sa), rows(ad, stack_of(ad, t->b, eb)), true, false);
    } else {
      d = reshape(ad, sum_keep(ad, sa, t->axes << 1 | 1u), &t->x->shape);
    }
    ad_accum(ad, t->x, d);
  }
}

/* The gradient of loop l (ending in e) is a loop over the same indices in
 * reverse (backpropagation through time).  Its carries: for each forward
 * carry, d(loss)/d(carry) (starting from the last value's gradient, ending
 * as the initial value's), and for each outside value the body reads, its
 * gradient summed over the iterations.  Its slices: the gradients of the
 * stacked values at the index.  Each iteration seeds the body's next
 * values and stacked values and runs the body's rules backwards; what the
 * rules read of the forward body comes from stacks the forward loop saves
 * (a slice of the sequence itself for its slices), so the body is not run
 * twice. */
static bool ad_loop(AD *ad, Node *e) {
  Graph *g = ad->g;
  int l = e->a.loop, nc = e->a.slot, begin = graph_loop_begin(g, l);
  int ncons = 0;
  Node **cons = arena_alloc(g->arena, sizeof(Node *) * (size_t)(ad->nfwd - e->id));
  for (int i = e->id + 1; i < ad->nfwd; i++) {
    Node *x = g->nodes[i];
    if ((x->op == OP_SCAN_STACK || x->op == OP_SCAN_LAST) && x->src[0] == e && ad->grad[i])
      cons[ncons++] = x;
  }
  if (!ncons) return true;
  const Scan fl = g->scans[l - 1];
  int into = graph_new_scan(g, fl.len, !fl.reverse, fl.loc);
  g->scans[into - 1].fwd = l;
  int first_new = g->nnodes, outer_loop = g->cur_loop;
  g->cur_loop = into;
  ad->loop = l, ad->into = into, ad->nouter = 0;
  ad->acc = arena_alloc(g->arena, sizeof(Node *) * (size_t)ad->nfwd);
  ad->sum = arena_alloc(g->arena, sizeof(Node *) * (size_t)ad->nfwd);
  ad->outer = arena_alloc(g->arena, sizeof(Node *) * (size_t)ad->nfwd);
  ad->terms = arena_alloc(g->arena, sizeof(struct Term) * (size_t)(e->id - begin + 1) * 4);
  ad->nterms = 0;
  ad->end = e;
  ad->fwd = e;
  ad->rule = "scan";

  /* d(loss)/d(carry) carried backwards, from the last values' gradients */
  Node **gcarry = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nc + 1));
  Node **gnext = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nc + 1));
  for (int j = 0; j < nc; j++) {
    Node *c = graph_loop_carry(g, l, j);
    if (!c || !ad->wants[c->id]) continue;
    Node *init = NULL;
    for (int k = 0; k < ncons; k++)
      if (cons[k]->op == OP_SCAN_LAST && cons[k]->a.slot == j) init = ad->grad[cons[k]->id];
    if (!init) init = zeros_like(ad, c);
    gcarry[j] = loop_node(ad, OP_CARRY, &init, 1, 0, 0);
  }
  for (int j = 0; j < nc; j++)
    if (gcarry[j]) ad_accum(ad, e->src[j], gcarry[j]);
  for (int k = 0; k < ncons; k++)
    if (cons[k]->op == OP_SCAN_STACK) {
      ad->fwd = e, ad->rule = "scan";
      Node *gs = loop_node(ad, OP_SCAN_SLICE, &ad->grad[cons[k]->id], 1, cons[k]->a.axis, 0);
      ad_accum(ad, e->src[cons[k]->a.slot], gs);
    }

  /* the body backwards */
  Node **dslice = arena_alloc(g->arena, sizeof(Node *) * (size_t)(e->id - begin + 1));
  Node **slices = arena_alloc(g->arena, sizeof(Node *) * (size_t)(e->id - begin + 1));
  int nslices = 0;
  for (int i = e->id - 1; i >= begin; i--) {
    Node *x = g->nodes[i];
    Node *gy = ad->grad[i];
    if (!gy || !ad->wants[i]) continue;
    if (x->op == OP_CARRY) gnext[x->a.slot] = gy;
    else if (x->op == OP_SCAN_SLICE) slices[nslices] = x, dslice[nslices++] = gy;
    else if (!run_rule(ad, x, gy)) return false;
  }

  /* its loop_end: next gradient carries, sums, then the stacked gradients
   * of the sequences */
  ad->fwd = e, ad->rule = "scan";
  int nsrc = 0, cap = nc + ad->nouter + nslices;
  Node **src = arena_alloc(g->arena, sizeof(Node *) * (size_t)(cap ? cap : 1));
  for (int j = 0; j < nc; j++)
    if (gcarry[j]) {
      gcarry[j]->a.slot = nsrc;
      src[nsrc++] = gnext[j] ? gnext[j] : zeros_like(ad, gcarry[j]);
    }
  for (int k = 0; k < ad->nouter; k++) {
    Node *x = ad->outer[k];
    ad->acc[x->id]->a.slot = nsrc;
    src[nsrc++] = ad->sum[x->id];
  }
  int ncarry = nsrc;
  for (int k = 0; k < nslices; k++) src[nsrc++] = dslice[k];
  Attrs ea = {.slot = ncarry};
  Node *eb = node(ad, OP_LOOP_END, src, nsrc, &ea);
  g->cur_loop = outer_loop;
  ad->into = 0;
  sum_terms(ad, eb);

  /* what flows out of it */
  for (int j = 0; j < nc; j++)
    if (gcarry[j])
      ad_accum(ad, graph_loop_carry(g, l, j)->src[0],
               loop_node(ad, OP_SCAN_LAST, &eb, 1, 0, gcarry[j]->a.slot));
  for (int k = 0; k < ad->nouter; k++) {
    Node *x = ad->outer[k];
    ad_accum(ad, x, loop_node(ad, OP_SCAN_LAST, &eb, 1, 0, ad->acc[x->id]->a.slot));
  }
  for (int k = 0; k < nslices; k++)
    ad_accum(ad, slices[k]->src[0],
             loop_node(ad, OP_SCAN_STACK, &eb, 1, slices[k]->a.axis, ncarry + k));

  /* the forward values the gradient body reads: saved by the forward loop
   * (stacked along a new first axis), read back at the same index */
  Node **saved = arena_alloc(g->arena, sizeof(Node *) * (size_t)ad->nfwd);
  int last_new = g->nnodes;
  for (int i = first_new; i < last_new; i++) {
    Node *y = g->nodes[i];
    if (y->a.loop != into) continue;
    for (int k = 0; k < y->nsrc; k++) {
      Node *v = y->src[k];
      if (v->a.loop != l) continue;
      if (!saved[v->id]) {
        g->cur_loop = into;
        ad->fwd = v, ad->rule = "scan";
        if (v->op == OP_SCAN_SLICE) {
          saved[v->id] = loop_node(ad, OP_SCAN_SLICE, v->src, 1, v->a.axis, 0);
        } else {
          g->cur_loop = 0;
          Node *st = loop_node(ad, OP_SCAN_STACK, &e, 1, 0, graph_loop_add(g, e, v));
          g->cur_loop = into;
          saved[v->id] = loop_node(ad, OP_SCAN_SLICE, &st, 1, 0, 0);
        }
        g->cur_loop = outer_loop;
      }
      y->src[k] = saved[v->id];
    }
  }
  return true;
}

/* ------------------------------------------------------------ the stage */

bool gradients(Graph *g, Node *loss, Node *const *targets, int n, Node **out) {
  /* loops' bodies in one piece each (ad_loop), ids in order */
  if (g->nscans) graph_sort(g);
  AD adv = {.g = g, .nfwd = g->nnodes};
  AD *ad = &adv;
  ad->grad = arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nnodes ? g->nnodes : 1));
  ad->wants = arena_alloc(g->arena, (size_t)(g->nnodes ? g->nnodes : 1));
  for (int k = 0; k < n; k++) ad->wants[targets[k]->id] = dtype_is_float(targets[k]->dtype);
  /* A carry depends on its next value, which comes later: the body is
   * walked again until no carry changes. */
  for (bool again = true; again;) {
    again = false;
    for (int i = 0; i < g->nnodes; i++) {
      Node *x = g->nodes[i];
      bool w = ad->wants[i];
      if (x->op == OP_SCAN_STACK || x->op == OP_SCAN_LAST) {
        w = ad->wants[x->src[0]->src[x->a.slot]->id];
      } else {
        for (int k = 0; k < x->nsrc && !w; k++) w = ad->wants[x->src[k]->id];
      }
      if (x->op == OP_LOOP_END) {
        ad->wants[i] = w;
        for (int j = 0; j < x->a.slot; j++) {
          Node *c = graph_loop_carry(g, x->a.loop, j);
          if (c && !ad->wants[c->id] && ad->wants[x->src[j]->id] && dtype_is_float(c->dtype))
            ad->wants[c->id] = again = true;
        }
      } else if (w && dtype_is_float(x->dtype) && !(op_info[x->op].flags & F_NO_GRAD)) {
        ad->wants[i] = true;
      }
    }
  }
  ad->fwd = loss;
  ad->rule = "seed";
  ad->grad[loss->id] = konst(ad, 1, loss->dtype);
  for (int i = loss->id; i >= 0; i--) {
    Node *x = g->nodes[i];
    if (x->op == OP_LOOP_END) {
      if (!ad_loop(ad, x)) return false;
      i = graph_loop_begin(g, x->a.loop);
      continue;
    }
    Node *gy = ad->grad[i];
    if (!gy || !ad->wants[i] || op_info[x->op].kind == K_LEAF) continue;
    if (x->op == OP_SCAN_STACK || x->op == OP_SCAN_LAST) continue;   /* at the loop_end */
    /* A target's own operands may want nothing (a grad(y, x) whose x is
     * computed by an op without a rule): its rule would add nothing. */
    bool reaches = false;
    for (int k = 0; k < x->nsrc && !reaches; k++) reaches = wants(ad, x->src[k]);
    if (!reaches) continue;
    if (!run_rule(ad, x, gy)) return false;
  }
  for (int k = 0; k < n; k++) out[k] = ad->grad[targets[k]->id];
  if (g->nscans) graph_sort(g);
  return true;
}

static const char *loss_name(const TrainStep *st) { return st->loss->name ? st->loss->name : "loss"; }

bool autodiff(Graph *g) {
  if (!g->nsteps) {
    /* Without a train step nothing applies the state updates (batch
     * norm's moving statistics): drop them, or the list would keep
     * values that dce removes. */
    g->nupdates = 0;
    return true;
  }
  int nfwd = g->nnodes, nparams = 0;
  for (int i = 0; i < nfwd; i++) nparams += g->nodes[i]->op == OP_PARAM;
  Node **params = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nparams ? nparams : 1));
  nparams = 0;
  for (int i = 0; i < nfwd; i++)
    if (g->nodes[i]->op == OP_PARAM) params[nparams++] = g->nodes[i];
  bool *trained = arena_alloc(g->arena, (size_t)nfwd + 1);   /* by node id */
  Node **sel = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nparams ? nparams : 1));
  Node **grad = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nparams ? nparams : 1));
  for (int s = 0; s < g->nsteps; s++) {
    TrainStep *st = &g->steps[s];
    int n = st->npatterns ? st->nparams : nparams;
    memcpy(sel, st->npatterns ? st->params : params, sizeof(Node *) * (size_t)n);
    if (!gradients(g, st->loss, sel, n, grad)) return false;
    st->grads = arena_alloc(g->arena, sizeof(Grad) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
      if (grad[i]) {
        st->grads[st->ngrads++] = (Grad){sel[i], grad[i]};
        grad[i]->flags |= N_GRAD;
        trained[sel[i]->id] = true;
      } else if (st->npatterns) {
        diag_add(g->arena, g->diags, DIAG_WARNING, sel[i]->loc,
                 "parameter '%s' does not affect the loss '%s' of train step '%s'; it will "
                 "not be trained", sel[i]->name, loss_name(st), st->name);
      }
    }
    /* Why refused: such a step changes nothing, a constant loss has no
     * buffer of its own to report, and Keras refuses it too ("No gradients
     * provided for any variable"). */
    if (!st->ngrads) {
      const char *why = st->loss->op == OP_CONST ? "it is a constant"
                        : st->npatterns ? "none of the parameters its 'of' list names affects it"
                        : !n ? "the model has no parameter"
                        : "no parameter affects it through operations with a gradient";
      return graph_error(g, st->loc, "the loss '%s' of train step '%s' does not depend on any "
                         "trainable parameter (%s): training would change nothing; make it "
                         "depend on a parameter, or drop the train statement", loss_name(st),
                         st->name, why);
    }
  }
  for (int k = 0; k < nparams; k++) {
    Node *p = params[k];
    if (trained[p->id] || !(p->flags & N_USED)) continue;
    bool named = false;
    for (int s = 0; s < g->nsteps && !named; s++) named = g->steps[s].npatterns > 0;
    if (g->nsteps == 1 && !named)
      diag_add(g->arena, g->diags, DIAG_WARNING, p->loc,
               "parameter '%s' does not affect the loss '%s'; it will not be trained", p->name,
               loss_name(&g->steps[0]));
    else if (!named)
      diag_add(g->arena, g->diags, DIAG_WARNING, p->loc,
               "parameter '%s' does not affect the loss of any train step; it will not be "
               "trained", p->name);
  }
  g->stage = "grad";
  return true;
}
