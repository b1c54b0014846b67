/*
 * cse.c - common subexpression elimination: a node that computes what an
 * earlier node computes (same op, operands, attributes; for constants, the
 * same values) is replaced by the earlier one.  Autodiff writes many such
 * repeats (softmax of the same logits, the same constants per parameter).
 *
 * Never merged: inputs, parameters and optimizer state (distinct storage,
 * F_NAMED in the op table), assignments (effects, F_EFFECT) and a loop's
 * structure (F_LOOP: two carries of one initial value differ).  Which
 * attributes must agree, and how, is GRADC_ATTRS (graph_same_node).  A hash
 * table over (op, operands) keeps it linear in the graph's size.
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

/* Operands before readers, whatever the array order: fold appends its
 * constants after the nodes that read them, and a node must be filed under
 * its operands' final representatives. */
static int topo(Graph *g, Node **order) {
  int n = g->nnodes, count = 0;
  bool *seen = arena_alloc(g->arena, (size_t)(n ? n : 1));
  Node **stack = arena_alloc(g->arena, sizeof(Node *) * (size_t)(n ? n : 1));
  int *at = arena_alloc(g->arena, sizeof(int) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    if (seen[i]) continue;
    int top = 0;
    stack[top] = g->nodes[i], at[top++] = 0, seen[i] = true;
    while (top) {
      Node *x = stack[top - 1];
      if (at[top - 1] < x->nsrc) {
        Node *s = x->src[at[top - 1]++];
        if (!seen[s->id]) stack[top] = s, at[top++] = 0, seen[s->id] = true;
      } else {
        order[count++] = x;
        top--;
      }
    }
  }
  return count;
}

int cse(Graph *g) {
  int n = g->nnodes, size = 1, merged = 0;
  while (size < 2 * n) size *= 2;
  Node **table = arena_alloc(g->arena, sizeof(Node *) * (size_t)size);
  Node **order = arena_alloc(g->arena, sizeof(Node *) * (size_t)(n ? n : 1));
  n = topo(g, order);
  for (int i = 0; i < n; i++) {
    Node *x = order[i];
    if (x->moved) continue;     /* dead: replaced by an earlier pass */
    graph_resolve(x);
    if (op_info[x->op].flags & (F_NAMED | F_EFFECT | F_LOOP)) continue;
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
  graph_resolve_all(g);
  return merged;
}
