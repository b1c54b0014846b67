/*
 * gradexpr.c - the model language's grad(y, x), written out.
 *
 * grad(y, x) is the gradient of the sum of y's elements with respect to x
 * (what TF's tape.gradient(y, x) returns; WGAN-GP's gradient penalty takes
 * it of the critic at the interpolated images).  The parser makes a GRAD
 * node, a placeholder with x's shape; this stage, run just before autodiff
 * (compile.c), replaces each one by the backward nodes of gradients()
 * (autodiff.c), which then are ordinary nodes of the graph: the train
 * steps' gradients run through them like through any other (every op a
 * gradient rule emits has a rule of its own), so a loss that holds a grad
 * is differentiated twice, and one that holds grad(grad(...)) three times.
 * No GRAD node is left after it (F_LOWERED: no evaluator or code generator
 * sees one); g->ngrad_exprs records how many there were, for gradc check.
 *
 * Invariants: ids stay a topological order (each lowering appends nodes
 * that the grad node's readers then read, so the graph is sorted again);
 * a grad nested in another's y is lowered first, being earlier.
 */
#include "compiler.h"

/* A value's name for a message: its own, or what computes it. */
static const char *value_name(const Node *n) { return n->name ? n->name : op_info[n->op].name; }

/* Each grad node in id order, looked for again from the start after each
 * (the sort renumbers); the replaced nodes, dead, are dropped at the end
 * (a dce would drop the state updates too, which nothing reads before the
 * update stage). */
bool lower_grads(Graph *g) {
  int lowered = 0;
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->op != OP_GRAD || n->moved) continue;
    graph_resolve(n);
    Node *y = n->src[0], *x = n->src[1], *out = NULL;
    if (y->shape.rank) {
      Attrs all = {.axes = (1u << y->shape.rank) - 1};
      y = graph_node(g, OP_SUM, &y, 1, &all, n->loc);
      GRADC_ASSERT(y);
    }
    if (!gradients(g, y, &x, 1, &out)) return false;
    if (!out)
      return graph_error(g, n->loc, "grad: '%s' does not depend on '%s' through operations "
                         "with a gradient; its gradient would be None in TensorFlow",
                         value_name(n->src[0]), value_name(x));
    graph_replace(g, n, out);
    graph_sort(g);
    lowered++;
    i = -1;                /* ids changed: look again from the start */
  }
  if (!lowered) return true;
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i]->moved) g->nodes[k] = g->nodes[i], g->nodes[k]->id = k, k++;
  g->nnodes = k;
  g->ngrad_exprs += lowered;
  return true;
}

