/*
 * codegen_kernels.c - LLVM IR for the structured ops: everything that is
 * not an elementwise loop or a plain reduction (those, the dispatch and the
 * functions themselves are in codegen.c).
 *
 * Softmax, log_softmax and the fused softmax cross-entropy make three
 * passes over each row (max, sum of exponentials, result) so no exp
 * overflows; argmax/argmin keep the first extreme index, as numpy.  Matrix
 * products call gradc_sgemm (runtime/gemm.c) or cblas_dgemm with transposes as flags, one call per
 * matrix of a (broadcast) batch; integer products are plain loops.  Slices, concat and one_hot are
 * index walks.  The window ops (im2col, col2im, pooling and their
 * gradients) loop over output positions, then kernel taps, and innermost
 * over contiguous channels, which LLVM vectorises; taps in the padding are
 * skipped by one bounds test per tap, not per element.  train_select and
 * dropout_mask are where train_step and forward differ.
 */
#include <llvm-c/Core.h>
#include <math.h>
#include <string.h>

#include "compiler.h"
#include "llvm_internal.h"

/* outer x len x inner around one axis of s */
static void around(CG *cg, const Shape *s, int axis, LLVMValueRef *outer, LLVMValueRef *len,
                   LLVMValueRef *inner) {
  *outer = cg_int(cg, 1), *inner = cg_int(cg, 1), *len = cg_dim(cg, s->d[axis]);
  for (int i = 0; i < axis; i++) *outer = LLVMBuildMul(cg->b, *outer, cg_dim(cg, s->d[i]), "");
  for (int i = axis + 1; i < s->rank; i++) *inner = LLVMBuildMul(cg->b, *inner, cg_dim(cg, s->d[i]), "");
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
  LLVMValueRef s = cg_entry_alloca(cg, t, "acc");
  LLVMBuildStore(cg->b, init, s);
  return s;
}

/* softmax / log_softmax along n->a.axis: max, sum of exp, normalise. */
void cg_softmax(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  DType dt = n->dtype;
  LLVMTypeRef t = cg_type(cg, dt);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef outer, len, inner;
  around(cg, &n->shape, n->a.axis, &outer, &len, &inner);
  Loop lo, li, l1, l2, l3;
  LLVMValueRef o = cg_loop_begin(cg, &lo, outer);
  LLVMValueRef in = cg_loop_begin(cg, &li, inner);
  LLVMValueRef mx = slot(cg, t, cg_const(cg, dt, -INFINITY)), sum = slot(cg, t, cg_const(cg, dt, 0));
  LLVMValueRef j = cg_loop_begin(cg, &l1, len);
  LLVMValueRef v = cg_load(cg, x, at3(cg, o, j, in, len, inner)), m = LLVMBuildLoad2(b, t, mx, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, m, ""), v, m, ""), mx);
  cg_loop_end(cg, &l1);
  LLVMValueRef mv = LLVMBuildLoad2(b, t, mx, "max");
  j = cg_loop_begin(cg, &l2, len);
  LLVMValueRef z = cg_fast(LLVMBuildFSub(b, cg_load(cg, x, at3(cg, o, j, in, len, inner)), mv, ""));
  LLVMValueRef e = cg_intrinsic(cg, "llvm.exp", t, &z, 1);
  LLVMValueRef s = LLVMBuildFAdd(b, LLVMBuildLoad2(b, t, sum, ""), e, "");
  LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  LLVMBuildStore(b, s, sum);
  if (n->op == OP_SOFTMAX) cg_store(cg, n, at3(cg, o, j, in, len, inner), e);
  cg_loop_end(cg, &l2);
  LLVMValueRef sv = LLVMBuildLoad2(b, t, sum, "sum");
  LLVMValueRef ls = n->op == OP_LOG_SOFTMAX ? cg_intrinsic(cg, "llvm.log", t, &sv, 1) : NULL;
  LLVMValueRef inv = n->op == OP_SOFTMAX ? LLVMBuildFDiv(b, cg_const(cg, dt, 1), sv, "") : NULL;
  j = cg_loop_begin(cg, &l3, len);
  LLVMValueRef at = at3(cg, o, j, in, len, inner);
  if (n->op == OP_SOFTMAX) {
    cg_store(cg, n, at, cg_fast(LLVMBuildFMul(b, cg_load(cg, n, at), inv, "")));
  } else {
    LLVMValueRef zz = cg_fast(LLVMBuildFSub(b, cg_load(cg, x, at), mv, ""));
    cg_store(cg, n, at, cg_fast(LLVMBuildFSub(b, zz, ls, "")));
  }
  cg_loop_end(cg, &l3);
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lo);
}

/* The first index of the extreme value along the axis (TF's tie rule). */
void cg_argreduce(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef t = cg_type(cg, x->dtype);
  bool fl = dtype_is_float(x->dtype), mx = n->op == OP_ARGMAX;
  LLVMValueRef outer, len, inner;
  around(cg, &x->shape, n->a.axis, &outer, &len, &inner);
  Loop lo, li, lj;
  LLVMValueRef o = cg_loop_begin(cg, &lo, outer), in = cg_loop_begin(cg, &li, inner);
  LLVMValueRef best = slot(cg, t, cg_load(cg, x, at3(cg, o, cg_int(cg, 0), in, len, inner)));
  LLVMValueRef arg = slot(cg, cg->i64, cg_int(cg, 0));
  LLVMValueRef j = cg_loop_begin(cg, &lj, len);
  LLVMValueRef v = cg_load(cg, x, at3(cg, o, j, in, len, inner)), bv = LLVMBuildLoad2(b, t, best, "");
  LLVMValueRef better = fl ? LLVMBuildFCmp(b, mx ? LLVMRealOGT : LLVMRealOLT, v, bv, "")
                           : LLVMBuildICmp(b, mx ? LLVMIntSGT : LLVMIntSLT, v, bv, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, better, v, bv, ""), best);
  LLVMBuildStore(b, LLVMBuildSelect(b, better, j, LLVMBuildLoad2(b, cg->i64, arg, ""), ""), arg);
  cg_loop_end(cg, &lj);
  LLVMValueRef oi = LLVMBuildAdd(b, LLVMBuildMul(b, o, inner, ""), in, "");
  cg_store(cg, n, oi, LLVMBuildTrunc(b, LLVMBuildLoad2(b, cg->i64, arg, ""), cg->i32, ""));
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lo);
}

/* Per row: logsumexp(x) - x[label]  (NaN for a label out of range), or
 * sum(t * (logsumexp(x) - x)) for probability targets. */
void cg_softmax_ce(CG *cg, const Node *n) {
  const Node *x = n->src[0], *y = n->src[1];
  DType dt = n->dtype;
  LLVMTypeRef t = cg_type(cg, dt);
  LLVMBuilderRef b = cg->b;
  LLVMValueRef C = cg_dim(cg, x->shape.d[x->shape.rank - 1]);
  Loop lr, l1, l2, l3;
  LLVMValueRef r = cg_loop_begin(cg, &lr, cg_count(cg, &n->shape));
  LLVMValueRef row = LLVMBuildMul(b, r, C, "");
  LLVMValueRef mx = slot(cg, t, cg_const(cg, dt, -INFINITY)), sum = slot(cg, t, cg_const(cg, dt, 0));
  LLVMValueRef j = cg_loop_begin(cg, &l1, C);
  LLVMValueRef v = cg_load(cg, x, LLVMBuildAdd(b, row, j, "")), m = LLVMBuildLoad2(b, t, mx, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, m, ""), v, m, ""), mx);
  cg_loop_end(cg, &l1);
  LLVMValueRef mv = LLVMBuildLoad2(b, t, mx, "");
  j = cg_loop_begin(cg, &l2, C);
  LLVMValueRef z = cg_fast(LLVMBuildFSub(b, cg_load(cg, x, LLVMBuildAdd(b, row, j, "")), mv, ""));
  LLVMValueRef s = LLVMBuildFAdd(b, LLVMBuildLoad2(b, t, sum, ""), cg_intrinsic(cg, "llvm.exp", t, &z, 1), "");
  LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  LLVMBuildStore(b, s, sum);
  cg_loop_end(cg, &l2);
  LLVMValueRef sv = LLVMBuildLoad2(b, t, sum, "");
  LLVMValueRef lse = cg_fast(LLVMBuildFAdd(b, mv, cg_intrinsic(cg, "llvm.log", t, &sv, 1), "lse"));
  if (y->dtype == DT_I32) {
    LLVMValueRef lab = LLVMBuildSExt(b, cg_load(cg, y, r), cg->i64, "");
    LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, lab, cg_int(cg, 0), ""),
                                   LLVMBuildICmp(b, LLVMIntSLT, lab, C, ""), "");
    LLVMValueRef safe = LLVMBuildSelect(b, ok, lab, cg_int(cg, 0), "");
    LLVMValueRef xl = cg_load(cg, x, LLVMBuildAdd(b, row, safe, ""));
    LLVMValueRef loss = cg_fast(LLVMBuildFSub(b, lse, xl, ""));
    cg_store(cg, n, r, LLVMBuildSelect(b, ok, loss, cg_const(cg, dt, NAN), ""));
  } else {
    LLVMValueRef acc = slot(cg, t, cg_const(cg, dt, 0));
    j = cg_loop_begin(cg, &l3, C);
    LLVMValueRef at = LLVMBuildAdd(b, row, j, "");
    LLVMValueRef term = cg_fast(LLVMBuildFMul(b, cg_load(cg, y, at), cg_fast(LLVMBuildFSub(b, lse, cg_load(cg, x, at), "")), ""));
    LLVMValueRef a2 = LLVMBuildFAdd(b, LLVMBuildLoad2(b, t, acc, ""), term, "");
    LLVMSetFastMathFlags(a2, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    LLVMBuildStore(b, a2, acc);
    cg_loop_end(cg, &l3);
    cg_store(cg, n, r, LLVMBuildLoad2(b, t, acc, ""));
  }
  cg_loop_end(cg, &lr);
}

static LLVMValueRef i32v(CG *cg, LLVMValueRef v) { return LLVMBuildTrunc(cg->b, v, cg->i32, ""); }

/* A product's transpose flag, CBLAS's number (abi.h). */
static LLVMValueRef trans(CG *cg, bool t) { return LLVMConstInt(cg->i32, t ? ABI_TRANS : ABI_NO_TRANS, 0); }

/* The geometry runtime/gemm.c takes (abi.h's ABI_GEO_* array of int32) as a
 * constant global: image is the convolution's input shape, cols its patch
 * matrix's. */
static LLVMValueRef conv_geometry(CG *cg, const Window *w, const Shape *image, const Shape *cols) {
  int64_t geo[ABI_GEO_COUNT] = {
      [ABI_GEO_H] = image->d[1].n, [ABI_GEO_W] = image->d[2].n, [ABI_GEO_C] = image->d[3].n,
      [ABI_GEO_OH] = cols->d[1].n, [ABI_GEO_OW] = cols->d[2].n, [ABI_GEO_KH] = w->k[0], [ABI_GEO_KW] = w->k[1],
      [ABI_GEO_SH] = w->stride[0], [ABI_GEO_SW] = w->stride[1], [ABI_GEO_DH] = w->dil[0], [ABI_GEO_DW] = w->dil[1],
      [ABI_GEO_PT] = w->pad[0], [ABI_GEO_PL] = w->pad[2]};
  LLVMValueRef vals[ABI_GEO_COUNT];
  for (int i = 0; i < ABI_GEO_COUNT; i++) vals[i] = LLVMConstInt(cg->i32, (unsigned long long)geo[i], 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMArrayType2(cg->i32, ABI_GEO_COUNT), "conv.geo");
  LLVMSetInitializer(gv, LLVMConstArray2(cg->i32, vals, ABI_GEO_COUNT));
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

/* C = op(A) op(B): cblas_?gemm per matrix of the (broadcast) batch, or plain
 * loops for integer products. */
void cg_matmul(CG *cg, const Node *n) {
  const Node *A = n->src[0], *B = n->src[1];
  const Shape *as = &A->shape, *bs = &B->shape, *cs = &n->shape;
  LLVMBuilderRef b = cg->b;
  int ar = as->rank, br = bs->rank, cr = cs->rank;
  LLVMValueRef M = cg_dim(cg, cs->d[cr - 2]), N = cg_dim(cg, cs->d[cr - 1]);
  LLVMValueRef K = cg_dim(cg, as->d[ar - (n->a.ta ? 2 : 1)]);
  Shape ab = {.rank = ar - 2}, bb = {.rank = br - 2}, cb = {.rank = cr - 2};
  memcpy(ab.d, as->d, sizeof(Dim) * (size_t)ab.rank);
  memcpy(bb.d, bs->d, sizeof(Dim) * (size_t)bb.rank);
  memcpy(cb.d, cs->d, sizeof(Dim) * (size_t)cb.rank);
  LLVMValueRef d[MAX_RANK], sa[MAX_RANK], sb[MAX_RANK], sc[MAX_RANK];
  cg_dims(cg, &cb, d);
  cg_bstrides(cg, &ab, &cb, sa);
  cg_bstrides(cg, &bb, &cb, sb);
  cg_strides(cg, &cb, sc);
  LLVMValueRef MK = LLVMBuildMul(b, M, K, ""), KN = LLVMBuildMul(b, K, N, ""), MN = LLVMBuildMul(b, M, N, "");
  Nest ns;
  cg_nest_begin(cg, &ns, cb.rank, d);
  /* A may be a patch matrix fuse() left unstored: packed from the image */
  const Node *patches = A->op == OP_RESHAPE && A->src[0]->op == OP_IM2COL && !A->src[0]->storage
                            ? A->src[0] : NULL;
  LLVMValueRef pa = patches ? NULL : cg_elem_ptr(cg, A, cg_ptr(cg, A), LLVMBuildMul(b, cg_offset(cg, &ns, sa), MK, ""));
  LLVMValueRef pb = cg_elem_ptr(cg, B, cg_ptr(cg, B), LLVMBuildMul(b, cg_offset(cg, &ns, sb), KN, ""));
  LLVMValueRef pc = cg_elem_ptr(cg, n, cg_ptr(cg, n), LLVMBuildMul(b, cg_offset(cg, &ns, sc), MN, ""));
  if (patches) {
    GRADC_ASSERT(cb.rank == 0 && n->dtype == DT_F32);
    LLVMTypeRef params[11] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->ptr,
                              cg->ptr, cg->ptr, cg->i32, cg->ptr, cg->i32};
    LLVMValueRef args[11] = {
        trans(cg, n->a.ta), trans(cg, n->a.tb), i32v(cg, M), i32v(cg, N), i32v(cg, K), cg_ptr(cg, patches->src[0]),
        conv_geometry(cg, &patches->a.win, &patches->src[0]->shape, &patches->shape), pb,
        i32v(cg, n->a.tb ? K : N), pc, i32v(cg, N)};
    cg_call(cg, ABI_FN_SGEMM_IM2COL, cg->vd, params, args, 11);
  } else if (dtype_is_float(n->dtype)) {
    bool dbl = n->dtype == DT_F64;
    LLVMTypeRef ft = cg_type(cg, n->dtype);
    LLVMTypeRef params[14] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, ft,
                              cg->ptr, cg->i32, cg->ptr, cg->i32, ft, cg->ptr, cg->i32};
    LLVMValueRef lda = n->a.ta ? M : K, ldb = n->a.tb ? K : N;
    LLVMValueRef args[14] = {
        LLVMConstInt(cg->i32, ABI_ROW_MAJOR, 0), trans(cg, n->a.ta), trans(cg, n->a.tb), i32v(cg, M), i32v(cg, N),
        i32v(cg, K),
        LLVMConstReal(ft, 1.0), pa, i32v(cg, lda), pb, i32v(cg, ldb), LLVMConstReal(ft, 0.0),
        pc, i32v(cg, N)};
    /* f64 products go to OpenBLAS itself, f32 ones to runtime/gemm.c */
    cg_call(cg, dbl ? ABI_FN_DGEMM : ABI_FN_SGEMM, cg->vd, params, args, 14);
  } else {
    LLVMTypeRef t = cg_type(cg, n->dtype);
    Loop li, lj, lp;
    LLVMValueRef i = cg_loop_begin(cg, &li, M), j = cg_loop_begin(cg, &lj, N);
    LLVMValueRef acc = slot(cg, t, LLVMConstInt(t, 0, 0));
    LLVMValueRef p = cg_loop_begin(cg, &lp, K);
    LLVMValueRef ia = n->a.ta ? LLVMBuildAdd(b, LLVMBuildMul(b, p, M, ""), i, "")
                              : LLVMBuildAdd(b, LLVMBuildMul(b, i, K, ""), p, "");
    LLVMValueRef ib = n->a.tb ? LLVMBuildAdd(b, LLVMBuildMul(b, j, K, ""), p, "")
                              : LLVMBuildAdd(b, LLVMBuildMul(b, p, N, ""), j, "");
    LLVMValueRef va = LLVMBuildLoad2(b, t, LLVMBuildGEP2(b, t, pa, &ia, 1, ""), "");
    LLVMValueRef vb = LLVMBuildLoad2(b, t, LLVMBuildGEP2(b, t, pb, &ib, 1, ""), "");
    LLVMBuildStore(b, LLVMBuildAdd(b, LLVMBuildLoad2(b, t, acc, ""), LLVMBuildMul(b, va, vb, ""), ""), acc);
    cg_loop_end(cg, &lp);
    LLVMValueRef ic = LLVMBuildAdd(b, LLVMBuildMul(b, i, N, ""), j, "");
    LLVMBuildStore(b, LLVMBuildLoad2(b, t, acc, ""), LLVMBuildGEP2(b, t, pc, &ic, 1, ""));
    cg_loop_end(cg, &lj);
    cg_loop_end(cg, &li);
  }
  cg_nest_end(cg, &ns);
}

void cg_transpose(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMValueRef d[MAX_RANK], xs[MAX_RANK], st[MAX_RANK], os[MAX_RANK];
  cg_dims(cg, &n->shape, d);
  cg_strides(cg, &x->shape, xs);
  cg_strides(cg, &n->shape, os);
  for (int i = 0; i < n->shape.rank; i++) st[i] = xs[n->a.perm[i]];
  Nest ns;
  cg_nest_begin(cg, &ns, n->shape.rank, d);
  cg_store(cg, n, cg_offset(cg, &ns, os), cg_load(cg, x, cg_offset(cg, &ns, st)));
  cg_nest_end(cg, &ns);
}

/* Walks the slice-shaped tensor `sliced`, with the offset of each element
 * inside the full tensor. */
void cg_slice_walk(CG *cg, const Node *n, const Shape *sliced, const Shape *full,
                   const Node *from, const Node *to, bool into_full) {
  LLVMValueRef d[MAX_RANK], fs[MAX_RANK], st[MAX_RANK], ss[MAX_RANK];
  cg_dims(cg, sliced, d);
  cg_strides(cg, full, fs);
  cg_strides(cg, sliced, ss);
  LLVMValueRef base = cg_int(cg, 0);
  for (int i = 0; i < sliced->rank; i++) {
    st[i] = LLVMBuildMul(cg->b, cg_int(cg, n->a.step[i]), fs[i], "");
    base = LLVMBuildAdd(cg->b, base, LLVMBuildMul(cg->b, cg_int(cg, n->a.begin[i]), fs[i], ""), "");
  }
  Nest ns;
  cg_nest_begin(cg, &ns, sliced->rank, d);
  LLVMValueRef fo = LLVMBuildAdd(cg->b, base, cg_offset(cg, &ns, st), ""), so = cg_offset(cg, &ns, ss);
  if (into_full) cg_store(cg, to, fo, cg_load(cg, from, so));
  else cg_store(cg, to, so, cg_load(cg, from, fo));
  cg_nest_end(cg, &ns);
}

void cg_zero(CG *cg, const Node *n) {
  LLVMValueRef bytes = LLVMBuildMul(cg->b, cg_count(cg, &n->shape), cg_int(cg, (int64_t)dtype_size(n->dtype)), "");
  LLVMBuildMemSet(cg->b, cg_ptr(cg, n), LLVMConstInt(cg->i8, 0, 0), bytes, 4);
}

void cg_concat(CG *cg, const Node *n) {
  LLVMValueRef outer, len, inner, at = cg_int(cg, 0);
  around(cg, &n->shape, n->a.axis, &outer, &len, &inner);
  for (int k = 0; k < n->nsrc; k++) {
    const Node *x = n->src[k];
    LLVMValueRef o2, lk, i2;
    around(cg, &x->shape, n->a.axis, &o2, &lk, &i2);
    LLVMValueRef row = LLVMBuildMul(cg->b, lk, inner, "");
    Loop lo, le;
    LLVMValueRef o = cg_loop_begin(cg, &lo, outer), e = cg_loop_begin(cg, &le, row);
    LLVMValueRef dst = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, o, len, ""), at, ""), inner, ""), e, "");
    LLVMValueRef src = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, o, row, ""), e, "");
    cg_store(cg, n, dst, cg_load(cg, x, src));
    cg_loop_end(cg, &le);
    cg_loop_end(cg, &lo);
    at = LLVMBuildAdd(cg->b, at, lk, "");
  }
}

void cg_one_hot(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  cg_zero(cg, n);
  LLVMValueRef depth = cg_int(cg, n->a.depth);
  Loop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, cg_count(cg, &n->src[0]->shape));
  LLVMValueRef y = LLVMBuildSExt(b, cg_load(cg, n->src[0], i), cg->i64, "");
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, y, cg_int(cg, 0), ""),
                                 LLVMBuildICmp(b, LLVMIntSLT, y, depth, ""), "");
  LLVMBasicBlockRef set = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "set");
  LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "skip");
  LLVMBuildCondBr(b, ok, set, skip);
  LLVMPositionBuilderAtEnd(b, set);
  cg_store(cg, n, LLVMBuildAdd(b, LLVMBuildMul(b, i, depth, ""), y, ""), cg_const(cg, n->dtype, 1));
  LLVMBuildBr(b, skip);
  LLVMPositionBuilderAtEnd(b, skip);
  cg_loop_end(cg, &l);
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
  t->bi = cg_loop_begin(cg, &t->lb, cg_dim(cg, in->d[0]));
  t->y = cg_loop_begin(cg, &t->lh, cg_int(cg, t->oh));
  t->x = cg_loop_begin(cg, &t->lw, cg_int(cg, t->ow));
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pos = LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, t->bi, cg_int(cg, t->oh), ""),
                                                                  t->y, ""), cg_int(cg, t->ow), ""), t->x, "pos");
  t->out = LLVMBuildMul(b, pos, cg_int(cg, t->c), "");
  t->col0 = LLVMBuildMul(b, pos, cg_int(cg, t->w->k[0] * t->w->k[1] * t->c), "");
}

static void taps_begin(CG *cg, Taps *t) {
  LLVMBuilderRef b = cg->b;
  t->ki = cg_loop_begin(cg, &t->li, cg_int(cg, t->w->k[0]));
  t->kj = cg_loop_begin(cg, &t->lj, cg_int(cg, t->w->k[1]));
  LLVMValueRef ih = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, t->y, cg_int(cg, t->w->stride[0]), ""),
                                                 LLVMBuildMul(b, t->ki, cg_int(cg, t->w->dil[0]), ""), ""),
                                 cg_int(cg, t->w->pad[0]), "ih");
  LLVMValueRef iw = LLVMBuildSub(b, LLVMBuildAdd(b, LLVMBuildMul(b, t->x, cg_int(cg, t->w->stride[1]), ""),
                                                 LLVMBuildMul(b, t->kj, cg_int(cg, t->w->dil[1]), ""), ""),
                                 cg_int(cg, t->w->pad[2]), "iw");
  /* unsigned compares: a negative index is a huge one */
  t->valid = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntULT, ih, cg_int(cg, t->h), ""),
                          LLVMBuildICmp(b, LLVMIntULT, iw, cg_int(cg, t->wd), ""), "valid");
  LLVMValueRef row = LLVMBuildAdd(b, LLVMBuildMul(b, t->bi, cg_int(cg, t->h), ""), ih, "");
  t->in = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, row, cg_int(cg, t->wd), ""), iw, ""), cg_int(cg, t->c), "in");
  LLVMValueRef tapk = LLVMBuildAdd(b, LLVMBuildMul(b, t->ki, cg_int(cg, t->w->k[1]), ""), t->kj, "");
  t->col = LLVMBuildAdd(b, t->col0, LLVMBuildMul(b, tapk, cg_int(cg, t->c), ""), "col");
}

static void taps_end(CG *cg, Taps *t) {
  cg_loop_end(cg, &t->lj);
  cg_loop_end(cg, &t->li);
}

static void positions_end(CG *cg, Taps *t) {
  cg_loop_end(cg, &t->lw);
  cg_loop_end(cg, &t->lh);
  cg_loop_end(cg, &t->lb);
}

static LLVMValueRef plus(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(cg->b, a, b, ""); }

/* Patches as rows: a copy of c channels per tap, zeros in the padding. */
void cg_im2col(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  Taps t;
  positions_begin(cg, &t, n, &x->shape);
  taps_begin(cg, &t);
  Loop lc;
  LLVMValueRef c = cg_loop_begin(cg, &lc, cg_int(cg, t.c));
  LLVMValueRef safe = LLVMBuildSelect(cg->b, t.valid, plus(cg, t.in, c), cg_int(cg, 0), "");
  LLVMValueRef v = LLVMBuildSelect(cg->b, t.valid, cg_load(cg, x, safe), cg_const(cg, n->dtype, 0), "");
  cg_store(cg, n, plus(cg, t.col, c), v);
  cg_loop_end(cg, &lc);
  taps_end(cg, &t);
  positions_end(cg, &t);
}

const Node *cg_col2im_product(const Node *n) {
  const Node *y = n->src[0];
  if (y->op == OP_RESHAPE) y = y->src[0];
  return y->op == OP_MATMUL && y->inlined_into == n ? y : NULL;
}

/* col2im(op(A) op(B)) in one call that never stores the product (runtime
 * gemm.c), which zeroes n itself. */
static void cg_col2im_fused(CG *cg, const Node *n, const Node *mm) {
  const Node *A = mm->src[0], *B = mm->src[1];
  LLVMValueRef M = cg_dim(cg, mm->shape.d[0]), N = cg_dim(cg, mm->shape.d[1]);
  LLVMValueRef K = cg_dim(cg, A->shape.d[mm->a.ta ? 0 : 1]);
  LLVMValueRef gv = conv_geometry(cg, &n->a.win, &n->shape, &n->src[0]->shape);
  LLVMTypeRef params[11] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->ptr,
                            cg->i32, cg->ptr, cg->i32, cg->ptr, cg->ptr};
  LLVMValueRef lda = mm->a.ta ? M : K, ldb = mm->a.tb ? K : N;
  LLVMValueRef args[11] = {trans(cg, mm->a.ta), trans(cg, mm->a.tb), i32v(cg, M), i32v(cg, N), i32v(cg, K),
                           cg_ptr(cg, A), i32v(cg, lda), cg_ptr(cg, B), i32v(cg, ldb), cg_ptr(cg, n), gv};
  cg_call(cg, ABI_FN_SGEMM_COL2IM, cg->vd, params, args, 11);
}

/* The adjoint: every patch value added back where it was read from (into
 * zeros: the caller zeroes n first, unless a product is folded in). */
void cg_col2im(CG *cg, const Node *n) {
  const Node *y = n->src[0], *mm = cg_col2im_product(n);
  if (mm) {
    cg_col2im_fused(cg, n, mm);
    return;
  }
  Taps t;
  positions_begin(cg, &t, n, &n->shape);
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  Loop lc;
  LLVMValueRef c = cg_loop_begin(cg, &lc, cg_int(cg, t.c));
  LLVMValueRef at = plus(cg, t.in, c);
  cg_store(cg, n, at, cg_fast(LLVMBuildFAdd(cg->b, cg_load(cg, n, at), cg_load(cg, y, plus(cg, t.col, c)), "")));
  cg_loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  positions_end(cg, &t);
}

/* max / average over the taps inside the input, channels innermost. */
void cg_pool(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMBuilderRef b = cg->b;
  bool mx = n->op == OP_MAXPOOL;
  DType dt = n->dtype;
  LLVMTypeRef ft = cg_type(cg, dt);
  Taps t;
  positions_begin(cg, &t, n, &x->shape);
  Loop l0;
  LLVMValueRef c = cg_loop_begin(cg, &l0, cg_int(cg, t.c));
  cg_store(cg, n, plus(cg, t.out, c), cg_const(cg, dt, mx ? -INFINITY : 0));
  cg_loop_end(cg, &l0);
  LLVMValueRef cnt = slot(cg, ft, cg_const(cg, dt, 0));
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, cnt, ""), cg_const(cg, dt, 1), ""), cnt);
  Loop lc;
  c = cg_loop_begin(cg, &lc, cg_int(cg, t.c));
  LLVMValueRef o = plus(cg, t.out, c), v = cg_load(cg, x, plus(cg, t.in, c)), acc = cg_load(cg, n, o);
  LLVMValueRef r = mx ? LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, v, acc, ""), v, acc, "")
                      : cg_fast(LLVMBuildFAdd(b, acc, v, ""));
  cg_store(cg, n, o, r);
  cg_loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  if (!mx) {
    LLVMValueRef inv = cg_fast(LLVMBuildFDiv(b, cg_const(cg, dt, 1), LLVMBuildLoad2(b, ft, cnt, ""), ""));
    Loop l2;
    c = cg_loop_begin(cg, &l2, cg_int(cg, t.c));
    LLVMValueRef o2 = plus(cg, t.out, c);
    cg_store(cg, n, o2, cg_fast(LLVMBuildFMul(b, cg_load(cg, n, o2), inv, "")));
    cg_loop_end(cg, &l2);
  }
  positions_end(cg, &t);
}

/* Per-channel scratch of one output position: [n x t] on the stack. */
static LLVMValueRef stack_array(CG *cg, LLVMTypeRef t, int64_t n) {
  LLVMValueRef a = cg_entry_alloca(cg, LLVMArrayType2(t, (uint64_t)n), "scratch");
  LLVMSetAlignment(a, 64);
  return a;
}

static LLVMValueRef at_index(CG *cg, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildGEP2(cg->b, t, base, &i, 1, "");
}

/* dx of a max pool: per window and channel, the first maximum gets gy.
 * Taps outside, channels inside, so the search over a window is one
 * vectorised loop per tap over per-channel best values and positions;
 * then each channel's gradient is added at its winner (into zeros: the
 * caller zeroes n first).  Same winners and
 * the same order of additions as eval.c's channel-by-channel loop. */
void cg_maxpool_grad(CG *cg, const Node *n) {
  const Node *x = n->src[0], *gy = n->src[1];
  LLVMBuilderRef b = cg->b;
  DType dt = n->dtype;
  LLVMTypeRef ft = cg_type(cg, dt);
  Taps t;
  positions_begin(cg, &t, n, &n->shape);
  LLVMValueRef best = stack_array(cg, ft, t.c), at = stack_array(cg, cg->i64, t.c);
  Loop l0;
  LLVMValueRef c = cg_loop_begin(cg, &l0, cg_int(cg, t.c));
  LLVMBuildStore(b, cg_int(cg, -1), at_index(cg, cg->i64, at, c));
  cg_loop_end(cg, &l0);
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  Loop lc;
  c = cg_loop_begin(cg, &lc, cg_int(cg, t.c));
  LLVMValueRef i = plus(cg, t.in, c), v = cg_load(cg, x, i);
  LLVMValueRef pb = at_index(cg, ft, best, c), pa = at_index(cg, cg->i64, at, c);
  LLVMValueRef bv = LLVMBuildLoad2(b, ft, pb, ""), cur = LLVMBuildLoad2(b, cg->i64, pa, "");
  LLVMValueRef better = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, cur, cg_int(cg, 0), ""),
                                    LLVMBuildFCmp(b, LLVMRealOGT, v, bv, ""), "");
  LLVMBuildStore(b, LLVMBuildSelect(b, better, v, bv, ""), pb);
  LLVMBuildStore(b, LLVMBuildSelect(b, better, i, cur, ""), pa);
  cg_loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  Loop ls;
  c = cg_loop_begin(cg, &ls, cg_int(cg, t.c));
  LLVMValueRef a = LLVMBuildLoad2(b, cg->i64, at_index(cg, cg->i64, at, c), "");
  join = if_begin(cg, LLVMBuildICmp(b, LLVMIntSGE, a, cg_int(cg, 0), ""));
  cg_store(cg, n, a, cg_fast(LLVMBuildFAdd(b, cg_load(cg, n, a), cg_load(cg, gy, plus(cg, t.out, c)), "")));
  if_end(cg, join);
  cg_loop_end(cg, &ls);
  positions_end(cg, &t);
}

/* dx of an average pool: gy / (taps inside) added to each tap. */
void cg_avgpool_grad(CG *cg, const Node *n) {
  const Node *gy = n->src[0];
  LLVMBuilderRef b = cg->b;
  DType dt = n->dtype;
  LLVMTypeRef ft = cg_type(cg, dt);
  cg_zero(cg, n);
  Taps t;
  positions_begin(cg, &t, n, &n->shape);
  LLVMValueRef cnt = slot(cg, ft, cg_const(cg, dt, 0));
  taps_begin(cg, &t);
  LLVMBasicBlockRef join = if_begin(cg, t.valid);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, ft, cnt, ""), cg_const(cg, dt, 1), ""), cnt);
  if_end(cg, join);
  taps_end(cg, &t);
  LLVMValueRef inv = cg_fast(LLVMBuildFDiv(b, cg_const(cg, dt, 1), LLVMBuildLoad2(b, ft, cnt, ""), ""));
  taps_begin(cg, &t);
  join = if_begin(cg, t.valid);
  Loop lc;
  LLVMValueRef c = cg_loop_begin(cg, &lc, cg_int(cg, t.c));
  LLVMValueRef at = plus(cg, t.in, c);
  LLVMValueRef g = cg_fast(LLVMBuildFMul(b, cg_load(cg, gy, plus(cg, t.out, c)), inv, ""));
  cg_store(cg, n, at, cg_fast(LLVMBuildFAdd(b, cg_load(cg, n, at), g, "")));
  cg_loop_end(cg, &lc);
  if_end(cg, join);
  taps_end(cg, &t);
  positions_end(cg, &t);
}

/* ------------------------------------------------------------ train vs inference */

/* The operand of this function's side, copied (both sides are values with
 * buffers of their own: neither is inlined into a select). */
void cg_train_select(CG *cg, const Node *n) {
  const Node *s = n->src[cg->train ? 0 : 1];
  if (cg_buffer_node(s) == cg_buffer_node(n)) return;
  if (!cg_buffer_node(s)) {
    cg_fill(cg, n, cg_load(cg, s, cg_int(cg, 0)));
    return;
  }
  LLVMValueRef bytes = LLVMBuildMul(cg->b, cg_count(cg, &n->shape), cg_int(cg, (int64_t)dtype_size(n->dtype)), "");
  LLVMBuildMemCpy(cg->b, cg_ptr(cg, n), 4, cg_ptr(cg, s), 4, bytes);
}

/* init.c's splitmix64 on i64 values */
static LLVMValueRef splitmix(CG *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef k = LLVMConstInt(cg->i64, 0x9e3779b97f4a7c15ull, 0);
  x = LLVMBuildAdd(b, x, k, "");
  x = LLVMBuildMul(b, LLVMBuildXor(b, x, LLVMBuildLShr(b, x, cg_int(cg, 30), ""), ""),
                   LLVMConstInt(cg->i64, 0xbf58476d1ce4e5b9ull, 0), "");
  x = LLVMBuildMul(b, LLVMBuildXor(b, x, LLVMBuildLShr(b, x, cg_int(cg, 27), ""), ""),
                   LLVMConstInt(cg->i64, 0x94d049bb133111ebull, 0), "");
  return LLVMBuildXor(b, x, LLVMBuildLShr(b, x, cg_int(cg, 31), ""), "");
}

/* The counter of a random op's element 0: for a value whose first
 * dimension is the batch, the replica's first row (gradc_row_offset, 0 on
 * one process) times the elements of a row, so that a data-parallel
 * replica draws its rows of the global batch as one process would draw
 * them (dropout on N ranks == on 1); else 0, the same draws everywhere. */
static LLVMValueRef first_draw(CG *cg, const Node *n) {
  const Shape *s = &n->shape;
  if (!s->rank || !s->d[0].sym || s->d[0].n != 1) return cg_int(cg, 0);
  LLVMValueRef per_row = LLVMBuildSDiv(cg->b, cg_count(cg, s), cg_dim(cg, s->d[0]), "per_row");
  LLVMValueRef first = cg_call(cg, ABI_FN_ROW_OFFSET, cg->i64, NULL, NULL, 0);
  return LLVMBuildMul(cg->b, first, per_row, "first_draw");
}

/* rng_keep of init.c element by element: the same bits as the evaluator
 * (on one process; see first_draw). */
void cg_dropout_mask(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  uint64_t stream = rng_stream((uint64_t)n->a.seed, "dropout");
  const Node *sn = graph_random_step(n);
  LLVMValueRef step = sn ? LLVMBuildSExt(b, cg_load(cg, sn, cg_int(cg, 0)), cg->i64, "") : cg_int(cg, 0);
  LLVMValueRef st = splitmix(cg, LLVMBuildXor(b, LLVMConstInt(cg->i64, stream, 0), splitmix(cg, step), ""));
  LLVMValueRef thr = LLVMConstInt(cg->i64, rng_keep_threshold(n->a.lo), 0);
  LLVMValueRef scale = cg_const(cg, n->dtype, 1 / (1 - n->a.lo)), zero = cg_const(cg, n->dtype, 0);
  LLVMValueRef first = first_draw(cg, n);
  Loop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, cg_count(cg, &n->shape));
  LLVMValueRef c = LLVMBuildAdd(b, first, i, "");
  LLVMValueRef bits = LLVMBuildLShr(b, splitmix(cg, LLVMBuildAdd(b, st, splitmix(cg, c), "")), cg_int(cg, 11), "");
  cg_store(cg, n, i, LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGE, bits, thr, ""), scale, zero, ""));
  cg_loop_end(cg, &l);
}

/* init.c's rng_uniform: counter c of the stream st as a double in [0, 1). */
static LLVMValueRef uniform01(CG *cg, LLVMValueRef st, LLVMValueRef c) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef bits = LLVMBuildLShr(b, splitmix(cg, LLVMBuildAdd(b, st, splitmix(cg, c), "")), cg_int(cg, 11), "");
  return LLVMBuildFMul(b, LLVMBuildUIToFP(b, bits, cg->f64, ""), LLVMConstReal(cg->f64, 0x1.0p-53), "");
}

/* init.c's rng_normal, operation for operation and without fast-math
 * flags, so the compiled draws are the evaluator's doubles (log and cos
 * are the C library's in both). */
static LLVMValueRef normal01(CG *cg, LLVMValueRef st, LLVMValueRef i) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef c = LLVMBuildMul(b, i, cg_int(cg, 2), "");
  LLVMValueRef u1 = LLVMBuildFSub(b, LLVMConstReal(cg->f64, 1.0), uniform01(cg, st, c), "");
  LLVMValueRef u2 = uniform01(cg, st, LLVMBuildAdd(b, c, cg_int(cg, 1), ""));
  LLVMValueRef l = cg_intrinsic(cg, "llvm.log", cg->f64, &u1, 1);
  LLVMValueRef r = LLVMBuildFMul(b, LLVMConstReal(cg->f64, -2.0), l, "");
  r = cg_intrinsic(cg, "llvm.sqrt", cg->f64, &r, 1);
  LLVMValueRef a = LLVMBuildFMul(b, LLVMConstReal(cg->f64, 6.283185307179586), u2, "");
  return LLVMBuildFMul(b, r, cg_intrinsic(cg, "llvm.cos", cg->f64, &a, 1), "");
}

/* init.c's rng_truncated: normals on counters 64i, 64i+1, ... until one
 * lies within 2; 0 after 64 misses. */
static LLVMValueRef truncated01(CG *cg, LLVMValueRef st, LLVMValueRef i) {
  LLVMBuilderRef b = cg->b;
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(b);
  LLVMBasicBlockRef draw = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "draw");
  LLVMBasicBlockRef again = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "again");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "drawn");
  LLVMBuildBr(b, draw);
  LLVMPositionBuilderAtEnd(b, draw);
  LLVMValueRef k = LLVMBuildPhi(b, cg->i64, "k");
  LLVMValueRef z = normal01(cg, st, LLVMBuildAdd(b, LLVMBuildMul(b, i, cg_int(cg, 64), ""), k, ""));
  LLVMValueRef k1 = LLVMBuildAdd(b, k, cg_int(cg, 1), "");
  LLVMValueRef az = cg_intrinsic(cg, "llvm.fabs", cg->f64, &z, 1);
  LLVMBuildCondBr(b, LLVMBuildFCmp(b, LLVMRealOLE, az, LLVMConstReal(cg->f64, 2.0), ""), done, again);
  LLVMBasicBlockRef draw_end = LLVMGetInsertBlock(b);
  LLVMPositionBuilderAtEnd(b, again);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, k1, cg_int(cg, 64), ""), draw, done);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMValueRef v = LLVMBuildPhi(b, cg->f64, "z");
  LLVMValueRef vin[2] = {z, LLVMConstReal(cg->f64, 0.0)};
  LLVMBasicBlockRef vfrom[2] = {draw_end, again};
  LLVMAddIncoming(v, vin, vfrom, 2);
  LLVMValueRef kin[2] = {cg_int(cg, 0), k1};
  LLVMBasicBlockRef kfrom[2] = {entry, again};
  LLVMAddIncoming(k, kin, kfrom, 2);
  return v;
}

/* random_normal, random_uniform, truncated_normal: eval_random's draws,
 * computed in double and rounded once to the node's dtype.  Element i
 * depends on (seed, step, i) alone, so the slices the threads take give
 * the same bits as one thread. */
void cg_random(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  const Node *sn = graph_random_step(n);
  uint64_t stream = rng_stream((uint64_t)n->a.seed, op_info[n->op].name);
  LLVMValueRef step = sn ? LLVMBuildSExt(b, cg_load(cg, sn, cg_int(cg, 0)), cg->i64, "") : cg_int(cg, 0);
  LLVMValueRef st = splitmix(cg, LLVMBuildXor(b, LLVMConstInt(cg->i64, stream, 0), splitmix(cg, step), ""));
  double lo = n->a.lo, hi = n->a.hi;
  LLVMValueRef first = first_draw(cg, n);
  Loop l;
  LLVMValueRef i = cg_loop_begin(cg, &l, cg_count(cg, &n->shape));
  LLVMValueRef c = LLVMBuildAdd(b, first, i, ""), v;
  if (n->op == OP_RANDOM_UNIFORM) {
    v = LLVMBuildFMul(b, LLVMConstReal(cg->f64, hi - lo), uniform01(cg, st, c), "");
  } else {
    v = n->op == OP_TRUNCATED_NORMAL ? truncated01(cg, st, c) : normal01(cg, st, c);
    v = LLVMBuildFMul(b, LLVMConstReal(cg->f64, hi), v, "");
  }
  v = LLVMBuildFAdd(b, LLVMConstReal(cg->f64, lo), v, "");
  if (n->dtype != DT_F64) v = LLVMBuildFPTrunc(b, v, cg_type(cg, n->dtype), "");
  cg_store(cg, n, i, v);
  cg_loop_end(cg, &l);
}

void cg_assign(CG *cg, const Node *n) {
  const Node *dst = n->src[0], *v = n->src[1];
  if (cg_buffer_node(v) == dst) return;
  if (!cg_buffer_node(v)) {      /* a scalar constant or size: one store */
    cg_store(cg, dst, cg_int(cg, 0), cg_load(cg, v, cg_int(cg, 0)));
    return;
  }
  LLVMValueRef bytes = LLVMBuildMul(cg->b, cg_count(cg, &dst->shape), cg_int(cg, (int64_t)dtype_size(dst->dtype)), "");
  LLVMBuildMemCpy(cg->b, cg_ptr(cg, dst), 4, cg_ptr(cg, v), 4, bytes);
}

/* ------------------------------------------------------------ embeddings */

/* Row ids[i] of the table [V, D] into row i, zeros for an id outside
 * [0, V) (one unsigned compare per row); the outer loop over the ids is
 * what threads split. */
void cg_gather(CG *cg, const Node *n) {
  const Node *t = n->src[0], *ids = n->src[1];
  LLVMBuilderRef b = cg->b;
  LLVMValueRef V = cg_int(cg, t->shape.d[0].n), D = cg_int(cg, t->shape.d[1].n);
  Loop li, lj;
  LLVMValueRef i = cg_loop_begin(cg, &li, cg_count(cg, &ids->shape));
  LLVMValueRef id = LLVMBuildSExt(b, cg_load(cg, ids, i), cg->i64, "");
  LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntULT, id, V, "");
  LLVMValueRef row = LLVMBuildMul(b, LLVMBuildSelect(b, ok, id, cg_int(cg, 0), ""), D, "");
  LLVMValueRef out = LLVMBuildMul(b, i, D, "");
  LLVMValueRef j = cg_loop_begin(cg, &lj, D);
  LLVMValueRef v = cg_load(cg, t, plus(cg, row, j));
  cg_store(cg, n, plus(cg, out, j), LLVMBuildSelect(b, ok, v, cg_const(cg, n->dtype, 0), ""));
  cg_loop_end(cg, &lj);
  cg_loop_end(cg, &li);
}

/* Columns per block of scatter_add: one cache line of f32. */
enum { SCATTER_COLUMNS = 16 };

/* gather's adjoint, by blocks of columns: each block zeroes its columns of
 * the result, then adds the updates' columns into the rows the ids pick,
 * the ids in order.  Every element is the same sum in the same order
 * whichever thread runs its block, so the bits do not depend on the thread
 * count, and no two threads ever write one element (a scatter over rows
 * would race on repeated ids). */
void cg_scatter_add(CG *cg, const Node *n) {
  const Node *u = n->src[0], *ids = n->src[1];
  LLVMBuilderRef b = cg->b;
  int64_t cols = n->shape.d[1].n;
  LLVMValueRef V = cg_int(cg, n->a.depth), D = cg_int(cg, cols);
  Loop lb, lv, lz, li, la;
  LLVMValueRef blk = cg_loop_begin(cg, &lb, cg_int(cg, (cols + SCATTER_COLUMNS - 1) / SCATTER_COLUMNS));
  LLVMValueRef c0 = LLVMBuildMul(b, blk, cg_int(cg, SCATTER_COLUMNS), "");
  LLVMValueRef left = LLVMBuildSub(b, D, c0, "");
  LLVMValueRef w = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, cg_int(cg, SCATTER_COLUMNS), ""),
                                   left, cg_int(cg, SCATTER_COLUMNS), "w");
  LLVMValueRef v = cg_loop_begin(cg, &lv, V);
  LLVMValueRef at = plus(cg, LLVMBuildMul(b, v, D, ""), c0);
  LLVMValueRef z = cg_loop_begin(cg, &lz, w);
  cg_store(cg, n, plus(cg, at, z), cg_const(cg, n->dtype, 0));
  cg_loop_end(cg, &lz);
  cg_loop_end(cg, &lv);
  LLVMValueRef i = cg_loop_begin(cg, &li, cg_count(cg, &ids->shape));
  LLVMValueRef id = LLVMBuildSExt(b, cg_load(cg, ids, i), cg->i64, "");
  LLVMBasicBlockRef join = if_begin(cg, LLVMBuildICmp(b, LLVMIntULT, id, V, ""));
  LLVMValueRef dst = plus(cg, LLVMBuildMul(b, id, D, ""), c0);
  LLVMValueRef src = plus(cg, LLVMBuildMul(b, i, D, ""), c0);
  LLVMValueRef c = cg_loop_begin(cg, &la, w);
  LLVMValueRef sum = LLVMBuildFAdd(b, cg_load(cg, n, plus(cg, dst, c)), cg_load(cg, u, plus(cg, src, c)), "");
  cg_store(cg, n, plus(cg, dst, c), sum);
  cg_loop_end(cg, &la);
  if_end(cg, join);
  cg_loop_end(cg, &li);
  cg_loop_end(cg, &lb);
}

/* ------------------------------------------------- issue 24: index ops */

/* y[i] = x[idx[i]], 0 for an index outside x (one unsigned compare). */
void cg_take(CG *cg, const Node *n) {
  const Node *x = n->src[0], *idx = n->src[1];
  LLVMBuilderRef b = cg->b;
  LLVMValueRef size = cg_count(cg, &x->shape);
  Loop li;
  LLVMValueRef i = cg_loop_begin(cg, &li, cg_count(cg, &n->shape));
  LLVMValueRef id = LLVMBuildSExt(b, cg_load(cg, idx, i), cg->i64, "");
  LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntULT, id, size, "");
  LLVMValueRef v = cg_load(cg, x, LLVMBuildSelect(b, ok, id, cg_int(cg, 0), ""));
  cg_store(cg, n, i, LLVMBuildSelect(b, ok, v, cg_const(cg, n->dtype, 0), ""));
  cg_loop_end(cg, &li);
}

/* Zeros, then u[i] added at idx[i] in index order (the evaluator's sums,
 * on one thread: repeated indices would race). */
void cg_take_add(CG *cg, const Node *n) {
  const Node *u = n->src[0], *idx = n->src[1];
  LLVMBuilderRef b = cg->b;
  bool fl = dtype_is_float(n->dtype);
  LLVMValueRef size = cg_count(cg, &n->shape);
  cg_fill(cg, n, cg_const(cg, n->dtype, 0));
  Loop li;
  LLVMValueRef i = cg_loop_begin(cg, &li, cg_count(cg, &idx->shape));
  LLVMValueRef id = LLVMBuildSExt(b, cg_load(cg, idx, i), cg->i64, "");
  LLVMBasicBlockRef join = if_begin(cg, LLVMBuildICmp(b, LLVMIntULT, id, size, ""));
  LLVMValueRef old = cg_load(cg, n, id), add = cg_load(cg, u, i);
  cg_store(cg, n, id, fl ? LLVMBuildFAdd(b, old, add, "") : LLVMBuildAdd(b, old, add, ""));
  if_end(cg, join);
  cg_loop_end(cg, &li);
}

/* argsort's row: its element k at base + k * inner, the positions in n's
 * own buffer, the values in x's. */
typedef struct SortRow {
  const Node *n, *x;
  LLVMValueRef base, inner;
} SortRow;

static LLVMValueRef row_at(CG *cg, const SortRow *r, LLVMValueRef k) {
  return LLVMBuildAdd(cg->b, r->base, LLVMBuildMul(cg->b, k, r->inner, ""), "");
}

static LLVMValueRef row_pos(CG *cg, const SortRow *r, LLVMValueRef k) {
  return LLVMBuildSExt(cg->b, cg_load(cg, r->n, row_at(cg, r, k)), cg->i64, "");
}

/* Position p sorts before position q: the smaller value first, NaN after
 * every number (numpy's order, as the evaluator), equal values in index
 * order.  A total order on (value, index), so that an unstable sort
 * gives the stable order. */
static LLVMValueRef sorts_before(CG *cg, const SortRow *r, LLVMValueRef p, LLVMValueRef q) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef xp = cg_load(cg, r->x, row_at(cg, r, p)), xq = cg_load(cg, r->x, row_at(cg, r, q));
  LLVMValueRef lower = LLVMBuildICmp(b, LLVMIntSLT, p, q, "");
  if (!dtype_is_float(r->x->dtype)) {
    LLVMValueRef eq = LLVMBuildICmp(b, LLVMIntEQ, xp, xq, "");
    return LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, xp, xq, ""), LLVMBuildAnd(b, eq, lower, ""), "");
  }
  LLVMValueRef np = LLVMBuildFCmp(b, LLVMRealUNO, xp, xp, ""), nq = LLVMBuildFCmp(b, LLVMRealUNO, xq, xq, "");
  LLVMValueRef pq = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOLT, xp, xq, ""), LLVMBuildAnd(b, LLVMBuildNot(b, np, ""), nq, ""), "");
  LLVMValueRef qp = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOLT, xq, xp, ""), LLVMBuildAnd(b, LLVMBuildNot(b, nq, ""), np, ""), "");
  return LLVMBuildOr(b, pq, LLVMBuildAnd(b, LLVMBuildNot(b, qp, ""), lower, ""), "");
}

static void row_swap(CG *cg, const SortRow *r, LLVMValueRef i, LLVMValueRef j) {
  LLVMValueRef ai = row_at(cg, r, i), aj = row_at(cg, r, j);
  LLVMValueRef vi = cg_load(cg, r->n, ai), vj = cg_load(cg, r->n, aj);
  cg_store(cg, r->n, ai, vj);
  cg_store(cg, r->n, aj, vi);
}

/* The heap's sift-down of the entry at root among the first `end`: while
 * a child sorts after it, swap it with the later of its children. */
static void sift_down(CG *cg, const SortRow *r, LLVMValueRef root, LLVMValueRef end) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef at = slot(cg, cg->i64, root);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "sift");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "sift_child");
  LLVMBasicBlockRef swap = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "sift_swap");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "sifted");
  LLVMBuildBr(b, head);
  LLVMPositionBuilderAtEnd(b, head);
  LLVMValueRef i = LLVMBuildLoad2(b, cg->i64, at, "");
  LLVMValueRef c = LLVMBuildAdd(b, LLVMBuildMul(b, i, cg_int(cg, 2), ""), cg_int(cg, 1), "");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, c, end, ""), body, done);
  LLVMPositionBuilderAtEnd(b, body);
  LLVMValueRef c2 = LLVMBuildAdd(b, c, cg_int(cg, 1), "");
  /* without a second child, compare the first with itself: never before */
  c2 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, c2, end, ""), c2, c, "");
  LLVMValueRef pc = row_pos(cg, r, c), pc2 = row_pos(cg, r, c2);
  LLVMValueRef second = sorts_before(cg, r, pc, pc2);
  LLVMValueRef child = LLVMBuildSelect(b, second, c2, c, "");
  LLVMValueRef pchild = LLVMBuildSelect(b, second, pc2, pc, "");
  LLVMBuildCondBr(b, sorts_before(cg, r, row_pos(cg, r, i), pchild), swap, done);
  LLVMPositionBuilderAtEnd(b, swap);
  row_swap(cg, r, i, child);
  LLVMBuildStore(b, child, at);
  LLVMBuildBr(b, head);
  LLVMPositionBuilderAtEnd(b, done);
}

/* The positions that sort each row along a.axis ascending, stable: a heap
 * sort of the positions in place in n's buffer by (value, index), so
 * O(n log n) with no scratch (the count of the elements before each one
 * that it replaces was quadratic: minutes for an axis of 10^5). */
void cg_argsort(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMBuilderRef b = cg->b;
  LLVMValueRef outer, len, inner;
  around(cg, &x->shape, n->a.axis, &outer, &len, &inner);
  Loop lo, lin, lk, lb, le;
  LLVMValueRef o = cg_loop_begin(cg, &lo, outer), in = cg_loop_begin(cg, &lin, inner);
  SortRow r = {n, x, at3(cg, o, cg_int(cg, 0), in, len, inner), inner};
  LLVMValueRef k = cg_loop_begin(cg, &lk, len);
  cg_store(cg, n, row_at(cg, &r, k), LLVMBuildTrunc(b, k, cg->i32, ""));
  cg_loop_end(cg, &lk);
  /* a heap with the last position in order at its root */
  LLVMValueRef half = LLVMBuildSDiv(b, len, cg_int(cg, 2), "");
  LLVMValueRef j = cg_loop_begin(cg, &lb, half);
  sift_down(cg, &r, LLVMBuildSub(b, LLVMBuildSub(b, half, cg_int(cg, 1), ""), j, ""), len);
  cg_loop_end(cg, &lb);
  /* the root to the end, the heap one shorter */
  LLVMValueRef m = cg_loop_begin(cg, &le, LLVMBuildSub(b, len, cg_int(cg, 1), ""));
  LLVMValueRef end = LLVMBuildSub(b, LLVMBuildSub(b, len, cg_int(cg, 1), ""), m, "");
  row_swap(cg, &r, cg_int(cg, 0), end);
  sift_down(cg, &r, cg_int(cg, 0), end);
  cg_loop_end(cg, &le);
  cg_loop_end(cg, &lin);
  cg_loop_end(cg, &lo);
}

/* A running sum (cumprod: product) along a.axis, in the element type, in
 * order. */
void cg_cumsum(CG *cg, const Node *n) {
  const Node *x = n->src[0];
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef t = cg_type(cg, n->dtype);
  bool fl = dtype_is_float(n->dtype);
  LLVMValueRef outer, len, inner;
  around(cg, &x->shape, n->a.axis, &outer, &len, &inner);
  Loop lo, lin, lj;
  LLVMValueRef o = cg_loop_begin(cg, &lo, outer), in = cg_loop_begin(cg, &lin, inner);
  bool prod = n->op == OP_CUMPROD;
  LLVMValueRef acc = slot(cg, t, cg_const(cg, n->dtype, prod ? 1 : 0));
  LLVMValueRef j = cg_loop_begin(cg, &lj, len);
  LLVMValueRef at = at3(cg, o, j, in, len, inner);
  LLVMValueRef a = LLVMBuildLoad2(b, t, acc, ""), v = cg_load(cg, x, at);
  LLVMValueRef s = prod ? (fl ? LLVMBuildFMul(b, a, v, "") : LLVMBuildMul(b, a, v, ""))
                        : (fl ? LLVMBuildFAdd(b, a, v, "") : LLVMBuildAdd(b, a, v, ""));
  LLVMBuildStore(b, s, acc);
  cg_store(cg, n, at, s);
  cg_loop_end(cg, &lj);
  cg_loop_end(cg, &lin);
  cg_loop_end(cg, &lo);
}
