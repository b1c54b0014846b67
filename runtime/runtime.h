/*
 * runtime.h - the runtime's one internal header, in sections by file.
 *
 * The runtime knows nothing of the compiler: what it shares with compiled
 * code and with the compiler is abi.h; the command line's own
 * declarations, which use both, are in cli.h.
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
#include "gradc.h"

typedef struct RtError {
  char msg[1024];
} RtError;

/* Formats msg into e (if e is not NULL) and returns status. */
gradc_status rt_fail(RtError *e, gradc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------------- context.c */

/* Everything a running step uses besides its buffers and symbols: one per
 * model instance (instance.c, the JIT's and a .so's alike), never
 * shared, so distinct instances step concurrently in distinct threads.
 * The compiled code receives it as the first argument of its entry points
 * and passes it first to every gradc_* function it calls (abi.h's
 * ABI_CALL_RT functions). */
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
  bool serial;               /* gradc_serial: products and tasks in one part */
  /* gradc_loop's other parts: contexts of their own (gemm scratch, scratch,
   * profile tables), made on first need, always serial */
  struct RtContext *rows[ABI_MAX_LOOP_PARTS];
  /* gradc_allreduce: the caller's reduction of gradients over replicas
   * (gradc_set_allreduce), NULL for none; the first failure it returned in
   * this step, after which the step's other calls are skipped */
  gradc_allreduce_fn allreduce;
  void *allreduce_user;
  int allreduce_failed;
  /* gradc_set_row_offset: the global index of this replica's first row */
  int64_t row_offset;
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
int rt_default_threads(void) RT_SHARED(rt_default_threads);

/* ----------------------------------------------------------------- blas.c */

/* Addresses of the functions compiled code calls (abi.h's list: the
 * runtime's gradc_*, cblas_dgemm, libm); with profile, the products
 * resolve to wrappers that time them into the calling instance's
 * RtProfile. */
const AbiSymbol *rt_symbols(bool profile, int *n) RT_SHARED(rt_symbols);
/* Compiled with --profile, each kernel calls this with its node id as it
 * starts, and with -1 at the end of a step: the time between two marks is
 * charged to the first one's kernel. */
void gradc_profile_mark(RtContext *rt, int64_t id);
/* OpenBLAS's thread count, which is process-wide: 1 whenever gemm.c's own
 * kernels take the products (OpenBLAS then gets only narrow ones, and its
 * spinning workers would take the cores from ours), else n (the last model
 * made sets it). */
void rt_blas_threads(int n) RT_SHARED(rt_blas_threads);
/* seconds charged to the kernel of node id since rt_profile_reset */
double rt_kernel_seconds(const RtContext *rt, int64_t id, long *calls);
double rt_sgemm_seconds(const RtContext *rt, long *calls);
void rt_profile_reset(RtContext *rt);
const char *rt_blas_kernels(void);          /* OpenBLAS's kernel set, e.g. SkylakeX */

/* ----------------------------------------------------------------- gemm.c */

/* cblas_sgemm's arguments; our AVX-512 kernels where they apply, else
 * OpenBLAS (the file says which). */
/* Compiled code calls gradc_serial(rt, 1) before a loop and (rt, 0) after
 * it: a loop's body runs each product and outlined task once per
 * iteration, and a hand-off to the pool per iteration (a wake-up, or a
 * wait for a worker another process has descheduled) costs more than the
 * second thread saves on one step's small product.  Parts are fixed
 * pieces of a job, so one part gives the same bits. */
void gradc_serial(RtContext *rt, int64_t on);
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
/* A loop whose body computes each row of the batch from that row alone
 * (codegen.c: loop_rows) runs as task(ctx, buf, sym, part, nparts) for
 * nparts slices of its `rows` rows, each on its own thread with a context
 * of its own (part 0 the caller's), whose products and tasks run serially:
 * the threads meet once per loop, not once per step, and each row gets
 * the bits it gets alone. */
void gradc_loop(RtContext *rt, gradc_task *task, void **buf, const int64_t *sym, int64_t rows);
/* ABI_SCRATCH_BYTES for the partial results of compiled code's parallel
 * reductions (codegen.c sizes its row chunks by the same constant). */
void *gradc_scratch(RtContext *rt);
/* Compiled data-parallel steps call this with each gradient once it is
 * complete (an allreduce node): the caller's callback sums it over the
 * replicas in place; then once with data NULL, before the first reader of
 * a sum (the callback waits there for sums it computes asynchronously).
 * Nothing happens without a callback. */
void gradc_allreduce(RtContext *rt, void *data, int64_t count, int64_t dtype);
/* The random ops' (dropout masks, random_normal, ...) first row: element i
 * of a value whose first dimension is the batch is drawn as element
 * i + offset * (elements per row), so replicas stepping on shards of a
 * batch draw what one process stepping on all of it would. */
int64_t gradc_row_offset(RtContext *rt);

/* ------------------------------------------------------------------ mem.c */

/* Large long-lived blocks (datasets, workspaces, parameters): 64-byte
 * aligned, and on huge pages where they are 2 MiB or more.  free() them. */
void *rt_alloc_big(size_t bytes);
void *rt_calloc_big(size_t bytes);

/* ------------------------------------------------------------- instance.c */

/* The largest value of a symbolic dimension (a batch size). */
enum { RT_MAX_DIM = 1 << 24 };

/* A model instance, built from a descriptor (abi.h's AbiModel): the
 * gradc_model of include/gradc.h (the JIT's, compiler/jitmodel.c) and,
 * inside a compiled .so, its header's gradc_aot_model (aot.c). */
typedef struct InstanceOptions {
  const char *api;             /* the prefix of function names in messages:
                                  "gradc" (gradc_bind) or a .so's model name */
  int threads;                 /* of its steps, the caller's included */
  int workspaces;              /* workspaces kept for bindings, 1..4: a
                                  binding seen before allocates nothing */
} InstanceOptions;

/* A new instance with zeroed parameters and state (inst_init fills them),
 * unbound; NULL when out of memory or when the descriptor is not of this
 * runtime's version, after a message for gradc_last_error(NULL).  am is
 * the caller's and must outlive it. */
gradc_model *inst_new(const AbiModel *am, const InstanceOptions *o) RT_SHARED(inst_new);
void inst_free(gradc_model *m) RT_SHARED(inst_free);   /* NULL is fine */
/* Whoever made it may hang its own data on it (the JIT: its compilation). */
void inst_set_owner(gradc_model *m, void *owner) RT_SHARED(inst_set_owner);
void *inst_owner(const gradc_model *m) RT_SHARED(inst_owner);
const AbiModel *inst_model(const gradc_model *m);
/* Records the message as m's last error (the thread's when m is NULL). */
gradc_status inst_fail(gradc_model *m, gradc_status s, const char *fmt, ...) RT_SHARED(inst_fail)
    __attribute__((format(printf, 3, 4)));
const char *inst_last_error(const gradc_model *m);

/* Parameters and state from their initializers and seed. */
gradc_status inst_init(gradc_model *m, uint64_t seed) RT_SHARED(inst_init);
/* Every symbolic dimension to batch (1..2^24), or one by name; selects
 * (allocating on first use) the workspace of the binding.  workspace: the
 * caller's 64-byte aligned memory of inst_workspace_size bytes, valid until
 * the next inst_bind, or NULL; inst_bind_dim keeps the caller's memory of
 * the last inst_bind while the new layout fits in it.  On failure the
 * instance is unbound. */
gradc_status inst_bind(gradc_model *m, int64_t batch, void *workspace);
gradc_status inst_bind_dim(gradc_model *m, const char *dim, int64_t value);
bool inst_bound(const gradc_model *m) RT_SHARED(inst_bound);
/* Entry points: forward, and train step `step` (0..inst_steps - 1) with
 * its loss into *loss (may be NULL) in the loss's precision; fn is the
 * API's function name after the prefix, for messages. */
gradc_status inst_forward(gradc_model *m) RT_SHARED(inst_forward);
gradc_status inst_step(gradc_model *m, const char *fn, int step, double *loss) RT_SHARED(inst_step);
/* The gradient reduction of data-parallel steps (gradc_set_allreduce, a
 * .so's m_set_allreduce); refused for a model compiled without it. */
gradc_status inst_set_allreduce(gradc_model *m, const char *fn, gradc_allreduce_fn cb, void *user);
/* The random ops' first row (gradc_set_row_offset, a .so's m_set_row_offset). */
gradc_status inst_set_row_offset(gradc_model *m, const char *fn, int64_t first_row);
int inst_steps(const gradc_model *m);
/* The index of the step called name (NULL: the only one), or -1 after a
 * message listing the steps. */
int inst_find_step(gradc_model *m, const char *fn, const char *name) RT_SHARED(inst_find_step);
const char *inst_step_name(const gradc_model *m, int step);   /* NULL out of range */
double inst_loss(const gradc_model *m, int step) RT_SHARED(inst_loss);
/* The f64 scalar behind the run-time hyperparameter name of step (NULL:
 * the only step), or NULL after a message listing the valid names; fn is
 * the API's function name after the prefix ("set_hyper"). */
double *inst_hyper(gradc_model *m, const char *fn, const char *step, const char *name);

/* A named tensor, as a .so's header prints the struct (header.c). */
typedef struct gradc_aot_tensor {
  const char *name;
  int kind, dtype, rank;       /* AbiKind, DType */
  int64_t dims[ABI_MAX_RANK];  /* -1 for symbolic dims before a binding */
  int symbolic[ABI_MAX_RANK];
  int64_t count;               /* elements under the binding; -1 past 2^62 */
  size_t bytes;
  void *data;                  /* NULL without a model, for constants, or
                                  before a binding for workspace tensors */
} gradc_aot_tensor;
/* Tensor i of am (false when there is none) under m's binding; m may be
 * NULL for shapes only. */
bool inst_tensor(const AbiModel *am, const gradc_model *m, int i, gradc_aot_tensor *out);
int inst_tensor_count(const AbiModel *am);
/* A tensor's storage by name, or NULL after a message. */
void *inst_data(gradc_model *m, const char *name, int64_t *count);
/* The buffer table and symbol values the entry points get. */
void **inst_buffers(gradc_model *m) RT_SHARED(inst_buffers);
const int64_t *inst_sym(const gradc_model *m) RT_SHARED(inst_sym);

/* Checkpoints of parameters and state (ckpt.c): in memory (get_state
 * needs size >= inst_checkpoint_size) and in files. */
gradc_status inst_get_state(gradc_model *m, void *blob, size_t size);
gradc_status inst_set_state(gradc_model *m, const void *blob, size_t size);
gradc_status inst_save(gradc_model *m, const char *path);
gradc_status inst_load(gradc_model *m, const char *path);

/* What a descriptor's instances take: parameter and state bytes (each
 * tensor 64-byte aligned), the workspace for the dimension values sym
 * (SIZE_MAX past 2^62 bytes or when out of memory), a checkpoint's bytes.
 * The .so's header states them (compiler/header.c). */
size_t inst_state_size(const AbiModel *am) RT_SHARED(inst_state_size);
size_t inst_workspace_size(const AbiModel *am, const int64_t *sym) RT_SHARED(inst_workspace_size);
size_t inst_checkpoint_size(const AbiModel *am) RT_SHARED(inst_checkpoint_size);

/* The instance's run-time context: its threads and --profile's tables. */
RtContext *rt_context(const gradc_model *m);
/* Records msg as the thread's last API error (gradc_last_error(NULL)). */
gradc_status rt_api_fail(gradc_status s, const char *fmt, ...) RT_SHARED(rt_api_fail)
    __attribute__((format(printf, 2, 3)));

/* ----------------------------------------------------------------- data.c */

/* A labelled dataset in memory: n samples of sample_size f32 values each
 * (images scaled to [0, 1]), and n i32 labels (NULL for unlabelled data). */
/* How sequences of another length than the input's are fed: Keras'
 * pad_sequences(padding='pre', truncating='pre', value=0) by default
 * (the zero value of this struct). */
typedef struct SeqPad {
  bool pad_post;             /* padding='post': the values after the ids */
  bool truncate_post;        /* truncating='post': drop the ids at the end */
  int32_t value;             /* what pads */
} SeqPad;

typedef struct Dataset {
  int64_t n;
  int rank;                  /* per-sample rank: 2 for 28x28 images */
  int64_t dims[4];           /* per-sample dims */
  int64_t sample_size;       /* product of dims; sequences: the longest */
  float *x;
  int32_t *y;
  bool table;                /* from a CSV: columns feed inputs in order */
  /* Sequences of ids (IDX vectors, or CSV rows of a label and any number
   * of ids): sample i is x[seq[i] .. seq[i+1]), fed padded or truncated to
   * the input's length as pad says (feed.c); NULL for other data. */
  int64_t *seq;
  SeqPad pad;
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
/* The files data_load_mnist_dir(dir, train) reads: the images or the
 * sequences (*sequences says which) and the labels, into buffers of size
 * bytes; its error when one is missing. */
gradc_status data_mnist_paths(const char *dir, bool train, char *samples, char *labels, size_t size,
                              bool *sequences, RtError *err);

/* A CSV file of numbers (comma-separated, optional header line of
 * non-numbers, '#' comments): rows x cols doubles, row-major in *out
 * (malloc'd).  Every row must have the same number of columns; a bad number
 * is reported with its line and column. */
gradc_status data_load_csv(const char *path, double **out, int64_t *rows, int64_t *cols,
                           RtError *err);

/* A CSV file of sequences: each row a label, then any number of ids (all
 * integers; '#' comments, an optional header line).  Sample i's ids are
 * x[seq[i] .. seq[i+1]). */
gradc_status data_load_csv_sequences(const char *path, Dataset *out, RtError *err);

/* The line of path that holds data row `row` (from 0: sample `row` of
 * data_load_csv or data_load_csv_sequences), read again for a message;
 * 0 when there is none. */
long long data_csv_line(const char *path, int64_t row);

void data_free(Dataset *d);                /* frees x, y and seq; NULL-safe */

/* Splits off the last `frac` of d (0 <= frac < 1) into val (copies). */
gradc_status data_split(Dataset *d, double frac, Dataset *val, RtError *err);

/* A permutation of 0..n-1 for epoch `epoch`, from a seeded generator:
 * the same (seed, epoch) always gives the same order. */
void data_permutation(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch);

/* -------------------------------------------------------------- loaders.c */

/* A NumPy array read from a .npy file or an .npz member: little-endian
 * elements in C order at data (inside block, which owns them). */
typedef enum NpyType { NPY_F4, NPY_F8, NPY_I4, NPY_I8, NPY_U1, NPY_B1 } NpyType;
enum { NPY_MAX_RANK = 8 };
typedef struct NpyArray {
  NpyType type;
  int esize;                 /* bytes per element */
  int rank;
  int64_t dims[NPY_MAX_RANK];
  int64_t count;             /* elements: the product of dims */
  unsigned char *data;
  unsigned char *block;      /* what npy_free frees */
} NpyArray;

/* Parses the .npy header at buf (len bytes, name for messages): dtype,
 * order and shape into a, the offset of the data into *data_at.  Refuses
 * other dtypes than <f4 <f8 <i4 <i8 |u1 |b1, Fortran order, shapes past
 * 2^40 elements or 8 GiB, saying what it found. */
gradc_status npy_header(const char *name, const unsigned char *buf, size_t len, NpyArray *a, size_t *data_at,
                        RtError *err);
/* A whole .npy in memory: buf (malloc'd, len bytes) becomes a's block,
 * or is freed on failure; the data must be exactly what the shape says. */
gradc_status npy_parse(const char *name, unsigned char *buf, size_t len, NpyArray *a, RtError *err);
/* The .npy file at path. */
gradc_status npy_read(const char *path, NpyArray *a, RtError *err);
/* Array `name` (member name.npy) of the .npz at path; *found false when
 * the archive has no such member (the error lists the members). */
gradc_status npz_read(const char *path, const char *name, NpyArray *a, bool *found, RtError *err);
double npy_value(const NpyArray *a, int64_t i);   /* element i as a double */
void npy_free(NpyArray *a);                       /* NULL-safe */

/* A dataset of arrays x_name [N, ...] and labels y_name [N] or [N, 1]
 * (integers; NULL: none) from the .npz at path or the directory path of
 * NAME.npy files.  uint8 x is scaled to [0, 1] like IDX pixels; NaN,
 * infinity and labels that are no integers are refused with the sample. */
gradc_status data_load_arrays(const char *path, const char *x_name, const char *y_name, Dataset *out,
                              RtError *err);
/* Does the .npz (or directory) at path hold array name? */
bool data_arrays_have(const char *path, const char *name);

/* CIFAR-10 (data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (train.bin,
 * test.bin; fine labels, or coarse) binary batches in dir as [N, 32, 32, 3]
 * images in [0, 1] and labels.  A file that is not whole records, or a
 * label past the classes, is an error naming the file and the record. */
gradc_status data_load_cifar(const char *dir, bool train, bool coarse, Dataset *out, RtError *err);
bool data_is_cifar_dir(const char *dir);

/* ----------------------------------------------------------------- feed.c */

/* How a dataset feeds a model: each input takes a run of columns of a
 * sample (images: the whole image), or the labels. */
enum { MAX_FEED = 16 };

typedef struct FeedPart {
  const char *name;            /* the input */
  DType dtype;
  int64_t col, width;
  bool labels;
} FeedPart;

typedef struct Feed {
  int n;
  FeedPart part[MAX_FEED];
} Feed;

/* Which input of m takes which columns of d's samples; GRADC_ERR_DATA,
 * saying why, when the inputs do not fit the data. */
gradc_status feed_plan(const gradc_model *m, const Dataset *d, Feed *f, RtError *err);
/* Copies samples idx[0..bs-1] of d into m's bound input buffers (bind
 * first: gradc_bind(m, bs)). */
void feed_gather(gradc_model *m, const Feed *f, const Dataset *d, const int64_t *idx, int64_t bs);
/* The first value of d that part p of f feeds (a label, an id, a column)
 * which is not an integer in [lo, hi]: its sample, its element within the
 * sample (from 0) and the value; false when there is none. */
bool feed_find_outside(const Feed *f, int p, const Dataset *d, double lo, double hi, int64_t *sample, int64_t *elem,
                       double *value);

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
 * directory (a fresh name, O_EXCL), flushed and fsync'd, then renamed over
 * path, so the previous checkpoint survives any failure (disk full,
 * read-only directory, a crash).  A path that exists and is not a regular
 * file is refused.  Temporaries of path left by savers that died are
 * removed (ckpt.c says which). */
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
