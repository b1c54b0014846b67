/*
 * codegen.c - the graph as LLVM IR, through the LLVM C API.
 *
 * Input: a graph after autodiff.  Output: one LLVM module with two
 * functions of the same signature,
 *
 *     void forward(void **buf, const int64_t *sym);
 *     void train_step(void **buf, const int64_t *sym);
 *
 * where buf[i] is the storage of node i (see cg_buffer_node) and sym[k] the
 * run-time value of symbolic dimension k (sym[0] is 1).  forward computes
 * outputs, metrics and the loss; train_step computes the whole graph,
 * updates included.  Neither allocates: every buffer comes from the caller.
 * Both come from the same graph: a train_select node is the one place they
 * differ, each function following only its own operand of it (dropout's
 * mask, batch norm's batch statistics exist in train_step alone).
 *
 * Each node becomes a loop nest in execution order.  Elementwise ops read
 * broadcast operands through strides of 0 (no broadcast is materialised);
 * same-shape operands get one flat loop that LLVM vectorises.  Matrix
 * products call cblas_sgemm/dgemm with transposes as flags; convolutions
 * reach them as im2col + matmul, the window ops (im2col, col2im, pooling
 * and their gradients) being loops over output positions, kernel taps and,
 * innermost, contiguous channels.  Scalar
 * constants become immediates; tensor constants module globals; reshapes
 * alias their operand's storage.
 *
 * LLVM's C API appears only here and in jit.c (STYLE: one file per library).
 */
#include <llvm-c/Core.h>
#include <math.h>
#include <string.h>

#include "compiler.h"
#include "llvm_internal.h"

typedef struct CG {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  const Graph *g;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vd;
  LLVMValueRef fn;
  LLVMValueRef sym[MAX_SYMS + 1];   /* i64 values, loaded at entry */
  LLVMValueRef *base;               /* per node: its storage pointer in fn */
  LLVMValueRef *global;             /* per node: tensor constant globals */
  bool *mark;
  bool train;                       /* generating train_step, not forward */
} CG;

/* ------------------------------------------------------------ storage */

const Node *cg_buffer_node(const Node *n) { return n->storage; }

/* ------------------------------------------------------------ helpers */

static LLVMTypeRef ty(CG *cg, DType t) {
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

static LLVMValueRef ci(CG *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

static LLVMValueRef cval(CG *cg, DType t, double v) {
  if (dtype_is_float(t)) return LLVMConstReal(ty(cg, t), v);
  return LLVMConstInt(ty(cg, t), (unsigned long long)(int64_t)v, 1);
}

static LLVMValueRef dim(CG *cg, Dim d) {
  LLVMValueRef n = ci(cg, d.n);
  return d.sym ? LLVMBuildMul(cg->b, n, cg->sym[d.sym], "dim") : n;
}

static LLVMValueRef count(CG *cg, const Shape *s) {
  LLVMValueRef c = ci(cg, 1);
  for (int i = 0; i < s->rank; i++) c = LLVMBuildMul(cg->b, c, dim(cg, s->d[i]), "count");
  return c;
}

/* Element strides of s, row-major. */
static void strides(CG *cg, const Shape *s, LLVMValueRef *st) {
  LLVMValueRef acc = ci(cg, 1);
  for (int i = s->rank - 1; i >= 0; i--) {
    st[i] = acc;
    acc = LLVMBuildMul(cg->b, acc, dim(cg, s->d[i]), "stride");
  }
}

/* Strides of operand s read as if broadcast to out (right-aligned): 0 on
 * axes it lacks or holds as 1. */
static void bstrides(CG *cg, const Shape *s, const Shape *out, LLVMValueRef *st) {
  LLVMValueRef own[MAX_RANK];
  strides(cg, s, own);
  int lead = out->rank - s->rank;
  for (int i = 0; i < out->rank; i++) {
    int j = i - lead;
    bool bcast = j < 0 || (dim_is_one(s->d[j]) && !dim_is_one(out->d[i]));
    st[i] = bcast ? ci(cg, 0) : own[j];
  }
}

static LLVMValueRef fm(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
  return v;
}

static LLVMValueRef intrinsic(CG *cg, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                              int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  GRADC_ASSERT(id);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &t, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &t, 1);
  return fm(LLVMBuildCall2(cg->b, ft, f, args, (unsigned)nargs, ""));
}

static LLVMValueRef libm(CG *cg, const char *fname, LLVMTypeRef t, LLVMValueRef x) {
  LLVMTypeRef ft = LLVMFunctionType(t, &t, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, fname);
  if (!f) f = LLVMAddFunction(cg->mod, fname, ft);
  return LLVMBuildCall2(cg->b, ft, f, &x, 1, "");
}

static LLVMValueRef elem_ptr(CG *cg, const Node *n, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildGEP2(cg->b, ty(cg, n->dtype), base, &off, 1, "");
}

static LLVMValueRef ptr_of(CG *cg, const Node *n) {
  const Node *s = cg_buffer_node(n);
  if (s) return cg->base[s->id];
  while (n->op == OP_RESHAPE) n = n->src[0];
  GRADC_ASSERT(n->op == OP_CONST && n->shape.rank > 0);
  return cg->global[n->id];
}

/* The value of element `off` of n: immediates for scalar constants and
 * sizes, loads otherwise. */
static LLVMValueRef load(CG *cg, const Node *n, LLVMValueRef off) {
  while (n->op == OP_RESHAPE) n = n->src[0];      /* same elements, same order */
  if (n->op == OP_CONST && n->shape.rank == 0) return cval(cg, n->dtype, n->a.values[0]);
  if (n->op == OP_SIZE) {
    LLVMValueRef c = count(cg, &n->a.to);
    return dtype_is_float(n->dtype) ? LLVMBuildSIToFP(cg->b, c, ty(cg, n->dtype), "")
                                    : LLVMBuildTrunc(cg->b, c, ty(cg, n->dtype), "");
  }
  return LLVMBuildLoad2(cg->b, ty(cg, n->dtype), elem_ptr(cg, n, ptr_of(cg, n), off), "");
}

static void store(CG *cg, const Node *n, LLVMValueRef off, LLVMValueRef v) {
  LLVMBuildStore(cg->b, v, elem_ptr(cg, n, ptr_of(cg, n), off));
}

/* ------------------------------------------------------------ loops */

typedef struct Loop {
  LLVMBasicBlockRef head, body, exit, pre;
  LLVMValueRef iv;
} Loop;

/* for (iv = 0; iv < n; iv++) { ...code emitted until loop_end... } */
static LLVMValueRef loop_begin(CG *cg, Loop *l, LLVMValueRef n) {
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

static void loop_end(CG *cg, Loop *l) {
  LLVMValueRef next = LLVMBuildAdd(cg->b, l->iv, ci(cg, 1), "next");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMBuildBr(cg->b, l->head);
  LLVMValueRef in_v[2] = {ci(cg, 0), next};
  LLVMBasicBlockRef in_b[2] = {l->pre, latch};
  LLVMAddIncoming(l->iv, in_v, in_b, 2);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

/* A nest over dims d[0..rank-1]; idx[i] are the induction variables. */
typedef struct Nest {
  int rank;
  Loop l[MAX_RANK];
  LLVMValueRef idx[MAX_RANK];
} Nest;

static void nest_begin(CG *cg, Nest *ns, int rank, LLVMValueRef *d) {
  ns->rank = rank;
  for (int i = 0; i < rank; i++) ns->idx[i] = loop_begin(cg, &ns->l[i], d[i]);
}

static void nest_end(CG *cg, Nest *ns) {
  for (int i = ns->rank - 1; i >= 0; i--) loop_end(cg, &ns->l[i]);
}

/* sum_i idx[i] * st[i] */
static LLVMValueRef offset(CG *cg, const Nest *ns, LLVMValueRef *st) {
  LLVMValueRef o = ci(cg, 0);
  for (int i = 0; i < ns->rank; i++)
    o = LLVMBuildAdd(cg->b, o, LLVMBuildMul(cg->b, ns->idx[i], st[i], ""), "off");
  return o;
}

static void dims_of(CG *cg, const Shape *s, LLVMValueRef *d) {
  for (int i = 0; i < s->rank; i++) d[i] = dim(cg, s->d[i]);
}

/* ------------------------------------------------------------ scalar ops */

static LLVMValueRef to_bool(CG *cg, LLVMValueRef c) {
  return LLVMBuildZExt(cg->b, c, cg->i8, "");
}

static LLVMValueRef is_true(CG *cg, LLVMValueRef v) {
  return LLVMBuildICmp(cg->b, LLVMIntNE, v, LLVMConstInt(cg->i8, 0, 0), "");
}

/* Python's a // b for ints; 0 when b is 0, as the evaluator. */
static LLVMValueRef floor_div(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMTypeRef t) {
  LLVMValueRef zero = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0);
  LLVMValueRef bz = LLVMBuildICmp(cg->b, LLVMIntEQ, b, zero, "");
  LLVMValueRef safe = LLVMBuildSelect(cg->b, bz, one, b, "");
  LLVMValueRef q = LLVMBuildSDiv(cg->b, a, safe, ""), r = LLVMBuildSRem(cg->b, a, safe, "");
  LLVMValueRef adj = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntNE, r, zero, ""),
                                  LLVMBuildICmp(cg->b, LLVMIntNE,
                                                LLVMBuildICmp(cg->b, LLVMIntSLT, a, zero, ""),
                                                LLVMBuildICmp(cg->b, LLVMIntSLT, safe, zero, ""), ""),
                                  "");
  q = LLVMBuildSub(cg->b, q, LLVMBuildZExt(cg->b, adj, t, ""), "");
  return LLVMBuildSelect(cg->b, bz, zero, q, "");
}

static LLVMValueRef convert(CG *cg, LLVMValueRef x, DType from, DType to) {
  if (from == to) return x;
  LLVMTypeRef t = ty(cg, to);
  if (to == DT_BOOL) {
    LLVMValueRef c = dtype_is_float(from)
                         ? LLVMBuildFCmp(cg->b, LLVMRealUNE, x, LLVMConstReal(ty(cg, from), 0), "")
                         : LLVMBuildICmp(cg->b, LLVMIntNE, x, LLVMConstInt(ty(cg, from), 0, 0), "");
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
static LLVMValueRef scalar(CG *cg, const Node *n, LLVMValueRef *a) {
  LLVMBuilderRef b = cg->b;
  DType dt = n->src[0]->dtype;
  LLVMTypeRef t = ty(cg, dt);
  bool fl = dtype_is_float(dt);
  switch (n->op) {
  case OP_ADD: return fl ? fm(LLVMBuildFAdd(b, a[0], a[1], "")) : LLVMBuildAdd(b, a[0], a[1], "");
  case OP_SUB: return fl ? fm(LLVMBuildFSub(b, a[0], a[1], "")) : LLVMBuildSub(b, a[0], a[1], "");
  case OP_MUL: return fl ? fm(LLVMBuildFMul(b, a[0], a[1], "")) : LLVMBuildMul(b, a[0], a[1], "");
  case OP_DIV: return fl ? fm(LLVMBuildFDiv(b, a[0], a[1], "")) : floor_div(cg, a[0], a[1], t);
  case OP_POW: return intrinsic(cg, "llvm.pow", t, a, 2);
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
    if (fl) return intrinsic(cg, "llvm.fabs", t, a, 1);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, a[0], LLVMConstInt(t, 0, 0), ""),
                           LLVMBuildNeg(b, a[0], ""), a[0], "");
  case OP_SQUARE: return fl ? fm(LLVMBuildFMul(b, a[0], a[0], "")) : LLVMBuildMul(b, a[0], a[0], "");
  case OP_RELU: {
    LLVMValueRef z = cval(cg, dt, 0);
    LLVMValueRef c = fl ? LLVMBuildFCmp(b, LLVMRealOGT, a[0], z, "") : LLVMBuildICmp(b, LLVMIntSGT, a[0], z, "");
    return LLVMBuildSelect(b, c, a[0], z, "");
  }
  case OP_SIGMOID: {
    LLVMValueRef e = intrinsic(cg, "llvm.exp", t, (LLVMValueRef[]){LLVMBuildFNeg(b, a[0], "")}, 1);
    return fm(LLVMBuildFDiv(b, cval(cg, dt, 1), fm(LLVMBuildFAdd(b, cval(cg, dt, 1), e, "")), ""));
  }
  case OP_TANH: return libm(cg, dt == DT_F32 ? "tanhf" : "tanh", t, a[0]);
  case OP_EXP: return intrinsic(cg, "llvm.exp", t, a, 1);
  case OP_LOG: return intrinsic(cg, "llvm.log", t, a, 1);
  case OP_SQRT: return intrinsic(cg, "llvm.sqrt", t, a, 1);
  case OP_CLIP: {
    LLVMValueRef lo = cval(cg, dt, n->a.lo), hi = cval(cg, dt, n->a.hi);
    LLVMValueRef below = fl ? LLVMBuildFCmp(b, LLVMRealOLT, a[0], lo, "") : LLVMBuildICmp(b, LLVMIntSLT, a[0], lo, "");
    LLVMValueRef above = fl ? LLVMBuildFCmp(b, LLVMRealOGT, a[0], hi, "") : LLVMBuildICmp(b, LLVMIntSGT, a[0], hi, "");
    return LLVMBuildSelect(b, below, lo, LLVMBuildSelect(b, above, hi, a[0], ""), "");
  }
  case OP_CAST: return convert(cg, a[0], dt, n->a.dtype);
  case OP_WHERE: return LLVMBuildSelect(b, is_true(cg, a[0]), a[1], a[2], "");
  case OP_BROADCAST: return a[0];
  case OP_SIGMOID_CE: {
    /* max(x, 0) - x*z + log(1 + exp(-|x|)), TF's stable form */
    LLVMValueRef x = a[0], z = a[1], zero = cval(cg, dt, 0), one = cval(cg, dt, 1);
    LLVMValueRef relu = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x, zero, "");
    LLVMValueRef ax = intrinsic(cg, "llvm.fabs", t, &x, 1);
    LLVMValueRef e = intrinsic(cg, "llvm.exp", t, (LLVMValueRef[]){LLVMBuildFNeg(b, ax, "")}, 1);
    LLVMValueRef l = intrinsic(cg, "llvm.log", t, (LLVMValueRef[]){fm(LLVMBuildFAdd(b, one, e, ""))}, 1);
    return fm(LLVMBuildFAdd(b, fm(LLVMBuildFSub(b, relu, fm(LLVMBuildFMul(b, x, z, "")), "")), l, ""));
  }
  default: break;
  }
  GRADC_ASSERT(!"not an elementwise op");
  return NULL;
}

/* ------------------------------------------------------------ kernels */

/* The loop an element is computed in: a flat index over `shape` when every
 * value read has that shape or is a scalar, else a nest of its axes. */
typedef struct Ctx {
  const Shape *shape;
  bool flat;
  LLVMValueRef i;
  const Nest *ns;
} Ctx;

/* One element of n: computed here when fuse() inlined n into this loop,
 * loaded from n's buffer (broadcast through its strides) otherwise. */
static LLVMValueRef elem(CG *cg, const Node *n, const Node *reader, const Ctx *cx) {
  /* Computed here if fused into this reader; a value that is also stored
   * (several readers) is computed only by the loop it was fused into and
   * loaded by the others - its operands may be gone by then. */
  if (n->inlined_into && (!cg_buffer_node(n) || n->inlined_into == reader)) {
    LLVMValueRef a[3];
    for (int k = 0; k < n->nsrc; k++) a[k] = elem(cg, n->src[k], n, cx);
    LLVMValueRef v = scalar(cg, n, a);
    if (cg_buffer_node(n)) {
      /* computed here and stored for readers in later loops; n has the
       * loop's shape, so its element is at the loop's own offset */
      LLVMValueRef off;
      if (cx->flat) {
        off = cx->i;
      } else {
        LLVMValueRef st[MAX_RANK];
        strides(cg, &n->shape, st);
        off = offset(cg, cx->ns, st);
      }
      store(cg, n, off, v);
    }
    return v;
  }
  if (n->shape.rank == 0) return load(cg, n, ci(cg, 0));
  if (cx->flat) return load(cg, n, cx->i);
  LLVMValueRef st[MAX_RANK];
  bstrides(cg, &n->shape, cx->shape, st);
  return load(cg, n, offset(cg, cx->ns, st));
}

/* Does every value the loop reads have the loop's shape (or none)? */
static bool flat_tree(const Node *n, const Node *reader, const Shape *s) {
  if (!reader || (n->inlined_into && (!cg_buffer_node(n) || n->inlined_into == reader))) {
    for (int k = 0; k < n->nsrc; k++)
      if (!flat_tree(n->src[k], n, s)) return false;
    return true;
  }
  return n->shape.rank == 0 || shape_eq(&n->shape, s);
}

static void gen_elementwise(CG *cg, const Node *n) {
  LLVMValueRef a[3];
  Ctx cx = {.shape = &n->shape, .flat = flat_tree(n, NULL, &n->shape)};
  if (cx.flat) {
    Loop l;
    cx.i = loop_begin(cg, &l, count(cg, &n->shape));
    for (int k = 0; k < n->nsrc; k++) a[k] = elem(cg, n->src[k], n, &cx);
    store(cg, n, cx.i, scalar(cg, n, a));
    loop_end(cg, &l);
    return;
  }
  LLVMValueRef d[MAX_RANK], ost[MAX_RANK];
  dims_of(cg, &n->shape, d);
  strides(cg, &n->shape, ost);
  Nest ns;
  nest_begin(cg, &ns, n->shape.rank, d);
  cx.ns = &ns;
  for (int k = 0; k < n->nsrc; k++) a[k] = elem(cg, n->src[k], n, &cx);
  store(cg, n, offset(cg, &ns, ost), scalar(cg, n, a));
  nest_end(cg, &ns);
}

static void fill(CG *cg, const Node *n, LLVMValueRef v) {
  Loop l;
  LLVMValueRef i = loop_begin(cg, &l, count(cg, &n->shape));
  store(cg, n, i, v);
  loop_end(cg, &l);
}

/* sum/mean/max/min: initialise, accumulate over the operand, scale. */
static void gen_reduce(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  DType dt = n->dtype;
  bool fl = dtype_is_float(dt);
  double init = n->op == OP_MAX ? -INFINITY : n->op == OP_MIN ? INFINITY : 0;
  if (!fl && n->op == OP_MAX) init = (double)INT32_MIN;
  if (!fl && n->op == OP_MIN) init = (double)INT32_MAX;
  fill(cg, n, cval(cg, dt, init));
  LLVMValueRef d[MAX_RANK], xs[MAX_RANK], os[MAX_RANK], ost[MAX_RANK];
  dims_of(cg, &x->shape, d);
  strides(cg, &x->shape, xs);
  strides(cg, &n->shape, ost);
  /* output stride per operand axis: 0 on reduced axes */
  for (int i = 0, j = 0; i < x->shape.rank; i++) {
    bool red = n->a.axes & (1u << i);
    os[i] = red ? ci(cg, 0) : ost[j];
    if (!red || n->a.keepdims) j++;
  }
  Nest ns;
  nest_begin(cg, &ns, x->shape.rank, d);
  LLVMValueRef o = offset(cg, &ns, os);
  Ctx cx = {.shape = &x->shape, .ns = &ns};
  LLVMValueRef v = convert(cg, elem(cg, x, n, &cx), x->dtype, dt);
  LLVMValueRef acc = load(cg, n, o), r;
  LLVMBuilderRef b = cg->b;
  if (n->op == OP_MAX || n->op == OP_MIN) {
    bool mx = n->op == OP_MAX;
    /* fmax semantics as the evaluator: a NaN operand loses */
    LLVMValueRef c = fl ? LLVMBuildFCmp(b, mx ? LLVMRealOGT : LLVMRealOLT, v, acc, "")
                        : LLVMBuildICmp(b, mx ? LLVMIntSGT : LLVMIntSLT, v, acc, "");
    r = LLVMBuildSelect(b, c, v, acc, "");
  } else {
    r = fl ? LLVMBuildFAdd(b, acc, v, "") : LLVMBuildAdd(b, acc, v, "");
    if (fl) LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  }
  store(cg, n, o, r);
  nest_end(cg, &ns);
  if (n->op == OP_MEAN) {
    /* divide by the number of elements reduced into each output */
    LLVMValueRef per = LLVMBuildSDiv(b, count(cg, &x->shape), count(cg, &n->shape), "");
    LLVMValueRef pf = LLVMBuildSIToFP(b, per, ty(cg, dt), "");
    Loop l;
    LLVMValueRef i = loop_begin(cg, &l, count(cg, &n->shape));
    store(cg, n, i, fm(LLVMBuildFDiv(b, load(cg, n, i), pf, "")));
    loop_end(cg, &l);
  }
}

/* outer x len x inner around one axis of s */
static void around(CG *cg, const Shape *s, int axis, LLVMValueRef *outer, LLVMValueRef *len,
                   LLVMValueRef *inner) {
  *outer = ci(cg, 1), *inner = ci(cg, 1), *len = dim(cg, s->d[axis]);
  for (int i = 0; i < axis; i++) *outer = LLVMBuildMul(cg->b, *outer, dim(cg, s->d[i]), "");
  for (int i = axis + 1; i < s->rank; i++) *inner = LLVMBuildMul(cg->b, *inner, dim(cg, s->d[i]), "");
}

/* Index of element j of row (o, in) in an outer x len x inner layout. */
static LLVMValueRef at3(CG *cg, LLVMValueRef o, LLVMValueRef j, LLVMValueRef in, LLVMValueRef len,
                        LLVMValueRef inner) {
  LLVMBuilderRef b = cg->b;
  return LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, o, len, ""), j, ""), inner, ""),
                      in, "");
}

/* A running value in a stack slot, so that loops can update it. */
static LLVMValueRef slot(CG *cg, LLVMTypeRef t, LLVMValueRef init) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(cg->b, first);
  else LLVMPositionBuilderAtEnd(cg->b, entry);
  LLVMValueRef s = LLVMBuildAlloca(cg->b, t, "acc");
  LLVMPositionBuilderAtEnd(cg->b, cur);
  LLVMBuildStore(cg->b, init, s);
  return s;
}

/* softmax / log_softmax along n->a.axis: max, sum of exp, normalise. */
static void gen_softmax(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  DType dt = n->dtype;
  LLVMTypeRef t = ty(cg, dt);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef outer, len, inner;
  around(cg, &n->shape, n->a.axis, &outer, &len, &inner);
  Loop lo, li, l1, l2, l3;
  LLVMValueRef o = loop_begin(cg, &lo, outer);
  LLVMValueRef in = loop_begin(cg, &li, inner);
  LLVMValueRef mx = slot(cg, t, cval(cg, dt, -INFINITY)), sum = slot(cg, t, cval(cg, dt, 0));
  LLVMValueRef j = loop_begin(cg, &l1, len);
  LLVMValueRef v = load(cg, x, at3(cg, o, j, in, len, inner)), m = LLVMBuildLoad2(b, t, mx, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, m, ""), v, m, ""), mx);
  loop_end(cg, &l1);
  LLVMValueRef mv = LLVMBuildLoad2(b, t, mx, "max");
  j = loop_begin(cg, &l2, len);
  LLVMValueRef z = fm(LLVMBuildFSub(b, load(cg, x, at3(cg, o, j, in, len, inner)), mv, ""));
  LLVMValueRef e = intrinsic(cg, "llvm.exp", t, &z, 1);
  LLVMValueRef s = LLVMBuildFAdd(b, LLVMBuildLoad2(b, t, sum, ""), e, "");
  LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  LLVMBuildStore(b, s, sum);
  if (n->op == OP_SOFTMAX) store(cg, n, at3(cg, o, j, in, len, inner), e);
  loop_end(cg, &l2);
  LLVMValueRef sv = LLVMBuildLoad2(b, t, sum, "sum");
  LLVMValueRef ls = n->op == OP_LOG_SOFTMAX ? intrinsic(cg, "llvm.log", t, &sv, 1) : NULL;
  LLVMValueRef inv = n->op == OP_SOFTMAX ? LLVMBuildFDiv(b, cval(cg, dt, 1), sv, "") : NULL;
  j = loop_begin(cg, &l3, len);
  LLVMValueRef at = at3(cg, o, j, in, len, inner);
  if (n->op == OP_SOFTMAX) {
    store(cg, n, at, fm(LLVMBuildFMul(b, load(cg, n, at), inv, "")));
  } else {
    LLVMValueRef zz = fm(LLVMBuildFSub(b, load(cg, x, at), mv, ""));
    store(cg, n, at, fm(LLVMBuildFSub(b, zz, ls, "")));
  }
  loop_end(cg, &l3);
  loop_end(cg, &li);
  loop_end(cg, &lo);
}

/* The first index of the extreme value along the axis (TF's tie rule). */
static void gen_argreduce(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef t = ty(cg, x->dtype);
  bool fl = dtype_is_float(x->dtype), mx = n->op == OP_ARGMAX;
  LLVMValueRef outer, len, inner;
  around(cg, &x->shape, n->a.axis, &outer, &len, &inner);
  Loop lo, li, lj;
  LLVMValueRef o = loop_begin(cg, &lo, outer), in = loop_begin(cg, &li, inner);
  LLVMValueRef best = slot(cg, t, load(cg, x, at3(cg, o, ci(cg, 0), in, len, inner)));
  LLVMValueRef arg = slot(cg, cg->i64, ci(cg, 0));
  LLVMValueRef j = loop_begin(cg, &lj, len);
  LLVMValueRef v = load(cg, x, at3(cg, o, j, in, len, inner)), bv = LLVMBuildLoad2(b, t, best, "");
  LLVMValueRef better = fl ? LLVMBuildFCmp(b, mx ? LLVMRealOGT : LLVMRealOLT, v, bv, "")
                           : LLVMBuildICmp(b, mx ? LLVMIntSGT : LLVMIntSLT, v, bv, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, better, v, bv, ""), best);
  LLVMBuildStore(b, LLVMBuildSelect(b, better, j, LLVMBuildLoad2(b, cg->i64, arg, ""), ""), arg);
  loop_end(cg, &lj);
  LLVMValueRef oi = LLVMBuildAdd(b, LLVMBuildMul(b, o, inner, ""), in, "");
  store(cg, n, oi, LLVMBuildTrunc(b, LLVMBuildLoad2(b, cg->i64, arg, ""), cg->i32, ""));
  loop_end(cg, &li);
  loop_end(cg, &lo);
}

/* Per row: logsumexp(x) - x[label]  (NaN for a label out of range), or
 * sum(t * (logsumexp(x) - x)) for probability targets. */
static void gen_softmax_ce(CG *cg, const Node *n) {
  const Node *x = n->src[0], *y = n->src[1];
  DType dt = n->dtype;
  LLVMTypeRef t = ty(cg, dt);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef C = dim(cg, x->shape.d[x->shape.rank - 1]);
  Loop lr, l1, l2, l3;
  LLVMValueRef r = loop_begin(cg, &lr, count(cg, &n->shape));
  LLVMValueRef row = LLVMBuildMul(b, r, C, "");
  LLVMValueRef mx = slot(cg, t, cval(cg, dt, -INFINITY)), sum = slot(cg, t, cval(cg, dt, 0));
  LLVMValueRef j = loop_begin(cg, &l1, C);
  LLVMValueRef v = load(cg, x, LLVMBuildAdd(b, row, j, "")), m = LLVMBuildLoad2(b, t, mx, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, m, ""), v, m, ""), mx);
  loop_end(cg, &l1);
  LLVMValueRef mv = LLVMBuildLoad2(b, t, mx, "");
  j = loop_begin(cg, &l2, C);
  LLVMValueRef z = fm(LLVMBuildFSub(b, load(cg, x, LLVMBuildAdd(b, row, j, "")), mv, ""));
  LLVMValueRef s = LLVMBuildFAdd(b, LLVMBuildLoad2(b, t, sum, ""), intrinsic(cg, "llvm.exp", t, &z, 1), "");
  LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  LLVMBuildStore(b, s, sum);
  loop_end(cg, &l2);
  LLVMValueRef sv = LLVMBuildLoad2(b, t, sum, "");
  LLVMValueRef lse = fm(LLVMBuildFAdd(b, mv, intrinsic(cg, "llvm.log", t, &sv, 1), "lse"));
  if (y->dtype == DT_I32) {
    LLVMValueRef lab = LLVMBuildSExt(b, load(cg, y, r), cg->i64, "");
    LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, lab, ci(cg, 0), ""),
                                   LLVMBuildICmp(b, LLVMIntSLT, lab, C, ""), "");
    LLVMValueRef safe = LLVMBuildSelect(b, ok, lab, ci(cg, 0), "");
    LLVMValueRef xl = load(cg, x, LLVMBuildAdd(b, row, safe, ""));
    LLVMValueRef loss = fm(LLVMBuildFSub(b, lse, xl, ""));
    store(cg, n, r, LLVMBuildSelect(b, ok, loss, cval(cg, dt, NAN), ""));
  } else {
    LLVMValueRef acc = slot(cg, t, cval(cg, dt, 0));
    j = loop_begin(cg, &l3, C);
    LLVMValueRef at = LLVMBuildAdd(b, row, j, "");
    LLVMValueRef term = fm(LLVMBuildFMul(b, load(cg, y, at), fm(LLVMBuildFSub(b, lse, load(cg, x, at), "")), ""));
    LLVMValueRef a2 = LLVMBuildFAdd(b, LLVMBuildLoad2(b, t, acc, ""), term, "");
    LLVMSetFastMathFlags(a2, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    LLVMBuildStore(b, a2, acc);
    loop_end(cg, &l3);
    store(cg, n, r, LLVMBuildLoad2(b, t, acc, ""));
  }
  loop_end(cg, &lr);
}

static LLVMValueRef i32v(CG *cg, LLVMValueRef v) { return LLVMBuildTrunc(cg->b, v, cg->i32, ""); }

/* C = op(A) op(B): cblas_?gemm per matrix of the (broadcast) batch, or plain
 * loops for integer products. */
static void gen_matmul(CG *cg, const Node *n) {
  const Node *A = n->src[0], *B = n->src[1];
  const Shape *as = &A->shape, *bs = &B->shape, *cs = &n->shape;
  LLVMBuilderRef b = cg->b;
  int ar = as->rank, br = bs->rank, cr = cs->rank;
  LLVMValueRef M = dim(cg, cs->d[cr - 2]), N = dim(cg, cs->d[cr - 1]);
  LLVMValueRef K = dim(cg, as->d[ar - (n->a.ta ? 2 : 1)]);
  Shape ab = {.rank = ar - 2}, bb = {.rank = br - 2}, cb = {.rank = cr - 2};
  memcpy(ab.d, as->d, sizeof(Dim) * (size_t)ab.rank);
  memcpy(bb.d, bs->d, sizeof(Dim) * (size_t)bb.rank);
  memcpy(cb.d, cs->d, sizeof(Dim) * (size_t)cb.rank);
  LLVMValueRef d[MAX_RANK], sa[MAX_RANK], sb[MAX_RANK], sc[MAX_RANK];
  dims_of(cg, &cb, d);
  bstrides(cg, &ab, &cb, sa);
  bstrides(cg, &bb, &cb, sb);
  strides(cg, &cb, sc);
  LLVMValueRef MK = LLVMBuildMul(b, M, K, ""), KN = LLVMBuildMul(b, K, N, ""), MN = LLVMBuildMul(b, M, N, "");
  Nest ns;
  nest_begin(cg, &ns, cb.rank, d);
  LLVMValueRef pa = elem_ptr(cg, A, ptr_of(cg, A), LLVMBuildMul(b, offset(cg, &ns, sa), MK, ""));
  LLVMValueRef pb = elem_ptr(cg, B, ptr_of(cg, B), LLVMBuildMul(b, offset(cg, &ns, sb), KN, ""));
  LLVMValueRef pc = elem_ptr(cg, n, ptr_of(cg, n), LLVMBuildMul(b, offset(cg, &ns, sc), MN, ""));
  if (dtype_is_float(n->dtype)) {
    bool dbl = n->dtype == DT_F64;
    LLVMTypeRef ft = ty(cg, n->dtype);
    LLVMTypeRef params[14] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, ft,
                              cg->ptr, cg->i32, cg->ptr, cg->i32, ft, cg->ptr, cg->i32};
    LLVMTypeRef fty = LLVMFunctionType(cg->vd, params, 14, 0);
    const char *fname = dbl ? "cblas_dgemm" : "cblas_sgemm";
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, fname);
    if (!f) f = LLVMAddFunction(cg->mod, fname, fty);
    /* CblasRowMajor 101, CblasNoTrans 111, CblasTrans 112 */
    LLVMValueRef lda = n->a.ta ? M : K, ldb = n->a.tb ? K : N;
    LLVMValueRef args[14] = {
        LLVMConstInt(cg->i32, 101, 0), LLVMConstInt(cg->i32, n->a.ta ? 112 : 111, 0),
        LLVMConstInt(cg->i32, n->a.tb ? 112 : 111, 0), i32v(cg, M), i32v(cg, N), i32v(cg, K),
        LLVMConstReal(ft, 1.0), pa, i32v(cg, lda), pb, i32v(cg, ldb), LLVMConstReal(ft, 0.0),
        pc, i32v(cg, N)};
    LLVMBuildCall2(b, fty, f, args, 14, "");
  } else {
    LLVMTypeRef t = ty(cg, n->dtype);
    Loop li, lj, lp;
    LLVMValueRef i = loop_begin(cg, &li, M), j = loop_begin(cg, &lj, N);
    LLVMValueRef acc = slot(cg, t, LLVMConstInt(t, 0, 0));
    LLVMValueRef p = loop_begin(cg, &lp, K);
    LLVMValueRef ia = n->a.ta ? LLVMBuildAdd(b, LLVMBuildMul(b, p, M, ""), i, "")
                              : LLVMBuildAdd(b, LLVMBuildMul(b, i, K, ""), p, "");
    LLVMValueRef ib = n->a.tb ? LLVMBuildAdd(b, LLVMBuildMul(b, j, K, ""), p, "")
                              : LLVMBuildAdd(b, LLVMBuildMul(b, p, N, ""), j, "");
    LLVMValueRef va = LLVMBuildLoad2(b, t, LLVMBuildGEP2(b, t, pa, &ia, 1, ""), "");
    LLVMValueRef vb = LLVMBuildLoad2(b, t, LLVMBuildGEP2(b, t, pb, &ib, 1, ""), "");
    LLVMBuildStore(b, LLVMBuildAdd(b, LLVMBuildLoad2(b, t, acc, ""), LLVMBuildMul(b, va, vb, ""), ""), acc);
    loop_end(cg, &lp);
    LLVMValueRef ic = LLVMBuildAdd(b, LLVMBuildMul(b, i, N, ""), j, "");
    LLVMBuildStore(b, LLVMBuildLoad2(b, t, acc, ""), LLVMBuildGEP2(b, t, pc, &ic, 1, ""));
    loop_end(cg, &lj);
    loop_end(cg, &li);
  }
  nest_end(cg, &ns);
}

static void gen_transpose(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMValueRef d[MAX_RANK], xs[MAX_RANK], st[MAX_RANK], os[MAX_RANK];
  dims_of(cg, &n->shape, d);
  strides(cg, &x->shape, xs);
  strides(cg, &n->shape, os);
  for (int i = 0; i < n->shape.rank; i++) st[i] = xs[n->a.perm[i]];
  Nest ns;
  nest_begin(cg, &ns, n->shape.rank, d);
  store(cg, n, offset(cg, &ns, os), load(cg, x, offset(cg, &ns, st)));
  nest_end(cg, &ns);
}

/* Walks the slice-shaped tensor `sliced`, with the offset of each element
 * inside the full tensor. */
static void slice_walk(CG *cg, const Node *n, const Shape *sliced, const Shape *full,
                       const Node *from, const Node *to, bool into_full) {
  LLVMValueRef d[MAX_RANK], fs[MAX_RANK], st[MAX_RANK], ss[MAX_RANK];
  dims_of(cg, sliced, d);
  strides(cg, full, fs);
  strides(cg, sliced, ss);
  LLVMValueRef base = ci(cg, 0);
  for (int i = 0; i < sliced->rank; i++) {
    st[i] = LLVMBuildMul(cg->b, ci(cg, n->a.step[i]), fs[i], "");
    base = LLVMBuildAdd(cg->b, base, LLVMBuildMul(cg->b, ci(cg, n->a.begin[i]), fs[i], ""), "");
  }
  Nest ns;
  nest_begin(cg, &ns, sliced->rank, d);
  LLVMValueRef fo = LLVMBuildAdd(cg->b, base, offset(cg, &ns, st), ""), so = offset(cg, &ns, ss);
  if (into_full) store(cg, to, fo, load(cg, from, so));
  else store(cg, to, so, load(cg, from, fo));
  nest_end(cg, &ns);
}

static void zero(CG *cg, const Node *n) {
  LLVMValueRef bytes = LLVMBuildMul(cg->b, count(cg, &n->shape), ci(cg, (int64_t)dtype_size(n->dtype)), "");
  LLVMBuildMemSet(cg->b, ptr_of(cg, n), LLVMConstInt(cg->i8, 0, 0), bytes, 4);
}

static void gen_concat(CG *cg, const Node *n) {
  LLVMValueRef outer, len, inner, at = ci(cg, 0);
  around(cg, &n->shape, n->a.axis, &outer, &len, &inner);
  for (int k = 0; k < n->nsrc; k++) {
    const Node *x = n->src[k];
    LLVMValueRef o2, lk, i2;
    around(cg, &x->shape, n->a.axis, &o2, &lk, &i2);
    LLVMValueRef row = LLVMBuildMul(cg->b, lk, inner, "");
    Loop lo, le;
    LLVMValueRef o = loop_begin(cg, &lo, outer), e = loop_begin(cg, &le, row);
    LLVMValueRef dst = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, o, len, ""), at, ""), inner, ""), e, "");
    LLVMValueRef src = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, o, row, ""), e, "");
    store(cg, n, dst, load(cg, x, src));
    loop_end(cg, &le);
    loop_end(cg, &lo);
    at = LLVMBuildAdd(cg->b, at, lk, "");
  }
}

static void gen_one_hot(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  zero(cg, n);
  LLVMValueRef depth = ci(cg, n->a.depth);
  Loop l;
  LLVMValueRef i = loop_begin(cg, &l, count(cg, &n->src[0]->shape));
  LLVMValueRef y = LLVMBuildSExt(b, load(cg, n->src[0], i), cg->i64, "");
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, y, ci(cg, 0), ""),
                                 LLVMBuildICmp(b, LLVMIntSLT, y, depth, ""), "");
  LLVMBasicBlockRef set = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "set");
  LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "skip");
  LLVMBuildCondBr(b, ok, set, skip);
  LLVMPositionBuilderAtEnd(b, set);
  store(cg, n, LLVMBuildAdd(b, LLVMBuildMul(b, i, depth, ""), y, ""), cval(cg, n->dtype, 1));
  LLVMBuildBr(b, skip);
  LLVMPositionBuilderAtEnd(b, skip);
  loop_end(cg, &l);
}

/* ------------------------------------------------------------ windows */

/* if (c) { ...code emitted until if_end... } */
static LLVMBasicBlockRef if_begin(CG *cg, LLVMValueRef c) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "then");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "join");
  LLVMBuildCondBr(cg->b, c, then, join);
  LLVMPositionBuilderAtEnd(cg->b, then);
  return join;
}

static void if_end(CG *cg, LLVMBasicBlockRef join) {
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, join);
}

/* The loops of a window op over output positions (b, oh, ow) and kernel
 * taps (ki, kj), as eval.c's FOR_TAPS: `in` is the tap's offset of channel 0
 * in the [b, h, w, c] tensor, valid false where it falls into padding, out
 * the offset of the position's channel 0 in [b, oh, ow, c], col the tap's
 * offset in im2col's [b, oh, ow, kh*kw*c]. */
typedef struct Taps {
  const Window *w;
  int64_t h, wd, c, oh, ow;
  Loop lb, lh, lw, li, lj;
  LLVMValueRef bi, y, x, ki, kj, in, valid, out, col0, col;
} Taps;

static void positions_begin(CG *cg, Taps *t, const Node *n, const Shape *in) {
  t->w = &n->a.win;
  t->h = in->d[1].n, t->wd = in->d[2].n, t->c = in->d[3].n;
  GRADC_ASSERT(window_out(t->w, in, &t->oh, &t->ow));
  t->bi = loop_begin(cg, &t->lb, dim(cg, in->d[0]));
  t->y = loop_begin(cg, &t->lh, ci(cg, t->oh));
  t->x = loop_begin(cg, &t->lw, ci(cg, t->ow));
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pos = LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, t->bi, ci(cg, t->oh), ""),
                                                                  t->y, ""), ci(cg, t->ow), ""), t->x, "pos");
  t->out = LLVMBuildMul(b, pos, ci(cg, t->c), "");
  t->col0 = LLVMBuildMul(b, pos, ci(cg, t->w->k[0] * t->w->k[1] * t->c), "");
}

static void taps_begin(CG *cg, Taps *t) {
  LLVMBuilderRef b = cg->b;
  t->ki = loop_begin(cg, &t->li, ci(cg, t->w->k[0]));
  t->kj = loop_begin(cg, &t->lj, ci(cg, t->w->k[1]));
  LLVMValueRef ih = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, t->y, ci(cg, t->w->stride[0]), ""),
                                                 LLVMBuildMul(b, t->ki, ci(cg, t->w->dil[0]), ""), ""),
                                 ci(cg, t->w->pad[0]), "ih");
  LLVMValueRef iw = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, t->x, ci(cg, t->w->stride[1]), ""),
                                                 LLVMBuildMul(b, t->kj, ci(cg, t->w->dil[1]), ""), ""),
                                 ci(cg, t->w->pad[2]), "iw");
  /* unsigned compares: a negative index is a huge one */
  t->valid = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, ih, ci(cg, t->h), ""),
                          LLVMBuildICmp(b, LLVMIntULT, iw, ci(cg, t->wd), ""), "valid");
  LLVMValueRef row = LLVMBuildAdd(b, LLVMBuildMul(b, t->bi, ci(cg, t->h), ""), ih, "");
  t->in = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, row, ci(cg, t->wd), ""), iw, ""), ci(cg, t->c), "in");
  LLVMValueRef tapk = LLVMBuildAdd(b, LLVMBuildMul(b, t->ki, ci(cg, t->w->k[1]), ""), t->kj, "");
  t->col = LLVMBuildAdd(b, t->col0, LLVMBuildMul(b, tapk, ci(cg, t->c), ""), "col");
}

static void taps_end(CG *cg, Taps *t) {
  loop_end(cg, &t->lj);
  loop_end(cg, &t->li);
}

static void positions_end(CG *cg, Taps *t) {
  loop_end(cg, &t->lw);
  loop_end(cg, &t->lh);
  loop_end(cg, &t->lb);
}

static LLVMValueRef plus(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(cg->b, a, b, ""); }

/* Patches as rows: a copy of c channels per tap, zeros in the padding. */
static void gen_im2col(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  Taps t;
  positions_begin(cg, &t, n, &x->shape);
  taps_begin(cg, &t);
  Loop lc;
  LLVMValueRef c = loop_begin(cg, &lc, ci(cg, t.c));
  LLVMValueRef safe = LLVMBuildSelect(cg->b, t.valid, plus(cg, t.in, c), ci(cg, 0), "");
  LLVMValueRef v = LLVMBuildSelect(cg->b, t.valid, load(cg, x, safe), cval(cg, n->dtype, 0), "");
  store(cg, n, plus(cg, t.col, c), v);
  loop_end(cg, &lc);
  taps_end(cg, &t);
  positions_end(cg, &t);
}

/* The adjoint: every patch value added back where it was read from. */
static void gen_col2im(CG *cg, const Node *n) {
  const Node *y = n->src[0];
  zero(cg, n);
  Taps t;
  positions_begin(cg, &t, n, &n->shape);
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  Loop lc;
  LLVMValueRef c = loop_begin(cg, &lc, ci(cg, t.c));
  LLVMValueRef at = plus(cg, t.in, c);
  store(cg, n, at, fm(LLVMBuildFAdd(cg->b, load(cg, n, at), load(cg, y, plus(cg, t.col, c)), "")));
  loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  positions_end(cg, &t);
}

/* max / average over the taps inside the input, channels innermost. */
static void gen_pool(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMBuilderRef b = cg->b;
  bool mx = n->op == OP_MAXPOOL;
  DType dt = n->dtype;
  LLVMTypeRef ft = ty(cg, dt);
  Taps t;
  positions_begin(cg, &t, n, &x->shape);
  Loop l0;
  LLVMValueRef c = loop_begin(cg, &l0, ci(cg, t.c));
  store(cg, n, plus(cg, t.out, c), cval(cg, dt, mx ? -INFINITY : 0));
  loop_end(cg, &l0);
  LLVMValueRef cnt = slot(cg, ft, cval(cg, dt, 0));
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, cnt, ""), cval(cg, dt, 1), ""), cnt);
  Loop lc;
  c = loop_begin(cg, &lc, ci(cg, t.c));
  LLVMValueRef o = plus(cg, t.out, c), v = load(cg, x, plus(cg, t.in, c)), acc = load(cg, n, o);
  LLVMValueRef r = mx ? LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, acc, ""), v, acc, "")
                      : fm(LLVMBuildFAdd(b, acc, v, ""));
  store(cg, n, o, r);
  loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  if (!mx) {
    LLVMValueRef inv = fm(LLVMBuildFDiv(b, cval(cg, dt, 1), LLVMBuildLoad2(b, ft, cnt, ""), ""));
    Loop l2;
    c = loop_begin(cg, &l2, ci(cg, t.c));
    LLVMValueRef o2 = plus(cg, t.out, c);
    store(cg, n, o2, fm(LLVMBuildFMul(b, load(cg, n, o2), inv, "")));
    loop_end(cg, &l2);
  }
  positions_end(cg, &t);
}

/* dx of a max pool: per window and channel, the first maximum gets gy. */
static void gen_maxpool_grad(CG *cg, const Node *n) {
  const Node *x = n->src[0], *gy = n->src[1];
  LLVMBuilderRef b = cg->b;
  DType dt = n->dtype;
  LLVMTypeRef ft = ty(cg, dt);
  zero(cg, n);
  Taps t;
  positions_begin(cg, &t, n, &n->shape);
  Loop lc;
  LLVMValueRef c = loop_begin(cg, &lc, ci(cg, t.c));
  LLVMValueRef best = slot(cg, ft, cval(cg, dt, -INFINITY)), at = slot(cg, cg->i64, ci(cg, -1));
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  LLVMValueRef i = plus(cg, t.in, c), v = load(cg, x, i);
  LLVMValueRef cur = LLVMBuildLoad2(b, cg->i64, at, "");
  LLVMValueRef better = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, cur, ci(cg, 0), ""),
                                    LLVMBuildFCmp(b, LLVMRealOGT, v, LLVMBuildLoad2(b, ft, best, ""), ""), "");
  LLVMBuildStore(b, LLVMBuildSelect(b, better, v, LLVMBuildLoad2(b, ft, best, ""), ""), best);
  LLVMBuildStore(b, LLVMBuildSelect(b, better, i, cur, ""), at);
  if_end(cg, join);
  taps_end(cg, &t);
  LLVMValueRef a = LLVMBuildLoad2(b, cg->i64, at, "");
  join = if_begin(cg, LLVMBuildICmp(b, LLVMIntSGE, a, ci(cg, 0), ""));
  store(cg, n, a, fm(LLVMBuildFAdd(b, load(cg, n, a), load(cg, gy, plus(cg, t.out, c)), "")));
  if_end(cg, join);
  loop_end(cg, &lc);
  positions_end(cg, &t);
}

/* dx of an average pool: gy / (taps inside) added to each tap. */
static void gen_avgpool_grad(CG *cg, const Node *n) {
  const Node *gy = n->src[0];
  LLVMBuilderRef b = cg->b;
  DType dt = n->dtype;
  LLVMTypeRef ft = ty(cg, dt);
  zero(cg, n);
  Taps t;
  positions_begin(cg, &t, n, &n->shape);
  LLVMValueRef cnt = slot(cg, ft, cval(cg, dt, 0));
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, cnt, ""), cval(cg, dt, 1), ""), cnt);
  if_end(cg, join);
  taps_end(cg, &t);
  LLVMValueRef inv = fm(LLVMBuildFDiv(b, cval(cg, dt, 1), LLVMBuildLoad2(b, ft, cnt, ""), ""));
  taps_begin(cg, &t);
  join = if_begin(cg, t.valid);
  Loop lc;
  LLVMValueRef c = loop_begin(cg, &lc, ci(cg, t.c));
  LLVMValueRef at = plus(cg, t.in, c);
  LLVMValueRef g = fm(LLVMBuildFMul(b, load(cg, gy, plus(cg, t.out, c)), inv, ""));
  store(cg, n, at, fm(LLVMBuildFAdd(b, load(cg, n, at), g, "")));
  loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  positions_end(cg, &t);
}

/* ------------------------------------------------------------ train vs inference */

/* The operand of this function's side, copied (both sides are values with
 * buffers of their own: neither is inlined into a select). */
static void gen_train_select(CG *cg, const Node *n) {
  const Node *s = n->src[cg->train ? 0 : 1];
  if (cg_buffer_node(s) == cg_buffer_node(n)) return;
  if (!cg_buffer_node(s)) {
    fill(cg, n, load(cg, s, ci(cg, 0)));
    return;
  }
  LLVMValueRef bytes = LLVMBuildMul(cg->b, count(cg, &n->shape), ci(cg, (int64_t)dtype_size(n->dtype)), "");
  LLVMBuildMemCpy(cg->b, ptr_of(cg, n), 4, ptr_of(cg, s), 4, bytes);
}

/* init.c's splitmix64 on i64 values */
static LLVMValueRef splitmix(CG *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef k = LLVMConstInt(cg->i64, 0x9e3779b97f4a7c15ull, 0);
  x = LLVMBuildAdd(b, x, k, "");
  x = LLVMBuildMul(b, LLVMBuildXor(b, x, LLVMBuildLShr(b, x, ci(cg, 30), ""), ""),
                   LLVMConstInt(cg->i64, 0xbf58476d1ce4e5b9ull, 0), "");
  x = LLVMBuildMul(b, LLVMBuildXor(b, x, LLVMBuildLShr(b, x, ci(cg, 27), ""), ""),
                   LLVMConstInt(cg->i64, 0x94d049bb133111ebull, 0), "");
  return LLVMBuildXor(b, x, LLVMBuildLShr(b, x, ci(cg, 31), ""), "");
}

/* rng_keep of init.c element by element: the same bits as the evaluator. */
static void gen_dropout_mask(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  uint64_t stream = rng_stream((uint64_t)n->a.seed, "dropout");
  LLVMValueRef step = n->nsrc == 2 ? LLVMBuildSExt(b, load(cg, n->src[1], ci(cg, 0)), cg->i64, "")
                                   : ci(cg, 0);
  LLVMValueRef st = splitmix(cg, LLVMBuildXor(b, LLVMConstInt(cg->i64, stream, 0), splitmix(cg, step), ""));
  LLVMValueRef thr = LLVMConstInt(cg->i64, rng_keep_threshold(n->a.lo), 0);
  LLVMValueRef scale = cval(cg, n->dtype, 1 / (1 - n->a.lo)), zero = cval(cg, n->dtype, 0);
  Loop l;
  LLVMValueRef i = loop_begin(cg, &l, count(cg, &n->shape));
  LLVMValueRef bits = LLVMBuildLShr(b, splitmix(cg, LLVMBuildAdd(b, st, splitmix(cg, i), "")), ci(cg, 11), "");
  store(cg, n, i, LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGE, bits, thr, ""), scale, zero, ""));
  loop_end(cg, &l);
}

static void gen_assign(CG *cg, const Node *n) {
  const Node *dst = n->src[0], *v = n->src[1];
  if (cg_buffer_node(v) == dst) return;
  if (!cg_buffer_node(v)) {      /* a scalar constant or size: one store */
    store(cg, dst, ci(cg, 0), load(cg, v, ci(cg, 0)));
    return;
  }
  LLVMValueRef bytes = LLVMBuildMul(cg->b, count(cg, &dst->shape), ci(cg, (int64_t)dtype_size(dst->dtype)), "");
  LLVMBuildMemCpy(cg->b, ptr_of(cg, dst), 4, ptr_of(cg, v), 4, bytes);
}

static void gen_node(CG *cg, const Node *n) {
  switch (op_info[n->op].kind) {
  case K_LEAF: return;
  case K_BINARY:
  case K_UNARY:
  case K_TERNARY: gen_elementwise(cg, n); return;
  case K_MATMUL: gen_matmul(cg, n); return;
  case K_AXIS: gen_softmax(cg, n); return;
  case K_UPDATE: gen_assign(cg, n); return;
  default: break;
  }
  switch (n->op) {
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN: gen_reduce(cg, n); return;
  case OP_ARGMAX: case OP_ARGMIN: gen_argreduce(cg, n); return;
  case OP_RESHAPE: return;                      /* an alias */
  case OP_TRANSPOSE: gen_transpose(cg, n); return;
  case OP_BROADCAST: gen_elementwise(cg, n); return;
  case OP_SLICE: slice_walk(cg, n, &n->shape, &n->src[0]->shape, n->src[0], n, false); return;
  case OP_UNSLICE:
    zero(cg, n);
    slice_walk(cg, n, &n->src[0]->shape, &n->shape, n->src[0], n, true);
    return;
  case OP_CONCAT: gen_concat(cg, n); return;
  case OP_ONE_HOT: gen_one_hot(cg, n); return;
  case OP_SOFTMAX_CE: gen_softmax_ce(cg, n); return;
  case OP_SIGMOID_CE: gen_elementwise(cg, n); return;
  case OP_IM2COL: gen_im2col(cg, n); return;
  case OP_COL2IM: gen_col2im(cg, n); return;
  case OP_MAXPOOL: case OP_AVGPOOL: gen_pool(cg, n); return;
  case OP_MAXPOOL_GRAD: gen_maxpool_grad(cg, n); return;
  case OP_AVGPOOL_GRAD: gen_avgpool_grad(cg, n); return;
  case OP_TRAIN_SELECT: gen_train_select(cg, n); return;
  case OP_DROPOUT_MASK: gen_dropout_mask(cg, n); return;
  default: break;
  }
  GRADC_ASSERT(!"no code generator for this op");
}

/* ------------------------------------------------------------ functions */

static void gen_function(CG *cg, const char *name, Node *const *roots, int nroots, bool train) {
  const Graph *g = cg->g;
  cg->train = train;
  LLVMTypeRef params[2] = {cg->ptr, cg->ptr};
  LLVMTypeRef fty = LLVMFunctionType(cg->vd, params, 2, 0);
  cg->fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(cg->fn, LLVMExternalLinkage);
  LLVMValueRef bufs = LLVMGetParam(cg->fn, 0), syms = LLVMGetParam(cg->fn, 1);
  /* The buffer table is never written through by the step itself. */
  unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
  LLVMAddAttributeAtIndex(cg->fn, 1, LLVMCreateEnumAttribute(cg->ctx, noalias, 0));
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, entry);
  cg->sym[0] = ci(cg, 1);
  for (int k = 1; k <= g->nsym; k++) {
    LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->i64, syms, (LLVMValueRef[]){ci(cg, k)}, 1, "");
    cg->sym[k] = LLVMBuildLoad2(cg->b, cg->i64, p, g->sym[k]);
  }
  memset(cg->mark, 0, (size_t)g->nnodes);
  for (int i = 0; i < nroots; i++) cg->mark[roots[i]->id] = true;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    const Node *x = g->nodes[i];
    if (!cg->mark[i]) continue;
    if (x->op == OP_TRAIN_SELECT) cg->mark[x->src[train ? 0 : 1]->id] = true;
    else
      for (int k = 0; k < x->nsrc; k++) cg->mark[x->src[k]->id] = true;
  }
  memset(cg->base, 0, sizeof(LLVMValueRef) * (size_t)g->nnodes);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *s = cg_buffer_node(g->nodes[i]);
    if (!cg->mark[i] || !s || cg->base[s->id]) continue;
    LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->ptr, bufs, (LLVMValueRef[]){ci(cg, s->id)}, 1, "");
    cg->base[s->id] = LLVMBuildLoad2(cg->b, cg->ptr, p, s->name ? s->name : "");
  }
  for (int i = 0; i < g->nnodes; i++)
    if (cg->mark[i] && !g->nodes[i]->inlined_into) gen_node(cg, g->nodes[i]);
  LLVMBuildRetVoid(cg->b);
}

static void gen_constants(CG *cg) {
  for (int i = 0; i < cg->g->nnodes; i++) {
    const Node *n = cg->g->nodes[i];
    if (n->op != OP_CONST || n->shape.rank == 0) continue;
    int64_t c = shape_static_count(&n->shape);
    LLVMValueRef *vals = arena_alloc(cg->g->arena, sizeof(LLVMValueRef) * (size_t)(c ? c : 1));
    for (int64_t k = 0; k < c; k++) vals[k] = cval(cg, n->dtype, n->a.values[k]);
    LLVMTypeRef at = LLVMArrayType2(ty(cg, n->dtype), (uint64_t)c);
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, at, "const");
    LLVMSetInitializer(gv, LLVMConstArray2(ty(cg, n->dtype), vals, (uint64_t)c));
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    cg->global[i] = gv;
  }
}

LLVMModuleRef cg_module(LLVMContextRef ctx, const Graph *g, const char *prefix) {
  CG cgv = {.ctx = ctx, .g = g}, *cg = &cgv;
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
  gen_constants(cg);

  Node **roots = arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nnodes + 1));
  int n = 0;
  for (int i = 0; i < g->noutputs; i++) roots[n++] = g->outputs[i].node;
  for (int i = 0; i < g->nmetrics; i++) roots[n++] = g->metrics[i].node;
  if (g->loss) roots[n++] = g->loss;
  char name[256];
  snprintf(name, sizeof name, "%sforward", prefix);
  gen_function(cg, name, roots, n, false);
  n = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_ASSIGN) roots[n++] = g->nodes[i];
  for (int i = 0; i < g->nmetrics; i++) roots[n++] = g->metrics[i].node;
  if (g->loss) roots[n++] = g->loss;
  snprintf(name, sizeof name, "%strain_step", prefix);
  gen_function(cg, name, roots, n, true);
  LLVMDisposeBuilder(cg->b);
  return cg->mod;
}
