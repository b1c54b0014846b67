/*
 * codegen_loop.c - the code of a loop (a scan; compiler.h: Scan).
 *
 * codegen.c's gen_function meets a loop's body as one piece of the node
 * order and emits it as one native loop: the carries take their initial
 * values, then for each iteration (index i, or len-1-i in a reverse loop:
 * cg->t) the body's kernels run in order, each as it would outside a
 * loop, and the loop_end writes the stacked values at the index and the
 * next values into the carries.  The body is generated once, whatever
 * the number of iterations.  Slices are copied out of their sequence (a
 * body's kernels then read a dense value), and scan_last copies a
 * carry's value after the loop.
 *
 * Where a sequence or a stack holds the steps on its first axis, a step's
 * values are one dense block of it: a slice is read there and a stacked
 * value computed there, with no copy (cg_loop_slots).  The gradient loop's
 * slices of the forward loop's stacks, and the stacks the forward loop
 * saves for it, are all such.
 */
#include <llvm-c/Core.h>
#include <string.h>

#include "compiler.h"
#include "llvm_internal.h"

/* A sequence's or stack's strides: in a loop run in slices of the batch's
 * rows, its axes keep the whole batch's strides (the slice's rows are
 * within each step's rows). */
static void full_strides(CG *cg, const Shape *s, LLVMValueRef *st) {
  LLVMValueRef rows[MAX_SYMS + 1];
  if (!cg->full_sym) {
    cg_strides(cg, s, st);
    return;
  }
  memcpy(rows, cg->sym, sizeof rows);
  memcpy(cg->sym, cg->full_sym, sizeof rows);
  cg_strides(cg, s, st);
  memcpy(cg->sym, rows, sizeof rows);
}

/* Copies between the dense value v and the index cg->t along axis of
 * stack (v's shape with that axis inserted). */
static void copy_slice(CG *cg, const Node *stack, int axis, const Node *v, bool to_stack) {
  LLVMValueRef d[MAX_RANK], vst[MAX_RANK], full[MAX_RANK], sst[MAX_RANK];
  cg_dims(cg, &v->shape, d);
  cg_strides(cg, &v->shape, vst);
  full_strides(cg, &stack->shape, full);
  for (int i = 0, k = 0; i < stack->shape.rank; i++)
    if (i != axis) sst[k++] = full[i];
  Nest ns;
  cg_nest_begin(cg, &ns, v->shape.rank, d);
  LLVMValueRef vo = cg_offset(cg, &ns, vst);
  LLVMValueRef so = LLVMBuildAdd(cg->b, cg_offset(cg, &ns, sst),
                                 LLVMBuildMul(cg->b, cg->t, full[axis], ""), "");
  if (to_stack) cg_store(cg, stack, so, cg_load(cg, v, vo));
  else cg_store(cg, v, vo, cg_load(cg, stack, so));
  cg_nest_end(cg, &ns);
}

/* Element offset of step cg->t's block in a sequence or stack whose first
 * axis holds the steps. */
static LLVMValueRef block_at(CG *cg, const Node *seq) {
  LLVMValueRef st[MAX_RANK];
  full_strides(cg, &seq->shape, st);
  return LLVMBuildMul(cg->b, cg->t, st[0], "");
}

/* The value the stack's block at each step holds in place (see the top of
 * the file), or NULL: a value of the body with a buffer of its own, not a
 * carry (whose buffer lasts from step to step), stacked on axis 0 -  by
 * the first such stack of its slot, when two are. */
static const Node *in_stack(const CG *cg, const Node *stack) {
  const Graph *g = cg->g;
  const Node *e = stack->src[0], *v = e->src[stack->a.slot];
  if (stack->a.axis != 0 || cg_buffer_node(stack) != stack || v->a.loop != e->a.loop || v->op == OP_CARRY ||
      cg_buffer_node(v) != v)
    return NULL;
  for (int i = e->id + 1; i < stack->id; i++) {
    const Node *o = g->nodes[i];
    if (o->op == OP_SCAN_STACK && o->src[0] == e && o->a.slot == stack->a.slot && cg->mark[i] && o->a.axis == 0)
      return NULL;
  }
  return v;
}

/* Whether a slice is read in place from its sequence's block. */
static bool slice_in_place(const CG *cg, const Node *n) {
  (void)cg;
  return n->a.axis == 0 && cg_buffer_node(n) == n && cg_buffer_node(n->src[0]);
}

void cg_loop_slots(CG *cg, const Node *e) {
  const Graph *g = cg->g;
  int l = e->a.loop;
  for (int i = graph_loop_begin(g, l); i < e->id; i++) {
    const Node *n = g->nodes[i];
    if (cg->mark[i] && n->op == OP_SCAN_SLICE && n->a.loop == l && slice_in_place(cg, n))
      cg->base[n->id] = cg_elem_ptr(cg, n, cg_ptr(cg, n->src[0]), block_at(cg, n->src[0]));
  }
  for (int i = e->id + 1; i < g->nnodes; i++) {
    const Node *s = g->nodes[i];
    const Node *v = s->op == OP_SCAN_STACK && s->src[0] == e && cg->mark[i] ? in_stack(cg, s) : NULL;
    if (v) cg->base[v->id] = cg_elem_ptr(cg, v, cg_ptr(cg, s), block_at(cg, s));
  }
}

static void copy(CG *cg, const Node *to, const Node *from) {
  if (cg_buffer_node(to) && cg_buffer_node(to) == cg_buffer_node(from)) return;
  Loop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, cg_count(cg, &to->shape));
  cg_store(cg, to, i, cg_load(cg, from, i));
  cg_loop_end(cg, &l);
}

void cg_carry_init(CG *cg, const Node *c) { copy(cg, c, c->src[0]); }

void cg_loop_node(CG *cg, const Node *n) {
  const Graph *g = cg->g;
  switch (n->op) {
  case OP_CARRY: break;                     /* cg_carry_init, before the loop */
  case OP_SCAN_SLICE:
    if (!slice_in_place(cg, n)) copy_slice(cg, n->src[0], n->a.axis, n, false);
    break;
  case OP_LOOP_END:
    for (int i = n->id + 1; i < g->nnodes; i++) {
      const Node *s = g->nodes[i];
      if (s->op == OP_SCAN_STACK && s->src[0] == n && cg->mark[i] && !in_stack(cg, s))
        copy_slice(cg, s, s->a.axis, n->src[s->a.slot], true);
    }
    /* in slot order: a next value is never another carry (the builders
     * of loops see to that), so no carry is read after it is written */
    for (int k = 0; k < n->a.slot; k++) {
      const Node *c = graph_loop_carry(g, n->a.loop, k);
      if (!c || !cg->mark[c->id]) continue;
      for (int j = 0; j < n->a.slot; j++) {
        const Node *o = graph_loop_carry(g, n->a.loop, j);
        GRADC_ASSERT(j == k || !o || cg_buffer_node(n->src[k]) != cg_buffer_node(o));
      }
      copy(cg, c, n->src[k]);
    }
    break;
  case OP_SCAN_STACK: break;                /* written by its loop_end */
  case OP_SCAN_LAST: copy(cg, n, graph_loop_carry(g, n->src[0]->a.loop, n->a.slot)); break;
  default: GRADC_ASSERT(0);
  }
}
