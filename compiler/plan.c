/*
 * plan.c - static memory planning: where each buffer lives in the workspace.
 *
 * Input: an optimized graph (fuse() has decided which nodes have buffers).
 * The schedule is the node order; a node fused into a consumer runs at that
 * consumer's position.  A buffer is live from the position that writes it
 * to the last position that reads it (through any alias).  Two buffers may
 * share bytes when their live ranges do not meet; ranges are inclusive, so
 * no kernel ever writes over an operand it is still reading.
 *
 * Never reused: inputs (the caller fills them before the step and may read
 * them after), and outputs, metrics and the losses (read after the step;
 * every function computes each output and metric, and fuse() never lets one
 * alias a parameter or state, which the step's updates overwrite).
 * Parameters and optimizer state live outside the workspace.
 *
 * Offsets depend on the batch size, so plan_offsets assigns them for given
 * symbol values: buffers in order of first use, each at the lowest offset
 * (64-byte aligned) that no live buffer occupies (runtime/layout.c).
 * plan_buffers hands the ranges to the descriptor (descriptor.c), from
 * which every model instance, the JIT's and a shared object's, lays out
 * its workspace with the same layout.c at run time.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

enum { FOREVER = 1 << 30 };

static bool persistent(const Node *n) { return op_info[n->op].flags & F_PERSISTENT; }

static int position(const Node *n) {
  while (n->inlined_into) n = n->inlined_into;
  return n->id;
}

bool plan_is_buffer(const Node *n) {
  return n->storage == n && !persistent(n);
}

/* A loop's body runs its positions [b, e] again in every iteration, so
 * what lives across iterations lives over all of [b, e]: a value from
 * before the loop that the body reads, the carries (set before the first
 * iteration, rewritten at the loop_end, read by scan_last after the loop)
 * and the stacks (written at every loop_end, read after the loop).  A
 * value the body computes lives over all of [b, e] too, never sharing
 * bytes with another: a loop may run in slices of the batch's rows on
 * several threads (codegen.c: gen_loop_rows), each writing its own rows
 * of every value, and two values of different row sizes in the same bytes
 * would put one thread's rows of one onto another's of the other. */
static void loop_ranges(const Graph *g, int *begin, int *end) {
  for (int l = 1; l <= g->nscans; l++) {
    const Node *e = graph_loop_end(g, l);
    if (!e) continue;
    int b = graph_loop_begin(g, l);
    for (int i = 0; i < g->nnodes; i++) {
      const Node *r = g->nodes[i];
      int at = position(r);     /* an outside broadcast may run in the body */
      if (at < b || at > e->id) continue;
      if (r->storage == r) {
        begin[i] = b;
        if (end[i] < e->id) end[i] = e->id;
      }
      for (int k = 0; k < r->nsrc; k++) {
        const Node *s = r->src[k]->storage;
        if (s && begin[s->id] < b && end[s->id] < e->id) end[s->id] = e->id;
      }
    }
    for (int i = e->id + 1; i < g->nnodes; i++) {
      const Node *r = g->nodes[i];
      if (r->src[0] != e) continue;
      if (r->op == OP_SCAN_STACK) begin[i] = b;
      /* a last value is copied out of its carry after the loop */
      const Node *c = r->op == OP_SCAN_LAST ? graph_loop_carry(g, l, r->a.slot) : NULL;
      if (c && c->storage && end[c->storage->id] < position(r)) end[c->storage->id] = position(r);
    }
  }
}

/* Live ranges [begin, end] per node id (only buffers are meaningful). */
static void live_ranges(const Graph *g, int *begin, int *end) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    begin[i] = n->op == OP_INPUT ? 0 : position(n);
    end[i] = begin[i];
    if (n->flags & (N_OUTPUT | N_METRIC | N_LOSS) || n->op == OP_INPUT) end[i] = FOREVER;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const Node *r = g->nodes[i];
    int at = position(r);
    for (int k = 0; k < r->nsrc; k++) {
      const Node *s = r->src[k]->storage;
      if (s && end[s->id] < at) end[s->id] = at;
    }
    /* A product over a patch matrix that fuse() left unstored packs the
     * patches from the image as it runs: it reads the image. */
    const Node *a = r->op == OP_MATMUL && r->src[0]->op == OP_RESHAPE ? r->src[0]->src[0] : NULL;
    if (a && a->op == OP_IM2COL && !a->storage && a->src[0]->storage &&
        end[a->src[0]->storage->id] < at)
      end[a->src[0]->storage->id] = at;
    /* An alias keeps its storage alive as long as the alias is read. */
    if (r->storage && r->storage != r && end[r->storage->id] < end[i]) end[r->storage->id] = end[i];
  }
  loop_ranges(g, begin, end);
}

int plan_buffers(const Graph *g, PlanBuffer *out) {
  int n = g->nnodes;
  int *begin = malloc(sizeof(int) * (size_t)(n ? n : 1)), *end = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!begin || !end) {
    free(begin), free(end);
    return -1;
  }
  live_ranges(g, begin, end);
  int nbuf = 0;
  for (int i = 0; i < n; i++)
    if (plan_is_buffer(g->nodes[i])) out[nbuf++] = (PlanBuffer){g->nodes[i], begin[i], end[i]};
  free(begin), free(end);
  return nbuf;
}

size_t plan_offsets(const Graph *g, const int64_t *sym, bool reuse, size_t *offset, size_t *naive) {
  int n = g->nnodes;
  PlanBuffer *pb = malloc(sizeof(PlanBuffer) * (size_t)(n ? n : 1));
  LayoutBuffer *lb = malloc(sizeof(LayoutBuffer) * (size_t)(n ? n : 1));
  size_t *at = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
  int nbuf = pb && lb && at ? plan_buffers(g, pb) : -1;
  size_t top = SIZE_MAX, sum = 0;
  for (int i = 0; i < n; i++) offset[i] = SIZE_MAX;
  for (int b = 0; b < nbuf; b++) {
    const Node *x = pb[b].node;
    int64_t dn[MAX_RANK], ds[MAX_RANK];
    for (int k = 0; k < x->shape.rank; k++) dn[k] = x->shape.d[k].n, ds[k] = x->shape.d[k].sym;
    lb[b] = (LayoutBuffer){pb[b].begin, pb[b].end, layout_bytes(x->shape.rank, dn, ds, sym, dtype_size(x->dtype))};
    if (lb[b].bytes == SIZE_MAX) nbuf = -1;
    else sum += lb[b].bytes;
  }
  if (nbuf >= 0) top = layout_assign(lb, nbuf, reuse, at);
  if (top != SIZE_MAX)
    for (int b = 0; b < nbuf; b++) offset[pb[b].node->id] = at[b];
  if (naive && top != SIZE_MAX) *naive = sum;
  free(pb), free(lb), free(at);
  return top;
}

/* What the workspace would be with every value stored (-O0, no reuse). */
size_t plan_unfused_bytes(const Graph *g, const int64_t *sym) {
  size_t total = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *x = g->nodes[i];
    if ((op_info[x->op].flags & (F_PERSISTENT | F_IMMEDIATE | F_EFFECT)) ||
        ((op_info[x->op].flags & F_VIEW) && x->storage != x))
      continue;
    int64_t c = 1;
    for (int k = 0; k < x->shape.rank; k++) c *= x->shape.d[k].n * sym[x->shape.d[k].sym];
    total += ((size_t)c * dtype_size(x->dtype) + 63) & ~(size_t)63;
  }
  return total;
}
