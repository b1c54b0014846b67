/*
 * runtime.h - the runtime's one internal header, in sections by file.
 *
 * Errors are values: every function that can fail returns a gradc_status
 * and writes a complete sentence into the caller's RtError (what was
 * expected, what was found, which file), which the API or the CLI reports.
 */
#ifndef GRADC_RUNTIME_H
#define GRADC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abi.h"
#include "compiler.h"
#include "gradc.h"

typedef struct RtError {
  char msg[1024];
} RtError;

/* Formats msg into e (if e is not NULL) and returns status. */
gradc_status rt_fail(RtError *e, gradc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------------- context.c */

/* Everything a running step uses besides its buffers and symbols: one per
 * model instance (model.c for the JIT, aot.c for a compiled .so), never
 * shared, so distinct instances step concurrently in distinct threads.
 * The compiled code receives it as the first argument of its entry points
 * and passes it first to every gradc_* function it calls (codegen.c,
 * cg_runtime_call). */
typedef struct RtPool RtPool;               /* pool.c: workers, thread count */
typedef struct GemmBuffers GemmBuffers;     /* gemm.c: per-part scratch, split-k partials */

/* --profile's tables: time per kernel (gradc_profile_mark) and in the
 * products. */
typedef struct RtProfile {
  double sgemm_seconds;
  long sgemm_calls;
  double *kernel_seconds;    /* per node id, grown in the first step */
  long *kernel_calls;
  int64_t nkernels, current;
  double mark_time;
} RtProfile;

typedef struct RtContext {
  RtPool *pool;
  GemmBuffers *gemm;         /* NULL until the first product needs it */
  RtProfile profile;
  _Alignas(64) unsigned char scratch[ABI_SCRATCH_BYTES];   /* gradc_scratch */
} RtContext;

/* A context whose pool runs threads threads (the caller's included; < 1
 * means 1); NULL when out of memory.  Free with rt_context_free (NULL is
 * fine), which ends the pool's workers. */
RtContext *rt_context_new(int threads);
void rt_context_free(RtContext *rt);
int rt_context_threads(const RtContext *rt);
/* The threads of gradc_options.threads = 0: the cores OpenBLAS saw when it
 * loaded (or OPENBLAS_NUM_THREADS), read once. */
int rt_default_threads(void);

/* ----------------------------------------------------------------- blas.c */

/* Addresses of the functions compiled code calls (abi.h's list: the
 * runtime's gradc_*, cblas_dgemm, libm); with profile, the products
 * resolve to wrappers that time them into the calling instance's
 * RtProfile. */
const AbiSymbol *rt_symbols(bool profile, int *n);
/* Compiled with --profile, each kernel calls this with its node id as it
 * starts, and with -1 at the end of a step: the time between two marks is
 * charged to the first one's kernel. */
void gradc_profile_mark(RtContext *rt, int64_t id);
/* OpenBLAS's thread count, which is process-wide: 1 whenever gemm.c's own
 * kernels take the products (OpenBLAS then gets only narrow ones, and its
 * spinning workers would take the cores from ours), else n (the last model
 * made sets it). */
void rt_blas_threads(int n);
/* seconds charged to the kernel of node id since rt_profile_reset */
double rt_kernel_seconds(const RtContext *rt, int64_t id, long *calls);
double rt_sgemm_seconds(const RtContext *rt, long *calls);
void rt_profile_reset(RtContext *rt);
const char *rt_blas_kernels(void);          /* OpenBLAS's kernel set, e.g. SkylakeX */

/* ----------------------------------------------------------------- gemm.c */

/* cblas_sgemm's arguments; our AVX-512 kernels where they apply, else
 * OpenBLAS (the file says which). */
void gradc_sgemm(RtContext *rt, int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* dx = col2im(op(A) op(B)) without storing the product: m = batch * oh * ow
 * rows, n = kh * kw * c columns; geo holds h, w, c, oh, ow, kh, kw, stride
 * (h, w), dilation (h, w) and padding (top, left), as int32. */
void gradc_sgemm_col2im(RtContext *rt, int ta, int tb, int m, int n, int k, const float *a, int lda,
                        const float *b, int ldb, float *dx, const int32_t *geo);
/* C = op(A) op(B) where A is the patch matrix (im2col) of the NHWC input x
 * under geo (as gradc_sgemm_col2im's), without storing it: m = batch * oh
 * * ow rows and k = kh * kw * c (ta: m and k swapped). */
void gradc_sgemm_im2col(RtContext *rt, int ta, int tb, int m, int n, int k, const float *x,
                        const int32_t *geo, const float *b, int ldb, float *c, int ldc);
const char *gemm_kernels(void);             /* "gradc avx512" or "OpenBLAS" */
bool gemm_own_kernels(void);                /* AVX-512 here and GRADC_GEMM != blas */
void gemm_buffers_free(GemmBuffers *g);     /* NULL is fine */

/* ----------------------------------------------------------------- pool.c */

typedef void PoolTask(void *arg, int part, int nparts);
/* A pool of threads threads, the caller's included (1..64); its workers
 * start on first need.  NULL when out of memory. */
RtPool *pool_new(int threads);
void pool_free(RtPool *p);                  /* ends the workers; NULL is fine */
/* Runs task(arg, p, n) for p < n on up to pool_threads() threads, the
 * caller's included; returns n, which may be less than nparts.  One job
 * at a time per pool. */
int pool_run(RtPool *p, PoolTask *task, void *arg, int nparts);
int pool_threads(const RtPool *p);

/* Compiled code's parallel loops: part `part` of `nparts` equal slices of
 * a kernel's outermost loop, run through pool_run. */
typedef void gradc_task(RtContext *rt, void **buf, const int64_t *sym, int64_t part, int64_t nparts);
/* work: elements the kernel writes, which decides how many parts pay off. */
void gradc_parallel(RtContext *rt, gradc_task *task, void **buf, const int64_t *sym, int64_t work);
/* ABI_SCRATCH_BYTES for the partial results of compiled code's parallel
 * reductions (codegen.c sizes its row chunks by the same constant). */
void *gradc_scratch(RtContext *rt);

/* ------------------------------------------------------------------ mem.c */

/* Large long-lived blocks (datasets, workspaces, parameters): 64-byte
 * aligned, and on huge pages where they are 2 MiB or more.  free() them. */
void *rt_alloc_big(size_t bytes);
void *rt_calloc_big(size_t bytes);

/* ---------------------------------------------------------------- model.c */

const Graph *rt_graph(const gradc_model *m);
/* The pipeline's options for the API's: what gradc_compile_file compiles,
 * and gradc compile too, so the JIT and the .so get the same graph. */
CompileOptions rt_compile_options(const gradc_options *o);
/* Records msg as the thread's last API error (gradc_last_error(NULL)). */
gradc_status rt_api_fail(gradc_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const Jit *rt_jit(const gradc_model *m);
/* The model's run-time context: its threads and --profile's tables. */
RtContext *rt_context(const gradc_model *m);
/* gradc_compile_file, with profile: every kernel and product of the steps
 * timed into the model's RtProfile (gradc train --profile). */
gradc_status rt_compile_file(const char *path, const gradc_options *opt, bool profile, gradc_model **out);

/* ---------------------------------------------------------------- train.c */

typedef struct TrainOptions {
  const char *data_dir;      /* MNIST-format directory */
  int epochs;
  int64_t batch;
  double val_split;          /* fraction of the training set held out */
  uint64_t seed;             /* shuffling */
  const char *save;          /* checkpoint written at the end (or on Ctrl-C) */
  const char *history;       /* CSV of per-epoch means, or NULL */
  bool test;                 /* evaluate on the test split at the end */
  bool profile;              /* report the share of step time in sgemm */
  FILE *out;                 /* progress and results; NULL = stdout */
} TrainOptions;

/* Keras-style fit: progress per epoch, validation, history, test results. */
gradc_status rt_train(gradc_model *m, const TrainOptions *o, RtError *err);
/* Did the last rt_train stop on SIGINT? */
bool rt_interrupted(void);
/* Loss and metrics on the test split. */
gradc_status rt_evaluate(gradc_model *m, const TrainOptions *o, RtError *err);
/* Predicted classes of the first count test samples. */
gradc_status rt_predict(gradc_model *m, const TrainOptions *o, int64_t count, RtError *err);

/* ----------------------------------------------------------------- link.c */

typedef struct AotOptions {
  const char *model;         /* the .nn file */
  const char *output;        /* the .so, object, assembly or IR file */
  const char *header;        /* the C header, or NULL */
  EmitKind kind;
  const char *triple, *cpu;  /* NULL: defaults (emit.c) */
  const char *prefix;        /* NULL: the model's name */
  int opt_level;
  char *info;                /* gets "target ..., CPU ..., symbols ..." */
  size_t info_len;
} AotOptions;

/* gradc compile: compiles, emits, links (EMIT_SO) and writes the header.
 * Diagnostics of the model go to stderr; other failures into err. */
gradc_status rt_compile(const AotOptions *o, RtError *err);

/* ----------------------------------------------------------------- data.c */

/* A labelled dataset in memory: n samples of sample_size f32 values each
 * (images scaled to [0, 1]), and n i32 labels (NULL for unlabelled data). */
typedef struct Dataset {
  int64_t n;
  int rank;                  /* per-sample rank: 2 for 28x28 images */
  int64_t dims[4];           /* per-sample dims */
  int64_t sample_size;       /* product of dims */
  float *x;
  int32_t *y;
  bool table;                /* from a CSV: columns feed inputs in order */
} Dataset;

/* MNIST-format IDX files, gzip'd or not (detected by content, not name).
 * Checks the magic numbers (2051 images of unsigned bytes, 2049 labels),
 * the sizes against the file length, and that both files hold the same
 * number of samples; a truncated or corrupt file is an error that says
 * which and what was found.  labels_path may be NULL. */
gradc_status data_load_idx(const char *images_path, const char *labels_path, Dataset *out,
                           RtError *err);

/* The four standard files in dir: train-images-idx3-ubyte(.gz),
 * train-labels-idx1-ubyte(.gz) (train = true) or t10k-* (train = false).
 * A missing directory or file says so, with a hint to install the Debian
 * package dataset-fashion-mnist when dir is its default location. */
gradc_status data_load_mnist_dir(const char *dir, bool train, Dataset *out, RtError *err);

/* A CSV file of numbers (comma-separated, optional header line of
 * non-numbers, '#' comments): rows x cols doubles, row-major in *out
 * (malloc'd).  Every row must have the same number of columns; a bad number
 * is reported with its line and column. */
gradc_status data_load_csv(const char *path, double **out, int64_t *rows, int64_t *cols,
                           RtError *err);

void data_free(Dataset *d);                /* frees x and y; NULL-safe */

/* Splits off the last `frac` of d (0 <= frac < 1) into val (copies). */
gradc_status data_split(Dataset *d, double frac, Dataset *val, RtError *err);

/* A permutation of 0..n-1 for epoch `epoch`, from a seeded generator:
 * the same (seed, epoch) always gives the same order. */
void data_permutation(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch);

/* ----------------------------------------------------------------- ckpt.c */

/* One tensor of a checkpoint. */
typedef struct CkptTensor {
  const char *name;
  gradc_dtype dtype;
  int rank;
  int64_t dims[ABI_MAX_RANK];
  void *data;                /* rank/dims/dtype bytes */
  /* A run-time hyperparameter (optimizer/lr, ...): a checkpoint written
   * before gradc had them lacks it, and loading keeps the model's value. */
  bool optional;
} CkptTensor;

/* Format (little-endian; details in ckpt.c): magic "GRADCKPT", u32 format
 * version, u64 payload size, u32 CRC-32 of the payload, u64 stream size,
 * then the payload (model name, tensor count, each tensor's name, dtype,
 * rank, dims, data) as a zlib stream of stored blocks - so that the size
 * depends on the tensors alone, and the bytes are the same wherever
 * written. */

/* Bytes of the checkpoint of n tensors (valid ones: as ckpt_save takes). */
size_t ckpt_size(const char *model_name, const CkptTensor *t, int n);

/* The checkpoint into blob, which has size bytes (at least ckpt_size);
 * GRADC_ERR_ARG, writing nothing, when it has fewer. */
gradc_status ckpt_write(void *blob, size_t size, const char *model_name, const CkptTensor *t, int n, RtError *err);

/* Writes all tensors to path atomically: a temporary file in the same
 * directory, flushed and fsync'd, then renamed over path, so the previous
 * checkpoint survives any failure (disk full, read-only directory, a crash). */
gradc_status ckpt_save(const char *path, const char *model_name, const CkptTensor *t, int n,
                       RtError *err);

/* Reads path and copies each expected tensor's data into t[i].data, after
 * checking the magic, version, checksum, model name, and that the file
 * holds exactly the tensors expected (t[i].optional ones may be missing)
 * with the same dtypes and shapes; any difference is reported by name
 * (missing, unexpected, shape [a,b] vs [c,d]).  Any zlib stream is read:
 * checkpoints older versions compressed too.  On failure nothing in t is
 * modified. */
gradc_status ckpt_load(const char *path, const char *model_name, const CkptTensor *t, int n,
                       RtError *err);
/* The same for a checkpoint of len bytes in memory. */
gradc_status ckpt_read(const void *blob, size_t len, const char *model_name, const CkptTensor *t, int n,
                       RtError *err);

/* -------------------------------------------------------------- zstream.c */

/* zlib streams without zlib (ckpt.c's payload).  The CRC-32 of zlib's
 * crc32, continued from crc (0 to start). */
uint32_t zs_crc32(uint32_t crc, const void *data, size_t n);
/* Bytes of a zlib stream of stored blocks holding n bytes. */
size_t zs_stored_size(size_t n);
/* Writes such a stream of total bytes, given in pieces by zs_put, to out
 * (zs_stored_size(total) bytes); zs_end returns its end. */
typedef struct ZsWriter {
  unsigned char *p;
  size_t total, done, block_left;
  uint32_t adler_a, adler_b;
} ZsWriter;
void zs_begin(ZsWriter *w, unsigned char *out, size_t total);
void zs_put(ZsWriter *w, const void *data, size_t n);
unsigned char *zs_end(ZsWriter *w);
/* Decodes the zlib stream z (any deflate level) into exactly size bytes
 * of out, checking its Adler-32; NULL, or what is wrong with it ("its
 * compressed data is damaged (a distance)"). */
const char *zs_inflate(const unsigned char *z, size_t zlen, unsigned char *out, size_t size);

#endif
