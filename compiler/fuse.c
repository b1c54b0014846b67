/*
 * fuse.c - which values get a loop and a buffer of their own.
 *
 * Input: a graph after autodiff.  Output, recorded on the nodes:
 *  - n->inlined_into: an elementwise node used once, by an elementwise node
 *    or a reduction that walks exactly n's elements, is computed inside that
 *    consumer's loop and never stored (chains and trees of elementwise ops
 *    become one loop; sum(g * y) reads g and y once); a broadcast is never
 *    stored at all, however many loops read it;
 *    a value with several readers may still be computed inside the loop of
 *    its first reader, which stores it for the others (storage kept);
 *    a product read only by a col2im is computed inside it, tile by tile,
 *    and a patch matrix read only by products is packed by each from the
 *    input, block by block;
 *  - n->storage: where n's value lives - n itself, the operand a reshape
 *    aliases, or, for the new value of a parameter or optimizer slot, the
 *    parameter's own storage when nothing after it reads the old value
 *    (updates in place, so an RMSprop step is two loops over each weight).
 *
 * Roots (outputs, metrics, the loss) are read by the runtime after the
 * step, so a root's storage is its own or a workspace value that lives as
 * long: never a parameter or state, which the step's updates overwrite,
 * and never nothing (a constant, a size).  A root that is such a leaf is
 * bound to a copy of it, placed where the leaf is (graph_root_copy); a
 * root reshape of one is a copy into its own buffer, not an alias.
 *
 * With enable false every value gets its own buffer (for debugging: the
 * check-numerics mode needs every intermediate value in memory).
 *
 * A value that one of the functions needs (forward, or a train step, see
 * graph_function_roots) is never computed only inside a loop that another
 * runs without it; an update is in place only within the functions that
 * apply it.
 *
 * Invariants: roots (outputs, metrics, the loss) are never inlined; an
 * inlined node has the shape of the loop that computes it, so its operands'
 * offsets come from that loop's indices; in-place updates are elementwise, so
 * the old value is read at the same index just before it is overwritten.
 */
#include <string.h>

#include "compiler.h"

static bool elementwise(const Node *n) { return op_info[n->op].flags & F_ELEMENTWISE; }

static bool reduction(const Node *n) { return op_info[n->op].flags & F_REDUCTION; }

/* Can the value of n be computed inside the loop of consumer c? */
static bool fusible(const Node *n, const Node *c) {
  /* a loop's body runs once per iteration: nothing moves in or out */
  if (!elementwise(n) || n->a.loop != c->a.loop) return false;
  if (elementwise(c)) return shape_eq(&n->shape, &c->shape);
  if (reduction(c)) return c->src[0] == n;           /* walks n's elements */
  return false;
}

/* Where n runs: the position of the outermost loop that computes it,
 * memoized in kat[] (-1: not yet known) so that long fused chains stay
 * linear.  Valid once n's inlined_into chain is final. */
static int kernel_at(int *kat, const Node *n) {
  const Node *r = n;
  while (kat[r->id] < 0 && r->inlined_into) r = r->inlined_into;
  int at = kat[r->id] >= 0 ? kat[r->id] : r->id;
  for (; n != r; n = n->inlined_into) kat[n->id] = at;
  return kat[r->id] = at;
}

/* Readers of n, later in the array, by id: CSR lists built once. */
typedef struct Readers {
  int *start, *list;
} Readers;

static Readers readers_of(Graph *g) {
  Readers r;
  r.start = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nnodes + 1));
  int total = 0;
  for (int i = 0; i < g->nnodes; i++) total += g->nodes[i]->nsrc;
  r.list = arena_alloc(g->arena, sizeof(int) * (size_t)(total ? total : 1));
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nsrc; k++) r.start[g->nodes[i]->src[k]->id + 1]++;
  for (int i = 0; i < g->nnodes; i++) r.start[i + 1] += r.start[i];
  int *fill = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nnodes ? g->nnodes : 1));
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i]->nsrc; k++) {
      int s = g->nodes[i]->src[k]->id;
      r.list[r.start[s] + fill[s]++] = i;
    }
  return r;
}

/* The functions that compute each node, as a bit mask (bit f: function f
 * of graph_function_roots, forward or a train step), as codegen marks
 * them: a value is computed inside a loop only when every function that
 * needs the value runs that loop. */
static uint64_t *function_masks(Graph *g) {
  uint64_t *m = arena_alloc(g->arena, sizeof(uint64_t) * (size_t)(g->nnodes ? g->nnodes : 1));
  unsigned char *mark = arena_alloc(g->arena, (size_t)(g->nnodes ? g->nnodes : 1));
  for (int f = 0; f < graph_nfunctions(g); f++) {
    graph_function_mark(g, f, mark);
    for (int i = 0; i < g->nnodes; i++)
      if (mark[i]) m[i] |= 1ull << f;
  }
  return m;
}

/* Does every function that computes x also compute c? */
static bool covers(const uint64_t *fn, const Node *x, const Node *c) {
  return !(fn[x->id] & ~fn[c->id]);
}

/* Storage a root must not alias: overwritten by the step, or none. */
static bool unstable(const Node *s) {
  return !s || s->op == OP_PARAM || s->op == OP_STATE;
}

int fuse(Graph *g, bool enable) {
  /* 0. A root that is a parameter, state, constant or size gets a copy of
   * its own (the next node, which step 5 gives a buffer). */
  for (int i = 0; i < g->nnodes; i++) {
    Node *x = g->nodes[i];
    if ((x->flags & (N_OUTPUT | N_METRIC | N_LOSS)) &&
        (x->op == OP_PARAM || x->op == OP_STATE || x->op == OP_CONST || x->op == OP_SIZE))
      graph_root_copy(g, x);
  }
  int n = g->nnodes;
  /* A value one function needs is never computed only inside a loop that
   * another function runs without it (the two sides of a train_select, a
   * train step's own backward pass). */
  uint64_t *fn = function_masks(g);
#define HOSTS(x, c) (fusible((x), (c)) && covers(fn, (x), (c)))
  bool *stored = arena_alloc(g->arena, (size_t)(n ? n : 1));
  int *kat = arena_alloc(g->arena, sizeof(int) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) kat[i] = -1;
  Readers rd = readers_of(g);
  for (int i = 0; i < n; i++) {
    g->nodes[i]->inlined_into = NULL;
    g->nodes[i]->storage = g->nodes[i];
  }
  /* 1. A value read once, by a loop of its shape, is computed in that loop. */
  for (int i = 0; enable && i < n; i++) {
    Node *x = g->nodes[i];
    int uses = rd.start[i + 1] - rd.start[i];
    if (x->flags & (N_OUTPUT | N_METRIC | N_LOSS) || uses != 1) continue;
    Node *c = g->nodes[rd.list[rd.start[i]]];
    if (HOSTS(x, c)) x->inlined_into = c;
  }
  /* 1b. A product read only by a col2im (through the reshape to patch
   * layout) is computed inside it, tile by tile (runtime/gemm.c,
   * gradc_sgemm_col2im): the input gradient of a convolution never stores
   * its patch matrix, which is kh * kw times the size of the input. */
  for (int i = 0; enable && i < n; i++) {
    Node *c = g->nodes[i];
    if (c->op != OP_COL2IM) continue;
    Node *r = c->src[0], *mm = r->op == OP_RESHAPE ? r->src[0] : r;
    if (c->dtype != DT_F32 || mm->op != OP_MATMUL || mm->shape.rank != 2 ||
        mm->src[0]->shape.rank != 2 || mm->src[1]->shape.rank != 2)
      continue;
    bool once = rd.start[mm->id + 1] - rd.start[mm->id] == 1 &&
                (r == mm || rd.start[r->id + 1] - rd.start[r->id] == 1);
    unsigned root = N_OUTPUT | N_METRIC | N_LOSS;
    if (!once || (mm->flags & root) || (r->flags & root) || !covers(fn, mm, c))
      continue;
    mm->inlined_into = c;
    if (r != mm) r->inlined_into = c;
  }
  /* 1c. A patch matrix (im2col) read only as the left operand of
   * products, through one reshape to [pixels, kh * kw * c], is never
   * stored: each product packs the blocks it needs from the image as it
   * goes (runtime/gemm.c, gradc_sgemm_im2col).  It is attributed to the
   * first of them, where the image is first read; plan.c keeps the image
   * live until the last.  Channels come in runs of c floats; with fewer
   * than 8 the explicit im2col is as cheap. */
  for (int i = 0; enable && i < n; i++) {
    Node *c = g->nodes[i];
    if (c->op != OP_IM2COL || c->dtype != DT_F32 || c->src[0]->shape.d[3].n < 8 ||
        c->src[0]->op == OP_PARAM || c->src[0]->op == OP_STATE)
      continue;
    unsigned root = N_OUTPUT | N_METRIC | N_LOSS;
    if (rd.start[i + 1] - rd.start[i] != 1 || (c->flags & root)) continue;
    Node *r = g->nodes[rd.list[rd.start[i]]], *first = NULL;
    if (r->op != OP_RESHAPE || r->shape.rank != 2 || (r->flags & root)) continue;
    bool ok = rd.start[r->id + 1] > rd.start[r->id];
    for (int k = rd.start[r->id]; ok && k < rd.start[r->id + 1]; k++) {
      Node *mm = g->nodes[rd.list[k]];
      ok = mm->op == OP_MATMUL && mm->src[0] == r && mm->src[1] != r && mm->shape.rank == 2 &&
           mm->src[1]->shape.rank == 2 && !mm->inlined_into;
      if (ok && (!first || mm->id < first->id)) first = mm;
    }
    if (!ok) continue;
    c->inlined_into = first;
    r->inlined_into = first;
  }
  /* 2. From the last node back, so every reader's loop is already final:
   *  - a broadcast read by several loops is never stored: each reads its
   *    operand through zero strides; it is attributed to the loop that runs
   *    last, so its operand stays live until then;
   *  - a value with several readers whose first reader is a loop of its own
   *    shape is computed and stored there; the others read it later. */
  for (int i = n - 1; enable && i >= 0; i--) {
    Node *x = g->nodes[i];
    int uses = rd.start[i + 1] - rd.start[i];
    if (x->inlined_into || uses < 2 || !elementwise(x) || (x->flags & (N_OUTPUT | N_METRIC | N_LOSS)))
      continue;
    Node *first = NULL, *last = NULL;
    int first_at = 1 << 30, second_at = 1 << 30, last_at = -1;
    bool all = true;
    for (int k = rd.start[i]; k < rd.start[i + 1]; k++) {
      Node *c = g->nodes[rd.list[k]];
      int at = kernel_at(kat, c);
      all &= HOSTS(x, c);
      if (at > last_at) last_at = at, last = c;
      if (at < first_at) second_at = first_at, first_at = at, first = HOSTS(x, c) ? c : NULL;
      else if (at < second_at) second_at = at;
    }
    if (x->op == OP_BROADCAST && all) {
      x->inlined_into = last;
    } else if (first && second_at > first_at) {
      x->inlined_into = first;
      stored[i] = true;
    }
  }
  /* 3. Storage, in order, so a reshape finds its operand's decision. */
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    if ((x->inlined_into && !stored[i]) || (op_info[x->op].flags & (F_IMMEDIATE | F_EFFECT)))
      x->storage = NULL;
    else if (op_info[x->op].flags & F_VIEW)
      x->storage = x->src[0]->storage;
  }
  /* 3b. An all-reduce sums its gradient in place when nothing else reads
   * the gradient's buffer: no copy of the step's largest values.  It runs
   * on the calling thread at its own position, after the gradient is
   * complete and before any reader of the sum. */
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i], *s = x->src ? x->src[0] : NULL;
    if (x->op != OP_ALLREDUCE || x->inlined_into || !s || s->storage != s || (op_info[s->op].flags & F_PERSISTENT) ||
        s->op == OP_INPUT || (s->flags & (N_OUTPUT | N_METRIC | N_LOSS)) || rd.start[s->id + 1] - rd.start[s->id] != 1)
      continue;
    x->storage = s;
  }
  /* 4. Updates in place: the new value of a parameter or slot is written
   * over the old one when nothing reads the old one afterwards, neither a
   * later loop nor, in the same loop, anything outside the new value's own
   * expression (which reads the old value before the store). */
  bool *in_v = arena_alloc(g->arena, (size_t)(n ? n : 1));
  for (int i = 0; enable && i < n; i++) {
    Node *a = g->nodes[i];
    if (a->op != OP_ASSIGN) continue;
    Node *dst = a->src[0], *v = a->src[1];
    if (!elementwise(v) || v->storage != v || (v->flags & (N_OUTPUT | N_METRIC | N_LOSS)) ||
        !covers(fn, v, a))
      continue;
    int at = kernel_at(kat, v);
    /* in_v[k]: node k is inside v's expression; inlined_into points to a
     * later node, so one pass down from v marks them all (walking each
     * node's chain instead made a long fused chain quadratic). */
    for (int k = v->id; k >= 0; k--) {
      const Node *r = g->nodes[k];
      in_v[k] = r == v || (r->inlined_into && r->inlined_into->id <= v->id && in_v[r->inlined_into->id]);
    }
    bool read_later = false;
    for (int k = 0; k < n && !read_later; k++) {
      const Node *r = g->nodes[k];
      int rat = kernel_at(kat, r);
      if (r == a || rat < at || (rat == at && k <= v->id && in_v[k]) || !(fn[r->id] & fn[a->id]))
        continue;
      for (int s = 0; s < r->nsrc; s++) read_later |= r->src[s]->storage == dst;
    }
    if (!read_later) v->storage = dst;
  }
  /* 5. Views alias their operand's final storage (an update may have
   * moved into its parameter); a root that would alias a parameter, state
   * or nothing is a copy in a buffer of its own. */
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    if (!(op_info[x->op].flags & F_VIEW) || x->inlined_into) continue;
    Node *s = x->src[0]->storage;
    x->storage = (x->flags & (N_OUTPUT | N_METRIC | N_LOSS)) && unstable(s) ? x : s;
  }
  g->stored = true;
  int fused = 0;
  for (int i = 0; i < n; i++) fused += g->nodes[i]->inlined_into != NULL;
  return fused;
#undef HOSTS
}
