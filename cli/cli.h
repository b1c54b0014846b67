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
  /* callbacks (callbacks.c); .on false: not given */
  Callback early_stopping, reduce_lr, save_best;
  const char *save_best_path;
  /* gradc predict --format table|csv|npy, --output NAME, -o FILE */
  const char *predict_format, *predict_output, *predict_path;
} TrainOptions;

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

/* ------------------------------------------------------------------ png.c */

/* n images of h x w x c floats (c 1 or 3, row-major), values in [lo, hi],
 * as a PNG of cols per row, written atomically. */
gradc_status cli_png_grid(const char *path, const float *px, int64_t n, int64_t h, int64_t w, int64_t c,
                          int64_t cols, double lo, double hi, RtError *err);

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
} AotOptions;

/* gradc compile: compiles, emits, links (EMIT_SO) and writes the header.
 * Diagnostics of the model go to stderr; other failures into err. */
gradc_status cli_compile(const AotOptions *o, RtError *err);

#endif
