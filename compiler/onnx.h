/*
 * onnx.h - ONNX in and out, each behind one entry point: onnx_import.c
 * turns a ModelProto into model-file text plus the values of its
 * initializers (so that an .onnx file goes through the same parser as an
 * .nn file; its helpers onnx_ops.c, onnx_layers.c and onnx_read.c share
 * onnx_internal.h), onnx_export.c turns a parsed graph and its
 * parameters' values into a ModelProto.  protobuf-c (and the code it
 * generates from onnx.proto) is used by these files and nowhere else.
 */
#ifndef GRADC_ONNX_H
#define GRADC_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* One tensor the imported model needs a value for, under the name the model
 * text gives it (a layer's NAME.kernel, NAME.bias, ... or the initializer's
 * own name), already in gradc's layout (dense kernels [in, out], conv
 * kernels [kh, kw, in, out]).  state: a batch norm's moving statistics. */
typedef struct OnnxParam {
  const char *name;
  int rank;
  int64_t dims[8];
  const float *data;
  bool state;
} OnnxParam;

/* What the command line may add to an imported model: a loss over its
 * first output with a label input, and a train statement. */
typedef struct OnnxImportOptions {
  const char *loss;          /* softmax_cross_entropy | mse | NULL: none */
  const char *label;         /* the label input's name (default "y") */
  const char *optimizer;     /* "sgd(lr=0.1)", "adam", ... (default sgd) */
} OnnxImportOptions;

typedef struct OnnxImport {
  const char *text;          /* the model file, NUL-terminated */
  size_t len;
  OnnxParam *params;
  int nparams;
  int opset;                 /* the default domain's version */
  char error[1024];          /* on failure: "FILE: what is wrong" */
} OnnxImport;

/* Reads the ModelProto in buf[len] (file names it in messages) and fills
 * *out, everything allocated in a.  false, with out->error, for anything
 * that is not a model gradc can compile: a broken protobuf, an opset
 * outside 13-17, an operator gradc lacks (named with its node and opset),
 * a layout or attribute it does not support.  Never crashes on any input
 * (fuzz/fuzz_onnx.c). */
bool onnx_import(Arena *a, const char *file, const void *buf, size_t len, const OnnxImportOptions *o,
                 OnnxImport *out);

/* Does path name an ONNX file (by its extension)? */
bool onnx_is_onnx_path(const char *path);

/* Looks up a parameter's value for the exporter: the data of tensor
 * `name` with `count` floats, or NULL when there is none. */
typedef const float *OnnxValueFn(void *ctx, const char *name, int64_t count);

/* Writes the forward graph of g (parse stage: inference mode, dropout off,
 * batch norm with its moving statistics) as an opset-17 ModelProto to
 * path, parameters and state as initializers from value(ctx, ...).  false
 * with a message in err for an op ONNX cannot express here or an I/O
 * error. */
bool onnx_export(const Graph *g, OnnxValueFn *value, void *ctx, const char *path, char *err, size_t errlen);

#endif
