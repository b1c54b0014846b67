/*
 * onnx_internal.h - what the importer's files share (onnx.h is the
 * component's outside face).  Data flows one way:
 *
 *   onnx_import.c   the ModelProto: opset, initializers, inputs, each node
 *                   through onnx_ops.c, outputs, the added loss
 *   onnx_ops.c      one node: the table of operators, the plain ones
 *   onnx_layers.c   the operators that become gradc layers or windows
 *                   (Gemm, Conv, pools, BatchNormalization, Resize)
 *   onnx_read.c     the protobuf's tensors and attributes, the values the
 *                   translation tracks and the model text it writes
 *
 * Only these files and onnx_export.c see protobuf-c's types.  An error
 * anywhere is ox_fail: a longjmp back to onnx_import with the message.
 */
#ifndef GRADC_ONNX_INTERNAL_H
#define GRADC_ONNX_INTERNAL_H

#include <setjmp.h>

#include "onnx.h"
#include "onnx.pb-c.h"

enum { OX_RANK = 8, BATCH = -2 /* a dimension that is the symbolic batch */ };

typedef struct Value {
  const char *name;          /* ONNX */
  const char *id;            /* gradc identifier; NULL until written */
  const char *other;         /* the same value in the other layout, once written */
  int rank;
  int64_t dim[OX_RANK];     /* ONNX order (NCHW); BATCH marks the batch */
  bool is_int;               /* i32 in gradc (ONNX int32/int64/bool) */
  bool nhwc;                 /* id is stored NHWC (rank 4) */
  /* Constants (initializers, Constant, folded shapes): their values. */
  bool is_const, is_init;
  int64_t count;
  float *f;                  /* float constants */
  int64_t *i;                /* integer constants (BATCH allowed) */
  bool param_written;        /* declared as a param already */
  bool is_output;            /* a graph output, written as `output` */
} Value;

typedef struct Importer {
  Arena *a;
  const char *file;
  OnnxImport *out;
  jmp_buf fail;
  char *text;
  size_t len, cap;
  Value **vals;
  int nvals, capvals;
  OnnxParam *params;
  int nparams, capparams;
  const char **ids;          /* identifiers in use */
  int nids, capids;
  int tmp;
  int opset;
  const Onnx__NodeProto *node; /* the node being translated, for messages */
  const Onnx__GraphProto *graph;
} Importer;

/* ------------------------------------------------------------ onnx_read.c */

/* Ends the import: the message, prefixed with the file and, while a node
 * is translated, its name, operator and opset. */
void ox_fail(Importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* Appends to the model text. */
void ox_emit(Importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fresh gradc identifier for an ONNX name (dots kept where keep_dots
 * and they join identifiers); ox_reserve takes a name a layer creates;
 * ox_tmp_id is t1, t2, ... */
const char *ox_new_id(Importer *im, const char *name, bool keep_dots);
const char *ox_reserve(Importer *im, const char *name);
const char *ox_tmp_id(Importer *im);
/* "[batch, 3, 4]" of v's dimensions; of x[n] (BATCH as batch). */
void ox_dims_text(const Value *v, char *buf, size_t size);
void ox_list_text(const int64_t *x, int n, char *buf, size_t size);
/* The latest value of that ONNX name, or NULL; a new one. */
Value *ox_find(Importer *im, const char *name);
Value *ox_new_value(Importer *im, const char *name);
/* An initializer's or Constant's tensor as v's constant value. */
void ox_set_tensor(Importer *im, Value *v, const Onnx__TensorProto *t);
/* The node's input k (NULL when absent and not required); its output. */
Value *ox_input(Importer *im, const Onnx__NodeProto *n, size_t k, bool required);
Value *ox_output(Importer *im, const Onnx__NodeProto *n);
/* Attributes: the proto, or the value with a default; ox_attr_ints the
 * count (-1 absent); ox_attr_is compares a string (want NULL: absent). */
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name);
int64_t ox_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
float ox_attr_float(const Onnx__NodeProto *n, const char *name, float def);
int ox_attr_ints(Importer *im, const Onnx__NodeProto *n, const char *name, int64_t *out, int max);
bool ox_attr_is(const Onnx__NodeProto *n, const char *name, const char *want);
/* Constant operands: integers (axes, shapes, pads), a scalar; an axis
 * checked and made non-negative. */
int ox_const_ints(Importer *im, const Value *v, int64_t *out, int max, const char *what);
float ox_const_scalar(Importer *im, const Value *v, const char *what);
int ox_axis_of(Importer *im, int64_t a, int rank);
/* A value the import hands the caller under that name (onnx.h: OnnxParam). */
void ox_add_param(Importer *im, const char *name, int rank, const int64_t *dim, const float *data, bool state);
/* v's identifier in NCHW (ONNX) or NHWC layout, writing a transpose, param
 * or const the first time; ox_define binds v to an expression. */
const char *ox_nchw(Importer *im, Value *v);
const char *ox_nhwc(Importer *im, Value *v);
void ox_define(Importer *im, Value *v, bool is_nhwc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void ox_copy_shape(Value *dst, const Value *src);
/* r's shape: x and y broadcast as numpy (and ONNX) do. */
void ox_broadcast(Importer *im, const Value *x, const Value *y, Value *r);

/* ------------------------------------------------------------- onnx_ops.c */

/* Translates node n (im->node) or fails naming it. */
void ox_translate_node(Importer *im, const Onnx__NodeProto *n);

/* ---------------------------------------------------------- onnx_layers.c */

void ox_gemm(Importer *im, const Onnx__NodeProto *n, bool gemm);   /* MatMul (gemm false), Gemm */
void ox_conv(Importer *im, const Onnx__NodeProto *n);
void ox_conv_transpose(Importer *im, const Onnx__NodeProto *n);
void ox_pool(Importer *im, const Onnx__NodeProto *n, bool max);    /* MaxPool, AveragePool */
void ox_global_avgpool(Importer *im, const Onnx__NodeProto *n);
void ox_batch_norm(Importer *im, const Onnx__NodeProto *n);
void ox_resize(Importer *im, const Onnx__NodeProto *n);

#endif
