/*
 * gradc.h - compile a model file to native code and train it from C.
 *
 *   gradc_options opt;
 *   gradc_options_default(&opt);
 *   gradc_model *m;
 *   if (gradc_compile_file("models/mnist_mlp.nn", &opt, &m) != GRADC_OK) {
 *     fprintf(stderr, "%s\n", gradc_last_error(NULL));
 *     return 1;
 *   }
 *   gradc_bind(m, 128);                        // batch size: sizes buffers
 *   float *x = gradc_data(m, "x", NULL);       // fill inputs ...
 *   double loss;
 *   gradc_train_step(m, &loss);                // ... and step
 *   gradc_free(m);
 *
 * Conventions.  Every function that can fail returns a gradc_status
 * (GRADC_OK is 0) and records a message, read with gradc_last_error(m), or
 * gradc_last_error(NULL) when no model exists yet (per thread).  Handles are
 * opaque; whatever a function returns a pointer into stays owned by the
 * model and is valid until the next gradc_bind or gradc_free.  Functions
 * accept NULL handles and return GRADC_ERR_ARG rather than crashing.
 *
 * Threads.  A model owns everything its steps use: parameters, workspaces,
 * and its run-time context (its own thread pool, scratch buffers, profile
 * tables).  So:
 *   - distinct models may be compiled, bound, stepped and freed
 *     concurrently from different threads, and each computes exactly the
 *     bits it computes alone (tests/test_concurrent.c);
 *   - one model is used by one thread at a time (calls on the same model
 *     from two threads at once need the caller's lock); it may move
 *     between threads between calls;
 *   - gradc_last_error(NULL) is per thread; gradc_last_error(m) is m's.
 * A model's steps run on the calling thread and gradc_options.threads - 1
 * workers of its own, started at its first step and ended by gradc_free:
 * two models of 2 threads each keep 4 threads busy.  OpenBLAS, which
 * takes the products gradc's own kernels do not, has one process-wide
 * thread count: 1 when gradc's AVX-512 kernels are in use, else the
 * threads of the model compiled last.
 */
#ifndef GRADC_H
#define GRADC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gradc_status {
  GRADC_OK = 0,
  GRADC_ERR_MODEL,       /* the model file is wrong: diagnostics in the message */
  GRADC_ERR_IO,          /* a file could not be read or written */
  GRADC_ERR_DATA,        /* a data file is malformed or does not fit the model */
  GRADC_ERR_CHECKPOINT,  /* a checkpoint is corrupt or belongs to another model */
  GRADC_ERR_SHAPE,       /* sizes disagree (batch size, buffer sizes) */
  GRADC_ERR_NOMEM,       /* out of memory; nothing was changed */
  GRADC_ERR_ARG,         /* a bad argument: NULL handle, unknown name */
  GRADC_ERR_JIT,         /* LLVM could not compile the model for this machine */
  GRADC_ERR_NUMERIC,     /* a NaN or infinity appeared (with check_numerics) */
  GRADC_STATUS_COUNT
} gradc_status;

/* A short English name of a status ("out of memory"); never NULL. */
const char *gradc_status_str(gradc_status s);

typedef enum gradc_dtype { GRADC_F32, GRADC_F64, GRADC_I32, GRADC_BOOL } gradc_dtype;

typedef struct gradc_options {
  int opt_level;         /* LLVM optimisation level 0..3 (default 3) */
  uint64_t seed;         /* parameter initialisation seed (default 1) */
  int threads;           /* threads of this model's steps, the caller's
                            included; 0 = all cores (default 0) */
  double lr;             /* > 0 overrides the model's learning rate */
  int check_numerics;    /* non-zero: train_step checks loss for NaN/Inf */
  int data_parallel;     /* non-zero: each train step hands every gradient,
                            once complete and before the update, to the
                            callback of gradc_set_allreduce (default 0) */
} gradc_options;

/* Fills o with the defaults above. */
void gradc_options_default(gradc_options *o);

typedef struct gradc_model gradc_model;

/* Compiles a model file (or source text) to native code and initialises its
 * parameters from opt->seed.  On success *out owns the model (free it with
 * gradc_free); on failure *out is NULL and gradc_last_error(NULL) holds the
 * diagnostics (file:line:col: error: ...). opt may be NULL for defaults. */
gradc_status gradc_compile_file(const char *path, const gradc_options *opt, gradc_model **out);
gradc_status gradc_compile_string(const char *name, const char *source, const gradc_options *opt,
                                  gradc_model **out);

/* Frees the model and everything it owns; NULL is fine. */
void gradc_free(gradc_model *m);

/* The last error message of m (or of this thread when m is NULL), "" if none.
 * Valid until the next call on m. */
const char *gradc_last_error(const gradc_model *m);

/* Warnings of the compilation (unused parameters, ...), formatted like
 * errors; "" if none. */
const char *gradc_warnings(const gradc_model *m);

/* Milliseconds spent compiling (parse, autodiff, LLVM codegen and JIT). */
double gradc_compile_ms(const gradc_model *m);

/* Sets the batch size (the value of the symbolic dimension `batch`, and of
 * any other symbolic dimension) and allocates the workspace for it: one
 * block, allocated here and never inside a step.  Inputs and outputs are
 * then addressable with gradc_data.  Rebinding keeps parameters and
 * optimizer state. */
gradc_status gradc_bind(gradc_model *m, int64_t batch);

/* Sets one symbolic dimension by name (`n` in `input x : f32[batch, n]`)
 * and allocates the workspace for the binding; the others keep their values
 * (1 before any binding).  GRADC_ERR_ARG (NULL model or name, a name the
 * model does not declare: the message lists the declared ones),
 * GRADC_ERR_SHAPE (value outside 1..2^24).  gradc_bind(m, b) binds every
 * symbolic dimension to b. */
gradc_status gradc_bind_dim(gradc_model *m, const char *dim, int64_t value);

/* The optimizer's run-time hyperparameters: scalars the train step reads
 * every time (lr, momentum, rho, beta1, beta2, eps - those its update uses),
 * held as f64 state tensors named optimizer/NAME (STEP/optimizer/NAME in
 * models with several train steps), so checkpoints keep them
 * and gradc_data(m, "optimizer/lr", NULL) reads them too.  Setting one
 * changes the next step without recompiling (learning-rate schedules).
 * step names the train step (gradc_step; NULL: the only one).
 * GRADC_ERR_ARG on a NULL model, name or out pointer, an unknown step, or a
 * name the update does not read (the message lists the valid names). */
gradc_status gradc_set_hyper(gradc_model *m, const char *step, const char *name, double value);
gradc_status gradc_get_hyper(gradc_model *m, const char *step, const char *name, double *value);

/* Tensors by kind, for discovery (gradc_tensor_info). */
typedef enum gradc_kind {
  GRADC_INPUT, GRADC_PARAM, GRADC_STATE, GRADC_OUTPUT, GRADC_METRIC, GRADC_LOSS
} gradc_kind;

typedef struct gradc_tensor {
  const char *name;
  gradc_kind kind;
  gradc_dtype dtype;
  int rank;
  int64_t dims[8];       /* under the current binding; -1 before gradc_bind
                            for symbolic dimensions */
  int symbolic[8];       /* non-zero where the model declared a symbolic dim */
  int64_t count;         /* elements under the current binding */
} gradc_tensor;

/* Number of named tensors, and the i-th one's description. */
int gradc_tensor_count(const gradc_model *m);
gradc_status gradc_tensor_info(const gradc_model *m, int i, gradc_tensor *out);

/* A named tensor's storage (inputs to fill; parameters and state to read or
 * write; outputs, metrics and the loss to read after a step), with its
 * element count in *count (may be NULL).  NULL when the name is unknown or
 * the model is not bound yet (see gradc_last_error).  The dtype is the
 * declared one: float for f32, int32_t for i32, and so on. */
void *gradc_data(gradc_model *m, const char *name, int64_t *count);

/* Runs the forward function: outputs and metrics from inputs and parameters
 * (and the loss, when its inputs are given). */
gradc_status gradc_forward(gradc_model *m);

/* Runs one training step on the bound batch: forward, backward, and the
 * optimizer update of every parameter and slot, in place.  *loss (may be
 * NULL) receives the batch's loss before the update, as a double in the
 * precision of the model's loss dtype: every bit of an f64 loss, an f32
 * loss exactly widened.  Afterwards every output and metric, like the
 * loss, holds the step's value: computed in training mode (dropout, batch
 * statistics) from the parameters and state as they were before the
 * update - an output that is a parameter or state, or a view of one,
 * included.  For a model with one train statement; with several,
 * GRADC_ERR_ARG (use gradc_step). */
gradc_status gradc_train_step(gradc_model *m, double *loss);

/* Data-parallel training: a callback that sums one gradient over every
 * replica in place, each replica's contribution weighted by its share of
 * the global batch (rows_r / rows of all replicas), so that a loss that is
 * a mean over the batch gets the gradient of the whole batch on every
 * replica.  data holds count elements of dtype (GRADC_F32 or GRADC_F64).
 * Returns 0, or non-zero on failure (see gradc_set_allreduce). */
typedef int (*gradc_allreduce_fn)(void *user, void *data, int64_t count, gradc_dtype dtype);

/* Installs fn (NULL removes it) as m's gradient reduction; user is passed
 * back to it.  A model compiled with gradc_options.data_parallel calls it
 * from inside every train step, on the calling thread, once per trained
 * parameter as soon as the backward pass has completed that gradient (in
 * the order the backward pass completes them), and with data NULL and
 * count 0 before clipping or an update reads a sum: by the time that call
 * returns, every gradient handed over before it must hold its sum.  A
 * callback that reduces asynchronously (while the backward pass goes on)
 * waits there; a synchronous one returns 0.  Without a callback the steps are the
 * ordinary ones.  GRADC_ERR_ARG on a NULL model or a model
 * compiled without data_parallel.  A step during which fn failed returns
 * GRADC_ERR_ARG, its message naming fn's return value; the parameters are
 * then not those of any replica and the run should end. */
gradc_status gradc_set_allreduce(gradc_model *m, gradc_allreduce_fn fn, void *user);

/* Data-parallel training: the global index of the first row of the batch
 * bound from now on (default 0), for the random ops of the steps (dropout
 * masks, random_normal, ...): of a value whose first dimension is the
 * batch, row j is drawn as row first_row + j, so replicas stepping on
 * consecutive shards of a global batch draw, together, what one process
 * stepping on the whole batch draws.  GRADC_ERR_ARG on a NULL model or a
 * negative first_row. */
gradc_status gradc_set_row_offset(gradc_model *m, int64_t first_row);

/* Train steps by name.  A model file may have several train statements,
 *   train d_loss of disc.* with adam(lr=1e-4) as critic
 *   train g_loss of gen.* with adam(lr=1e-4) as generator
 * each training its own parameters (those the `of` patterns match, else
 * every parameter its loss depends on) with its own optimizer, whose
 * slots and hyperparameters are named STEP/... (critic/optimizer/lr,
 * critic/disc.kernel/m) when there are several steps.  gradc_step runs
 * the step called step (NULL: the only one) like gradc_train_step: its
 * loss into *loss, every output and metric computed, its updates applied,
 * and the model's state updates its loss feeds (batch norm statistics).
 * A step without `as NAME` is called "train" when it is the only one, else
 * after its loss.  GRADC_ERR_ARG for an unknown name (the message lists
 * the steps). */
gradc_status gradc_step(gradc_model *m, const char *step, double *loss);
int gradc_step_count(const gradc_model *m);
/* The i-th step's name, in file order; NULL when i is out of range. */
const char *gradc_step_name(const gradc_model *m, int i);

/* Re-initialises parameters and optimizer state from seed. */
gradc_status gradc_init(gradc_model *m, uint64_t seed);

/* Checkpoints: all parameters and optimizer state in one file, written
 * atomically (the previous file survives any failure).  Loading checks the
 * model name, tensor names, dtypes and shapes and says what differs; on
 * failure the model is unchanged. */
gradc_status gradc_save(gradc_model *m, const char *path);
gradc_status gradc_load(gradc_model *m, const char *path);

/* Datasets in MNIST's IDX format (gzip'd or not), as the examples and the
 * CLI use them: images scaled to [0, 1] feed the model's float input, labels
 * its i32 input. */
typedef struct gradc_dataset gradc_dataset;

/* Loads train-* (train != 0) or t10k-* images and labels from dir, e.g.
 * "/usr/share/datasets/fashion-mnist".  A directory with
 * SPLIT-sequences-idx2-int (IDX vectors of big-endian i32, type 0x0C) or
 * SPLIT-sequences-idx2-ubyte instead of images holds sequences of ids:
 * they feed the model's one non-label input (e.g. i32[batch, 80]), padded
 * or truncated to its length (gradc_dataset_set_padding).  A file whose
 * header promises more than 8 GiB of values (as f32 or i32) is
 * GRADC_ERR_DATA, more than the process may allocate (ulimit -v, -d, the
 * memory available) GRADC_ERR_NOMEM, both before anything is allocated;
 * a file shorter or longer than its header says is GRADC_ERR_DATA.  *out
 * is NULL on failure. */
gradc_status gradc_dataset_load(const char *dir, int train, gradc_dataset **out);
/* Sequences from a CSV file: each row a label, then any number of integer
 * ids (an optional header line, '#' comments); numbers are decimal (no
 * nan, inf or hex).  *out is NULL on failure. */
gradc_status gradc_dataset_load_sequences_csv(const char *path, gradc_dataset **out);
/* How sequences of another length than the input's are fed, as Keras'
 * pad_sequences: padding_post / truncating_post 0 is 'pre' (the default:
 * padding before the ids, dropping the first ids), 1 is 'post'; value pads
 * (default 0).  GRADC_ERR_ARG for a dataset of images. */
gradc_status gradc_dataset_set_padding(gradc_dataset *d, int padding_post, int truncating_post,
                                       int32_t value);
int64_t gradc_dataset_size(const gradc_dataset *d);
void gradc_dataset_free(gradc_dataset *d);              /* NULL is fine */

/* Binds the model to `count` samples and copies samples order[start ..
 * start+count-1] (or start.. when order is NULL) into its inputs; order,
 * when given, must have at least start + count entries, each a sample
 * index in 0 .. gradc_dataset_size(d) - 1.  Fails with GRADC_ERR_ARG
 * (nothing changed) when start, count or an entry of order is outside the
 * dataset, GRADC_ERR_DATA when the model's inputs do not fit the data;
 * the message is m's (and the thread's). */
gradc_status gradc_dataset_feed(const gradc_dataset *d, gradc_model *m, const int64_t *order,
                                int64_t start, int64_t count);

/* The order in which `gradc train --seed seed` visits n samples in epoch
 * `epoch` (from 0): a permutation of 0 .. n-1 written to order[0 .. n-1],
 * the same for the same (seed, epoch) on every machine.  Give it to
 * gradc_dataset_feed, or gather batches of your own arrays by it, to train
 * on exactly the batches the command line trains on (the Python package's
 * fit does).  Does nothing when order is NULL or n < 1. */
void gradc_shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

#ifdef __cplusplus
}
#endif
#endif
