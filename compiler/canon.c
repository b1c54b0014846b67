/*
 * canon.c - rewrites of the forward graph that must happen before autodiff,
 * because they decide which gradient rule applies, not just how fast it
 * runs.  A user who writes the textbook cross-entropy
 *
 *     loss = mean(-sum(t * log(softmax(z)), axis=-1))
 *
 * gets the fused, numerically stable softmax_cross_entropy(z, t): its
 * gradient is softmax(z) - t, where the written form would divide by a
 * softmax that underflows to 0 (inf * 0 = NaN) for a confident wrong class.
 *
 *   log(softmax(z, a))                      -> log_softmax(z, a)
 *   sum(t * log_softmax(z), last axis)      -> -softmax_cross_entropy(z, t)
 *     with t = one_hot(y) (or a cast of it)  -> -softmax_cross_entropy(z, y)
 *   -(-x), -mean(-x), -sum(-x)              -> x, mean(x), sum(x)
 *
 * All are exact in real arithmetic and at least as accurate in floats, and
 * the cross-entropy's rule is the gradient of -sum(t * log_softmax(z))
 * for any weights t, not only for rows that sum to one (autodiff.c).  The
 * graph is renumbered afterwards (graph_dce), since autodiff walks it in
 * array order.  Entry point: canon(g), called by compile.c before autodiff.
 */
#include "compiler.h"

static Node *mk(Graph *g, OpKind op, Node **src, int nsrc, const Attrs *a, Loc loc) {
  Node *n = graph_node(g, op, src, nsrc, a, loc);
  GRADC_ASSERT(n);        /* every rewrite below keeps shapes valid */
  return n;
}

/* The class indices y when t is one_hot(y) (possibly cast to a float type)
 * with depth classes, else NULL. */
static Node *labels_of(Node *t, int64_t classes) {
  if (t->op == OP_CAST) t = t->src[0];
  if (t->op != OP_ONE_HOT || t->a.depth != classes) return NULL;
  return t->src[0]->dtype == DT_I32 ? t->src[0] : NULL;
}

/* sum(t * log_softmax(z), axis=last) as -softmax_cross_entropy, or NULL. */
static Node *cross_entropy(Graph *g, Node *x) {
  if (x->op != OP_SUM || x->a.keepdims) return NULL;
  Node *m = x->src[0];
  if (m->op != OP_MUL || m->shape.rank == 0) return NULL;
  int last = m->shape.rank - 1;
  if (x->a.axes != 1u << last) return NULL;
  for (int k = 0; k < 2; k++) {
    Node *ls = m->src[k], *t = m->src[1 - k];
    if (ls->op != OP_LOG_SOFTMAX || ls->a.axis != last) continue;
    Node *z = ls->src[0];
    /* No broadcasting hides in the product: one target per logit. */
    if (!shape_eq(&t->shape, &z->shape) || !shape_eq(&z->shape, &m->shape)) continue;
    if (t->dtype != z->dtype || x->dtype != z->dtype) continue;
    Dim classes = z->shape.d[last];
    Node *y = classes.sym ? NULL : labels_of(t, classes.n);
    Node *src[2] = {z, y ? y : t};
    Node *ce = mk(g, OP_SOFTMAX_CE, src, 2, NULL, x->loc);
    return mk(g, OP_NEG, &ce, 1, NULL, x->loc);
  }
  return NULL;
}

int canon(Graph *g) {
  int changed = 0, n = g->nnodes;      /* nodes appended here are final */
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    graph_resolve(x);
    Node *r = NULL;
    if (x->op == OP_LOG && x->src[0]->op == OP_SOFTMAX) {
      Attrs a = {.axis = x->src[0]->a.axis};
      r = mk(g, OP_LOG_SOFTMAX, &x->src[0]->src[0], 1, &a, x->loc);
    } else if ((op_info[x->op].flags & F_INVOLUTION) && x->src[0]->op == x->op) {
      r = x->src[0]->src[0];
    } else if (x->op == OP_NEG && (x->src[0]->op == OP_MEAN || x->src[0]->op == OP_SUM) &&
               x->src[0]->src[0]->op == OP_NEG) {
      /* -mean(-v) = mean(v): the sign cancels through a linear reduction. */
      Node *red = x->src[0];
      r = mk(g, red->op, &red->src[0]->src[0], 1, &red->a, x->loc);
    } else {
      r = cross_entropy(g, x);
    }
    if (!r) continue;
    graph_replace(g, x, r);
    changed++;
  }
  if (changed) graph_dce(g);
  return changed;
}
