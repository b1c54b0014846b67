/*
 * llvm_internal.h - the only declarations that mention LLVM types: the
 * generator's state and helpers shared by codegen.c and codegen_kernels.c,
 * and what codegen hands jit.c (and the AOT emitter).  Nothing outside
 * those files includes it.
 */
#ifndef GRADC_LLVM_INTERNAL_H
#define GRADC_LLVM_INTERNAL_H

#include <llvm-c/Core.h>

#include "compiler.h"

/* ------------------------------------------------ codegen.c, codegen_kernels.c */

/* The generator's state while one function is being built. */
typedef struct CG {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  const Graph *g;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vd;
  LLVMValueRef fn;
  LLVMValueRef rt;                  /* fn's run-time context argument */
  LLVMValueRef sym[MAX_SYMS + 1];   /* i64 values, loaded at entry */
  LLVMValueRef *base;               /* per node: its storage pointer in fn */
  LLVMValueRef *global;             /* per node: tensor constant globals */
  unsigned char *mark;             /* nodes the function being built needs */
  bool train;                       /* generating a train step, not forward */
  bool profile;                     /* call gradc_profile_mark per kernel */
  bool parallel;                    /* outline large loops (gen_parallel) */
  /* In an outlined kernel: its part and number of parts, which the next
   * top-level cg_loop_begin takes its slice by (then split is cleared). */
  LLVMValueRef part, nparts;
  bool split;
  bool own_parts;                   /* the generator slices its loops itself */
  int depth;                        /* loops open */
  LLVMValueRef t;                   /* in a scan's body: the iteration's index */
  /* In a loop run in slices of rows (codegen.c: gen_loop_rows): sym with
   * the whole batch, which the sequences' and stacks' strides are in
   * (sym then holds the slice's rows); NULL elsewhere. */
  LLVMValueRef *full_sym;
  /* While a kernel function is generated (codegen.c: gen_kernel): its
   * table of buffer pointers, from which cg_ptr loads a buffer's pointer
   * at the function's entry the first time it is used, numbering the
   * slots in that order (slot[s->id] - 1, 0 for none; slots[] the other
   * way), so that the same code over other buffers is the same function. */
  LLVMValueRef args;
  int *slot;
  const Node **slots;
  int nslots;
  const char *kernel_name;          /* its name, which its tasks' start with */
  int ntasks;
  struct KernelTable *kernels;      /* the kernels made so far, to share */
} CG;

/* for (iv = 0; iv < n; iv++): code emitted between cg_loop_begin and
 * cg_loop_end is the body. */
typedef struct Loop {
  LLVMBasicBlockRef head, body, exit, pre;
  LLVMValueRef iv, start;
} Loop;

/* A nest over dims d[0..rank-1]; idx[i] are the induction variables. */
typedef struct Nest {
  int rank;
  Loop l[MAX_RANK];
  LLVMValueRef idx[MAX_RANK];
} Nest;

/* codegen.c: types, constants, sizes and element access */
LLVMTypeRef cg_type(CG *cg, DType t);
LLVMValueRef cg_int(CG *cg, int64_t v);                 /* an i64 constant */
LLVMValueRef cg_const(CG *cg, DType t, double v);
LLVMValueRef cg_dim(CG *cg, Dim d);                     /* run-time for symbolic */
LLVMValueRef cg_count(CG *cg, const Shape *s);
void cg_strides(CG *cg, const Shape *s, LLVMValueRef *st);
/* strides of s read as out's broadcast operand: 0 along broadcast axes */
void cg_bstrides(CG *cg, const Shape *s, const Shape *out, LLVMValueRef *st);
LLVMValueRef cg_fast(LLVMValueRef v);                   /* allow FMA contraction */
LLVMValueRef cg_intrinsic(CG *cg, const char *name, LLVMTypeRef t, LLVMValueRef *args,
                          int nargs);
LLVMValueRef cg_elem_ptr(CG *cg, const Node *n, LLVMValueRef base, LLVMValueRef off);
LLVMValueRef cg_ptr(CG *cg, const Node *n);             /* n's storage */
LLVMValueRef cg_load(CG *cg, const Node *n, LLVMValueRef off);
void cg_store(CG *cg, const Node *n, LLVMValueRef off, LLVMValueRef v);
void cg_fill(CG *cg, const Node *n, LLVMValueRef v);
/* stack memory in the entry block of the function being built */
LLVMValueRef cg_entry_alloca(CG *cg, LLVMTypeRef t, const char *name);
LLVMValueRef cg_loop_begin(CG *cg, Loop *l, LLVMValueRef n);   /* the induction variable */
void cg_loop_end(CG *cg, Loop *l);
void cg_nest_begin(CG *cg, Nest *ns, int rank, LLVMValueRef *d);
void cg_nest_end(CG *cg, Nest *ns);
LLVMValueRef cg_offset(CG *cg, const Nest *ns, LLVMValueRef *st);   /* sum idx[i]*st[i] */
void cg_dims(CG *cg, const Shape *s, LLVMValueRef *d);

/* codegen_kernels.c: one generator per structured op, called by codegen.c's
 * dispatch with the node whose value to compute */
typedef void CgKernel(CG *cg, const Node *n);
/* codegen_loop.c: loops (scans) */
CgKernel cg_loop_node, cg_carry_init;
/* At the top of an iteration of the loop ending in e: the values that live
 * in a step's block of a stack or a sequence (codegen_loop.c). */
void cg_loop_slots(CG *cg, const Node *e);
CgKernel cg_softmax, cg_argreduce, cg_softmax_ce, cg_matmul, cg_transpose, cg_concat, cg_one_hot, cg_im2col, cg_col2im, cg_pool, cg_maxpool_grad, cg_avgpool_grad, cg_train_select, cg_dropout_mask, cg_random, cg_assign;
CgKernel cg_gather, cg_scatter_add;   /* embedding lookups and their adjoint */
CgKernel cg_take, cg_take_add, cg_argsort, cg_cumsum;   /* issue 24's index ops */
/* The loop an element is computed in: a flat index over `shape` when every
 * value read has that shape or is a scalar, else a nest of its axes. */
typedef struct Ctx {
  const Shape *shape;
  bool flat;
  LLVMValueRef i;
  const Nest *ns;
} Ctx;
/* One element of n in the loop cx of its reader: computed there when fuse()
 * inlined n into it, else loaded (broadcast through n's strides); and
 * whether every value such a loop reads has shape s or none (codegen.c). */
LLVMValueRef cg_elem(CG *cg, const Node *n, const Node *reader, const Ctx *cx);
bool cg_flat_tree(const Node *n, const Node *reader, const Shape *s);
/* codegen_reduce.c: reductions; those of many rows to few in row chunks
 * (cg_chunked_reduction: cg_reduce_chunks in parts, then
 * cg_reduce_combine) */
CgKernel cg_reduce, cg_reduce_chunks, cg_reduce_combine;
bool cg_chunked_reduction(const Node *n);
/* x of dtype from as dtype to (codegen.c's scalar ops) */
LLVMValueRef cg_convert(CG *cg, LLVMValueRef x, DType from, DType to);
void cg_slice_walk(CG *cg, const Node *n, const Shape *sliced, const Shape *full,
                   const Node *from, const Node *to, bool into_full);
void cg_zero(CG *cg, const Node *n);
/* A call of the outside function fn (abi.h's list; declared on first use):
 * for the runtime's gradc_* functions the instance's run-time context goes
 * first, before params/args. */
LLVMValueRef cg_call(CG *cg, AbiFunction fn, LLVMTypeRef ret, LLVMTypeRef *params, LLVMValueRef *args, int nargs);
/* The product fuse() folded into the col2im n (its runtime call zeroes n
 * and runs its own parts), or NULL. */
const Node *cg_col2im_product(const Node *n);

/* One module with <prefix>forward and <prefix>step_NAME per train step
 * (cg_function_name; see codegen.c), which call the internal kernel
 * functions kernelN (and their tasks kernelN.K). */
LLVMModuleRef cg_module(LLVMContextRef ctx, const Graph *g, const char *prefix, bool profile,
                        bool parallel);

/* jit.c, shared with the AOT emitter (emit.c). */
#include <llvm-c/TargetMachine.h>
/* A position-independent target machine; every target LLVM was built with
 * is registered on first use.  NULL after writing the reason into err. */
LLVMTargetMachineRef llvm_target_machine(const char *triple, const char *cpu, const char *features,
                                         LLVMCodeGenOptLevel level, LLVMCodeModel model, char *err,
                                         size_t errlen);
/* GRADC_LLVM_CODEGEN=llvm: LLVM's own defaults (its default<O3>, its code
 * generation options, no optnone kernels), to compare with gradc's. */
bool llvm_defaults(void);
/* Gives mod tm's triple and data layout, verifies it and runs the pass
 * pipeline of -O{opt} (gradc's at -O2/-O3, jit.c: pipeline_text) without
 * loop unrolling and interleaving; *ir_before (if not NULL) gets the IR
 * before the pipeline (malloc'd); times (if not NULL) a row per step.
 * False after writing the reason into err. */
bool llvm_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char **ir_before, TimeReport *times,
                   char *err, size_t errlen);

#endif
