/*
 * hoist.c - the products of a sequence out of its loop.
 *
 * A loop body that multiplies its slice of a sequence by a weight from
 * outside (x_t @ W, the input half of every recurrent cell) would run one
 * small product per iteration.  hoist() computes all iterations' products
 * as one large product before the loop, xs @ W with the sequence's leading
 * axes flattened into rows, and the body takes its slice of the result:
 *
 *     scan_slice(xs, axis) @ W   ->   scan_slice(xs @ W, axis)
 *
 * Only the recurrent product (h @ U) stays inside.  It runs before
 * autodiff, so the gradient is hoisted too: the weight's gradient is one
 * product over all iterations and the sequence's one more, outside the
 * reverse loop.  Each element is the same dot product as before.
 */
#include "compiler.h"

static Node *mk(Graph *g, OpKind op, Node *x, Node *y, const Attrs *a, Loc loc) {
  Node *s[2] = {x, y};
  Node *r = graph_node(g, op, s, y ? 2 : 1, a, loc);
  GRADC_ASSERT(r);      /* shapes follow from the product being replaced */
  return r;
}

/* xs viewed as rows of its last axis: [d0 * .. * dk-1, dk], or false when
 * the rows' count is not a Dim (two symbolic axes). */
static bool rows_of(const Shape *s, Shape *out) {
  Dim rows = {1, 0};
  for (int i = 0; i + 1 < s->rank; i++) {
    if (s->d[i].sym && rows.sym) return false;
    rows.n *= s->d[i].n;
    if (s->d[i].sym) rows.sym = s->d[i].sym;
  }
  *out = (Shape){.rank = 2, .d = {rows, s->d[s->rank - 1]}};
  return true;
}

int hoist(Graph *g) {
  int changed = 0, n = g->nnodes;
  for (int i = 0; i < n; i++) {
    Node *m = g->nodes[i];
    graph_resolve(m);
    if (m->op != OP_MATMUL || !m->a.loop || m->a.ta) continue;
    Node *s = m->src[0], *w = m->src[1];
    if (s->op != OP_SCAN_SLICE || w->a.loop || w->shape.rank != 2) continue;
    Node *xs = s->src[0];
    Shape flat, out;
    if (s->a.axis >= xs->shape.rank - 1 || !rows_of(&xs->shape, &flat)) continue;
    Attrs fa = {.to = flat}, pa = {.tb = m->a.tb};
    Node *p = mk(g, OP_MATMUL, mk(g, OP_RESHAPE, xs, NULL, &fa, m->loc), w, &pa, m->loc);
    out = xs->shape;
    out.d[out.rank - 1] = m->shape.d[m->shape.rank - 1];
    Attrs oa = {.to = out};
    p = mk(g, OP_RESHAPE, p, NULL, &oa, m->loc);
    int outer = g->cur_loop;
    g->cur_loop = m->a.loop;
    Attrs sa = {.axis = s->a.axis};
    Node *r = mk(g, OP_SCAN_SLICE, p, NULL, &sa, m->loc);
    g->cur_loop = outer;
    r->name = m->name;
    graph_replace(g, m, r);
    changed++;
  }
  if (changed) graph_dce(g);
  return changed;
}
