/*
 * codegen.c - the graph as LLVM IR, through the LLVM C API.
 *
 * Input: a graph after autodiff.  Output: one LLVM module with one
 * function per entry of graph_function_roots, all of the same signature,
 *
 *     void forward(void *rt, void **buf, const int64_t *sym);
 *     void step_NAME(void *rt, void **buf, const int64_t *sym);   (one per train step)
 *
 * where rt is the calling model instance's run-time context, buf[i] the
 * storage of node i (see cg_buffer_node) and sym[k] the run-time value of
 * symbolic dimension k (sym[0] is 1).  The code touches no state of the
 * runtime but through rt: every gradc_* function it calls (products, the
 * thread pool, scratch, profile marks) takes rt first (cg_call, from the
 * calling convention of runtime/abi.h's list of outside functions),
 * and outlined tasks receive it too, so instances run concurrently.  forward
 * computes outputs, metrics and every loss; a train step computes its loss,
 * its backward pass and its updates, and every output and metric, so after
 * a step they hold the step's value (from the parameters before its
 * update).  None allocates: every buffer comes from the caller.  All come
 * from the same graph: a train_select node is where forward and the steps
 * differ, each function following only its own operand of it (dropout's
 * mask, batch norm's batch statistics exist in the train steps alone).
 *
 * Each kernel (a node not fused into another) is an internal noinline
 * function kernel(rt, args, sym) of its own, args a table of the pointers
 * of the buffers its code uses, and the entry points are lists of calls;
 * a kernel whose code is the same as one made before (forward's kernels in
 * every train step, a repeated layer) is made once (gen_kernel).  Within
 * it, the node becomes a loop nest.  Elementwise ops read
 * broadcast operands through strides of 0 (no broadcast is materialised);
 * same-shape operands get one flat loop that LLVM vectorises; a fused
 * kernel (fuse.c) is one such loop computing its whole tree, reductions at
 * its ends included.  Scalar constants become immediates; tensor constants
 * module globals; reshapes alias their operand's storage, but for the
 * copies fuse() makes of roots that would alias a parameter or a constant
 * (gen_copy).  With several threads, a large nest whose outer iterations
 * are independent is outlined into a task that gradc_parallel
 * (runtime/pool.c) runs in slices of its outer loop (gen_maybe_parallel);
 * a reduction to the last axis runs in fixed row chunks whose partials are
 * combined in a fixed order, threads or not.  f32 sums accumulate in f64
 * (in f32 blocks first where that keeps their loops at f32 speed) and are
 * rounded once (codegen_reduce.c).
 * This file holds the helpers, elementwise loops, the dispatch (op_gen,
 * built from the code generator column of the op table, so an op without a
 * generator does not compile; elementwise ops share one, whose per-element
 * switch test_jit's every-op check reaches) and the functions; reductions
 * are in codegen_reduce.c, every other op's generator in codegen_kernels.c
 * (matrix products through gradc_sgemm and the convolution products,
 * softmax, the window ops of convolutions).
 *
 * LLVM's C API appears only in codegen*.c, jit.c and emit.c (STYLE: one
 * component per library).
 */
#include <llvm-c/Core.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "llvm_internal.h"


/* ------------------------------------------------------------ storage */

const Node *cg_buffer_node(const Node *n) { return n->storage; }

/* ------------------------------------------------------------ helpers */

LLVMTypeRef cg_type(CG *cg, DType t) {
  switch (t) {
  case DT_F32: return cg->f32;
  case DT_F64: return cg->f64;
  case DT_I32: return cg->i32;
  case DT_BOOL: return cg->i8;
  case DT_COUNT: break;
  }
  GRADC_ASSERT(0);
  return NULL;
}

LLVMValueRef cg_int(CG *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

LLVMValueRef cg_const(CG *cg, DType t, double v) {
  if (dtype_is_float(t)) return LLVMConstReal(cg_type(cg, t), v);
  return LLVMConstInt(cg_type(cg, t), (unsigned long long)(int64_t)v, 1);
}

LLVMValueRef cg_dim(CG *cg, Dim d) {
  LLVMValueRef n = cg_int(cg, d.n);
  return d.sym ? LLVMBuildMul(cg->b, n, cg->sym[d.sym], "dim") : n;
}

LLVMValueRef cg_count(CG *cg, const Shape *s) {
  LLVMValueRef c = cg_int(cg, 1);
  for (int i = 0; i < s->rank; i++) c = LLVMBuildMul(cg->b, c, cg_dim(cg, s->d[i]), "count");
  return c;
}

/* Element strides of s, row-major. */
void cg_strides(CG *cg, const Shape *s, LLVMValueRef *st) {
  LLVMValueRef acc = cg_int(cg, 1);
  for (int i = s->rank - 1; i >= 0; i--) {
    st[i] = acc;
    acc = LLVMBuildMul(cg->b, acc, cg_dim(cg, s->d[i]), "stride");
  }
}

/* Strides of operand s read as if broadcast to out (right-aligned): 0 on
 * axes it lacks or holds as 1. */
void cg_bstrides(CG *cg, const Shape *s, const Shape *out, LLVMValueRef *st) {
  LLVMValueRef own[MAX_RANK];
  cg_strides(cg, s, own);
  int lead = out->rank - s->rank;
  for (int i = 0; i < out->rank; i++) {
    int j = i - lead;
    bool bcast = j < 0 || (dim_is_one(s->d[j]) && !dim_is_one(out->d[i]));
    st[i] = bcast ? cg_int(cg, 0) : own[j];
  }
}

LLVMValueRef cg_fast(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
  return v;
}

LLVMValueRef cg_intrinsic(CG *cg, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                              int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  GRADC_ASSERT(id);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &t, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &t, 1);
  return cg_fast(LLVMBuildCall2(cg->b, ft, f, args, (unsigned)nargs, ""));
}

LLVMValueRef cg_call(CG *cg, AbiFunction fn, LLVMTypeRef ret, LLVMTypeRef *params, LLVMValueRef *args, int nargs) {
  LLVMTypeRef p[16];
  LLVMValueRef a[16];
  AbiCall call = abi_function_call(fn);
  GRADC_ASSERT(call != ABI_CALL_LLVM && nargs < 16);
  int n = 0;
  if (call == ABI_CALL_RT) {
    GRADC_ASSERT(cg->rt);
    p[n] = cg->ptr, a[n++] = cg->rt;
  }
  for (int i = 0; i < nargs; i++) p[n] = params[i], a[n++] = args[i];
  LLVMTypeRef ft = LLVMFunctionType(ret, p, (unsigned)n, 0);
  const char *name = abi_function_name(fn);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
  if (!f) f = LLVMAddFunction(cg->mod, name, ft);
  return LLVMBuildCall2(cg->b, ft, f, a, (unsigned)n, "");
}

LLVMValueRef cg_elem_ptr(CG *cg, const Node *n, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildGEP2(cg->b, cg_type(cg, n->dtype), base, &off, 1, "");
}

/* In a kernel function: s's pointer from the caller's table, loaded at
 * the entry (the table is filled before the call), s given the next slot
 * if this function's code has not used it before. */
static LLVMValueRef slot_load(CG *cg, const Node *s) {
  if (!cg->slot[s->id]) {
    cg->slots[cg->nslots++] = s;
    cg->slot[s->id] = cg->nslots;
  }
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(cg->b, first);
  else LLVMPositionBuilderAtEnd(cg->b, entry);
  LLVMValueRef at = cg_int(cg, cg->slot[s->id] - 1);
  LLVMValueRef p = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildGEP2(cg->b, cg->ptr, cg->args, &at, 1, ""), "buf");
  LLVMPositionBuilderAtEnd(cg->b, cur);
  return p;
}

LLVMValueRef cg_ptr(CG *cg, const Node *n) {
  const Node *s = cg_buffer_node(n);
  if (s) {
    if (!cg->base[s->id] && cg->args) cg->base[s->id] = slot_load(cg, s);
    return cg->base[s->id];
  }
  while (op_info[n->op].flags & F_VIEW) n = n->src[0];
  GRADC_ASSERT(n->op == OP_CONST && n->shape.rank > 0);
  return cg->global[n->id];
}

/* Stack memory of type t, allocated once in the function's entry block
 * (not in the loop that uses it, which would grow the stack per pass). */
LLVMValueRef cg_entry_alloca(CG *cg, LLVMTypeRef t, const char *name) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(cg->b, first);
  else LLVMPositionBuilderAtEnd(cg->b, entry);
  LLVMValueRef a = LLVMBuildAlloca(cg->b, t, name);
  LLVMPositionBuilderAtEnd(cg->b, cur);
  return a;
}

/* The value of element `off` of n: immediates for scalar constants and
 * sizes, loads otherwise. */
LLVMValueRef cg_load(CG *cg, const Node *n, LLVMValueRef off) {
  /* same elements, same order - unless the view is a copy (fuse.c) */
  while ((op_info[n->op].flags & F_VIEW) && cg_buffer_node(n) != n) n = n->src[0];
  if (n->op == OP_CONST && n->shape.rank == 0) return cg_const(cg, n->dtype, n->a.values[0]);
  if (n->op == OP_SIZE) {
    LLVMValueRef c = cg_count(cg, &n->a.to);
    return dtype_is_float(n->dtype) ? LLVMBuildSIToFP(cg->b, c, cg_type(cg, n->dtype), "")
                                    : LLVMBuildTrunc(cg->b, c, cg_type(cg, n->dtype), "");
  }
  return LLVMBuildLoad2(cg->b, cg_type(cg, n->dtype), cg_elem_ptr(cg, n, cg_ptr(cg, n), off), "");
}

void cg_store(CG *cg, const Node *n, LLVMValueRef off, LLVMValueRef v) {
  LLVMBuildStore(cg->b, v, cg_elem_ptr(cg, n, cg_ptr(cg, n), off));
}

/* ------------------------------------------------------------ loops */


LLVMValueRef cg_loop_begin(CG *cg, Loop *l, LLVMValueRef n) {
  l->start = cg_int(cg, 0);
  if (cg->split && cg->depth == 0) {
    /* the outlined kernel's slice: [n*part/nparts, n*(part+1)/nparts) */
    LLVMBuilderRef b = cg->b;
    l->start = LLVMBuildSDiv(b, LLVMBuildMul(b, n, cg->part, ""), cg->nparts, "lo");
    LLVMValueRef next = LLVMBuildAdd(b, cg->part, cg_int(cg, 1), "");
    n = LLVMBuildSDiv(b, LLVMBuildMul(b, n, next, ""), cg->nparts, "hi");
    cg->split = false;
  } else {
    /* an outlined kernel is one loop nest: a second would run whole in
     * every part (unless the generator slices its loops itself) */
    GRADC_ASSERT(!(cg->nparts && cg->depth == 0 && !cg->own_parts));
  }
  cg->depth++;
  l->pre = LLVMGetInsertBlock(cg->b);
  l->head = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "loop");
  l->body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "done");
  LLVMBuildBr(cg->b, l->head);
  LLVMPositionBuilderAtEnd(cg->b, l->head);
  l->iv = LLVMBuildPhi(cg->b, cg->i64, "i");
  LLVMValueRef c = LLVMBuildICmp(cg->b, LLVMIntSLT, l->iv, n, "");
  LLVMBuildCondBr(cg->b, c, l->body, l->exit);
  LLVMPositionBuilderAtEnd(cg->b, l->body);
  return l->iv;
}

void cg_loop_end(CG *cg, Loop *l) {
  LLVMValueRef next = LLVMBuildAdd(cg->b, l->iv, cg_int(cg, 1), "next");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMBuildBr(cg->b, l->head);
  LLVMValueRef in_v[2] = {l->start, next};
  LLVMBasicBlockRef in_b[2] = {l->pre, latch};
  LLVMAddIncoming(l->iv, in_v, in_b, 2);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
  cg->depth--;
}


void cg_nest_begin(CG *cg, Nest *ns, int rank, LLVMValueRef *d) {
  ns->rank = rank;
  for (int i = 0; i < rank; i++) ns->idx[i] = cg_loop_begin(cg, &ns->l[i], d[i]);
}

void cg_nest_end(CG *cg, Nest *ns) {
  for (int i = ns->rank - 1; i >= 0; i--) cg_loop_end(cg, &ns->l[i]);
}

/* sum_i idx[i] * st[i] */
LLVMValueRef cg_offset(CG *cg, const Nest *ns, LLVMValueRef *st) {
  LLVMValueRef o = cg_int(cg, 0);
  for (int i = 0; i < ns->rank; i++)
    o = LLVMBuildAdd(cg->b, o, LLVMBuildMul(cg->b, ns->idx[i], st[i], ""), "off");
  return o;
}

void cg_dims(CG *cg, const Shape *s, LLVMValueRef *d) {
  for (int i = 0; i < s->rank; i++) d[i] = cg_dim(cg, s->d[i]);
}

/* ------------------------------------------------------------ scalar ops */

static LLVMValueRef to_bool(CG *cg, LLVMValueRef c) {
  return LLVMBuildZExt(cg->b, c, cg->i8, "");
}

static LLVMValueRef is_true(CG *cg, LLVMValueRef v) {
  return LLVMBuildICmp(cg->b, LLVMIntNE, v, LLVMConstInt(cg->i8, 0, 0), "");
}

/* Python's a // b for ints; 0 when b is 0, as the evaluator.  INT_MIN / -1
 * wraps to INT_MIN, as TF's and as i32 arithmetic does everywhere here:
 * sdiv by -1 is undefined there (x86 raises SIGFPE), so b = -1 divides by
 * 1 and negates. */
static LLVMValueRef floor_div(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMTypeRef t) {
  LLVMValueRef zero = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0);
  LLVMValueRef bz = LLVMBuildICmp(cg->b, LLVMIntEQ, b, zero, "");
  LLVMValueRef bm = LLVMBuildICmp(cg->b, LLVMIntEQ, b, LLVMConstAllOnes(t), "");
  LLVMValueRef safe = LLVMBuildSelect(cg->b, LLVMBuildOr(cg->b, bz, bm, ""), one, b, "");
  LLVMValueRef q = LLVMBuildSDiv(cg->b, a, safe, ""), r = LLVMBuildSRem(cg->b, a, safe, "");
  LLVMValueRef adj = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntNE, r, zero, ""),
                                  LLVMBuildICmp(cg->b, LLVMIntNE,
                                                LLVMBuildICmp(cg->b, LLVMIntSLT, a, zero, ""),
                                                LLVMBuildICmp(cg->b, LLVMIntSLT, safe, zero, ""), ""),
                                  "");
  q = LLVMBuildSub(cg->b, q, LLVMBuildZExt(cg->b, adj, t, ""), "");
  q = LLVMBuildSelect(cg->b, bm, LLVMBuildNeg(cg->b, a, ""), q, "");
  return LLVMBuildSelect(cg->b, bz, zero, q, "");
}

/* TF's FloorMod: the truncated remainder (srem, or frem = fmod, exact)
 * moved into the divisor's sign.  An integer divisor of 0 gives 0 and -1
 * is divided as 1, so no srem ever traps (x % -1 is 0 either way). */
static LLVMValueRef floor_mod(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMTypeRef t, bool fl) {
  LLVMBuilderRef bd = cg->b;
  if (fl) {
    LLVMValueRef zero = LLVMConstReal(t, 0);
    LLVMValueRef r = LLVMBuildFRem(bd, a, b, "");
    LLVMValueRef fix = LLVMBuildAnd(bd, LLVMBuildFCmp(bd, LLVMRealUNE, r, zero, ""),
                                    LLVMBuildXor(bd, LLVMBuildFCmp(bd, LLVMRealOLT, r, zero, ""),
                                                 LLVMBuildFCmp(bd, LLVMRealOLT, b, zero, ""), ""), "");
    return LLVMBuildSelect(bd, fix, LLVMBuildFAdd(bd, r, b, ""), r, "");
  }
  LLVMValueRef zero = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0);
  LLVMValueRef bz = LLVMBuildICmp(bd, LLVMIntEQ, b, zero, "");
  LLVMValueRef bm = LLVMBuildICmp(bd, LLVMIntEQ, b, LLVMConstAllOnes(t), "");
  LLVMValueRef safe = LLVMBuildSelect(bd, LLVMBuildOr(bd, bz, bm, ""), one, b, "");
  LLVMValueRef r = LLVMBuildSRem(bd, a, safe, "");
  LLVMValueRef fix = LLVMBuildAnd(bd, LLVMBuildICmp(bd, LLVMIntNE, r, zero, ""),
                                  LLVMBuildICmp(bd, LLVMIntNE, LLVMBuildICmp(bd, LLVMIntSLT, r, zero, ""),
                                                LLVMBuildICmp(bd, LLVMIntSLT, safe, zero, ""), ""), "");
  return LLVMBuildSelect(bd, fix, LLVMBuildAdd(bd, r, safe, ""), r, "");
}

LLVMValueRef cg_convert(CG *cg, LLVMValueRef x, DType from, DType to) {
  if (from == to) return x;
  LLVMTypeRef t = cg_type(cg, to);
  if (to == DT_BOOL) {
    LLVMValueRef c = dtype_is_float(from)
                         ? LLVMBuildFCmp(cg->b, LLVMRealUNE, x, LLVMConstReal(cg_type(cg, from), 0), "")
                         : LLVMBuildICmp(cg->b, LLVMIntNE, x, LLVMConstInt(cg_type(cg, from), 0, 0), "");
    return to_bool(cg, c);
  }
  if (dtype_is_float(from) && dtype_is_float(to))
    return to == DT_F64 ? LLVMBuildFPExt(cg->b, x, t, "") : LLVMBuildFPTrunc(cg->b, x, t, "");
  if (dtype_is_float(from)) return LLVMBuildFPToSI(cg->b, x, t, "");
  if (dtype_is_float(to))
    return from == DT_BOOL ? LLVMBuildUIToFP(cg->b, x, t, "") : LLVMBuildSIToFP(cg->b, x, t, "");
  return from == DT_BOOL ? LLVMBuildZExt(cg->b, x, t, "") : x;
}

/* One element of an elementwise node from its operands' elements. */
/* exp and tanh of f32 in plain arithmetic, so that the loops around them
 * vectorise (a call of libm's expf or tanhf per element costs 10-40 ns,
 * and recurrent cells spend most of their elementwise time there): Cody
 * and Waite's reduction x = n ln2 + r, a degree-6 polynomial for e^r
 * (Cephes' expf coefficients, within 2 ulp of expf on [-87.3, 88.4];
 * beyond, the bounds' values) and 2^n from the exponent bits; tanh as
 * 1 - 2 / (e^2|x| + 1) with the sign of x, and below |x| = 0.625, where
 * that would cancel, Cephes' odd polynomial.  f64 keeps libm. */
static LLVMValueRef poly(CG *cg, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef y = cg_const(cg, DT_F32, c[0]);
  for (int i = 1; i < n; i++)
    y = cg_fast(LLVMBuildFAdd(cg->b, cg_fast(LLVMBuildFMul(cg->b, y, x, "")), cg_const(cg, DT_F32, c[i]), ""));
  return y;
}

static LLVMValueRef exp_f32(CG *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef f = cg->f32;
  LLVMValueRef lo = cg_const(cg, DT_F32, -87.3365447505531), hi = cg_const(cg, DT_F32, 88.3762626647949);
  x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, lo, ""), lo, x, "");
  x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, hi, ""), hi, x, "");
  LLVMValueRef fx = cg_fast(LLVMBuildFAdd(b, cg_fast(LLVMBuildFMul(b, x, cg_const(cg, DT_F32, 1.44269504088896341), "")),
                                          cg_const(cg, DT_F32, 0.5), ""));
  fx = cg_intrinsic(cg, "llvm.floor", f, &fx, 1);
  LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, fx, cg_const(cg, DT_F32, 0.693359375), ""), "");
  r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, fx, cg_const(cg, DT_F32, -2.12194440e-4), ""), "");
  static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef z = cg_fast(LLVMBuildFMul(b, r, r, ""));
  LLVMValueRef y = cg_fast(LLVMBuildFMul(b, poly(cg, r, c, 6), z, ""));
  y = cg_fast(LLVMBuildFAdd(b, cg_fast(LLVMBuildFAdd(b, y, r, "")), cg_const(cg, DT_F32, 1), ""));
  LLVMValueRef n = LLVMBuildFPToSI(b, fx, cg->i32, "");
  LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, n, LLVMConstInt(cg->i32, 127, 0), ""),
                                   LLVMConstInt(cg->i32, 23, 0), "");
  return cg_fast(LLVMBuildFMul(b, y, LLVMBuildBitCast(b, bits, f, ""), "exp"));
}

static LLVMValueRef tanh_f32(CG *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef ax = cg_intrinsic(cg, "llvm.fabs", cg->f32, &x, 1);
  static const double c[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                             1.33314422036E-1, -3.33332819422E-1};
  LLVMValueRef z = cg_fast(LLVMBuildFMul(b, x, x, ""));
  LLVMValueRef small = cg_fast(LLVMBuildFAdd(b, cg_fast(LLVMBuildFMul(b, cg_fast(LLVMBuildFMul(b, poly(cg, z, c, 5), z, "")), x, "")), x, ""));
  LLVMValueRef e = exp_f32(cg, cg_fast(LLVMBuildFAdd(b, ax, ax, "")));
  LLVMValueRef one = cg_const(cg, DT_F32, 1);
  LLVMValueRef big = LLVMBuildFSub(b, one, LLVMBuildFDiv(b, cg_const(cg, DT_F32, 2), LLVMBuildFAdd(b, e, one, ""), ""), "");
  LLVMValueRef args[2] = {big, x};
  big = cg_intrinsic(cg, "llvm.copysign", cg->f32, args, 2);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, cg_const(cg, DT_F32, 0.625), ""), small, big, "tanh");
}

static LLVMValueRef scalar(CG *cg, const Node *n, LLVMValueRef *a) {
  LLVMBuilderRef b = cg->b;
  DType dt = n->src[0]->dtype;
  LLVMTypeRef t = cg_type(cg, dt);
  bool fl = dtype_is_float(dt);
  switch (n->op) {
  case OP_ADD: return fl ? cg_fast(LLVMBuildFAdd(b, a[0], a[1], "")) : LLVMBuildAdd(b, a[0], a[1], "");
  case OP_SUB: return fl ? cg_fast(LLVMBuildFSub(b, a[0], a[1], "")) : LLVMBuildSub(b, a[0], a[1], "");
  case OP_MUL: return fl ? cg_fast(LLVMBuildFMul(b, a[0], a[1], "")) : LLVMBuildMul(b, a[0], a[1], "");
  case OP_DIV: return fl ? cg_fast(LLVMBuildFDiv(b, a[0], a[1], "")) : floor_div(cg, a[0], a[1], t);
  case OP_POW: return cg_intrinsic(cg, "llvm.pow", t, a, 2);
  case OP_FLOORDIV: {
    if (!fl) return floor_div(cg, a[0], a[1], t);
    LLVMValueRef q = LLVMBuildFDiv(b, a[0], a[1], "");   /* not fast: exactness decides the floor */
    return cg_intrinsic(cg, "llvm.floor", t, &q, 1);
  }
  case OP_FLOORMOD: return floor_mod(cg, a[0], a[1], t, fl);
  case OP_MAXIMUM:
  case OP_MINIMUM: {
    bool mx = n->op == OP_MAXIMUM;
    LLVMValueRef c = fl ? LLVMBuildFCmp(b, mx ? LLVMRealOGE : LLVMRealOLE, a[0], a[1], "")
                        : LLVMBuildICmp(b, mx ? LLVMIntSGE : LLVMIntSLE, a[0], a[1], "");
    return LLVMBuildSelect(b, c, a[0], a[1], "");
  }
  case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE: {
    static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                           LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
    static const LLVMIntPredicate ip[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT,
                                          LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
    int k = n->op - OP_EQ;
    LLVMValueRef c = fl ? LLVMBuildFCmp(b, fp[k], a[0], a[1], "") : LLVMBuildICmp(b, ip[k], a[0], a[1], "");
    return to_bool(cg, c);
  }
  case OP_NEG: return fl ? LLVMBuildFNeg(b, a[0], "") : LLVMBuildNeg(b, a[0], "");
  case OP_ABS:
    if (fl) return cg_intrinsic(cg, "llvm.fabs", t, a, 1);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, a[0], LLVMConstInt(t, 0, 0), ""),
                           LLVMBuildNeg(b, a[0], ""), a[0], "");
  case OP_SQUARE: return fl ? cg_fast(LLVMBuildFMul(b, a[0], a[0], "")) : LLVMBuildMul(b, a[0], a[0], "");
  case OP_RELU: {
    LLVMValueRef z = cg_const(cg, dt, 0);
    LLVMValueRef c = fl ? LLVMBuildFCmp(b, LLVMRealOGT, a[0], z, "") : LLVMBuildICmp(b, LLVMIntSGT, a[0], z, "");
    return LLVMBuildSelect(b, c, a[0], z, "");
  }
  case OP_LEAKY_RELU: {
    LLVMValueRef c = LLVMBuildFCmp(b, LLVMRealOGT, a[0], cg_const(cg, dt, 0), "");
    return LLVMBuildSelect(b, c, a[0], cg_fast(LLVMBuildFMul(b, a[0], cg_const(cg, dt, n->a.alpha), "")), "");
  }
  case OP_SIGMOID: {
    LLVMValueRef nx = LLVMBuildFNeg(b, a[0], "");
    LLVMValueRef e = dt == DT_F32 ? exp_f32(cg, nx) : cg_intrinsic(cg, "llvm.exp", t, &nx, 1);
    return cg_fast(LLVMBuildFDiv(b, cg_const(cg, dt, 1), cg_fast(LLVMBuildFAdd(b, cg_const(cg, dt, 1), e, "")), ""));
  }
  case OP_TANH:
    return dt == DT_F32 ? tanh_f32(cg, a[0]) : cg_call(cg, ABI_FN_TANH, t, &t, a, 1);
  case OP_EXP: return cg_intrinsic(cg, "llvm.exp", t, a, 1);
  case OP_LOG: return cg_intrinsic(cg, "llvm.log", t, a, 1);
  case OP_SQRT: return cg_intrinsic(cg, "llvm.sqrt", t, a, 1);
  case OP_SIN: return cg_intrinsic(cg, "llvm.sin", t, a, 1);
  case OP_ERF: return cg_call(cg, dt == DT_F32 ? ABI_FN_ERFF : ABI_FN_ERF, t, &t, a, 1);   /* no LLVM intrinsic */
  case OP_COS: return cg_intrinsic(cg, "llvm.cos", t, a, 1);
  case OP_RECIPROCAL: return LLVMBuildFDiv(b, cg_const(cg, dt, 1), a[0], "");
  case OP_FLOOR: return cg_intrinsic(cg, "llvm.floor", t, a, 1);
  case OP_CEIL: return cg_intrinsic(cg, "llvm.ceil", t, a, 1);
  case OP_ROUND: return cg_intrinsic(cg, "llvm.roundeven", t, a, 1);
  case OP_SIGN: {
    LLVMValueRef z = cg_const(cg, dt, 0);
    LLVMValueRef pos = fl ? LLVMBuildFCmp(b, LLVMRealOGT, a[0], z, "") : LLVMBuildICmp(b, LLVMIntSGT, a[0], z, "");
    LLVMValueRef neg = fl ? LLVMBuildFCmp(b, LLVMRealOLT, a[0], z, "") : LLVMBuildICmp(b, LLVMIntSLT, a[0], z, "");
    return LLVMBuildSelect(b, pos, cg_const(cg, dt, 1), LLVMBuildSelect(b, neg, cg_const(cg, dt, -1), z, ""), "");
  }
  case OP_SOFTPLUS: {
    /* max(x, 0) + log1p(exp(-|x|)), as the evaluator: exp never overflows.
     * log1p(e) is log(u) * (e / (u - 1)) with u = 1 + e, or e itself where
     * u rounds to 1 (Goldberg's form; log(1 + e) alone would keep none of
     * a small e's digits, and libm's log1p is no outside function of
     * abi.h).  Plain IEEE operations: (u - 1) reassociated to e would undo
     * the correction. */
    LLVMValueRef x = a[0], zero = cg_const(cg, dt, 0), one = cg_const(cg, dt, 1);
    LLVMValueRef relu = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x, zero, "");
    LLVMValueRef ax = cg_intrinsic(cg, "llvm.fabs", t, &x, 1);
    LLVMValueRef e = cg_intrinsic(cg, "llvm.exp", t, (LLVMValueRef[]){LLVMBuildFNeg(b, ax, "")}, 1);
    LLVMValueRef u = LLVMBuildFAdd(b, one, e, "");
    LLVMValueRef ratio = LLVMBuildFDiv(b, e, LLVMBuildFSub(b, u, one, ""), "");
    LLVMValueRef l = LLVMBuildFMul(b, cg_intrinsic(cg, "llvm.log", t, &u, 1), ratio, "");
    LLVMValueRef tiny = LLVMBuildFCmp(b, LLVMRealOEQ, u, one, "");
    return LLVMBuildFAdd(b, relu, LLVMBuildSelect(b, tiny, e, l, ""), "");
  }
  case OP_CLIP: {
    LLVMValueRef lo = cg_const(cg, dt, n->a.lo), hi = cg_const(cg, dt, n->a.hi);
    LLVMValueRef below = fl ? LLVMBuildFCmp(b, LLVMRealOLT, a[0], lo, "") : LLVMBuildICmp(b, LLVMIntSLT, a[0], lo, "");
    LLVMValueRef above = fl ? LLVMBuildFCmp(b, LLVMRealOGT, a[0], hi, "") : LLVMBuildICmp(b, LLVMIntSGT, a[0], hi, "");
    return LLVMBuildSelect(b, below, lo, LLVMBuildSelect(b, above, hi, a[0], ""), "");
  }
  case OP_CAST: return cg_convert(cg, a[0], dt, n->a.dtype);
  case OP_WHERE: return LLVMBuildSelect(b, is_true(cg, a[0]), a[1], a[2], "");
  case OP_BROADCAST: return a[0];
  case OP_SIGMOID_CE: {
    /* max(x, 0) - x*z + log(1 + exp(-|x|)), TF's stable form */
    LLVMValueRef x = a[0], z = a[1], zero = cg_const(cg, dt, 0), one = cg_const(cg, dt, 1);
    LLVMValueRef relu = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x, zero, "");
    LLVMValueRef ax = cg_intrinsic(cg, "llvm.fabs", t, &x, 1);
    LLVMValueRef e = cg_intrinsic(cg, "llvm.exp", t, (LLVMValueRef[]){LLVMBuildFNeg(b, ax, "")}, 1);
    LLVMValueRef l = cg_intrinsic(cg, "llvm.log", t, (LLVMValueRef[]){cg_fast(LLVMBuildFAdd(b, one, e, ""))}, 1);
    return cg_fast(LLVMBuildFAdd(b, cg_fast(LLVMBuildFSub(b, relu, cg_fast(LLVMBuildFMul(b, x, z, "")), "")), l, ""));
  }
  default: break;
  }
  GRADC_ASSERT(!"not an elementwise op");
  return NULL;
}

/* ------------------------------------------------------------ kernels */

/* One element of n: computed here when fuse() inlined n into this loop,
 * loaded from n's buffer (broadcast through its strides) otherwise. */
LLVMValueRef cg_elem(CG *cg, const Node *n, const Node *reader, const Ctx *cx) {
  /* Computed here if fused into this reader; a value that is also stored
   * (several readers) is computed only by the loop it was fused into and
   * loaded by the others - its operands may be gone by then. */
  if (n->inlined_into && (!cg_buffer_node(n) || n->inlined_into == reader)) {
    LLVMValueRef a[3];
    for (int k = 0; k < n->nsrc; k++) a[k] = cg_elem(cg, n->src[k], n, cx);
    LLVMValueRef v = scalar(cg, n, a);
    if (cg_buffer_node(n)) {
      /* computed here and stored for readers in later loops; n has the
       * loop's shape, so its element is at the loop's own offset */
      LLVMValueRef off;
      if (cx->flat) {
        off = cx->i;
      } else {
        LLVMValueRef st[MAX_RANK];
        cg_strides(cg, &n->shape, st);
        off = cg_offset(cg, cx->ns, st);
      }
      cg_store(cg, n, off, v);
    }
    return v;
  }
  if (n->shape.rank == 0) return cg_load(cg, n, cg_int(cg, 0));
  if (cx->flat) return cg_load(cg, n, cx->i);
  LLVMValueRef st[MAX_RANK];
  cg_bstrides(cg, &n->shape, cx->shape, st);
  return cg_load(cg, n, cg_offset(cg, cx->ns, st));
}

/* Does every value the loop reads have the loop's shape (or none)? */
bool cg_flat_tree(const Node *n, const Node *reader, const Shape *s) {
  if (!reader || (n->inlined_into && (!cg_buffer_node(n) || n->inlined_into == reader))) {
    for (int k = 0; k < n->nsrc; k++)
      if (!cg_flat_tree(n->src[k], n, s)) return false;
    return true;
  }
  return n->shape.rank == 0 || shape_eq(&n->shape, s);
}

static void gen_elementwise(CG *cg, const Node *n) {
  LLVMValueRef a[3];
  Ctx cx = {.shape = &n->shape, .flat = cg_flat_tree(n, NULL, &n->shape)};
  if (cx.flat) {
    Loop l;
    cx.i = cg_loop_begin(cg, &l, cg_count(cg, &n->shape));
    for (int k = 0; k < n->nsrc; k++) a[k] = cg_elem(cg, n->src[k], n, &cx);
    cg_store(cg, n, cx.i, scalar(cg, n, a));
    cg_loop_end(cg, &l);
    return;
  }
  LLVMValueRef d[MAX_RANK], ost[MAX_RANK];
  cg_dims(cg, &n->shape, d);
  cg_strides(cg, &n->shape, ost);
  Nest ns;
  cg_nest_begin(cg, &ns, n->shape.rank, d);
  cx.ns = &ns;
  for (int k = 0; k < n->nsrc; k++) a[k] = cg_elem(cg, n->src[k], n, &cx);
  cg_store(cg, n, cg_offset(cg, &ns, ost), scalar(cg, n, a));
  cg_nest_end(cg, &ns);
}

void cg_fill(CG *cg, const Node *n, LLVMValueRef v) {
  Loop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, cg_count(cg, &n->shape));
  cg_store(cg, n, i, v);
  cg_loop_end(cg, &l);
}

/* A reshape that fuse() made a copy (a root viewing a parameter, state or
 * a constant): its operand's elements, in order, into its own buffer. */
static void gen_copy(CG *cg, const Node *n) {
  Loop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, cg_count(cg, &n->shape));
  cg_store(cg, n, i, cg_load(cg, n->src[0], i));
  cg_loop_end(cg, &l);
}

/* Leaves and aliases: their values are already where readers look. */
static void gen_none(CG *cg, const Node *n) { (void)cg, (void)n; }

/* A view reads its operand's buffer, unless fuse() made it a root's copy. */
static void gen_view(CG *cg, const Node *n) {
  if (cg_buffer_node(n) == n) gen_copy(cg, n);
}

/* The replicas' weighted sum of a gradient, by the instance's callback
 * (runtime/context.c: gradc_allreduce, which returns at once when no
 * callback is set), over the node's own storage: fuse() gives it the
 * gradient's buffer when nothing else reads that, else it copies first.
 * The update stage placed it right after the gradient; the callback may
 * finish the sum later, by gen_function's call with no data before its
 * first reader. */
static void gen_allreduce(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  if (!cg_buffer_node(x) || cg_buffer_node(x) != cg_buffer_node(n)) gen_copy(cg, n);
  LLVMTypeRef params[3] = {cg->ptr, cg->i64, cg->i64};
  LLVMValueRef args[3] = {cg_ptr(cg, n), cg_count(cg, &n->shape), cg_int(cg, n->dtype)};
  cg_call(cg, ABI_FN_ALLREDUCE, cg->vd, params, args, 3);
}

/* batch_norm(sync=true)'s statistic: the callback on the node's own copy,
 * then its call without data, so the sum is complete before the next
 * kernel reads it (with an asynchronous callback this also waits for the
 * gradients handed over before it: every replica makes the same calls in
 * the same order, as the collectives under them need). */
static void gen_replica_mean(CG *cg, const Node *n) {
  gen_allreduce(cg, n);
  LLVMTypeRef types[3] = {cg->ptr, cg->i64, cg->i64};
  LLVMValueRef none[3] = {LLVMConstNull(cg->ptr), cg_int(cg, 0), cg_int(cg, 0)};
  cg_call(cg, ABI_FN_ALLREDUCE, cg->vd, types, none, 3);
}

static void gen_slice(CG *cg, const Node *n) {
  cg_slice_walk(cg, n, &n->shape, &n->src[0]->shape, n->src[0], n, false);
}

static void gen_unslice(CG *cg, const Node *n) {
  cg_zero(cg, n);
  cg_slice_walk(cg, n, &n->src[0]->shape, &n->shape, n->src[0], n, true);
}

/* The code generator of every op, from its row of the table: an op whose
 * row names no generator, or one that does not exist, does not compile. */
static CgKernel *const op_gen[OP_COUNT] = {
#define OP(e, name, arity, kind, shape, grad, eval, gen, identity, flags) [OP_##e] = gen,
    GRADC_OPS(OP)
#undef OP
};

static void gen_node(CG *cg, const Node *n) { op_gen[n->op](cg, n); }

/* ------------------------------------------------------------ functions */

/* Nodes that generate no code: no mark, so their (zero) time is not
 * charged to a kernel of their own. */
static bool gen_is_free(const Node *n) {
  return op_gen[n->op] == gen_none || (op_gen[n->op] == gen_view && cg_buffer_node(n) != n);
}

static void profile_mark(CG *cg, int64_t id) {
  LLVMValueRef a = cg_int(cg, id);
  cg_call(cg, ABI_FN_PROFILE_MARK, cg->vd, &cg->i64, &a, 1);
}

/* The symbolic sizes and the storage pointers of the nodes this function
 * reaches (cg->mark), loaded once at its entry. */
static void load_arguments(CG *cg, LLVMValueRef bufs, LLVMValueRef syms) {
  const Graph *g = cg->g;
  cg->sym[0] = cg_int(cg, 1);
  for (int k = 1; k <= g->nsym; k++) {
    LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->i64, syms, (LLVMValueRef[]){cg_int(cg, k)}, 1, "");
    cg->sym[k] = LLVMBuildLoad2(cg->b, cg->i64, p, g->sym[k]);
  }
  memset(cg->base, 0, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  if (cg->args) return;      /* a kernel's: loaded where first used (cg_ptr) */
  for (int i = 0; i < g->nnodes; i++) {
    const Node *s = cg_buffer_node(g->nodes[i]);
    if (!cg->mark[i] || !s || cg->base[s->id]) continue;
    LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->ptr, bufs, (LLVMValueRef[]){cg_int(cg, s->id)}, 1, "");
    cg->base[s->id] = LLVMBuildLoad2(cg->b, cg->ptr, p, s->name ? s->name : "");
  }
}

typedef void GenFn(CG *cg, const Node *n);

/* The function being generated, while an outlined task is: saved by
 * task_begin, put back by task_end. */
typedef struct Outer {
  LLVMValueRef fn, rt, args, *base, sym[MAX_SYMS + 1];
  LLVMBasicBlockRef at;
  int depth;
} Outer;

/* Starts task(rt, buf, sym, part, nparts) (runtime.h: gradc_task), named
 * name: the builder at its entry, its context, symbols and storage
 * loaded as at a function's start. */
static LLVMValueRef task_begin(CG *cg, Outer *o, const char *name) {
  const Graph *g = cg->g;
  *o = (Outer){cg->fn, cg->rt, cg->args, arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes), {0},
               LLVMGetInsertBlock(cg->b), cg->depth};
  memcpy(o->base, cg->base, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  memcpy(o->sym, cg->sym, sizeof o->sym);
  cg->depth = 0;              /* a scan's loop may be open around it */
  LLVMTypeRef params[5] = {cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
  LLVMValueRef task = cg->fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, params, 5, 0));
  LLVMSetLinkage(cg->fn, LLVMInternalLinkage);
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  LLVMAddAttributeAtIndex(cg->fn, 2, LLVMCreateEnumAttribute(cg->ctx, noalias, 0));
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry"));
  cg->rt = LLVMGetParam(cg->fn, 0);
  /* in a kernel, its table (handed on by the runtime) and its slots */
  if (cg->args) cg->args = LLVMGetParam(cg->fn, 1);
  load_arguments(cg, LLVMGetParam(cg->fn, 1), LLVMGetParam(cg->fn, 2));
  return task;
}

/* Ends the task and calls fn(rt, task, buf, sym, n) where it was begun. */
static void task_end(CG *cg, const Outer *o, AbiFunction fn, LLVMValueRef task, LLVMValueRef bufs,
                     LLVMValueRef syms, LLVMValueRef n) {
  LLVMBuildRetVoid(cg->b);
  cg->fn = o->fn, cg->rt = o->rt, cg->args = o->args, cg->depth = o->depth;
  memcpy(cg->base, o->base, sizeof(LLVMValueRef) * (size_t)cg->g->nnodes);
  memcpy(cg->sym, o->sym, sizeof o->sym);
  LLVMPositionBuilderAtEnd(cg->b, o->at);
  LLVMTypeRef pty[4] = {cg->ptr, cg->ptr, cg->ptr, cg->i64};
  LLVMValueRef args[4] = {task, bufs, syms, n};
  cg_call(cg, fn, cg->vd, pty, args, 4);
}

/* Outlines gen(n) - one loop nest whose outermost iterations are
 * independent - into task(rt, buf, sym, part, nparts) running its part-th
 * slice, and calls gradc_parallel(rt, task, buf, sym, elements of n) here. */
static void gen_parallel(CG *cg, const Node *n, GenFn *gen, LLVMValueRef bufs, LLVMValueRef syms,
                         const Shape *work_shape) {
  LLVMValueRef work = cg_count(cg, work_shape);
  char name[64];
  if (cg->kernel_name) snprintf(name, sizeof name, "%s.%d", cg->kernel_name, ++cg->ntasks);
  else snprintf(name, sizeof name, "%s.%d", cg->train ? "train" : "forward", n->id);
  Outer o;
  LLVMValueRef task = task_begin(cg, &o, name);
  cg->part = LLVMGetParam(cg->fn, 3), cg->nparts = LLVMGetParam(cg->fn, 4);
  cg->split = true;
  gen(cg, n);
  GRADC_ASSERT(!cg->split);   /* the generator opened its loop */
  cg->part = cg->nparts = NULL;
  task_end(cg, &o, ABI_FN_PARALLEL, task, bufs, syms, work);
}

/* Large enough to share among threads: a batch-sized value, or a fixed
 * one of at least a megabyte of floats' worth of elements. */
static bool worth_threads(const Shape *s) {
  bool sym = false;
  int64_t c = 1;
  for (int i = 0; i < s->rank; i++) {
    sym |= s->d[i].sym != 0;
    if (!s->d[i].sym) c *= s->d[i].n;
  }
  return sym ? c >= 256 : c >= 1 << 18;
}

/* cg_zero as a loop (a memset per slice after LLVM), so that it splits */
static void gen_zero(CG *cg, const Node *n) { cg_fill(cg, n, cg_const(cg, n->dtype, 0)); }

/* A kernel whose loop nests have independent outer iterations runs them
 * through the thread pool when the code is compiled for several threads;
 * the zeroing before a scatter (col2im, the max-pool gradient) is a nest of
 * its own, so the scatter's parts find it done. */
static void gen_maybe_parallel(CG *cg, const Node *n, LLVMValueRef bufs, LLVMValueRef syms) {
  GenFn *gen = op_info[n->op].flags & (F_ELEMENTWISE | F_PARALLEL) ? op_gen[n->op] : NULL;
  /* In a loop's body a kernel runs once per iteration on one step's
   * values: a hand-off to the pool per kernel costs more than it saves
   * unless the step's value is large. */
  bool parallel = cg->parallel && !(n->a.loop && shape_static_count(&n->shape) < 1 << 16);

  if (n->op == OP_COL2IM && cg_col2im_product(n)) gen = NULL;   /* its own parts, zeroing */
  /* A reduction's work is its operand's elements. */
  const Shape *work = &n->shape;
  if (cg_chunked_reduction(n)) gen = cg_reduce_chunks, work = &n->src[0]->shape;
  bool scatter = (n->op == OP_COL2IM && gen) || n->op == OP_MAXPOOL_GRAD;
  if (!parallel && gen == cg_reduce_chunks && worth_threads(work)) {
    /* the same chunks in one part: the bits do not depend on threads */
    cg->part = cg_int(cg, 0), cg->nparts = cg_int(cg, 1);
    cg_reduce_chunks(cg, n);
    cg->part = cg->nparts = NULL;
    cg_reduce_combine(cg, n);
    return;
  }
  if (!parallel || !gen || !worth_threads(work)) {
    if (scatter) cg_zero(cg, n);
    gen_node(cg, n);
    return;
  }
  if (scatter) gen_parallel(cg, n, gen_zero, bufs, syms, &n->shape);
  gen_parallel(cg, n, gen, bufs, syms, work);
  if (gen == cg_reduce_chunks) cg_reduce_combine(cg, n);
}

/* ------------------------------------------------- loops over rows */

/* The axis of s that is symbolic dimension k itself, -1 when s has none
 * of it, -2 when k appears otherwise (twice, or scaled). */
static int rows_axis(const Shape *s, int k) {
  int at = -1;
  for (int i = 0; i < s->rank; i++)
    if (s->d[i].sym == k) {
      if (at != -1 || s->d[i].n != 1) return -2;
      at = i;
    }
  return at;
}

/* Whether the elements after axis i of a and after axis j of b are the
 * same count (their sizes the same in some order): the rows' stride. */
static bool same_stride(const Shape *a, int i, const Shape *b, int j) {
  int64_t na = 1, nb = 1;
  int sa[MAX_SYMS + 1] = {0}, sb[MAX_SYMS + 1] = {0};
  for (int x = i + 1; x < a->rank; x++) na *= a->d[x].n, sa[a->d[x].sym]++;
  for (int x = j + 1; x < b->rank; x++) nb *= b->d[x].n, sb[b->d[x].sym]++;
  return na == nb && !memcmp(sa + 1, sb + 1, sizeof(int) * MAX_SYMS);
}

/* What loop_rows has seen of the buffers the loop touches: per storage
 * node, the first value read or written in it and the axis of the rows
 * there. */
typedef struct RowsSeen {
  int k;
  const Node **first;
  int *axis;
} RowsSeen;

/* Whether the loop's slices can use x: free of the rows, or holding them
 * on one axis (the first where a kernel reads it densely: dense), with
 * the same rows' stride as every other value in its buffer, so that one
 * offset moves the buffer to a slice's first row. */
static bool rows_use(RowsSeen *rs, const Node *x, bool dense) {
  if (x->op == OP_SIZE) return rows_axis(&x->a.to, rs->k) == -1;   /* a count of the rows */
  int ax = rows_axis(&x->shape, rs->k);
  if (ax == -2 || (dense && ax > 0)) return false;
  const Node *s = cg_buffer_node(x);
  if (!s) return true;
  const Node *f = rs->first[s->id];
  if (!f) {
    rs->first[s->id] = x, rs->axis[s->id] = ax;
    return true;
  }
  int fax = rs->axis[s->id];
  return ax < 0 || fax < 0 ? ax == fax : same_stride(&f->shape, fax, &x->shape, ax);
}

/* Whether kernel n computes each row from the same row of its operands. */
static bool row_local(const Node *n, int k) {
  unsigned f = op_info[n->op].flags;
  const Node *x = n->nsrc ? n->src[0] : NULL;
  if (f & F_RANDOM) return false;            /* its draws are numbered by element */
  if (f & F_ELEMENTWISE) {
    for (int i = 0; i < n->nsrc; i++)        /* broadcast from the right: rows onto rows */
      if (rows_axis(&n->src[i]->shape, k) == 0 && n->src[i]->shape.rank != n->shape.rank) return false;
    return true;
  }
  if (f & F_REDUCTION) return !(n->a.axes & 1u) && rows_axis(&x->shape, k) == 0;
  switch (n->op) {
  case OP_MATMUL: return !n->a.ta && rows_axis(&x->shape, k) == 0 && rows_axis(&n->src[1]->shape, k) == -1;
  case OP_SLICE: case OP_UNSLICE:            /* a symbolic axis is sliced whole */
  case OP_RESHAPE: return rows_axis(&x->shape, k) == 0;
  case OP_TRANSPOSE: return n->a.perm[0] == 0;
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CONCAT: return n->a.axis != 0;
  case OP_TRAIN_SELECT: case OP_CARRY: case OP_SCAN_SLICE: return true;
  default: return false;
  }
}

/* The symbolic dimension whose rows loop l (nodes [begin, end]) can run
 * in slices, each on its own thread from the first step to the last: the
 * body's values hold its rows first, each kernel computes a row from the
 * same row of its operands, and its sequences and stacks hold the rows on
 * an axis other than the loop's.  A recurrent layer's loops (forward and
 * backward) are such loops: its weights' gradients are summed over rows
 * and steps after the loop (autodiff.c: sum_term).  0: none. */
static int loop_rows(const CG *cg, int l, int begin, int end) {
  const Graph *g = cg->g;
  const Node *c = graph_loop_carry(g, l, 0);
  int k = c ? c->shape.d[0].sym : 0;
  if (!k || g->scans[l - 1].len.sym == k) return 0;
  RowsSeen rs = {k, arena_alloc(g->arena, sizeof(Node *) * (size_t)g->nnodes),
                 arena_alloc(g->arena, sizeof(int) * (size_t)g->nnodes)};
  memset(rs.first, 0, sizeof(Node *) * (size_t)g->nnodes);
  for (int i = begin; i <= end; i++) {
    const Node *n = g->nodes[i];
    if (!cg->mark[i]) continue;
    if (n->op != OP_LOOP_END && (rows_axis(&n->shape, k) != 0 || !rows_use(&rs, n, true) || !row_local(n, k)))
      return 0;
    for (int s = 0; s < n->nsrc; s++) {
      const Node *x = n->src[s];
      if (n->op == OP_SCAN_SLICE) {          /* the sequence: any axis but the loop's */
        int ax = rows_axis(&x->shape, k);
        if (ax < 0 || ax == n->a.axis || !rows_use(&rs, x, false)) return 0;
      } else if (x->a.loop != l && !rows_use(&rs, x, true))
        return 0;
    }
  }
  for (int i = end + 1; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_SCAN_STACK || n->src[0] != g->nodes[end] || !cg->mark[i]) continue;
    int ax = rows_axis(&n->shape, k);
    if (ax < 0 || ax == n->a.axis || !rows_use(&rs, n, false)) return 0;
  }
  return k;
}

/* Loop l's iterations, nodes [begin, end], as one native loop. */
static void gen_loop_body(CG *cg, int l, int begin, int end, LLVMValueRef bufs, LLVMValueRef syms) {
  const Graph *g = cg->g;
  const Scan *sc = &g->scans[l - 1];
  Loop lp;
  LLVMValueRef len = cg_dim(cg, sc->len);
  LLVMValueRef iv = cg_loop_begin(cg, &lp, len);
  cg->t = sc->reverse ? LLVMBuildSub(cg->b, LLVMBuildSub(cg->b, len, cg_int(cg, 1), ""), iv, "t") : iv;
  /* storage that moves with the step, set back after the loop */
  LLVMValueRef *base = arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  memcpy(base, cg->base, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  cg_loop_slots(cg, g->nodes[end]);
  int depth = cg->depth;      /* each kernel of the body as at the top */
  cg->depth = 0;
  for (int i = begin; i <= end; i++) {
    const Node *n = g->nodes[i];
    if (!cg->mark[i] || n->inlined_into) continue;
    if (cg->profile && !gen_is_free(n)) profile_mark(cg, i);
    gen_maybe_parallel(cg, n, bufs, syms);
  }
  cg->depth = depth;
  cg_loop_end(cg, &lp);
  memcpy(cg->base, base, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  cg->t = NULL;
}

/* Moves the storage of x to row r0 of the rows' axis, once per buffer. */
static void rows_offset(CG *cg, const Node *x, int k, LLVMValueRef r0, unsigned char *moved) {
  const Node *s = cg_buffer_node(x);
  if (!s || moved[s->id] || !cg->base[s->id]) return;
  moved[s->id] = 1;
  int ax = rows_axis(&x->shape, k);   /* loop_rows: the same stride for all in s */
  if (ax < 0) return;
  LLVMValueRef st[MAX_RANK];
  cg_strides(cg, &x->shape, st);    /* cg->sym still holds the whole batch */
  cg->base[s->id] = cg_elem_ptr(cg, s, cg->base[s->id], LLVMBuildMul(cg->b, r0, st[ax], "row0"));
}

/* Loop l as task(rt, buf, sym, part, nparts) running all its iterations
 * on slice `part` of the rows of symbolic dimension k, and a call of
 * gradc_loop here, which runs the slices on the pool's threads: one
 * hand-off per loop instead of one per step's product, and each row's
 * bits are those it gets in one slice. */
static void gen_loop_rows(CG *cg, int l, int begin, int end, int k, LLVMValueRef bufs, LLVMValueRef syms) {
  const Graph *g = cg->g;
  unsigned char *moved = arena_alloc(g->arena, (size_t)g->nnodes);
  memset(moved, 0, (size_t)g->nnodes);
  char name[64];
  snprintf(name, sizeof name, "%s.loop%d", cg->train ? "train" : "forward", l);
  Outer o;
  LLVMValueRef task = task_begin(cg, &o, name), full[MAX_SYMS + 1];
  LLVMValueRef part = LLVMGetParam(task, 3), nparts = LLVMGetParam(task, 4), all = cg->sym[k];
  LLVMValueRef r0 = LLVMBuildSDiv(cg->b, LLVMBuildMul(cg->b, all, part, ""), nparts, "r0");
  LLVMValueRef r1 = LLVMBuildSDiv(cg->b, LLVMBuildMul(cg->b, all, LLVMBuildAdd(cg->b, part, cg_int(cg, 1), ""), ""),
                                  nparts, "r1");
  for (int i = begin; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!cg->mark[i] || (i > end && !(n->op == OP_SCAN_STACK && n->src[0] == g->nodes[end]))) continue;
    rows_offset(cg, n, k, r0, moved);
    if (i <= end)
      for (int s = 0; s < n->nsrc; s++) rows_offset(cg, n->src[s], k, r0, moved);
  }
  memcpy(full, cg->sym, sizeof full);
  cg->sym[k] = LLVMBuildSub(cg->b, r1, r0, "rows");
  cg->full_sym = full;
  bool parallel = cg->parallel;
  cg->parallel = false;       /* this thread's slice, its kernels serial */
  gen_loop_body(cg, l, begin, end, LLVMGetParam(task, 1), LLVMGetParam(task, 2));
  cg->parallel = parallel;
  cg->full_sym = NULL;
  task_end(cg, &o, ABI_FN_LOOP, task, bufs, syms, o.sym[k]);
}

/* The body of loop l, nodes [begin, its loop_end], as one native loop
 * (codegen_loop.c): in slices of the batch's rows on the pool's threads
 * where its kernels allow (loop_rows), else on this thread; returns the
 * loop_end's id. */
static int gen_loop(CG *cg, int l, int begin, LLVMValueRef bufs, LLVMValueRef syms) {
  const Graph *g = cg->g;
  int end = graph_loop_end(g, l)->id;
  for (int i = begin; i <= end; i++)
    if (cg->mark[i] && g->nodes[i]->op == OP_CARRY) cg_carry_init(cg, g->nodes[i]);
  int k = cg->parallel ? loop_rows(cg, l, begin, end) : 0;
  if (k) {
    gen_loop_rows(cg, l, begin, end, k, bufs, syms);
    return end;
  }
  /* one thread for the loop's per-step products and tasks (gradc_serial) */
  LLVMValueRef on = cg_int(cg, 1), off = cg_int(cg, 0);
  if (cg->parallel) cg_call(cg, ABI_FN_SERIAL, cg->vd, &cg->i64, &on, 1);
  gen_loop_body(cg, l, begin, end, bufs, syms);
  if (cg->parallel) cg_call(cg, ABI_FN_SERIAL, cg->vd, &cg->i64, &off, 1);
  return end;
}

/* Per kernel position of this function: the last allreduce node whose
 * sum the kernel reads (itself or through the nodes fused into it), -1
 * for none. */
static int *sums_read(CG *cg) {
  const Graph *g = cg->g;
  int *need = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nnodes + 1));
  for (int i = 0; i < g->nnodes; i++) need[i] = -1;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!cg->mark[i] || n->op == OP_ALLREDUCE) continue;
    for (int k = 0; k < n->nsrc; k++) {
      if (n->src[k]->op != OP_ALLREDUCE) continue;
      const Node *r = n;
      while (r->inlined_into) r = r->inlined_into;
      if (need[r->id] < n->src[k]->id) need[r->id] = n->src[k]->id;
    }
  }
  return need;
}

/* ------------------------------------------------- kernel functions */

/* The kernels made so far: each one's code as text, so that a kernel
 * whose code is the same as one made before - the forward kernels of every
 * train step and of forward, a layer repeated with the same shapes - is
 * compiled once and called from each place.  The text is the key because
 * it is everything that changes the code, by construction: a key spelt
 * out from the node (op, dtypes, shapes, attributes, the fused tree, the
 * layout, the threads) would have to follow every generator's choices. */
typedef struct KernelCode {
  char *text;
  uint64_t hash;
  LLVMValueRef fn;
} KernelCode;

typedef struct KernelTable {
  KernelCode *k;
  int n, cap;
} KernelTable;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* At most this many elements in every buffer a kernel touches, and no
 * symbolic size: the kernel is optnone (below). */
enum { SMALL_KERNEL = 4096 };

/* Does kernel n (n and the nodes fused into it) touch only small buffers
 * of fixed size - a bias or batch-norm parameter's update, a schedule's
 * scalars?  Such a kernel runs in a microsecond however it is compiled,
 * and LLVM's cost is per function: optnone skips the optimisation
 * pipeline and generates its machine code at -O0 (fast instruction
 * selection and register allocation), a fraction of the time. */
static bool kernel_is_small(const Graph *g, const Node *n) {
  for (int i = 0; i <= n->id; i++) {
    const Node *m = g->nodes[i], *p = m;
    while (p && p != n) p = p->inlined_into;
    if (!p) continue;
    for (int k = -1; k < m->nsrc; k++) {
      const Shape *sh = k < 0 ? &m->shape : &m->src[k]->shape;
      int64_t count = 1;
      for (int d = 0; d < sh->rank; d++) {
        if (sh->d[d].sym) return false;
        count *= sh->d[d].n;
        if (count > SMALL_KERNEL) return false;
      }
    }
  }
  return true;
}

/* Kernel n as the function name(rt, args, sym) in cg->mod, args the
 * pointers of the buffers it uses in the order its code first uses them
 * (cg->slots), so that the same code over other buffers is the same
 * function; its tasks are name.1, name.2... */
static LLVMValueRef build_kernel(CG *cg, const Node *n, const char *name) {
  const Graph *g = cg->g;
  LLVMTypeRef params[3] = {cg->ptr, cg->ptr, cg->ptr};
  LLVMValueRef fn = cg->fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, params, 3, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
  if (!llvm_defaults() && kernel_is_small(g, n)) {
    unsigned optnone = LLVMGetEnumAttributeKindForName("optnone", 7);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, optnone, 0));
  }
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  cg->rt = LLVMGetParam(fn, 0);
  cg->args = LLVMGetParam(fn, 1);
  cg->kernel_name = name;
  cg->ntasks = 0;
  cg->nslots = 0;
  memset(cg->slot, 0, sizeof(int) * (size_t)g->nnodes);
  load_arguments(cg, cg->args, LLVMGetParam(fn, 2));
  gen_maybe_parallel(cg, n, cg->args, LLVMGetParam(fn, 2));
  LLVMBuildRetVoid(cg->b);
  return fn;
}

/* Kernel n as a function of its own (build_kernel), and here a call of
 * it - or of the same code made before.  One function per kernel keeps
 * LLVM's work per function small (GVN, SLP, instruction combining and
 * register allocation grow faster than the function), noinline so that
 * the step does not become one function again.  The kernel is first
 * built alone in a scratch module, whose text is the key: printing one
 * function of the whole module costs time in proportion to the module
 * (LLVM's slot tracker walks all of it), which made resnet_small's IR
 * generation ten times slower; only a new kernel is built again, in the
 * module. */
static void gen_kernel(CG *cg, const Node *n, LLVMValueRef syms) {
  const Graph *g = cg->g;
  KernelTable *kt = cg->kernels;
  Outer o = {cg->fn, cg->rt, cg->args, arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes), {0},
             LLVMGetInsertBlock(cg->b), cg->depth};
  memcpy(o.base, cg->base, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  memcpy(o.sym, cg->sym, sizeof o.sym);

  LLVMModuleRef mod = cg->mod;
  cg->mod = LLVMModuleCreateWithNameInContext("kernel", cg->ctx);
  build_kernel(cg, n, "kernel");
  char *text = LLVMPrintModuleToString(cg->mod);
  LLVMDisposeModule(cg->mod);
  cg->mod = mod;
  uint64_t h = fnv1a(text);
  LLVMValueRef callee = NULL;
  for (int i = 0; i < kt->n && !callee; i++)
    if (kt->k[i].hash == h && !strcmp(kt->k[i].text, text)) callee = kt->k[i].fn;
  if (callee) {
    LLVMDisposeMessage(text);
  } else {
    if (kt->n == kt->cap) {
      kt->cap = kt->cap ? 2 * kt->cap : 64;
      kt->k = realloc(kt->k, sizeof *kt->k * (size_t)kt->cap);
      GRADC_ASSERT(kt->k);
    }
    char *name = arena_printf(g->arena, "kernel%d", kt->n);
    callee = build_kernel(cg, n, name);
    kt->k[kt->n++] = (KernelCode){text, h, callee};
  }
  cg->kernel_name = NULL;

  /* back in the step: the table of this call's buffers, and the call */
  cg->fn = o.fn, cg->rt = o.rt, cg->args = o.args, cg->depth = o.depth;
  memcpy(cg->base, o.base, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  memcpy(cg->sym, o.sym, sizeof o.sym);
  LLVMPositionBuilderAtEnd(cg->b, o.at);
  LLVMValueRef table = cg_entry_alloca(cg, LLVMArrayType2(cg->ptr, (uint64_t)(cg->nslots ? cg->nslots : 1)), "args");
  for (int j = 0; j < cg->nslots; j++) {
    LLVMValueRef at = cg_int(cg, j), p = cg->base[cg->slots[j]->id];
    GRADC_ASSERT(p);
    LLVMBuildStore(cg->b, p, LLVMBuildGEP2(cg->b, cg->ptr, table, &at, 1, ""));
  }
  LLVMTypeRef params[3] = {cg->ptr, cg->ptr, cg->ptr};
  LLVMValueRef args[3] = {cg->rt, table, syms};
  LLVMBuildCall2(cg->b, LLVMFunctionType(cg->vd, params, 3, 0), callee, args, 3, "");
}

static void gen_function(CG *cg, const char *name, Node *const *roots, int nroots, bool train) {
  const Graph *g = cg->g;
  cg->train = train;
  LLVMTypeRef params[3] = {cg->ptr, cg->ptr, cg->ptr};
  LLVMTypeRef fty = LLVMFunctionType(cg->vd, params, 3, 0);
  cg->fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(cg->fn, LLVMExternalLinkage);
  cg->rt = LLVMGetParam(cg->fn, 0);
  LLVMValueRef bufs = LLVMGetParam(cg->fn, 1), syms = LLVMGetParam(cg->fn, 2);
  /* The buffer table is never written through by the step itself. */
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  LLVMAddAttributeAtIndex(cg->fn, 2, LLVMCreateEnumAttribute(cg->ctx, noalias, 0));
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, entry);
  graph_mark_needed(g, roots, nroots, train, cg->mark);
  load_arguments(cg, bufs, syms);
  int *need = sums_read(cg), started = -1, waited = -1;
  bool calls_only = true;   /* every kernel a call: no loop of a scan here */
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!cg->mark[i] || n->inlined_into) continue;
    /* The callback's chance to wait for reductions it runs asynchronously:
     * before a kernel (or a loop) that reads a sum handed over since the
     * last wait.  The updates of a parameter may come before the last
     * gradient (dce orders nodes by the assigns' operands), so a step may
     * wait more than once. */
    const Node *e = n->a.loop ? graph_loop_end(g, n->a.loop) : NULL;
    int want = -1;
    for (int k = i; k <= (e ? e->id : i); k++) want = need[k] > want ? need[k] : want;
    if (want > waited) {
      LLVMTypeRef types[3] = {cg->ptr, cg->i64, cg->i64};
      LLVMValueRef none[3] = {LLVMConstNull(cg->ptr), cg_int(cg, 0), cg_int(cg, 0)};
      cg_call(cg, ABI_FN_ALLREDUCE, cg->vd, types, none, 3);
      waited = started;
    }
    if (n->op == OP_ALLREDUCE) started = i;
    if (n->a.loop) {
      i = gen_loop(cg, n->a.loop, i, bufs, syms);
      calls_only = false;
      continue;
    }
    if (cg->profile && !gen_is_free(n)) profile_mark(cg, i);
    if (gen_is_free(n)) gen_maybe_parallel(cg, n, bufs, syms);
    else gen_kernel(cg, n, syms);
  }
  if (cg->profile) profile_mark(cg, -1);
  LLVMBuildRetVoid(cg->b);
  /* A step that is a list of calls has nothing to optimise, but LLVM's
   * pipeline still works on it: the SLP vectorizer alone took 100 ms of
   * resnet_small's step, pairing the stores that fill the kernels'
   * tables.  optnone skips it (and needs noinline); a scan's loop stays
   * inline and optimised. */
  if (calls_only) {
    const char *attrs[] = {"optnone", "noinline"};
    for (int k = 0; k < 2; k++) {
      unsigned kind = LLVMGetEnumAttributeKindForName(attrs[k], strlen(attrs[k]));
      LLVMAddAttributeAtIndex(cg->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
    }
  }
}

static void gen_constants(CG *cg) {
  for (int i = 0; i < cg->g->nnodes; i++) {
    const Node *n = cg->g->nodes[i];
    if (n->op != OP_CONST || n->shape.rank == 0) continue;
    int64_t c = shape_static_count(&n->shape);
    LLVMValueRef *vals = arena_alloc(cg->g->arena, sizeof(LLVMValueRef) * (size_t)(c ? c : 1));
    for (int64_t k = 0; k < c; k++) vals[k] = cg_const(cg, n->dtype, n->a.values[k]);
    LLVMTypeRef at = LLVMArrayType2(cg_type(cg, n->dtype), (uint64_t)c);
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, at, "const");
    LLVMSetInitializer(gv, LLVMConstArray2(cg_type(cg, n->dtype), vals, (uint64_t)c));
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    cg->global[i] = gv;
  }
}

const char *cg_function_name(const Graph *g, int fn) {
  return fn == 0 ? "forward" : arena_printf(g->arena, "step_%s", g->steps[fn - 1].name);
}

LLVMModuleRef cg_module(LLVMContextRef ctx, const Graph *g, const char *prefix, bool profile,
                        bool parallel) {
  CG cgv = {.ctx = ctx, .g = g, .profile = profile, .parallel = parallel}, *cg = &cgv;
  cg->mod = LLVMModuleCreateWithNameInContext(g->model_name, ctx);
  cg->b = LLVMCreateBuilderInContext(ctx);
  cg->i1 = LLVMInt1TypeInContext(ctx);
  cg->i8 = LLVMInt8TypeInContext(ctx);
  cg->i32 = LLVMInt32TypeInContext(ctx);
  cg->i64 = LLVMInt64TypeInContext(ctx);
  cg->f32 = LLVMFloatTypeInContext(ctx);
  cg->f64 = LLVMDoubleTypeInContext(ctx);
  cg->ptr = LLVMPointerTypeInContext(ctx, 0);
  cg->vd = LLVMVoidTypeInContext(ctx);
  cg->base = arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  cg->global = arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  cg->mark = arena_alloc(g->arena, (size_t)g->nnodes);
  cg->slot = arena_alloc(g->arena, sizeof(int) * (size_t)g->nnodes);
  cg->slots = arena_alloc(g->arena, sizeof(Node *) * (size_t)g->nnodes);
  KernelTable kernels = {0};
  cg->kernels = &kernels;
  gen_constants(cg);

  Node **roots = arena_alloc(g->arena, sizeof(Node *) * (size_t)graph_max_roots(g));
  for (int f = 0; f < graph_nfunctions(g); f++) {
    int n = graph_function_roots(g, f, roots);
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, cg_function_name(g, f));
    gen_function(cg, name, roots, n, f > 0);
  }
  LLVMDisposeBuilder(cg->b);
  for (int i = 0; i < kernels.n; i++) LLVMDisposeMessage(kernels.k[i].text);
  free(kernels.k);
  return cg->mod;
}
