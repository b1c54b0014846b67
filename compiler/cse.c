/*
 * cse.c - common subexpression elimination: a node that computes what an
 * earlier node computes (same op, operands, attributes; for constants, the
 * same values) is replaced by the earlier one.  Autodiff writes many such
 * repeats (softmax of the same logits, the same constants per parameter).
 *
 * Never merged: inputs, parameters and optimizer state (distinct storage)
 * and assignments (effects).  A hash table over (op, operands) keeps it
 * linear in the graph's size.
 */
#include <stdint.h>

#include "compiler.h"

static uint64_t key(const Node *n) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)n->op;
  for (int k = 0; k < n->nsrc; k++) h = (h ^ (uint64_t)n->src[k]->id) * 1099511628211ull;
  h = (h ^ (uint64_t)n->dtype) * 1099511628211ull;
  if (n->op == OP_CONST && shape_static_count(&n->shape) > 0) {
    union { double d; uint64_t u; } v = {.d = n->a.values[0]};
    h = (h ^ v.u) * 1099511628211ull;
  }
  return h;
}

int cse(Graph *g) {
  int n = g->nnodes, size = 1, merged = 0;
  while (size < 2 * n) size *= 2;
  Node **table = arena_alloc(g->arena, sizeof(Node *) * (size_t)size);
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    if (x->op == OP_INPUT || x->op == OP_PARAM || x->op == OP_STATE || x->op == OP_ASSIGN) continue;
    for (uint64_t at = key(x) & (uint64_t)(size - 1);; at = (at + 1) & (uint64_t)(size - 1)) {
      Node *y = table[at];
      if (!y) {
        table[at] = x;
        break;
      }
      if (graph_same_node(x, y)) {
        graph_replace(g, x, y);
        merged++;
        break;
      }
    }
  }
  return merged;
}
