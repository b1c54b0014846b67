/*
 * fold.c - constant folding: a node whose operands are all constants is
 * computed at compile time and becomes a constant, and so, in one forward
 * sweep, does every chain of them (the scalar arithmetic autodiff writes for
 * optimizer coefficients, sizes that do not involve the batch).
 *
 * Left alone: anything reading a symbolic dimension (its size is a run-time
 * value), results larger than a literal may be, and the graph's roots
 * (outputs, metrics, the loss, gradients), which need storage of their own.
 */
#include <stdlib.h>

#include "compiler.h"

enum { FOLD_MAX = 1 << 20 };

static bool static_shape(const Shape *s) {
  for (int i = 0; i < s->rank; i++)
    if (s->d[i].sym) return false;
  return true;
}

int fold(Graph *g) {
  int folded = 0, n = g->nnodes;      /* nodes appended here are constants */
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    if (x->moved) continue;     /* dead: replaced by an earlier pass */
    graph_resolve(x);
    const OpInfo *info = &op_info[x->op];
    if (info->kind == K_LEAF || info->kind == K_UPDATE) {
      if (x->op != OP_SIZE || !static_shape(&x->a.to)) continue;
    } else {
      bool all_const = x->nsrc > 0;
      for (int k = 0; k < x->nsrc; k++) all_const &= x->src[k]->op == OP_CONST;
      if (!all_const) continue;
    }
    if (x->flags & (N_OUTPUT | N_METRIC | N_LOSS | N_GRAD) || !static_shape(&x->shape)) continue;
    /* mode- and step-dependent values are never constants */
    if (info->flags & (F_MODE | F_RANDOM | F_LOOP)) continue;
    int64_t c = shape_static_count(&x->shape);
    if (c < 0 || c > FOLD_MAX) continue;
    double *v = arena_alloc(g->arena, sizeof(double) * (size_t)(c ? c : 1));
    if (x->op == OP_SIZE) v[0] = (double)shape_static_count(&x->a.to);
    else if (!eval_constant(g, x, v)) continue;
    Node *k = graph_leaf(g, OP_CONST, NULL, x->dtype, &x->shape, x->loc);
    k->a.values = v;
    k->fwd = x->fwd;
    k->rule = x->rule;
    graph_replace(g, x, k);
    folded++;
  }
  graph_resolve_all(g);
  return folded;
}
