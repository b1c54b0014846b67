/*
 * abi.h - what compiled code, the compiler and the runtime agree on.
 *
 * The code generator (compiler/codegen*.c) writes functions that a runtime
 * calls and that call back into it; the emitter (compiler/emit.c) writes a
 * model's descriptor that the runtime reads (runtime/instance.c); the .so
 * header (compiler/header.c) spells the runtime's status values for C
 * programs.  Every number and name that crosses those lines is defined
 * once, here, so that neither side can drift from the other:
 *
 *   - the entry points' signature (StepFn) and the outside functions the
 *     code calls, by name (GRADC_ABI_FUNCTIONS: codegen emits the calls,
 *     runtime/blas.c resolves them for the JIT, the support library of a
 *     .so defines them);
 *   - the numbers inside calls: scratch size, the convolution geometry
 *     array, CBLAS's flags;
 *   - element types, tensor kinds, initializer kinds and status values,
 *     each an X-macro that gives the enum and the names (the .so header
 *     prints them from the same rows);
 *   - the descriptor: every array and record of it, and its version;
 *   - the two computations both sides must do bit for bit alike, declared
 *     here because both call them: the workspace layout (layout.c) and
 *     the initial values of parameters (init.c).
 *
 * gradc.h, the public API, cannot include this file, so where it retypes a
 * number (status, dtype, kind, the rank of gradc_tensor.dims) a
 * _Static_assert in runtime/instance.c holds the two together.
 *
 * Only the C library's headers: the support library of a .so and the
 * compiler include it alike.
 */
#ifndef GRADC_ABI_H
#define GRADC_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tensor rank and symbolic dimension names per model: the sizes of the
 * descriptor's dimension fields and of the sym[] array a step reads. */
enum { ABI_MAX_RANK = 8, ABI_MAX_SYMS = 16 };

/* Marks a runtime function that the compiler's library calls (libgradc.so:
 * jitmodel.c, jit.c, descriptor.c, plan.c, eval.c).  libgradc_runtime.so
 * exports gradc_* and nothing else (its version script, CMakeLists.txt), so
 * such a function's symbol is gradc__NAME while its C name stays the
 * module's: reserved for us (two underscores, never in gradc.h), neither
 * clashing with nor interposed by a program's own inst_new or rng_uniform.
 * A function libgradc.so needs that lacks the mark is an undefined
 * reference when libgradc.so is linked (--no-undefined). */
#define RT_SHARED(name) __asm__("gradc__" #name)

/* ------------------------------------------------------------ entry points */

/* A compiled entry point: rt is the calling instance's run-time context
 * (runtime/context.c), which the code hands, as first argument, to every
 * gradc_* function it calls (thread pool, scratch, profile tables); buf[i]
 * is node i's storage, sym[k] the value of symbolic dimension k
 * (sym[0] = 1). */
typedef void StepFn(void *rt, void **buf, const int64_t *sym);

/* How compiled code calls an outside function: ABI_CALL_RT with the
 * instance's run-time context first (the runtime's own gradc_* functions),
 * ABI_CALL_C as the C function it is, ABI_CALL_LLVM never by name - LLVM
 * lowers its intrinsics (llvm.exp, ...) to these libm calls, so a JIT must
 * resolve them too. */
typedef enum { ABI_CALL_RT, ABI_CALL_C, ABI_CALL_LLVM } AbiCall;

/* Every outside function compiled code may call: an id, the symbol, how it
 * is called, and whether --profile times it (TIMED: runtime/blas.c resolves
 * the symbol to a wrapper that adds its time to the instance's profile).
 * The C prototypes of the gradc_* ones are in runtime.h; gradc_profile_mark
 * is called only by code compiled with --profile, which only the JIT is. */
#define GRADC_ABI_FUNCTIONS(X)                                        \
  /* id            symbol               call           --profile */   \
  X(SGEMM,         gradc_sgemm,         ABI_CALL_RT,   TIMED)         \
  X(SGEMM_COL2IM,  gradc_sgemm_col2im,  ABI_CALL_RT,   TIMED)         \
  X(SGEMM_IM2COL,  gradc_sgemm_im2col,  ABI_CALL_RT,   TIMED)         \
  X(PARALLEL,      gradc_parallel,      ABI_CALL_RT,   UNTIMED)       \
  X(SERIAL,        gradc_serial,        ABI_CALL_RT,   UNTIMED)       \
  X(LOOP,          gradc_loop,          ABI_CALL_RT,   UNTIMED)       \
  X(SCRATCH,       gradc_scratch,       ABI_CALL_RT,   UNTIMED)       \
  X(PROFILE_MARK,  gradc_profile_mark,  ABI_CALL_RT,   UNTIMED)       \
  X(ALLREDUCE,     gradc_allreduce,     ABI_CALL_RT,   UNTIMED)       \
  X(ROW_OFFSET,    gradc_row_offset,    ABI_CALL_RT,   UNTIMED)       \
  X(DGEMM,         cblas_dgemm,         ABI_CALL_C,    UNTIMED)       \
  X(TANHF,         tanhf,               ABI_CALL_C,    UNTIMED)       \
  X(TANH,          tanh,                ABI_CALL_C,    UNTIMED)       \
  X(ERFF,          erff,                ABI_CALL_C,    UNTIMED)       \
  X(ERF,           erf,                 ABI_CALL_C,    UNTIMED)       \
  X(EXPF,          expf,                ABI_CALL_LLVM, UNTIMED)       \
  X(EXP,           exp,                 ABI_CALL_LLVM, UNTIMED)       \
  X(LOGF,          logf,                ABI_CALL_LLVM, UNTIMED)       \
  X(LOG,           log,                 ABI_CALL_LLVM, UNTIMED)       \
  X(POWF,          powf,                ABI_CALL_LLVM, UNTIMED)       \
  X(POW,           pow,                 ABI_CALL_LLVM, UNTIMED)       \
  X(SINF,          sinf,                ABI_CALL_LLVM, UNTIMED)       \
  X(SIN,           sin,                 ABI_CALL_LLVM, UNTIMED)       \
  X(COSF,          cosf,                ABI_CALL_LLVM, UNTIMED)       \
  X(COS,           cos,                 ABI_CALL_LLVM, UNTIMED)       \
  X(ROUNDEVENF,    roundevenf,          ABI_CALL_LLVM, UNTIMED)       \
  X(ROUNDEVEN,     roundeven,           ABI_CALL_LLVM, UNTIMED)

typedef enum {
#define X(id, sym, call, profile) ABI_FN_##id,
  GRADC_ABI_FUNCTIONS(X)
#undef X
  ABI_FN_COUNT
} AbiFunction;

static inline const char *abi_function_name(AbiFunction f) {
  switch (f) {
#define X(id, sym, call, profile) case ABI_FN_##id: return #sym;
    GRADC_ABI_FUNCTIONS(X)
#undef X
  case ABI_FN_COUNT: break;
  }
  return "";
}

static inline AbiCall abi_function_call(AbiFunction f) {
  switch (f) {
#define X(id, sym, call, profile) case ABI_FN_##id: return call;
    GRADC_ABI_FUNCTIONS(X)
#undef X
  case ABI_FN_COUNT: break;
  }
  return ABI_CALL_C;
}

/* A symbol's address, for the JIT's table (runtime/blas.c, compiler/jit.c). */
typedef struct AbiSymbol {
  const char *name;
  uintptr_t addr;
} AbiSymbol;

/* gradc_scratch's block: the partial sums of the code's parallel
 * reductions, which codegen sizes its row chunks by. */
enum { ABI_SCRATCH_BYTES = 128 << 10 };

/* gradc_loop: at most this many slices of a loop's rows, none of fewer
 * than ABI_LOOP_ROWS rows (a product of fewer rows than the kernel's tile
 * would waste the second thread's work on padding). */
enum { ABI_MAX_LOOP_PARTS = 16, ABI_LOOP_ROWS = 16 };

/* The int32 geometry array of gradc_sgemm_col2im and _im2col: image rows,
 * columns, channels, output rows and columns, kernel rows and columns,
 * strides, dilations, padding at the top and the left. */
enum {
  ABI_GEO_H, ABI_GEO_W, ABI_GEO_C, ABI_GEO_OH, ABI_GEO_OW, ABI_GEO_KH, ABI_GEO_KW,
  ABI_GEO_SH, ABI_GEO_SW, ABI_GEO_DH, ABI_GEO_DW, ABI_GEO_PT, ABI_GEO_PL, ABI_GEO_COUNT
};

/* The order and transpose flags of the products' cblas_?gemm-style
 * arguments: CBLAS's own numbers (runtime/gemm.c asserts them against
 * cblas.h), so the same call reaches OpenBLAS unchanged. */
enum { ABI_ROW_MAJOR = 101, ABI_NO_TRANS = 111, ABI_TRANS = 112 };

/* ------------------------------------------------------ codes and their names */

/* Element types: id, name, C type, bytes.  gradc_dtype has the same
 * numbers. */
#define GRADC_ABI_DTYPES(X)        \
  X(F32,  "f32",  float,   4)      \
  X(F64,  "f64",  double,  8)      \
  X(I32,  "i32",  int32_t, 4)      \
  X(BOOL, "bool", uint8_t, 1)

typedef enum {
#define X(id, name, ctype, bytes) DT_##id,
  GRADC_ABI_DTYPES(X)
#undef X
  DT_COUNT
} DType;

static inline size_t abi_dtype_bytes(DType t) {
  switch (t) {
#define X(id, name, ctype, bytes) case DT_##id: return bytes;
    GRADC_ABI_DTYPES(X)
#undef X
  case DT_COUNT: break;
  }
  return 0;
}

static inline const char *abi_dtype_name(DType t) {
  switch (t) {
#define X(id, name, ctype, bytes) case DT_##id: return name;
    GRADC_ABI_DTYPES(X)
#undef X
  case DT_COUNT: break;
  }
  return "?";
}

/* Named tensors by kind (gradc_kind has the same numbers). */
#define GRADC_ABI_KINDS(X) \
  X(INPUT, "input") X(PARAM, "param") X(STATE, "state") X(OUTPUT, "output") X(METRIC, "metric") X(LOSS, "loss")

typedef enum {
#define X(id, name) ABI_##id,
  GRADC_ABI_KINDS(X)
#undef X
  ABI_KIND_COUNT
} AbiKind;

/* Parameter initializers (Keras' definitions, runtime/init.c), by their
 * names in model files. */
#define GRADC_ABI_INITS(X)                                                                 \
  X(ZEROS, "zeros") X(ONES, "ones") X(CONSTANT, "constant") X(UNIFORM, "uniform")          \
  X(NORMAL, "normal") X(TRUNCATED_NORMAL, "truncated_normal")                              \
  X(GLOROT_UNIFORM, "glorot_uniform") X(GLOROT_NORMAL, "glorot_normal")                    \
  X(HE_NORMAL, "he_normal") X(HE_UNIFORM, "he_uniform") X(LECUN_NORMAL, "lecun_normal")    \
  X(LECUN_UNIFORM, "lecun_uniform") X(ORTHOGONAL, "orthogonal") X(VALUES, "values")

typedef enum {
#define X(id, name) INIT_##id,
  GRADC_ABI_INITS(X)
#undef X
  INIT_COUNT
} InitKind;

/* The status values a .so returns, as its header spells them
 * (GRADC_AOT_<id>), with their numbers in gradc.h's gradc_status and what
 * the header says of each.  A .so never returns the others (a model error,
 * a JIT failure, data or numerics). */
#define GRADC_ABI_STATUS(X)                                                  \
  X(OK,             0, "")                                                   \
  X(ERR_IO,         2, "a file could not be read or written")                \
  X(ERR_CHECKPOINT, 4, "corrupt, or of another model")                       \
  X(ERR_SHAPE,      5, "a batch size out of range")                          \
  X(ERR_NOMEM,      6, "out of memory; nothing was changed")                 \
  X(ERR_ARG,        7, "a bad argument: NULL, unknown name, unbound")

typedef enum {
#define X(id, value, what) ABI_##id = value,
  GRADC_ABI_STATUS(X)
#undef X
} AbiStatus;

/* ------------------------------------------------------------ the descriptor */

/* What a model instance (runtime/instance.c) knows about its model.  One
 * function builds it from a graph (compiler/descriptor.c): the JIT keeps
 * it in memory, the emitter writes it into a .so's object as constants.
 * Every number is an i64 in one array, so the layout never depends on a C
 * compiler's struct rules; doubles are stored as their bits.  The array:
 *
 *   header        ABI_H_SIZE fields
 *   tensors       ntensors records of ABI_T_SIZE: the named tensors in
 *                 gradc_tensor_info's order (inputs, parameters, state in
 *                 node order, then outputs, metrics, losses)
 *   buffers       nbuffers records of ABI_B_SIZE: the workspace buffers
 *                 with their live ranges (compiler/plan.c)
 *   steps         nsteps records of ABI_S_SIZE: the train steps
 *   hypers        nhypers records of ABI_P_SIZE: each step's run-time
 *                 hyperparameters, a step's consecutive
 *   storage       nnodes fields: per node id the id of the node whose
 *                 storage holds its value, -1 for none
 *
 * Strings are indices into AbiModel.names (0 is the model's name); a
 * step's entry point is AbiModel.fns[1 + s], forward is fns[0]. */
enum {
  ABI_VERSION = 4,             /* 2: names of symbolic dims and hyperparameters;
                                  3: the step table and fns[];
                                  4: ABI_H_ALLREDUCE */
  ABI_H_VERSION = 0, ABI_H_NNODES, ABI_H_NSYM, ABI_H_REUSE, ABI_H_NTENSORS, ABI_H_NBUFFERS,
  ABI_H_NSTEPS, ABI_H_NHYPERS,
  ABI_H_ALLREDUCE,             /* the number of allreduce nodes (gradients the
                                  steps sum over replicas); 0: compiled
                                  without data parallelism */
  ABI_H_SYM_NAME,              /* names index of symbolic dim 1's name; dims
                                  2..nsym follow it */
  ABI_H_SIZE,

  ABI_T_KIND = 0,              /* AbiKind */
  ABI_T_DTYPE,                 /* DType */
  ABI_T_NODE,                  /* the node whose storage holds it (params and
                                  state: their own), -1 for none */
  ABI_T_RANK,
  ABI_T_INIT, ABI_T_INIT_A, ABI_T_INIT_B,   /* params and state: InitKind, its numbers */
  ABI_T_FAN_IN, ABI_T_FAN_OUT,              /* Keras' fans of the shape */
  ABI_T_VALUES,                /* index into AbiModel.values (INIT_VALUES), -1 */
  ABI_T_NAME,
  ABI_T_DIM_N,                 /* dimension k is n[k] * sym[dim_sym[k]] */
  ABI_T_DIM_SYM = ABI_T_DIM_N + ABI_MAX_RANK,
  ABI_T_SIZE = ABI_T_DIM_SYM + ABI_MAX_RANK,

  ABI_B_NODE = 0, ABI_B_BEGIN, ABI_B_END, ABI_B_ESIZE, ABI_B_RANK,
  ABI_B_DIM_N, ABI_B_DIM_SYM = ABI_B_DIM_N + ABI_MAX_RANK, ABI_B_SIZE = ABI_B_DIM_SYM + ABI_MAX_RANK,

  ABI_S_NAME = 0,              /* the step's name ("train") */
  ABI_S_LOSS,                  /* tensor index of the loss it minimises, -1 */
  ABI_S_OPT_NAME,              /* its optimizer's name ("adam") */
  ABI_S_HYPER,                 /* index of its first hyperparameter record */
  ABI_S_NHYPER,                /* and their number */
  ABI_S_SIZE,

  ABI_P_NAME = 0,              /* the name the API takes ("lr") */
  ABI_P_TENSOR,                /* tensor index of the f64 scalar state holding
                                  it, which the step reads every time */
  ABI_P_SIZE,
};

/* A model: the descriptor, its strings and initial values, and its entry
 * points, fns[0] forward and fns[1 + s] train step s. */
typedef struct AbiModel {
  const int64_t *desc;
  const char *const *names;
  const double *const *values;
  StepFn *const *fns;
} AbiModel;

/* Fields of a descriptor of nt tensors, nb buffers, ns steps, np
 * hyperparameters and nn nodes. */
static inline size_t abi_fields(int64_t nt, int64_t nb, int64_t ns, int64_t np, int64_t nn) {
  return (size_t)(ABI_H_SIZE + nt * ABI_T_SIZE + nb * ABI_B_SIZE + ns * ABI_S_SIZE + np * ABI_P_SIZE + nn);
}
static inline size_t abi_size(const int64_t *d) {
  return abi_fields(d[ABI_H_NTENSORS], d[ABI_H_NBUFFERS], d[ABI_H_NSTEPS], d[ABI_H_NHYPERS], d[ABI_H_NNODES]);
}

/* The sections: record i of each, and the storage table. */
static inline const int64_t *abi_tensor(const int64_t *d, int64_t i) { return d + abi_fields(i, 0, 0, 0, 0); }
static inline const int64_t *abi_buffer(const int64_t *d, int64_t b) {
  return d + abi_fields(d[ABI_H_NTENSORS], b, 0, 0, 0);
}
static inline const int64_t *abi_step(const int64_t *d, int64_t s) {
  return d + abi_fields(d[ABI_H_NTENSORS], d[ABI_H_NBUFFERS], s, 0, 0);
}
static inline const int64_t *abi_hyper(const int64_t *d, int64_t p) {
  return d + abi_fields(d[ABI_H_NTENSORS], d[ABI_H_NBUFFERS], d[ABI_H_NSTEPS], p, 0);
}
static inline const int64_t *abi_storage(const int64_t *d) { return abi_hyper(d, d[ABI_H_NHYPERS]); }

/* The entry points of a compiled .so: <prefix>_<name>, each forwarding to
 * the support library's gradc_aot_<name>(&model, args...) (emit.c writes
 * them, runtime/aot.c defines the targets, header.c documents them).  sig:
 * return type then parameters, v void, p pointer, i int, l int64_t or
 * size_t, d double. */
#define GRADC_ABI_ENTRIES(X)                                                                        \
  X(new, "p") X(free, "vp") X(init, "ipl") X(bind, "iplp") X(forward, "ip") X(train_step, "ipp")    \
  X(workspace_size, "ll") X(state_size, "l") X(checkpoint_size, "l") X(get_state, "ippl")          \
  X(set_state, "ippl") X(save, "ipp") X(load, "ipp") X(tensor_count, "i") X(tensor_info, "ipip")    \
  X(data, "pppp") X(last_error, "pp") X(set_hyper, "ipppd") X(get_hyper, "ipppp") X(bind_dim, "ippl")  \
  X(step, "ipppp") X(step_count, "i") X(step_name, "ppi") X(set_allreduce, "ippp")  \
  X(set_row_offset, "ipl")

/* ------------------------------------------- code both sides run (runtime/) */

/* layout.c: where the workspace's buffers go, from their live ranges - the
 * planner (compiler/plan.c) and every instance (instance.c) call it, so the
 * JIT and a .so lay out a binding byte for byte alike. */
typedef struct LayoutBuffer {
  int begin, end;              /* live range, inclusive */
  size_t bytes;                /* a multiple of 64 */
} LayoutBuffer;
/* Offsets of n buffers in one block (see layout.c); the block's size, or
 * SIZE_MAX when out of memory. */
size_t layout_assign(const LayoutBuffer *buf, int n, bool reuse, size_t *offset) RT_SHARED(layout_assign);
/* Bytes of a buffer whose dimension k is n[k] * sym[dim_sym[k]], rounded
 * up to 64; SIZE_MAX past 2^62 elements. */
size_t layout_bytes(int rank, const int64_t *n, const int64_t *dim_sym, const int64_t *sym, size_t esize)
    RT_SHARED(layout_bytes);

/* blas.c: the evaluator's products (compiler/eval.c), C = op(A) op(B) in
 * double, row-major, A m x k (k x m when ta), B k x n (n x k when tb),
 * C m x n: OpenBLAS's dgemm, behind the one file that includes it.  The
 * reference evaluator spends most of a `gradc check` in products, and
 * tens of minutes of a sanitizer build's tests with a loop of its own. */
void rt_dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c)
    RT_SHARED(rt_dgemm);

/* init.c: initial values - the evaluator (compiler/eval.c) and every
 * instance call it, so a seed gives the same numbers everywhere; the
 * generator is also what dropout's masks draw from, in compiled code
 * (codegen_kernels.c) as in the evaluator. */
uint64_t rng_stream(uint64_t seed, const char *name) RT_SHARED(rng_stream);
double rng_uniform(uint64_t stream, uint64_t i) RT_SHARED(rng_uniform);
double rng_normal(uint64_t stream, uint64_t i) RT_SHARED(rng_normal);
/* A normal within 2 std (TF's truncated_normal): see init.c. */
double rng_truncated(uint64_t stream, uint64_t i) RT_SHARED(rng_truncated);
/* Dropout and the random ops: the stream of one train step; whether element i is kept
 * (compared on the generator's 53 bits, so f32 and double code agree). */
uint64_t rng_step_stream(uint64_t stream, uint64_t step) RT_SHARED(rng_step_stream);
uint64_t rng_keep_threshold(double rate) RT_SHARED(rng_keep_threshold);
bool rng_keep(uint64_t step_stream, uint64_t i, uint64_t threshold) RT_SHARED(rng_keep);
/* The initial values of a tensor of count elements, as doubles rounded to
 * dtype: initializer kind with its numbers a and b (constant v; uniform
 * lo, hi; normal mean, std), Keras' fans, the tensor's name (its random
 * stream) and, for INIT_VALUES, the values.  False for an unknown kind. */
/* INIT_ORTHOGONAL's a is the gain; its matrix is fan_in x count / fan_in
 * (Keras' flat shape).  False for an unknown kind, or when orthogonal's
 * decomposition cannot be done (out of memory). */
bool init_fill(InitKind kind, double a, double b, DType dtype, double fan_in, double fan_out,
               const char *name, const double *values, uint64_t seed, double *out, int64_t count)
    RT_SHARED(init_fill);
/* blas.c: the orthonormal factor Q of the QR decomposition of the m x n
 * matrix a (m >= n, column-major), with column j times the sign of R's
 * diagonal element j, in place (LAPACK's dgeqrf and dorgqr).  False when
 * out of memory or LAPACK refuses. */
bool rt_orthonormal_columns(double *a, int m, int n);

#endif
