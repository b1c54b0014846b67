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
  FILE *out;                 /* progress and results; NULL = stdout */
} TrainOptions;

/* Keras-style fit: progress per epoch, validation, history, test results. */
gradc_status cli_train(gradc_model *m, const TrainOptions *o, RtError *err);
/* Did the last cli_train stop on SIGINT? */
bool cli_interrupted(void);
/* Loss and metrics on the test split. */
gradc_status cli_evaluate(gradc_model *m, const TrainOptions *o, RtError *err);
/* Predicted classes of the first count test samples. */
gradc_status cli_predict(gradc_model *m, const TrainOptions *o, int64_t count, RtError *err);

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

/* ----------------------------------------------------------------- onnx.c */

/* gradc import and gradc export (their argument lists, after the command). */
int cli_import(int argc, char **argv);
int cli_export(int argc, char **argv);
/* The initializers of the .onnx file path into m (which compile_path
 * compiled from it); errors are printed. */
gradc_status cli_onnx_weights(gradc_model *m, const char *path);

#endif
