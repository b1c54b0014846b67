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
 * them after), and outputs, metrics and the loss (read after the step).
 * Parameters and optimizer state live outside the workspace.
 *
 * Offsets depend on the batch size, so plan_offsets assigns them for given
 * symbol values: buffers in order of first use, each at the lowest offset
 * (64-byte aligned) that no live buffer occupies.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

enum { FOREVER = 1 << 30 };

static bool persistent(const Node *n) { return n->op == OP_PARAM || n->op == OP_STATE; }

static int position(const Node *n) {
  while (n->inlined_into) n = n->inlined_into;
  return n->id;
}

bool plan_is_buffer(const Node *n) {
  return n->storage == n && !persistent(n);
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
    /* An alias keeps its storage alive as long as the alias is read. */
    if (r->storage && r->storage != r && end[r->storage->id] < end[i]) end[r->storage->id] = end[i];
  }
}

typedef struct Block {
  size_t off, bytes;
  int end;
} Block;

static int by_offset(const void *a, const void *b) {
  const Block *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

static const int *sort_begin;

static int by_begin(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  if (sort_begin[x] != sort_begin[y]) return sort_begin[x] < sort_begin[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

size_t plan_offsets(const Graph *g, const int64_t *sym, bool reuse, size_t *offset, size_t *naive) {
  int n = g->nnodes;
  int *begin = malloc(sizeof(int) * (size_t)(n ? n : 1)), *end = malloc(sizeof(int) * (size_t)(n ? n : 1));
  int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
  Block *live = malloc(sizeof(Block) * (size_t)(n ? n : 1));
  if (!begin || !end || !live || !order) {
    free(begin), free(end), free(live), free(order);
    return SIZE_MAX;
  }
  live_ranges(g, begin, end);
  /* Buffers in order of the position that first writes them: a node fused
   * into a later loop starts there, not at its place in the array. */
  int nbuf = 0;
  for (int i = 0; i < n; i++) {
    offset[i] = SIZE_MAX;
    if (plan_is_buffer(g->nodes[i])) order[nbuf++] = i;
  }
  sort_begin = begin;
  qsort(order, (size_t)nbuf, sizeof *order, by_begin);
  size_t top = 0, sum = 0;
  int nlive = 0;
  for (int o = 0; o < nbuf; o++) {
    int i = order[o];
    const Node *x = g->nodes[i];
    int64_t c = 1;
    for (int k = 0; k < x->shape.rank; k++) {
      int64_t d = x->shape.d[k].n * sym[x->shape.d[k].sym];
      if (d != 0 && c > ((int64_t)1 << 62) / d) c = -1;
      if (c < 0) break;
      c *= d;
    }
    if (c < 0) {
      free(begin), free(end), free(live), free(order);
      return SIZE_MAX;
    }
    size_t bytes = ((size_t)c * dtype_size(x->dtype) + 63) & ~(size_t)63;
    sum += bytes;
    /* Blocks whose range ended before this one begins are free again. */
    int k = 0;
    for (int j = 0; j < nlive; j++)
      if (!reuse || live[j].end >= begin[i]) live[k++] = live[j];
    nlive = k;
    qsort(live, (size_t)nlive, sizeof *live, by_offset);
    size_t at = 0;
    if (reuse) {
      for (int j = 0; j < nlive && live[j].off < at + bytes; j++)
        if (live[j].off + live[j].bytes > at) at = live[j].off + live[j].bytes;
    } else {
      at = top;
    }
    offset[i] = at;
    live[nlive++] = (Block){at, bytes, end[i]};
    if (at + bytes > top) top = at + bytes;
  }
  free(begin), free(end), free(live), free(order);
  if (naive) *naive = sum;
  return top;
}

/* What the workspace would be with every value stored (-O0, no reuse). */
size_t plan_unfused_bytes(const Graph *g, const int64_t *sym) {
  size_t total = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *x = g->nodes[i];
    if (persistent(x) || x->op == OP_CONST || x->op == OP_SIZE || x->op == OP_ASSIGN || x->op == OP_RESHAPE)
      continue;
    int64_t c = 1;
    for (int k = 0; k < x->shape.rank; k++) c *= x->shape.d[k].n * sym[x->shape.d[k].sym];
    total += ((size_t)c * dtype_size(x->dtype) + 63) & ~(size_t)63;
  }
  return total;
}
