/*
 * cli.h - the command line's one internal header, in sections by file:
 * what main.c calls in train.c (the fit loop of gradc train, eval and
 * predict) and link.c (gradc compile).  Not part of either library
 * (libgradc, libgradc_runtime): a program that links them gets none of
 * this; the CLI's static archive (gradc_cli) holds train.c and link.c for
 * main.c and for the tests that call them.
 */
#ifndef GRADC_CLI_H
#define GRADC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"

/* ------------------------------------------------------------------ mpi.c */

/* A data-parallel job (mpirun -np N gradc train): this process's rank, the
 * number of ranks, and what its gradient reductions cost. */
typedef struct Dist {
  int rank, size;
  double comm_seconds;       /* inside the gradient reductions */
  double wait_seconds;       /* --mpi-overlap: steps waiting for them */
  long reductions;           /* collective reductions (buckets) */
  long gradients;            /* gradients they reduced */
  bool shared;               /* reduced through shared memory */
  struct DistImpl *impl;
} Dist;

/* The job size a launcher (mpirun, srun) gave this process; 0: none. */
int dist_launched_size(void);
/* Was gradc built with MPI?  Without it dist_init says so. */
bool dist_available(void);
/* How the gradients are summed: through a shared-memory window when every
 * rank is on one node (auto), or always with MPI's collectives. */
typedef enum { DIST_REDUCE_AUTO, DIST_REDUCE_SHARED, DIST_REDUCE_COLLECTIVE } DistReduce;
typedef struct DistOptions {
  double timeout;            /* --mpi-timeout, seconds */
  bool overlap;              /* --mpi-overlap */
  double bucket_mb;          /* gradients fused into one reduction, MiB (0: each its own) */
  DistReduce reduce;         /* --mpi-reduce */
} DistOptions;
gradc_status dist_init(Dist *d, const DistOptions *o, RtError *err);
void dist_finish(Dist *d);
/* Ends every rank (MPI_Abort) with exit status code. */
_Noreturn void dist_abort(Dist *d, int code);
/* Every rank's model file, gradc version, data size and options agree. */
gradc_status dist_agree(Dist *d, const char *model_path, const char *version, int64_t samples, int64_t batch,
                        int epochs, uint64_t seed, RtError *err);
/* Installs the gradient reduction on m and copies rank 0's state to all. */
gradc_status dist_attach(Dist *d, gradc_model *m, RtError *err);
/* This rank's rows of a batch of rows (first, count) and its weight
 * count / rows; d NULL: all of them. */
void dist_share(const Dist *d, int64_t rows, int64_t *first, int64_t *count, double *weight);
/* Rank 0's state tensors (batch norm's moving statistics) to every rank. */
void dist_sync_state(Dist *d, gradc_model *m);
/* The next step's global batch has rows rows (the reduction's weights). */
void dist_set_batch(Dist *d, int64_t rows);
/* v[0..n) summed over the ranks, in place. */
void dist_sum(Dist *d, double *v, int n);
/* --mpi-check: every rank's parameters and state are rank 0's. */
gradc_status dist_check_same(Dist *d, gradc_model *m, int epoch, RtError *err);
uint64_t dist_state_hash(gradc_model *m);

/* ---------------------------------------------------------------- train.c */

/* ------------------------------------------------------------ callbacks.c */

/* One of Keras' fit callbacks, monitoring one value per epoch ("loss",
 * "val_loss", a metric, "val_" + a metric; "NAME_loss" per step). */
typedef struct Callback {
  bool on;
  char monitor[64];
  bool max;                  /* mode: larger is better */
  double min_delta;
  int patience;
  bool restore_best;         /* early stopping */
  int start_from_epoch;      /* early stopping */
  double factor, min_lr;     /* reduce-lr-on-plateau */
  int cooldown;
  /* the state */
  double best;
  int best_epoch, wait, cooldown_left;
} Callback;

typedef enum { CB_NONE, CB_IMPROVED, CB_STOP, CB_REDUCE } CbAction;

/* Parses the value of --early-stopping, --save-best's monitor or
 * --reduce-lr-on-plateau (opt names which: its options and defaults are
 * Keras'); false with the reason in msg. */
bool cb_parse(const char *opt, const char *spec, Callback *cb, char *msg, size_t len);
/* One epoch's monitored value (epoch from 0): what the callback asks. */
CbAction cb_early_stopping(Callback *cb, int epoch, double current);
CbAction cb_save_best(Callback *cb, int epoch, double current);
CbAction cb_reduce_lr(Callback *cb, int epoch, double current);

/* A copy of the parameters and the model's own state (restore_best). */
typedef struct Snapshot Snapshot;
gradc_status cb_snapshot_take(gradc_model *m, const Graph *g, Snapshot **s, RtError *err);
gradc_status cb_snapshot_restore(gradc_model *m, const Snapshot *s, RtError *err);
void cb_snapshot_free(Snapshot *s);

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
  bool sequences;            /* the CSV's rows are a label and ids */
  SeqPad pad;                /* how sequences meet the input's length */
  bool signed_pixels;        /* images' pixels in [-1, 1] instead of [0, 1] */
  const char *samples;       /* a PNG grid of the model's images after each epoch */
  const char *sample_output; /* which output is the image (NULL: the first) */
  FILE *out;                 /* progress and results; NULL = stdout */
  Dist *dist;                /* a data-parallel job, or NULL */
  bool mpi_check;            /* compare the ranks' parameters every epoch */
  const char *model_path;    /* for the ranks' start-up check */
  /* callbacks (callbacks.c); .on false: not given */
  Callback early_stopping, reduce_lr, save_best;
  const char *save_best_path;
  /* gradc predict --format table|csv|npy, --output NAME, -o FILE */
  const char *predict_format, *predict_output, *predict_path;
  /* gradc eval --confusion FILE.svg, --class-names (confusion.c) */
  const char *confusion, *class_names;
  /* --arrays: the .npz arrays of x, y, x_test, y_test (NULL: defaults) */
  const char *arrays[4];
  bool cifar_coarse;         /* --cifar-labels coarse (CIFAR-100) */
  bool no_shuffle;           /* --no-shuffle: every epoch in the data's order */
  int64_t image_size[3];     /* --image-size HxWxC for image folders (0: the input's) */
} TrainOptions;

/* What --data names (train.c decides, by content). */
typedef enum DataKind { DATA_IDX, DATA_CSV, DATA_NPZ, DATA_NPY_DIR, DATA_NPY_FILE, DATA_CIFAR, DATA_IMAGES } DataKind;
DataKind cli_data_kind(const char *path);

/* Keras-style fit: progress per epoch, validation, history, test results. */
gradc_status cli_train(gradc_model *m, const TrainOptions *o, RtError *err);
/* Did the last cli_train stop on SIGINT? */
bool cli_interrupted(void);
/* Loss and metrics on the test split. */
gradc_status cli_evaluate(gradc_model *m, const TrainOptions *o, RtError *err);
/* Predicted classes of the first count test samples. */
gradc_status cli_predict(gradc_model *m, const TrainOptions *o, int64_t count, RtError *err);

/* The first count samples of the data through forward, drawn as a PNG
 * grid: the output --sample-output names or the first image-shaped one;
 * an output computed from an input of its shape (an auto-encoder's
 * reconstruction) beside that input.  gradc sample and train --samples. */
gradc_status cli_sample(gradc_model *m, const TrainOptions *o, const char *path, int64_t count, bool idx,
                        RtError *err);
/* gradc sample --format idx writes count images as DIR/t10k-*-ubyte;
 * gradc score: the Inception score of the data's test split under a
 * classifier (its first output, probabilities). */
gradc_status cli_score(gradc_model *m, const TrainOptions *o, double *score, int64_t *n, RtError *err);

/* ----------------------------------------------------------------- plot.c */

/* gradc plot: the curves of a history CSV as an SVG (a line on out). */
gradc_status cli_plot(const char *csv, const char *svg, FILE *out, RtError *err);
/* The SVG helpers the pictures share (plot, confusion): the document's
 * prologue (a white w x h page; close it with "</svg>"), and s as XML
 * character data. */
void svg_begin(FILE *f, int w, int h);
void svg_text(FILE *f, const char *s);

/* ------------------------------------------------------------ confusion.c */

/* gradc eval --confusion: is m a classifier of the data f feeds (its
 * first output class scores [batch, classes], an i32 [batch] input of
 * labels), and do --class-names fit?  Checked before the evaluation. */
gradc_status confusion_check(const gradc_model *m, const TrainOptions *o, const Feed *f, RtError *err);
/* The confusion matrix of d (rows: true class, columns: predicted), printed
 * on o->out and drawn to o->confusion (an SVG, written atomically). */
gradc_status cli_confusion(gradc_model *m, const TrainOptions *o, const Dataset *d, const Feed *f, RtError *err);

/* ------------------------------------------------------------- graphviz.c */

/* gradc dump --format svg|png: dot_text (len bytes of DOT) rendered by
 * Graphviz's dot -T<format> into path (atomically) or, path NULL, onto
 * standard output.  A missing dot is an error that says to install it. */
gradc_status cli_graphviz(const char *dot_text, size_t len, const char *format, const char *path, RtError *err);

/* -------------------------------------------------------------- outfile.c */

/* An output written whole or not at all: out_open makes a temporary
 * beside path (with fopen's mode); out_commit closes it and, when s is
 * GRADC_OK and every write succeeded, renames it over path, else removes
 * it.  Returns s, or the write error. */
typedef struct OutFile {
  FILE *f;
  const char *path;
  char tmp[4200];
} OutFile;
gradc_status out_open(OutFile *o, const char *path, RtError *err);
gradc_status out_commit(OutFile *o, gradc_status s, RtError *err);

/* ------------------------------------------------------------------ png.c */

/* n images of h x w x c floats (c 1 or 3, row-major), values in [lo, hi],
 * as a PNG of cols per row, written atomically. */
gradc_status cli_png_grid(const char *path, const float *px, int64_t n, int64_t h, int64_t w, int64_t c,
                          int64_t cols, double lo, double hi, RtError *err);

/* The PNG at path as 8-bit gray (channels 1) or RGB (3), row-major, in a
 * malloc'd *px of *h x *w x channels bytes. */
gradc_status cli_png_read(const char *path, int channels, unsigned char **px, int *h, int *w, RtError *err);

/* ----------------------------------------------------------------- jpeg.c */

/* The JPEG at path, as cli_png_read. */
gradc_status cli_jpeg_read(const char *path, int channels, unsigned char **px, int *h, int *w, RtError *err);

/* --------------------------------------------------------------- images.c */

/* Is dir a folder of image folders (DIR/train/CLASS or DIR/CLASS)?  Does
 * it have a test split (DIR/train and DIR/test)? */
bool cli_is_image_dir(const char *dir);
bool cli_image_dir_has_test(const char *dir);
/* The train or test split of the image folders o->data_dir, resized to
 * m's image input (or --image-size), classes in sorted folder order. */
gradc_status cli_load_image_dir(gradc_model *m, const TrainOptions *o, bool train, Dataset *out, RtError *err);

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
  TimeReport *times;         /* --time-report, or NULL */
  bool data_parallel;        /* --data-parallel: steps call MODEL_set_allreduce's fn */
} AotOptions;

/* gradc compile: compiles, emits, links (EMIT_SO) and writes the header.
 * Diagnostics of the model go to stderr; other failures into err. */
gradc_status cli_compile(const AotOptions *o, RtError *err);

/* ----------------------------------------------------------------- onnx.c */

/* gradc import and gradc export (their argument lists, after the command). */
int cli_import(int argc, char **argv);
int cli_export(int argc, char **argv);
/* The initializers of the .onnx file path into m (which compile_path
 * compiled from it, adding the loss `added`, NULL for none: the import's
 * names depend on it); errors are printed. */
gradc_status cli_onnx_weights(gradc_model *m, const char *path, const struct OnnxImportOptions *added);

/* ------------------------------------------------------------------ run.c */

enum { RUN_MAX_FEEDS = 16 };

typedef struct RunOptions {
  const char *model;
  struct { const char *name, *path; } feeds[RUN_MAX_FEEDS];  /* --feed NAME=FILE */
  int nfeeds;
  uint64_t seed;
  int opt_level;             /* -O N: 0 turns the graph passes (folding) off */
  bool shapes_only;          /* --shapes: each output's dtype and shape, no values */
  const char *npy_dir;       /* --format npy -o DIR, or NULL: print */
} RunOptions;

/* gradc run: compile, feed, forward once, print (or write) every output.
 * A model that does not compile: its diagnostics in err, GRADC_ERR_MODEL. */
gradc_status cli_run(const RunOptions *o, FILE *out, RtError *err);

#endif
