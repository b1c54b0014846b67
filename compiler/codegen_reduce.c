/*
 * codegen_reduce.c - reductions (sum, mean, max, min, norm) as LLVM IR:
 * codegen.c's dispatch calls cg_reduce for a reduction node, and, for a
 * reduction of many rows to one (a bias gradient), cg_reduce_chunks in
 * parts over the thread pool then cg_reduce_combine.  Every output element
 * receives its terms in an order fixed by the shapes alone, so the bits do
 * not depend on the thread count.
 */
#include <llvm-c/Core.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "llvm_internal.h"

/* The type a reduction accumulates in.  An f32 sum accumulates in f64 and
 * is rounded once: a million positive f32 values added one by one into an
 * f32 lose 1e-5 to 1e-4 of their sum (their roundings do not cancel), in
 * f64 about 1e-10, and a mean is then what the evaluator (doubles)
 * computes, rounded.  max and min are exact; integer sums wrap as the
 * evaluator's; f64 sums stay f64. */
static DType reduce_acc(const Node *n) {
  bool sum = n->op == OP_SUM || n->op == OP_MEAN || n->op == OP_NORM;
  return n->dtype == DT_F32 && sum ? DT_F64 : n->dtype;
}

/* What an element of the operand adds: a norm sums squares. */
static LLVMValueRef reduce_term(CG *cg, const Node *n, LLVMValueRef v) {
  return n->op == OP_NORM ? cg_fast(LLVMBuildFMul(cg->b, v, v, "")) : v;
}

/* The value an accumulator of type t of reduction n starts from. */
static LLVMValueRef reduce_init(CG *cg, const Node *n, DType t) {
  bool fl = dtype_is_float(n->dtype);
  double init = n->op == OP_MAX ? -INFINITY : n->op == OP_MIN ? INFINITY : 0;
  if (!fl && n->op == OP_MAX) init = (double)INT32_MIN;
  if (!fl && n->op == OP_MIN) init = (double)INT32_MAX;
  return cg_const(cg, t, init);
}

/* acc combined with v (both of the accumulator's type), as n combines. */
static LLVMValueRef reduce_step(CG *cg, const Node *n, LLVMValueRef acc, LLVMValueRef v) {
  LLVMBuilderRef b = cg->b;
  bool fl = dtype_is_float(n->dtype);
  if (n->op == OP_MAX || n->op == OP_MIN) {
    bool mx = n->op == OP_MAX;
    /* fmax semantics as the evaluator: a NaN operand loses */
    LLVMValueRef c = fl ? LLVMBuildFCmp(b, mx ? LLVMRealOGT : LLVMRealOLT, v, acc, "")
                        : LLVMBuildICmp(b, mx ? LLVMIntSGT : LLVMIntSLT, v, acc, "");
    return LLVMBuildSelect(b, c, v, acc, "");
  }
  LLVMValueRef r = fl ? LLVMBuildFAdd(b, acc, v, "") : LLVMBuildAdd(b, acc, v, "");
  if (fl) LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  return r;
}

/* An output element from its accumulator: a mean divided by the number of
 * elements reduced into each output (per, an i64), then rounded to n's
 * type, once. */
static LLVMValueRef reduce_finish(CG *cg, const Node *n, LLVMValueRef acc, LLVMValueRef per) {
  DType at = reduce_acc(n);
  if (n->op == OP_MEAN)
    acc = cg_fast(LLVMBuildFDiv(cg->b, acc, LLVMBuildSIToFP(cg->b, per, cg_type(cg, at), ""), ""));
  if (n->op == OP_NORM) acc = cg_intrinsic(cg, "llvm.sqrt", cg_type(cg, at), &acc, 1);
  return cg_convert(cg, acc, at, n->dtype);
}

static LLVMValueRef acc_ptr(CG *cg, const Node *n, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildGEP2(cg->b, cg_type(cg, reduce_acc(n)), base, &off, 1, "");
}

/* A tile: the accumulators of a reduction whose operand ends in kept axes
 * (2 KiB of stack).  A block: the elements of a contiguous run that an f32
 * sum adds in f32 before it adds them to its f64 accumulator. */
enum { REDUCE_TILE = 256, REDUCE_BLOCK = 1024 };

/* sum/mean/max/min, and norm (a sum of squares, the root taken at the
 * store).  The kept axes are the outer loops, so each output element
 * accumulates all of its elements, in order, in an accumulator of its own
 * before its one store; nothing here depends on threads.
 *  - When the operand's innermost axis is reduced (a whole tensor, rows),
 *    that is one register per output over contiguous runs, which an f32
 *    sum takes in blocks of REDUCE_BLOCK elements: each block summed in a
 *    fresh f32 accumulator, which the vectoriser splits into lanes (so the
 *    loop runs at f32 speed, 64 partial sums on AVX-512), and the block
 *    sums added in f64.  Converting every element instead took 1.7x as
 *    long on a million floats and 2.3x on rows of 784.
 *  - When the operand ends in kept axes (columns not in row chunks,
 *    below), those trailing kept axes come innermost again, a tile of
 *    REDUCE_TILE of their elements at a time, with a stack array of
 *    accumulators (f64 for f32 sums): the operand is still read along its
 *    rows. */
void cg_reduce(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  const Node *x = n->src[0];
  const Shape *xs = &x->shape;
  int rank = xs->rank;
  DType at = reduce_acc(n);
  LLVMValueRef d[MAX_RANK], ost[MAX_RANK];
  cg_dims(cg, xs, d);
  cg_strides(cg, &n->shape, ost);
  /* the operand's axes: the trailing kept ones are axes [inner, rank);
   * os[i] is the output's stride along kept axis i */
  int inner = rank;
  while (inner > 0 && !(n->a.axes & (1u << (inner - 1)))) inner--;
  LLVMValueRef os[MAX_RANK], run = cg_int(cg, 1);
  for (int i = 0, j = 0; i < rank; i++) {
    bool red = n->a.axes & (1u << i);
    os[i] = red ? cg_int(cg, 0) : ost[j];
    if (!red || n->a.keepdims) j++;
    if (i >= inner) run = LLVMBuildMul(b, run, d[i], "");
  }
  LLVMValueRef per = LLVMBuildSDiv(b, cg_count(cg, xs), cg_count(cg, &n->shape), "per");
  Nest ns = {.rank = rank};
  Loop lk[MAX_RANK], lr[MAX_RANK], lt, lj, lf;
  LLVMValueRef o = cg_int(cg, 0);
  for (int i = 0; i < inner; i++) {
    if (n->a.axes & (1u << i)) continue;
    ns.idx[i] = cg_loop_begin(cg, &lk[i], d[i]);
    o = LLVMBuildAdd(b, o, LLVMBuildMul(b, ns.idx[i], os[i], ""), "");
  }
  LLVMValueRef acc, j0 = NULL, len = NULL;
  if (inner == rank) {
    acc = cg_entry_alloca(cg, cg_type(cg, at), "acc");
    LLVMBuildStore(b, reduce_init(cg, n, at), acc);
  } else {
    acc = cg_entry_alloca(cg, LLVMArrayType2(cg_type(cg, at), REDUCE_TILE), "tile");
    LLVMValueRef T = cg_int(cg, REDUCE_TILE);
    LLVMValueRef tiles = LLVMBuildSDiv(b, LLVMBuildAdd(b, run, cg_int(cg, REDUCE_TILE - 1), ""), T, "");
    j0 = LLVMBuildMul(b, cg_loop_begin(cg, &lt, tiles), T, "j0");
    LLVMValueRef left = LLVMBuildSub(b, run, j0, "");
    len = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, T, ""), left, T, "len");
    LLVMValueRef f = cg_loop_begin(cg, &lf, len);
    LLVMBuildStore(b, reduce_init(cg, n, at), acc_ptr(cg, n, acc, f));
    cg_loop_end(cg, &lf);
  }
  /* a run of an f32 sum: blocks of REDUCE_BLOCK elements, each summed in
   * a fresh f32 accumulator, then added to acc */
  LLVMValueRef blk = NULL;
  Loop lb;
  for (int i = 0; i < inner; i++) {
    if (!(n->a.axes & (1u << i))) continue;
    if (inner == rank && i == rank - 1 && at != n->dtype) {
      LLVMValueRef B = cg_int(cg, REDUCE_BLOCK);
      LLVMValueRef blocks = LLVMBuildSDiv(b, LLVMBuildAdd(b, d[i], cg_int(cg, REDUCE_BLOCK - 1), ""), B, "");
      LLVMValueRef b0 = LLVMBuildMul(b, cg_loop_begin(cg, &lb, blocks), B, "b0");
      LLVMValueRef left = LLVMBuildSub(b, d[i], b0, "");
      LLVMValueRef blen = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, B, ""), left, B, "");
      blk = cg_entry_alloca(cg, cg_type(cg, n->dtype), "block");
      LLVMBuildStore(b, reduce_init(cg, n, n->dtype), blk);
      ns.idx[i] = LLVMBuildAdd(b, b0, cg_loop_begin(cg, &lr[i], blen), "");
    } else {
      ns.idx[i] = cg_loop_begin(cg, &lr[i], d[i]);
    }
  }
  LLVMValueRef p = blk ? blk : acc, jr = NULL;
  if (inner < rank) {
    /* element j0 + j of the trailing kept axes, as their indices */
    LLVMValueRef j = cg_loop_begin(cg, &lj, len);
    LLVMValueRef rest = jr = LLVMBuildAdd(b, j0, j, "");
    for (int i = rank - 1; i >= inner; i--) {
      ns.idx[i] = i > inner ? LLVMBuildSRem(b, rest, d[i], "") : rest;
      rest = LLVMBuildSDiv(b, rest, d[i], "");
    }
    p = acc_ptr(cg, n, acc, j);
  }
  Ctx cx = {.shape = xs, .flat = cg_flat_tree(x, n, xs), .ns = &ns};
  if (cx.flat) {
    /* the trailing kept axes are contiguous in the operand */
    LLVMValueRef st[MAX_RANK];
    cg_strides(cg, xs, st);
    cx.i = jr ? jr : cg_int(cg, 0);
    for (int i = 0; i < inner; i++) cx.i = LLVMBuildAdd(b, cx.i, LLVMBuildMul(b, ns.idx[i], st[i], ""), "");
  }
  DType vt = blk ? n->dtype : at;
  LLVMValueRef v = reduce_term(cg, n, cg_convert(cg, cg_elem(cg, x, n, &cx), x->dtype, vt));
  LLVMBuildStore(b, reduce_step(cg, n, LLVMBuildLoad2(b, cg_type(cg, vt), p, ""), v), p);
  if (inner < rank) cg_loop_end(cg, &lj);
  LLVMTypeRef t = cg_type(cg, at);
  for (int i = inner - 1; i >= 0; i--) {
    if (!(n->a.axes & (1u << i))) continue;
    cg_loop_end(cg, &lr[i]);
    if (blk && i == rank - 1) {
      LLVMValueRef sum = cg_convert(cg, LLVMBuildLoad2(b, cg_type(cg, n->dtype), blk, ""), n->dtype, at);
      LLVMBuildStore(b, reduce_step(cg, n, LLVMBuildLoad2(b, t, acc, ""), sum), acc);
      cg_loop_end(cg, &lb);
    }
  }
  if (inner == rank) {
    cg_store(cg, n, o, reduce_finish(cg, n, LLVMBuildLoad2(b, t, acc, ""), per));
  } else {
    /* the trailing kept axes are contiguous in the output too */
    LLVMValueRef j = cg_loop_begin(cg, &lf, len);
    LLVMValueRef a = LLVMBuildLoad2(b, t, acc_ptr(cg, n, acc, j), "");
    cg_store(cg, n, LLVMBuildAdd(b, o, LLVMBuildAdd(b, j0, j, ""), ""), reduce_finish(cg, n, a, per));
    cg_loop_end(cg, &lf);
    cg_loop_end(cg, &lt);
  }
  for (int i = inner - 1; i >= 0; i--)
    if (!(n->a.axes & (1u << i))) cg_loop_end(cg, &lk[i]);
}

/* Parallel column reductions (bias gradients: a sum over every axis but the
 * last).  The rows are cut into ROW_CHUNKS fixed chunks, whatever the
 * thread count; each part reduces whole chunks into a row of partials in
 * gradc_scratch (runtime/pool.c), and the caller combines the partials in
 * chunk order.  So every output element sees the same operations whatever
 * the split, and a part reads the rows that the part of the same number
 * wrote in the loop before (slices of the outer loop), still in its core's
 * cache: splitting the columns instead made these sums slower on 2 threads
 * than on 1, half of every row being in the other core's cache.
 *
 * An f32 sum's partials are f64 (reduce_acc) when its chunks are long.
 * When no chunk has more than ROW_BLOCK rows (up to 1024 rows: a batch's
 * bias gradient), they are f32 sums of at most 64 rows each, blocks added
 * pairwise in f32: converting every element to f64 took 1.35x as long for
 * a bias gradient of [128, 512], and adding the f32 partials in f64 still
 * 1.05x.  Which one runs depends on the row count alone. */
enum { ROW_CHUNKS = 16, ROW_BLOCK = 64 };

bool cg_chunked_reduction(const Node *n) {
  if (!(op_info[n->op].flags & F_REDUCTION)) return false;
  const Shape *xs = &n->src[0]->shape;
  int last = xs->rank - 1;
  return last >= 1 && n->a.axes == (1u << last) - 1 && !xs->d[last].sym &&
         ROW_CHUNKS * xs->d[last].n * (int64_t)dtype_size(reduce_acc(n)) <= ABI_SCRATCH_BYTES;
}

static LLVMValueRef scratch_ptr(CG *cg) { return cg_call(cg, ABI_FN_SCRATCH, cg->ptr, NULL, NULL, 0); }

/* Emits gen(pt) twice: with partials of n's own type when the chunks are
 * short, of its accumulator's type when not; once when those are one. */
typedef void ChunkFn(CG *cg, const Node *n, DType pt, void *arg);
static void by_partial_type(CG *cg, const Node *n, LLVMValueRef rows, ChunkFn *gen, void *arg) {
  DType at = reduce_acc(n);
  if (at == n->dtype) {
    gen(cg, n, at, arg);
    return;
  }
  LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "short");
  LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "long");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "joined");
  LLVMValueRef few = LLVMBuildICmp(cg->b, LLVMIntSLE, rows, cg_int(cg, ROW_CHUNKS * ROW_BLOCK), "");
  LLVMBuildCondBr(cg->b, few, yes, no);
  LLVMPositionBuilderAtEnd(cg->b, yes);
  gen(cg, n, n->dtype, arg);
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, no);
  gen(cg, n, at, arg);
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, join);
}

typedef struct Chunk {
  LLVMValueRef scratch, ch, r0, r1;
} Chunk;

/* Rows [r0, r1) of the operand into chunk ch's row of partials of type pt. */
static void chunk_rows(CG *cg, const Node *n, DType pt, void *arg) {
  const Chunk *k = arg;
  LLVMBuilderRef b = cg->b;
  const Node *x = n->src[0];
  const Shape *xs = &x->shape;
  int last = xs->rank - 1;
  LLVMTypeRef t = cg_type(cg, pt);
  LLVMValueRef C = cg_int(cg, xs->d[last].n);
  Loop lr, lc, lf;
  LLVMValueRef partial = LLVMBuildGEP2(b, t, k->scratch, (LLVMValueRef[]){LLVMBuildMul(b, k->ch, C, "")}, 1, "");
  LLVMValueRef f = cg_loop_begin(cg, &lf, C);
  LLVMBuildStore(b, reduce_init(cg, n, pt), LLVMBuildGEP2(b, t, partial, &f, 1, ""));
  cg_loop_end(cg, &lf);
  LLVMValueRef r = LLVMBuildAdd(b, cg_loop_begin(cg, &lr, LLVMBuildSub(b, k->r1, k->r0, "")), k->r0, "row");
  /* the operand's index: the row's leading indices, then the column */
  Nest ns = {.rank = xs->rank};
  LLVMValueRef rest = r;
  for (int i = last - 1; i >= 0; i--) {
    LLVMValueRef d = cg_dim(cg, xs->d[i]);
    ns.idx[i] = i ? LLVMBuildSRem(b, rest, d, "") : rest;
    rest = LLVMBuildSDiv(b, rest, d, "");
  }
  LLVMValueRef c = cg_loop_begin(cg, &lc, C);
  ns.idx[last] = c;
  Ctx cx = {.shape = xs, .flat = cg_flat_tree(x, n, xs), .ns = &ns};
  cx.i = LLVMBuildAdd(b, LLVMBuildMul(b, r, C, ""), c, "");
  LLVMValueRef v = reduce_term(cg, n, cg_convert(cg, cg_elem(cg, x, n, &cx), x->dtype, pt));
  LLVMValueRef p = LLVMBuildGEP2(b, t, partial, &c, 1, "");
  LLVMBuildStore(b, reduce_step(cg, n, LLVMBuildLoad2(b, t, p, ""), v), p);
  cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lr);
}

/* The outlined part: chunks [16 part / nparts, 16 (part + 1) / nparts). */
void cg_reduce_chunks(CG *cg, const Node *n) {
  LLVMBuilderRef b = cg->b;
  const Shape *xs = &n->src[0]->shape;
  LLVMValueRef R = LLVMBuildSDiv(b, cg_count(cg, xs), cg_int(cg, xs->d[xs->rank - 1].n), "rows");
  LLVMValueRef one = cg_int(cg, 1), chunks = cg_int(cg, ROW_CHUNKS);
  cg->split = false;   /* the slice is taken here, in chunks */
  cg->own_parts = true;
  LLVMValueRef c0 = LLVMBuildSDiv(b, LLVMBuildMul(b, chunks, cg->part, ""), cg->nparts, "");
  LLVMValueRef c1 = LLVMBuildSDiv(b, LLVMBuildMul(b, chunks, LLVMBuildAdd(b, cg->part, one, ""), ""),
                                  cg->nparts, "");
  Chunk k = {.scratch = scratch_ptr(cg)};
  Loop lk;
  k.ch = LLVMBuildAdd(b, cg_loop_begin(cg, &lk, LLVMBuildSub(b, c1, c0, "")), c0, "chunk");
  k.r0 = LLVMBuildSDiv(b, LLVMBuildMul(b, R, k.ch, ""), chunks, "");
  k.r1 = LLVMBuildSDiv(b, LLVMBuildMul(b, R, LLVMBuildAdd(b, k.ch, one, ""), ""), chunks, "");
  by_partial_type(cg, n, R, chunk_rows, &k);
  cg_loop_end(cg, &lk);
  cg->own_parts = false;
}

/* out[c] = column c's partials of type pt, added pairwise in chunk order
 * ((p0 + p1) + (p2 + p3)) + ..., then rounded once. */
static void combine_columns(CG *cg, const Node *n, DType pt, void *arg) {
  LLVMBuilderRef b = cg->b;
  const Shape *xs = &n->src[0]->shape;
  LLVMTypeRef t = cg_type(cg, pt);
  int64_t cols = xs->d[xs->rank - 1].n;
  LLVMValueRef C = cg_int(cg, cols), scratch = arg;
  Loop lc;
  LLVMValueRef c = cg_loop_begin(cg, &lc, C), v[ROW_CHUNKS];
  for (int k = 0; k < ROW_CHUNKS; k++) {
    LLVMValueRef off = LLVMBuildAdd(b, c, cg_int(cg, k * cols), "");
    v[k] = LLVMBuildLoad2(b, t, LLVMBuildGEP2(b, t, scratch, &off, 1, ""), "");
  }
  for (int w = 1; w < ROW_CHUNKS; w *= 2)
    for (int k = 0; k + w < ROW_CHUNKS; k += 2 * w) v[k] = reduce_step(cg, n, v[k], v[k + w]);
  LLVMValueRef acc = cg_convert(cg, v[0], pt, reduce_acc(n));
  cg_store(cg, n, c, reduce_finish(cg, n, acc, LLVMBuildSDiv(b, cg_count(cg, xs), C, "")));
  cg_loop_end(cg, &lc);
}

/* After the parts: out[c] from column c's partials. */
void cg_reduce_combine(CG *cg, const Node *n) {
  const Shape *xs = &n->src[0]->shape;
  LLVMValueRef R = LLVMBuildSDiv(cg->b, cg_count(cg, xs), cg_int(cg, xs->d[xs->rank - 1].n), "rows");
  by_partial_type(cg, n, R, combine_columns, scratch_ptr(cg));
}
