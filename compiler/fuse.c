/*
 * fuse.c - which values get a loop and a buffer of their own.
 *
 * Input: a graph after autodiff.  Output, recorded on the nodes:
 *  - n->inlined_into: an elementwise node used once, by an elementwise node
 *    or a reduction that walks exactly n's elements, is computed inside that
 *    consumer's loop and never stored (chains and trees of elementwise ops
 *    become one loop; sum(g * y) reads g and y once); a broadcast is never
 *    stored at all, however many loops read it;
 *  - n->storage: where n's value lives - n itself, the operand a reshape
 *    aliases, or, for the new value of a parameter or optimizer slot, the
 *    parameter's own storage when nothing after it reads the old value
 *    (updates in place, so an RMSprop step is two loops over each weight).
 *
 * With enable false every value gets its own buffer (for debugging: the
 * check-numerics mode needs every intermediate value in memory).
 *
 * Invariants: roots (outputs, metrics, the loss) are never inlined; an
 * inlined node has the shape of the loop that computes it, so its operands'
 * offsets come from that loop's indices; in-place updates are elementwise, so
 * the old value is read at the same index just before it is overwritten.
 */
#include <string.h>

#include "compiler.h"

static bool elementwise(const Node *n) {
  OpClass k = op_info[n->op].kind;
  return k == K_BINARY || k == K_UNARY || k == K_TERNARY || n->op == OP_BROADCAST ||
         n->op == OP_SIGMOID_CE;
}

static bool reduction(const Node *n) {
  return n->op == OP_SUM || n->op == OP_MEAN || n->op == OP_MAX || n->op == OP_MIN;
}

/* Can the value of n be computed inside the loop of consumer c? */
static bool fusible(const Node *n, const Node *c) {
  if (!elementwise(n)) return false;
  if (elementwise(c)) return shape_eq(&n->shape, &c->shape);
  if (reduction(c)) return c->src[0] == n;           /* walks n's elements */
  return false;
}

int fuse(Graph *g, bool enable) {
  int *uses = arena_alloc(g->arena, sizeof(int) * (size_t)g->nnodes);
  Node **user = arena_alloc(g->arena, sizeof(Node *) * (size_t)g->nnodes);
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    n->inlined_into = NULL;
    n->storage = n;
    for (int k = 0; k < n->nsrc; k++) {
      uses[n->src[k]->id]++;
      user[n->src[k]->id] = n;
    }
  }
  for (int i = 0; enable && i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->flags & (N_OUTPUT | N_METRIC | N_LOSS)) continue;
    if (uses[i] == 1 && fusible(n, user[i])) n->inlined_into = user[i];
  }
  /* A broadcast read by several loops is never stored either: each loop
   * reads its operand through zero strides.  It is attributed to the
   * consumer that runs last, so its operand stays live until then. */
  for (int i = 0; enable && i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->op != OP_BROADCAST || uses[i] < 2 || (n->flags & (N_OUTPUT | N_METRIC | N_LOSS))) continue;
    Node *last = NULL;
    int last_at = -1;
    bool all = true;
    for (int k = i + 1; k < g->nnodes && all; k++) {
      Node *c = g->nodes[k];
      for (int s = 0; s < c->nsrc; s++) {
        if (c->src[s] != n) continue;
        if (!fusible(n, c)) all = false;
        const Node *kern = c;
        while (kern->inlined_into) kern = kern->inlined_into;
        if (kern->id > last_at) last_at = kern->id, last = c;
      }
    }
    if (all && last) n->inlined_into = last;
  }
  /* Storage, in order, so a reshape finds its operand's decision. */
  for (int i = 0; i < g->nnodes; i++) {
    Node *n = g->nodes[i];
    if (n->inlined_into || n->op == OP_CONST || n->op == OP_SIZE || n->op == OP_ASSIGN) n->storage = NULL;
    else if (n->op == OP_RESHAPE) n->storage = n->src[0]->storage;
  }
  for (int i = 0; enable && i < g->nnodes; i++) {
    Node *a = g->nodes[i];
    if (a->op != OP_ASSIGN) continue;
    Node *dst = a->src[0], *v = a->src[1];
    if (!elementwise(v) || v->inlined_into || v->storage != v || (v->flags & (N_OUTPUT | N_METRIC | N_LOSS)))
      continue;
    /* An inlined node runs where its outermost consumer runs. */
    bool read_later = false;
    for (int k = 0; k < g->nnodes && !read_later; k++) {
      const Node *r = g->nodes[k], *at = r;
      while (at->inlined_into) at = at->inlined_into;
      if (r == a || at->id <= v->id) continue;
      for (int s = 0; s < r->nsrc; s++) read_later |= r->src[s]->storage == dst;
    }
    if (!read_later) v->storage = dst;
  }
  int fused = 0;
  for (int i = 0; i < g->nnodes; i++) fused += g->nodes[i]->inlined_into != NULL;
  return fused;
}
