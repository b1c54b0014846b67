/*
 * onnx_import.c - an ONNX ModelProto as model-file text.
 *
 * The importer does not build a graph: it writes the model file a person
 * would have written (named values, layer sugar where a pattern matches:
 * Gemm with a weight initializer is dense, Conv is conv2d,
 * BatchNormalization is batch_norm) and collects the initializers' values
 * in gradc's layouts.  The parser then compiles that text like any other,
 * so an .onnx file gets every check, pass and diagnostic an .nn file gets,
 * and `gradc import` shows the user exactly what was compiled.
 *
 * Layout.  ONNX images are NCHW; gradc's windows are NHWC.  Every value
 * keeps its ONNX shape here, and a value made by a window op (conv, pool,
 * batch norm over an image) is stored NHWC and marked so.  Ops that do not
 * care (elementwise ones, between operands of the same layout) keep the
 * mark; any other op sees the value through a transpose back to NCHW,
 * written once per value.  So a CNN has a transpose after its input and
 * one before its flatten, the weights of the dense layer after the flatten
 * keep PyTorch's order, and inputs and outputs have the shapes the ONNX
 * file declares.  A symbolic first dimension is `batch`; a symbolic
 * dimension elsewhere is refused.
 *
 * Shapes, Constant and the integer arithmetic PyTorch emits around Reshape
 * (Shape -> Gather -> Unsqueeze -> Concat) are folded here, with the batch
 * as a marker, into the literal shapes gradc's reshape takes.
 *
 * Errors (a broken protobuf, an unsupported opset or operator, an
 * attribute gradc cannot honour) end the import through a longjmp to
 * onnx_import, with a message naming the node, its operator and the opset;
 * the protobuf is freed there.  protobuf-c checks the wire format; every
 * count and index read from the message is checked here before use.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void fail(Importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail(Importer *im, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (im->node)
    snprintf(im->out->error, sizeof im->out->error, "%s: node '%.120s' (%.60s, opset %d): %s", im->file,
             im->node->name && *im->node->name ? im->node->name : "(unnamed)",
             im->node->op_type ? im->node->op_type : "?", im->opset, msg);
  else
    snprintf(im->out->error, sizeof im->out->error, "%s: %s", im->file, msg);
  longjmp(im->fail, 1);
}

static void *grow(Importer *im, void *p, int *cap, size_t elem) {
  int n = *cap ? *cap * 2 : 16;
  void *q = realloc(p, (size_t)n * elem);
  if (!q) fail(im, "out of memory");
  *cap = n;
  return q;
}

/* ------------------------------------------------------------ the text */

static void emit(Importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(Importer *im, const char *fmt, ...) {
  va_list ap;
  if (!im->text) {           /* text + len must point into a buffer */
    if (!(im->text = malloc(im->cap = 4096))) fail(im, "out of memory");
  }
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(im->text + im->len, im->cap - im->len, fmt, ap);
    va_end(ap);
    if (n < 0) fail(im, "cannot format the model text");
    if ((size_t)n < im->cap - im->len) {
      im->len += (size_t)n;
      return;
    }
    size_t cap = im->cap * 2 + (size_t)n + 256;
    char *t = realloc(im->text, cap);
    if (!t) fail(im, "out of memory");
    im->text = t, im->cap = cap;
  }
}

static bool id_used(const Importer *im, const char *s) {
  for (int i = 0; i < im->nids; i++)
    if (!strcmp(im->ids[i], s)) return true;
  return false;
}

/* A fresh gradc identifier from an ONNX name: letters, digits, '_' kept
 * (and '.' where keep_dots: parameter names), anything else '_'; never a
 * keyword, a builtin dimension name or a name already taken. */
static const char *new_id(Importer *im, const char *name, bool keep_dots) {
  static const char *const reserved[] = {"input", "param", "const", "output", "metric", "train", "with",
                                         "def", "return", "batch", "loss", "state", "true", "false"};
  char buf[160], src[160];
  size_t n = 0;
  /* PyTorch's "/conv1/Conv_output_0" reads as conv1_Conv. */
  snprintf(src, sizeof src, "%s", name ? name : "");
  size_t sl = strlen(src);
  if (sl > 9 && !strcmp(src + sl - 9, "_output_0")) src[sl - 9] = 0;
  const char *from = src;
  while (*from && !((*from >= 'a' && *from <= 'z') || (*from >= 'A' && *from <= 'Z') || (*from >= '0' && *from <= '9')))
    from++;
  if (!strncmp(from, "onnx::", 6)) from += 6;
  for (const char *s = from; *s && n < 120; s++) {
    unsigned char c = (unsigned char)*s, next = (unsigned char)s[1];
    /* A dot joins two identifiers (the lexer's rule): PyTorch's
     * "blocks.0.c1" (a ModuleList) reads as blocks_0.c1. */
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (keep_dots && c == '.' && n > 0 && ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '_'));
    buf[n++] = ok ? (char)c : '_';
  }
  while (n > 1 && buf[n - 1] == '_') n--;
  buf[n] = 0;
  bool bad = !n || (buf[0] >= '0' && buf[0] <= '9') || buf[0] == '_' || buf[n - 1] == '.';
  for (size_t k = 0; k < sizeof reserved / sizeof *reserved; k++) bad |= !strcmp(buf, reserved[k]);
  char cand[200];
  snprintf(cand, sizeof cand, "%s%s", bad ? "v_" : "", buf);
  for (int k = 1; id_used(im, cand); k++) snprintf(cand, sizeof cand, "%s%s_%d", bad ? "v_" : "", buf, k);
  if (im->nids == im->capids) im->ids = grow(im, im->ids, &im->capids, sizeof *im->ids);
  return im->ids[im->nids++] = arena_strdup(im->a, cand);
}

/* A name a layer creates (NAME.kernel): taken, so that no declaration
 * clashes with it. */
static const char *reserve(Importer *im, const char *name) {
  if (im->nids == im->capids) im->ids = grow(im, im->ids, &im->capids, sizeof *im->ids);
  return im->ids[im->nids++] = name;
}

static const char *tmp_id(Importer *im) {
  char b[32];
  snprintf(b, sizeof b, "t%d", ++im->tmp);
  return new_id(im, b, false);
}

static void dims_text(const Value *v, char *buf, size_t size) {
  size_t n = 0;
  buf[n++] = '[';
  for (int k = 0; k < v->rank && n + 24 < size; k++)
    n += (size_t)snprintf(buf + n, size - n, "%s", k ? ", " : ""),
    n += v->dim[k] == BATCH ? (size_t)snprintf(buf + n, size - n, "batch")
                            : (size_t)snprintf(buf + n, size - n, "%lld", (long long)v->dim[k]);
  snprintf(buf + n, size - n, "]");
}

/* ----------------------------------------------------------- the values */

static Value *find(Importer *im, const char *name) {
  for (int i = im->nvals - 1; i >= 0; i--)
    if (!strcmp(im->vals[i]->name, name)) return im->vals[i];
  return NULL;
}

static Value *new_value(Importer *im, const char *name) {
  if (!name) name = "";
  Value *v = arena_alloc(im->a, sizeof *v);
  v->name = arena_strdup(im->a, name);
  if (im->nvals == im->capvals) im->vals = grow(im, im->vals, &im->capvals, sizeof *im->vals);
  return im->vals[im->nvals++] = v;
}

static int64_t count_of(Importer *im, int rank, const int64_t *dim) {
  int64_t n = 1;
  for (int k = 0; k < rank; k++) {
    if (dim[k] < 0) fail(im, "a tensor dimension is %lld", (long long)dim[k]);
    if (dim[k] && n > (INT64_C(1) << 34) / dim[k]) fail(im, "a tensor of more than 2^34 elements");
    n *= dim[k];
  }
  return n;
}

/* An initializer or Constant's tensor as a constant value. */
static void set_tensor(Importer *im, Value *v, const Onnx__TensorProto *t) {
  if (t->n_dims > OX_RANK) fail(im, "tensor '%.100s' has rank %zu; at most %d", v->name, t->n_dims, OX_RANK);
  v->rank = (int)t->n_dims;
  for (int k = 0; k < v->rank; k++) v->dim[k] = t->dims[k];
  int64_t n = v->count = count_of(im, v->rank, v->dim);
  v->is_const = true;
  if (t->n_external_data || (t->has_data_location && t->data_location))
    fail(im, "tensor '%.100s' keeps its data in an external file, which gradc does not read", v->name);
  const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
  size_t rawlen = t->has_raw_data ? t->raw_data.len : 0;
  switch (t->data_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
    bool dbl = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    size_t have = raw ? rawlen / (dbl ? 8 : 4) : dbl ? t->n_double_data : t->n_float_data;
    if ((raw && rawlen != (size_t)n * (dbl ? 8 : 4)) || (int64_t)have != n)
      fail(im, "tensor '%.100s' has %zu values for its %lld elements", v->name, have, (long long)n);
    v->f = arena_alloc(im->a, sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t k = 0; k < n; k++) {
      if (raw && dbl) {
        double d;
        memcpy(&d, raw + 8 * k, 8);
        v->f[k] = (float)d;
      } else if (raw) {
        memcpy(&v->f[k], raw + 4 * k, 4);
      } else {
        v->f[k] = dbl ? (float)t->double_data[k] : t->float_data[k];
      }
    }
    return;
  }
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: {
    int w = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8
          : t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 : 1;
    size_t have = raw ? rawlen / (size_t)w : w == 8 ? t->n_int64_data : t->n_int32_data;
    if ((raw && rawlen != (size_t)n * (size_t)w) || (int64_t)have != n)
      fail(im, "tensor '%.100s' has %zu values for its %lld elements", v->name, have, (long long)n);
    v->is_int = true;
    v->i = arena_alloc(im->a, sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t k = 0; k < n; k++) {
      if (raw && w == 8) memcpy(&v->i[k], raw + 8 * k, 8);
      else if (raw && w == 4) { int32_t x; memcpy(&x, raw + 4 * k, 4); v->i[k] = x; }
      else if (raw) v->i[k] = raw[k] != 0;
      else v->i[k] = w == 8 ? t->int64_data[k] : t->int32_data[k];
    }
    return;
  }
  default:
    fail(im, "tensor '%.100s' has ONNX data type %d; gradc reads float, double, int32, int64 and bool",
         v->name, t->data_type);
  }
}

static Value *input(Importer *im, const Onnx__NodeProto *n, size_t k, bool required) {
  if (k >= n->n_input || !n->input[k] || !*n->input[k]) {
    if (required) fail(im, "input %zu is missing", k + 1);
    return NULL;
  }
  Value *v = find(im, n->input[k]);
  if (!v) fail(im, "input '%.100s' is not defined before the node", n->input[k]);
  return v;
}

static Value *output(Importer *im, const Onnx__NodeProto *n) {
  if (n->n_output < 1 || !n->output[0] || !*n->output[0]) fail(im, "the node has no output");
  Value *v = new_value(im, n->output[0]);
  for (size_t k = 0; k < im->graph->n_output; k++)
    v->is_output |= im->graph->output[k] && im->graph->output[k]->name && !strcmp(im->graph->output[k]->name, v->name);
  return v;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t k = 0; k < n->n_attribute; k++)
    if (n->attribute[k] && n->attribute[k]->name && !strcmp(n->attribute[k]->name, name)) return n->attribute[k];
  return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t def) {
  const Onnx__AttributeProto *a = attr(n, name);
  return a && a->has_i ? a->i : def;
}

static float attr_float(const Onnx__NodeProto *n, const char *name, float def) {
  const Onnx__AttributeProto *a = attr(n, name);
  return a && a->has_f ? a->f : def;
}

/* An ints attribute into out[max]; its count, or -1 when absent. */
static int attr_ints(Importer *im, const Onnx__NodeProto *n, const char *name, int64_t *out, int max) {
  const Onnx__AttributeProto *a = attr(n, name);
  if (!a) return -1;
  if (a->n_ints > (size_t)max) fail(im, "attribute %s has %zu values; at most %d", name, a->n_ints, max);
  for (size_t k = 0; k < a->n_ints; k++) out[k] = a->ints[k];
  return (int)a->n_ints;
}

static bool attr_is(const Onnx__NodeProto *n, const char *name, const char *want) {
  const Onnx__AttributeProto *a = attr(n, name);
  if (!a || !a->has_s) return want == NULL;
  return want && a->s.len == strlen(want) && !memcmp(a->s.data, want, a->s.len);
}

/* An integer constant operand (axes, shapes, pads) into out[max]. */
static int const_ints(Importer *im, const Value *v, int64_t *out, int max, const char *what) {
  if (!v->is_const || !v->is_int)
    fail(im, "%s must be a constant integer tensor (an initializer or Constant), not a computed value", what);
  if (v->count > max) fail(im, "%s has %lld values; at most %d", what, (long long)v->count, max);
  for (int64_t k = 0; k < v->count; k++) out[k] = v->i[k];
  return (int)v->count;
}

static float const_scalar(Importer *im, const Value *v, const char *what) {
  if (!v->is_const || v->count != 1) fail(im, "%s must be a constant scalar", what);
  return v->is_int ? (float)v->i[0] : v->f[0];
}

static int axis_of(Importer *im, int64_t a, int rank) {
  if (a < -rank || a >= (rank ? rank : 1)) fail(im, "axis %lld is out of range for rank %d", (long long)a, rank);
  return (int)(a < 0 ? a + rank : a);
}

/* The parameter declaration of a float constant (initializer), in ONNX
 * layout, written once. */
static void add_param(Importer *im, const char *name, int rank, const int64_t *dim, const float *data, bool state) {
  if (im->nparams == im->capparams) im->params = grow(im, im->params, &im->capparams, sizeof *im->params);
  if (!id_used(im, name)) reserve(im, name);
  OnnxParam *p = &im->params[im->nparams++];
  *p = (OnnxParam){.name = name, .rank = rank, .data = data, .state = state};
  for (int k = 0; k < rank; k++) p->dims[k] = dim[k];
}

/* The identifier of v in NCHW (ONNX) layout, writing a transpose, a param
 * or a const the first time one is needed. */
static const char *nchw(Importer *im, Value *v) {
  if (v->id && !v->nhwc) return v->id;
  if (v->nhwc) {
    if (!v->other) {
      v->other = tmp_id(im);
      emit(im, "%s = transpose(%s, [0, 3, 1, 2])\n", v->other, v->id);
    }
    return v->other;
  }
  if (!v->is_const) fail(im, "value '%.100s' is used but never computed", v->name);
  char d[200];
  dims_text(v, d, sizeof d);
  if (v->count == 1 && v->rank == 0) {
    v->id = new_id(im, v->name, false);
    if (v->is_int) emit(im, "const %s : i32[] = %lld\n", v->id, (long long)v->i[0]);
    else emit(im, "const %s : f32[] = %.9g\n", v->id, (double)v->f[0]);
    return v->id;
  }
  if (v->is_int) fail(im, "integer tensor '%.100s' is used as a value; gradc takes integer constants only as shapes and axes", v->name);
  v->id = new_id(im, v->name, true);
  v->param_written = true;
  emit(im, "param %s : f32%s = zeros\n", v->id, d);
  add_param(im, v->id, v->rank, v->dim, v->f, false);
  return v->id;
}

static const char *nhwc(Importer *im, Value *v) {
  if (v->nhwc) return v->id;
  if (v->rank != 4) fail(im, "expected a 4-D NCHW tensor, '%.100s' has rank %d", v->name, v->rank);
  if (!v->other) {
    const char *x = nchw(im, v);
    v->other = tmp_id(im);
    emit(im, "%s = transpose(%s, [0, 2, 3, 1])\n", v->other, x);
  }
  return v->other;
}

/* Binds v to expr (in the layout the flag says). */
static void define(Importer *im, Value *v, bool is_nhwc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void define(Importer *im, Value *v, bool is_nhwc, const char *fmt, ...) {
  char expr[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(expr, sizeof expr, fmt, ap);
  va_end(ap);
  v->id = new_id(im, v->name, false);
  v->nhwc = is_nhwc;
  bool out = v->is_output && !is_nhwc;
  emit(im, "%s%s = %s\n", out ? "output " : "", v->id, expr);
  v->is_output &= !out;      /* written */
}

static void copy_shape(Value *dst, const Value *src) {
  dst->rank = src->rank;
  memcpy(dst->dim, src->dim, sizeof dst->dim);
  dst->is_int = src->is_int;
}

static void list_text(const int64_t *x, int n, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < n && k + 24 < size; i++)
    k += x[i] == BATCH ? (size_t)snprintf(buf + k, size - k, "%sbatch", i ? ", " : "")
                       : (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)x[i]);
  snprintf(buf + k, size - k, "]");
}

/* A layer's name from its weight's initializer ("fc1.weight" -> fc1). */
static const char *onnx_layer_name(Importer *im, const Value *w, const char *kind) {
  char b[160];
  snprintf(b, sizeof b, "%s", w->name);
  char *dot = strrchr(b, '.');
  const char *node = im->node && im->node->name ? im->node->name : "";
  if (dot && dot != b && strncmp(b, "onnx::", 6)) {
    *dot = 0;
  } else if (node[0] == '/' && strrchr(node, '/') != node) {
    /* PyTorch's node "/fc1/MatMul": the module's path, fc1. */
    snprintf(b, sizeof b, "%.*s", (int)(strrchr(node, '/') - node - 1), node + 1);
  } else {
    snprintf(b, sizeof b, "%s", kind);
  }
  for (char *c = b; *c; c++)
    if (*c == '/') *c = '_';
  return new_id(im, b, true);
}

/* Broadcast shape of two operands (numpy rules, as ONNX's). */
static void broadcast(Importer *im, const Value *x, const Value *y, Value *r) {
  int rank = x->rank > y->rank ? x->rank : y->rank;
  r->rank = rank;
  for (int k = 0; k < rank; k++) {
    int kx = k - (rank - x->rank), ky = k - (rank - y->rank);
    int64_t a = kx >= 0 ? x->dim[kx] : 1, b = ky >= 0 ? y->dim[ky] : 1;
    if (a != b && a != 1 && b != 1) fail(im, "operands of shapes that do not broadcast");
    r->dim[k] = a == 1 ? b : a;
  }
}

/* ------------------------------------------------------------ operators */

static void op_unary(Importer *im, const Onnx__NodeProto *n, const char *fn) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  copy_shape(r, x);
  const char *id = x->nhwc ? x->id : nchw(im, x);
  define(im, r, x->nhwc, "%s(%s)", fn, id);
}

static void op_binary(Importer *im, const Onnx__NodeProto *n, const char *sym, const char *fn) {
  if (n->n_input != 2) fail(im, "%zu inputs; gradc imports this operator with 2", n->n_input);
  Value *x = input(im, n, 0, true), *y = input(im, n, 1, true), *r = output(im, n);
  broadcast(im, x, y, r);
  r->is_int = x->is_int && y->is_int;
  /* Both stored NHWC, or one a scalar: the layout carries over. */
  bool keep = (x->nhwc && (y->nhwc || y->count == 1)) || (y->nhwc && x->count == 1 && x->is_const);
  const char *a = keep && x->nhwc ? x->id : nchw(im, x), *b = keep && y->nhwc ? y->id : nchw(im, y);
  if (sym) define(im, r, keep, "%s %s %s", a, sym, b);
  else define(im, r, keep, "%s(%s, %s)", fn, a, b);
}

static void op_gemm(Importer *im, const Onnx__NodeProto *n, bool gemm) {
  Value *a = input(im, n, 0, true), *b = input(im, n, 1, true), *c = gemm ? input(im, n, 2, false) : NULL;
  Value *r = output(im, n);
  int64_t ta = gemm ? attr_int(n, "transA", 0) : 0, tb = gemm ? attr_int(n, "transB", 0) : 0;
  float alpha = gemm ? attr_float(n, "alpha", 1) : 1, beta = gemm ? attr_float(n, "beta", 1) : 1;
  if (a->rank < 1 || b->rank < 1) fail(im, "matrix product of a scalar");
  if (gemm && (a->rank != 2 || b->rank != 2)) fail(im, "Gemm needs 2-D operands");
  /* dense: x @ W (+ b) with W a 2-D initializer, the form of nn.Linear. */
  if (!ta && alpha == 1 && beta == 1 && a->rank >= 2 && b->is_const && !b->is_int && b->rank == 2 &&
      (!c || (c->is_const && !c->is_int && c->rank == 1)) && !b->param_written) {
    int64_t in = tb ? b->dim[1] : b->dim[0], units = tb ? b->dim[0] : b->dim[1];
    if (a->dim[a->rank - 1] != in) fail(im, "inner dimensions differ (%lld vs %lld)", (long long)a->dim[a->rank - 1], (long long)in);
    if (c && c->dim[0] != units) fail(im, "the bias has %lld values for %lld units", (long long)c->dim[0], (long long)units);
    const char *L = onnx_layer_name(im, b, "dense");
    float *k = arena_alloc(im->a, sizeof(float) * (size_t)(in * units));
    for (int64_t i = 0; i < in; i++)
      for (int64_t j = 0; j < units; j++) k[i * units + j] = tb ? b->f[j * in + i] : b->f[i * units + j];
    int64_t kd[2] = {in, units};
    add_param(im, arena_printf(im->a, "%s.kernel", L), 2, kd, k, false);
    if (c) add_param(im, arena_printf(im->a, "%s.bias", L), 1, &units, c->f, false);
    b->param_written = true;
    /* Another product with the same weight (a shared layer) reads the
     * layer's kernel when its layout is ONNX's. */
    if (!tb) b->id = arena_printf(im->a, "%s.kernel", L);
    copy_shape(r, a);
    r->dim[r->rank - 1] = units;
    r->is_int = false;
    define(im, r, false, "dense(%s, %lld, use_bias=%s, name=%s)", nchw(im, a), (long long)units,
           c ? "true" : "false", L);
    return;
  }
  if (a->rank != 2 || b->rank != 2) {
    if (a->rank < 2 || b->rank < 2) fail(im, "MatMul of a 1-D operand; reshape it to 2-D first");
  }
  int64_t m = ta ? a->dim[a->rank - 1] : a->dim[a->rank - 2], ka = ta ? a->dim[a->rank - 2] : a->dim[a->rank - 1];
  int64_t kb = tb ? b->dim[b->rank - 1] : b->dim[b->rank - 2], nn = tb ? b->dim[b->rank - 2] : b->dim[b->rank - 1];
  if (ka != kb) fail(im, "inner dimensions differ (%lld vs %lld)", (long long)ka, (long long)kb);
  Value tmp = {0};
  if (a->rank >= b->rank) copy_shape(&tmp, a); else copy_shape(&tmp, b);
  tmp.dim[tmp.rank - 2] = m, tmp.dim[tmp.rank - 1] = nn, tmp.is_int = false;
  char prod[600];
  snprintf(prod, sizeof prod, "matmul(%s, %s%s%s)", nchw(im, a), nchw(im, b), ta ? ", transpose_a=true" : "",
           tb ? ", transpose_b=true" : "");
  copy_shape(r, &tmp);
  char extra[400] = "";
  if (alpha != 1) snprintf(extra, sizeof extra, " * %.9g", (double)alpha);
  if (c && beta != 0) {
    size_t e = strlen(extra);
    if (beta == 1) snprintf(extra + e, sizeof extra - e, " + %s", nchw(im, c));
    else snprintf(extra + e, sizeof extra - e, " + %s * %.9g", nchw(im, c), (double)beta);
  }
  define(im, r, false, "%s%s", prod, extra);
}

/* Conv and the pools: the 2-D window attributes, checked. */
typedef struct OnnxWindow {
  int64_t k[2], stride[2], dil[2], pad[4]; /* pad: top, bottom, left, right */
} OnnxWindow;

static void onnx_window_attrs(Importer *im, const Onnx__NodeProto *n, OnnxWindow *w, const int64_t *kernel) {
  int64_t v[8];
  w->k[0] = kernel[0], w->k[1] = kernel[1];
  w->stride[0] = w->stride[1] = w->dil[0] = w->dil[1] = 1;
  memset(w->pad, 0, sizeof w->pad);
  int c = attr_ints(im, n, "strides", v, 8);
  if (c >= 0 && c != 2) fail(im, "strides must have 2 values (2-D windows only)");
  if (c == 2) w->stride[0] = v[0], w->stride[1] = v[1];
  c = attr_ints(im, n, "dilations", v, 8);
  if (c >= 0 && c != 2) fail(im, "dilations must have 2 values");
  if (c == 2) w->dil[0] = v[0], w->dil[1] = v[1];
  c = attr_ints(im, n, "pads", v, 8);
  if (c >= 0 && c != 4) fail(im, "pads must have 4 values");
  if (c == 4) w->pad[0] = v[0], w->pad[1] = v[2], w->pad[2] = v[1], w->pad[3] = v[3];
  const Onnx__AttributeProto *ap = attr(n, "auto_pad");
  if (ap && !attr_is(n, "auto_pad", "NOTSET") && !attr_is(n, "auto_pad", "VALID"))
    fail(im, "auto_pad SAME_UPPER/SAME_LOWER is not supported; export with explicit pads");
  for (int k = 0; k < 2; k++)
    if (w->k[k] < 1 || w->stride[k] < 1 || w->dil[k] < 1 || w->k[k] > 4096 || w->stride[k] > 4096 || w->dil[k] > 4096)
      fail(im, "kernel, strides and dilations must be positive");
  for (int k = 0; k < 4; k++)
    if (w->pad[k] < 0 || w->pad[k] > 4096) fail(im, "pads must be non-negative");
}

static void onnx_window_out(Importer *im, const Value *x, const OnnxWindow *w, int64_t channels, Value *r) {
  r->rank = 4;
  r->dim[0] = x->dim[0], r->dim[1] = channels;
  for (int k = 0; k < 2; k++) {
    int64_t in = x->dim[2 + k], span = w->dil[k] * (w->k[k] - 1) + 1;
    if (in < 0) fail(im, "the image's height and width must be static");
    int64_t o = (in + w->pad[2 * k] + w->pad[2 * k + 1] - span) / w->stride[k] + 1;
    if (in + w->pad[2 * k] + w->pad[2 * k + 1] < span) fail(im, "the window is larger than the padded image");
    r->dim[2 + k] = o;
  }
  r->is_int = false;
}

/* The conv2d kernel [kh, kw, in, out] of ONNX's weight [O, in, kh, kw]
 * for outputs o0 .. o0+out-1. */
static float *conv_kernel(Importer *im, const Value *wt, int64_t o0, int64_t out) {
  int64_t I = wt->dim[1], kh = wt->dim[2], kw = wt->dim[3];
  float *k = arena_alloc(im->a, sizeof(float) * (size_t)(out * I * kh * kw));
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < I; i++)
      for (int64_t y = 0; y < kh; y++)
        for (int64_t z = 0; z < kw; z++)
          k[((y * kw + z) * I + i) * out + o] = wt->f[(((o0 + o) * I + i) * kh + y) * kw + z];
  return k;
}

/* The conv2d call on x for outputs o0 .. o0+out-1 of wt, as layer L. */
static const char *conv_call(Importer *im, const char *x, const Value *wt, const Value *b, int64_t o0, int64_t out,
                             const OnnxWindow *w, const char *L) {
  int64_t kh = wt->dim[2], kw = wt->dim[3];
  add_param(im, arena_printf(im->a, "%s.kernel", L), 4, (int64_t[]){kh, kw, wt->dim[1], out},
            conv_kernel(im, wt, o0, out), false);
  if (b) add_param(im, arena_printf(im->a, "%s.bias", L), 1, &out, b->f + o0, false);
  return arena_printf(im->a, "conv2d(%s, filters=%lld, kernel=[%lld, %lld], strides=[%lld, %lld], "
                      "padding=[%lld, %lld, %lld, %lld], dilation=[%lld, %lld], use_bias=%s, name=%s)",
                      x, (long long)out, (long long)kh, (long long)kw, (long long)w->stride[0],
                      (long long)w->stride[1], (long long)w->pad[0], (long long)w->pad[1], (long long)w->pad[2],
                      (long long)w->pad[3], (long long)w->dil[0], (long long)w->dil[1], b ? "true" : "false", L);
}

/* A depthwise convolution (one input channel a group; m = out / in
 * outputs each) as the sum over the kernel's taps of a strided slice of
 * the padded input, each channel repeated m times (ONNX's order of the
 * outputs: o reads channel o / m), times the tap's weights: kh * kw
 * products whatever the channel count, with the gradients of slice, pad,
 * broadcast and mul.  The kernel is one parameter L.kernel [kh, kw, out]. */
static void depthwise(Importer *im, Value *x, Value *wt, Value *b, Value *r, const OnnxWindow *w, const char *L) {
  int64_t O = wt->dim[0], kh = wt->dim[2], kw = wt->dim[3], m = O / x->dim[1];
  const char *src = nhwc(im, x);
  if (w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3]) {
    const char *t = tmp_id(im);
    emit(im, "%s = pad(%s, [[0, 0], [%lld, %lld], [%lld, %lld], [0, 0]])\n", t, src, (long long)w->pad[0],
         (long long)w->pad[1], (long long)w->pad[2], (long long)w->pad[3]);
    src = t;
  }
  if (m > 1) {   /* repeat's, but with the batch symbolic */
    const char *t = tmp_id(im), *B = x->dim[0] == BATCH ? "batch" : arena_printf(im->a, "%lld", (long long)x->dim[0]);
    long long C = x->dim[1], H = x->dim[2] + w->pad[0] + w->pad[1], W = x->dim[3] + w->pad[2] + w->pad[3];
    emit(im, "%s = reshape(broadcast_to(reshape(%s, [%s, %lld, %lld, %lld, 1]), [%s, %lld, %lld, %lld, %lld]), "
         "[%s, %lld, %lld, %lld])\n", t, src, B, H, W, C, B, H, W, C, (long long)m, B, H, W, (long long)O);
    src = t;
  }
  const char *K = arena_printf(im->a, "%s.kernel", L);
  float *k = arena_alloc(im->a, sizeof(float) * (size_t)(O * kh * kw));
  for (int64_t o = 0; o < O; o++)
    for (int64_t y = 0; y < kh * kw; y++) k[y * O + o] = wt->f[o * kh * kw + y];
  add_param(im, K, 3, (int64_t[]){kh, kw, O}, k, false);
  emit(im, "param %s : f32[%lld, %lld, %lld] = zeros\n", K, (long long)kh, (long long)kw, (long long)O);
  const char *acc = NULL;
  for (int64_t y = 0; y < kh; y++)
    for (int64_t z = 0; z < kw; z++) {
      int64_t r0 = y * w->dil[0], c0 = z * w->dil[1];
      const char *t = tmp_id(im);
      emit(im, "%s = %s%s%s[:, %lld:%lld:%lld, %lld:%lld:%lld, :] * %s[%lld, %lld]\n", t, acc ? acc : "",
           acc ? " + " : "", src, (long long)r0, (long long)(r0 + (r->dim[2] - 1) * w->stride[0] + 1),
           (long long)w->stride[0], (long long)c0, (long long)(c0 + (r->dim[3] - 1) * w->stride[1] + 1),
           (long long)w->stride[1], K, (long long)y, (long long)z);
      acc = t;
    }
  if (b) {
    const char *B = arena_printf(im->a, "%s.bias", L);
    add_param(im, B, 1, &O, b->f, false);
    emit(im, "param %s : f32[%lld] = zeros\n", B, (long long)O);
    define(im, r, true, "%s + %s", acc, B);
  } else {
    define(im, r, true, "%s", acc);
  }
}

/* Conv is conv2d.  gradc's conv2d has no groups: group > 1 is written
 * with what it has, a depthwise convolution (group = input channels:
 * MobileNet's, PyTorch's groups=in_channels) by depthwise() above, any
 * other grouping as one conv2d per group on its slice of the channels,
 * concatenated (ResNeXt's 32 groups: 32 convolutions). */
static void op_conv(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *wt = input(im, n, 1, true), *b = input(im, n, 2, false), *r = output(im, n);
  if (x->rank != 4) fail(im, "only 2-D convolutions (4-D NCHW inputs) are supported");
  if (!wt->is_const || wt->is_int || wt->rank != 4 || wt->param_written)
    fail(im, "the weight must be a 4-D float initializer");
  if (b && (!b->is_const || b->is_int || b->rank != 1 || b->dim[0] != wt->dim[0]))
    fail(im, "the bias must be a 1-D float initializer of %lld values", (long long)wt->dim[0]);
  int64_t O = wt->dim[0], I = wt->dim[1], kh = wt->dim[2], kw = wt->dim[3], G = attr_int(n, "group", 1);
  if (G < 1 || G > 4096 || x->dim[1] != I * G || O % G)
    fail(im, "group=%lld with a weight of %lld outputs and %lld inputs a group does not divide the input's %lld "
         "channels", (long long)G, (long long)O, (long long)I, (long long)x->dim[1]);
  OnnxWindow w;
  onnx_window_attrs(im, n, &w, (int64_t[]){kh, kw});
  onnx_window_out(im, x, &w, O, r);
  const char *L = onnx_layer_name(im, wt, "conv");
  wt->param_written = true;
  if (G == 1) {
    define(im, r, true, "%s", conv_call(im, nhwc(im, x), wt, b, 0, O, &w, L));
  } else if (I == 1) {
    depthwise(im, x, wt, b, r, &w, L);
  } else {
    if (G > 64) fail(im, "group=%lld: at most 64 groups of more than one channel", (long long)G);
    const char *in = nhwc(im, x), *parts[64];
    char list[1200] = "";
    for (int64_t g = 0; g < G; g++) {
      const char *slice = tmp_id(im), *Lg = new_id(im, arena_printf(im->a, "%s_g%lld", L, (long long)g), true);
      emit(im, "%s = %s[:, :, :, %lld:%lld]\n", slice, in, (long long)(g * I), (long long)((g + 1) * I));
      parts[g] = tmp_id(im);
      emit(im, "%s = %s\n", parts[g], conv_call(im, slice, wt, b, g * (O / G), O / G, &w, Lg));
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", g ? ", " : "", parts[g]);
    }
    define(im, r, true, "concat(%s, axis=3)", list);
  }
}

/* ConvTranspose without padding: gradc's conv2d_transpose with valid
 * padding computes (in - 1) * stride + kernel, ONNX's size when pads and
 * output_padding are 0. */
static void op_conv_transpose(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *wt = input(im, n, 1, true), *b = input(im, n, 2, false), *r = output(im, n);
  if (x->rank != 4) fail(im, "only 2-D transposed convolutions are supported");
  if (attr_int(n, "group", 1) != 1) fail(im, "grouped convolutions are not supported");
  if (!wt->is_const || wt->is_int || wt->rank != 4 || wt->param_written) fail(im, "the weight must be a 4-D float initializer");
  int64_t I = wt->dim[0], O = wt->dim[1], kh = wt->dim[2], kw = wt->dim[3];
  if (b && (!b->is_const || b->is_int || b->rank != 1 || b->dim[0] != O)) fail(im, "the bias must be a 1-D float initializer");
  if (x->dim[1] != I) fail(im, "the weight expects %lld input channels", (long long)I);
  if (x->dim[2] < 1 || x->dim[3] < 1) fail(im, "the image's height and width must be static");
  OnnxWindow w;
  onnx_window_attrs(im, n, &w, (int64_t[]){kh, kw});
  int64_t v[8];
  int c = attr_ints(im, n, "output_padding", v, 8);
  for (int k = 0; k < c; k++)
    if (v[k]) fail(im, "output_padding is not supported");
  if (attr(n, "output_shape")) fail(im, "output_shape is not supported");
  for (int k = 0; k < 4; k++)
    if (w.pad[k]) fail(im, "pads are not supported (gradc's conv2d_transpose pads as Keras does)");
  if (w.dil[0] != 1 || w.dil[1] != 1) fail(im, "dilations are not supported");
  if (kh < w.stride[0] || kw < w.stride[1]) fail(im, "a kernel smaller than its stride is not supported");
  r->rank = 4, r->dim[0] = x->dim[0], r->dim[1] = O;
  r->dim[2] = (x->dim[2] - 1) * w.stride[0] + kh, r->dim[3] = (x->dim[3] - 1) * w.stride[1] + kw;
  const char *L = onnx_layer_name(im, wt, "deconv");
  float *k = arena_alloc(im->a, sizeof(float) * (size_t)(O * I * kh * kw));
  for (int64_t i = 0; i < I; i++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t y = 0; y < kh; y++)
        for (int64_t z = 0; z < kw; z++)
          k[((y * kw + z) * O + o) * I + i] = wt->f[((i * O + o) * kh + y) * kw + z];
  add_param(im, arena_printf(im->a, "%s.kernel", L), 4, (int64_t[]){kh, kw, O, I}, k, false);
  if (b) add_param(im, arena_printf(im->a, "%s.bias", L), 1, &O, b->f, false);
  wt->param_written = true;
  define(im, r, true, "conv2d_transpose(%s, filters=%lld, kernel=[%lld, %lld], strides=[%lld, %lld], "
         "padding=valid, use_bias=%s, name=%s)", nhwc(im, x), (long long)O, (long long)kh, (long long)kw,
         (long long)w.stride[0], (long long)w.stride[1], b ? "true" : "false", L);
}

static void op_pool(Importer *im, const Onnx__NodeProto *n, bool max) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  if (n->n_output > 1 && n->output[1] && *n->output[1]) fail(im, "the Indices output is not supported");
  if (x->rank != 4) fail(im, "only 2-D pooling (4-D NCHW inputs) is supported");
  int64_t ks[8];
  if (attr_ints(im, n, "kernel_shape", ks, 8) != 2) fail(im, "kernel_shape must have 2 values");
  if (attr_int(n, "ceil_mode", 0)) fail(im, "ceil_mode=1 is not supported");
  OnnxWindow w;
  onnx_window_attrs(im, n, &w, ks);
  if (w.dil[0] != 1 || w.dil[1] != 1) fail(im, "dilated pooling is not supported");
  if (!max && (w.pad[0] || w.pad[1] || w.pad[2] || w.pad[3]))
    fail(im, "padded average pooling is not supported");
  onnx_window_out(im, x, &w, x->dim[1], r);
  define(im, r, true, "%s(%s, pool=[%lld, %lld], strides=[%lld, %lld], padding=[%lld, %lld, %lld, %lld])",
         max ? "maxpool2d" : "avgpool2d", nhwc(im, x), (long long)w.k[0], (long long)w.k[1],
         (long long)w.stride[0], (long long)w.stride[1], (long long)w.pad[0], (long long)w.pad[1],
         (long long)w.pad[2], (long long)w.pad[3]);
}

static void op_global_avgpool(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  if (x->rank != 4) fail(im, "only 4-D NCHW inputs are supported");
  r->rank = 4, r->dim[0] = x->dim[0], r->dim[1] = x->dim[1], r->dim[2] = r->dim[3] = 1;
  define(im, r, true, "reshape(global_avgpool2d(%s), [%s, 1, 1, %lld])", nhwc(im, x),
         x->dim[0] == BATCH ? "batch" : "-1", (long long)x->dim[1]);
}

static void op_batch_norm(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  Value *p[4];
  for (int k = 0; k < 4; k++) {
    p[k] = input(im, n, (size_t)k + 1, true);
    if (!p[k]->is_const || p[k]->is_int || p[k]->rank != 1 || p[k]->dim[0] != (x->rank > 1 ? x->dim[1] : -1) ||
        p[k]->param_written)
      fail(im, "scale, bias, mean and var must be 1-D float initializers of one value per channel");
  }
  if (x->rank != 4 && x->rank != 2) fail(im, "only [N, C] and [N, C, H, W] inputs are supported");
  /* training_mode=1 adds the updated running statistics as outputs;
   * gradc's batch_norm updates them itself, so they may not be used. */
  for (size_t k = 1; k < n->n_output; k++)
    if (n->output[k] && *n->output[k] && !attr_int(n, "training_mode", 0))
      fail(im, "the running statistics outputs are not supported");
  float eps = attr_float(n, "epsilon", 1e-5f), mom = attr_float(n, "momentum", 0.9f);
  const char *L = onnx_layer_name(im, p[0], "batch_norm");
  static const char *const part[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
  for (int k = 0; k < 4; k++) {
    add_param(im, arena_printf(im->a, "%s.%s", L, part[k]), 1, p[k]->dim, p[k]->f, k >= 2);
    p[k]->param_written = true;
  }
  copy_shape(r, x);
  /* ONNX's momentum is Keras': moving = moving * momentum + batch * (1 - momentum). */
  define(im, r, x->rank == 4, "batch_norm(%s, momentum=%.7g, epsilon=%.7g, name=%s)",
         x->rank == 4 ? nhwc(im, x) : nchw(im, x), (double)mom, (double)eps, L);
}

static void reshape_to(Importer *im, Value *x, Value *r, int rank, const int64_t *dim) {
  r->rank = rank;
  memcpy(r->dim, dim, sizeof(int64_t) * (size_t)rank);
  r->is_int = x->is_int;
  if (x->is_const && x->is_int) {        /* folded: the same integers */
    r->is_const = true, r->count = x->count, r->i = x->i;
    return;
  }
  /* At most one dimension is left to gradc (-1): the batch, if any. */
  int64_t lit[OX_RANK];
  bool minus = false;
  for (int k = 0; k < rank; k++) {
    lit[k] = dim[k];
    if (dim[k] == BATCH && !minus) lit[k] = -1, minus = true;
  }
  char l[300];
  list_text(lit, rank, l, sizeof l);
  define(im, r, false, "reshape(%s, %s)", nchw(im, x), l);
}

/* a * b for element counts (both >= 0), refused past 2^40 rather than
 * wrapped: dimensions come from the file. */
static int64_t mul(Importer *im, int64_t a, int64_t b) {
  if (a < 0 || b < 0 || (b && a > (INT64_C(1) << 40) / b)) fail(im, "a tensor of more than 2^40 elements");
  return a * b;
}

static void op_flatten(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int axis = axis_of(im, attr_int(n, "axis", 1), x->rank + 1);
  int64_t d[2] = {1, 1};
  for (int k = 0; k < x->rank; k++) {
    int64_t *t = &d[k >= axis];
    if (x->dim[k] == BATCH || *t == BATCH) *t = BATCH;
    else *t = mul(im, *t, x->dim[k]);
  }
  reshape_to(im, x, r, 2, d);
}

static void op_reshape(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *s = input(im, n, 1, true), *r = output(im, n);
  int64_t d[OX_RANK];
  int rank = const_ints(im, s, d, OX_RANK, "the shape");
  if (attr_int(n, "allowzero", 0)) fail(im, "allowzero=1 is not supported");
  int minus = -1;
  int64_t known = 1, total = 1;
  bool batch_in = false;
  for (int k = 0; k < x->rank; k++) {
    if (x->dim[k] == BATCH) batch_in = true;
    else total = mul(im, total, x->dim[k]);
  }
  for (int k = 0; k < rank; k++) {
    if (d[k] == 0) {
      if (k >= x->rank) fail(im, "shape entry %d is 0 but the input has rank %d", k, x->rank);
      d[k] = x->dim[k];
    }
    if (d[k] == -1) {
      if (minus >= 0) fail(im, "the shape has two -1 entries");
      minus = k;
    } else if (d[k] == BATCH) {
      if (!batch_in) fail(im, "the shape holds the batch size but the input has none");
    } else if (d[k] < 0) {
      fail(im, "shape entry %lld", (long long)d[k]);
    } else {
      known = mul(im, known, d[k]);
    }
  }
  bool batch_out = false;
  for (int k = 0; k < rank; k++) batch_out |= d[k] == BATCH;
  if (minus >= 0) {
    if (batch_in && !batch_out) d[minus] = BATCH;   /* carries the batch, if the rest divides evenly */
    else if (!known || total % known) fail(im, "cannot infer the -1 entry of the shape");
    else d[minus] = total / known;
    if (d[minus] == BATCH && (!known || total % known)) fail(im, "cannot infer the -1 entry of the shape");
    if (d[minus] == BATCH && total != known) fail(im, "reshapes that merge the batch with other dimensions are not supported");
  } else if (!batch_in && known != total) {
    fail(im, "cannot reshape %lld elements to %lld", (long long)total, (long long)known);
  }
  reshape_to(im, x, r, rank, d);
}

static void op_transpose(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int64_t p[OX_RANK];
  int c = attr_ints(im, n, "perm", p, OX_RANK);
  if (c < 0) {
    c = x->rank;
    for (int k = 0; k < c; k++) p[k] = c - 1 - k;
  }
  if (c != x->rank) fail(im, "perm has %d entries for rank %d", c, x->rank);
  bool seen[OX_RANK] = {0};
  for (int k = 0; k < c; k++) {
    if (p[k] < 0 || p[k] >= c || seen[p[k]]) fail(im, "perm is not a permutation");
    seen[p[k]] = true;
  }
  copy_shape(r, x);
  for (int k = 0; k < c; k++) r->dim[k] = x->dim[p[k]];
  char l[200];
  list_text(p, c, l, sizeof l);
  define(im, r, false, "transpose(%s, %s)", nchw(im, x), l);
}

static void op_concat(Importer *im, const Onnx__NodeProto *n) {
  if (n->n_input < 1 || n->n_input > 16) fail(im, "Concat of %zu inputs; 1 to 16 supported", n->n_input);
  Value *x0 = input(im, n, 0, true), *r = output(im, n);
  int axis = axis_of(im, attr_int(n, "axis", 0), x0->rank);
  bool all_nhwc = x0->rank == 4, all_int_const = true;
  copy_shape(r, x0);
  r->dim[axis] = 0;
  for (size_t k = 0; k < n->n_input; k++) {
    Value *x = input(im, n, k, true);
    if (x->rank != x0->rank) fail(im, "inputs of different ranks");
    all_nhwc &= x->nhwc;
    all_int_const &= x->is_const && x->is_int;
    if (x->dim[axis] == BATCH || r->dim[axis] == BATCH) r->dim[axis] = BATCH;
    else r->dim[axis] += x->dim[axis];
  }
  if (all_int_const && x0->rank == 1) {   /* a shape being assembled */
    r->is_const = true, r->is_int = true, r->count = r->dim[0];
    if (r->count > 64) fail(im, "a constant of more than 64 integers");
    r->i = arena_alloc(im->a, sizeof(int64_t) * 64);
    int64_t at = 0;
    for (size_t k = 0; k < n->n_input; k++) {
      Value *x = input(im, n, k, true);
      for (int64_t j = 0; j < x->count; j++) r->i[at++] = x->i[j];
    }
    return;
  }
  static const int to_nhwc[4] = {0, 3, 1, 2};
  char args[1200] = "";
  for (size_t k = 0; k < n->n_input; k++) {
    Value *x = input(im, n, k, true);
    size_t e = strlen(args);
    snprintf(args + e, sizeof args - e, "%s%s", k ? ", " : "", all_nhwc ? x->id : nchw(im, x));
  }
  define(im, r, all_nhwc, "concat(%s, axis=%d)", args, all_nhwc ? to_nhwc[axis] : axis);
}

/* Squeeze/Unsqueeze: axes from the second input (opset 13) or attribute. */
static int axes_of(Importer *im, const Onnx__NodeProto *n, int64_t *axes) {
  Value *a = input(im, n, 1, false);
  if (a) return const_ints(im, a, axes, OX_RANK, "axes");
  return attr_ints(im, n, "axes", axes, OX_RANK);
}

static void op_squeeze(Importer *im, const Onnx__NodeProto *n, bool un) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int64_t axes[OX_RANK];
  int na = axes_of(im, n, axes);
  int64_t d[OX_RANK];
  int rank = 0;
  if (un) {
    if (na < 1) fail(im, "Unsqueeze needs axes");
    int out = x->rank + na;
    if (out > OX_RANK) fail(im, "rank above %d", OX_RANK);
    bool ins[OX_RANK] = {0};
    for (int k = 0; k < na; k++) {
      int a = axis_of(im, axes[k], out);
      if (ins[a]) fail(im, "axis listed twice");
      ins[a] = true;
    }
    for (int k = 0, j = 0; k < out; k++) d[rank++] = ins[k] ? 1 : x->dim[j++];
  } else {
    bool drop[OX_RANK] = {0};
    for (int k = 0; k < na; k++) {
      int a = axis_of(im, axes[k], x->rank);
      if (x->dim[a] != 1) fail(im, "axis %d has size %lld, not 1", a, (long long)x->dim[a]);
      drop[a] = true;
    }
    for (int k = 0; k < x->rank; k++)
      if (!(na < 0 ? x->dim[k] == 1 : drop[k])) d[rank++] = x->dim[k];
  }
  reshape_to(im, x, r, rank, d);
}

static void op_reduce(Importer *im, const Onnx__NodeProto *n, const char *fn) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int64_t axes[OX_RANK];
  int na = axes_of(im, n, axes);
  bool keep = attr_int(n, "keepdims", 1) != 0;
  bool on[OX_RANK] = {0};
  if (na <= 0) {
    if (na == 0 && attr_int(n, "noop_with_empty_axes", 0)) {
      copy_shape(r, x);
      define(im, r, x->nhwc, "%s", x->nhwc ? x->id : nchw(im, x));
      return;
    }
    for (int k = 0; k < x->rank; k++) on[k] = true;
  }
  for (int k = 0; k < na; k++) on[axis_of(im, axes[k], x->rank)] = true;
  r->rank = 0;
  char l[100] = "[";
  for (int k = 0; k < x->rank; k++) {
    if (on[k]) snprintf(l + strlen(l), sizeof l - strlen(l), "%s%d", l[1] ? ", " : "", k);
    if (!on[k] || keep) r->dim[r->rank++] = on[k] ? 1 : x->dim[k];
  }
  strcat(l, "]");
  r->is_int = x->is_int;
  define(im, r, false, "%s(%s, axis=%s, keepdims=%s)", fn, nchw(im, x), l, keep ? "true" : "false");
}

static void op_softmax(Importer *im, const Onnx__NodeProto *n, const char *fn) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int axis = axis_of(im, attr_int(n, "axis", -1), x->rank);
  if (im->opset < 13 && axis != x->rank - 1) fail(im, "Softmax before opset 13 flattens; only the last axis is supported");
  copy_shape(r, x);
  define(im, r, false, "%s(%s, axis=%d)", fn, nchw(im, x), axis);
}

static void op_argmax(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int axis = axis_of(im, attr_int(n, "axis", 0), x->rank);
  bool keep = attr_int(n, "keepdims", 1) != 0;
  if (attr_int(n, "select_last_index", 0)) fail(im, "select_last_index=1 is not supported");
  r->rank = 0;
  for (int k = 0; k < x->rank; k++)
    if (k != axis || keep) r->dim[r->rank++] = k == axis ? 1 : x->dim[k];
  r->is_int = true;
  define(im, r, false, "argmax(%s, axis=%d, keepdims=%s)", nchw(im, x), axis, keep ? "true" : "false");
}

static void op_clip(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *lo = input(im, n, 1, false), *hi = input(im, n, 2, false), *r = output(im, n);
  float a = lo ? const_scalar(im, lo, "min") : attr_float(n, "min", -INFINITY);
  float b = hi ? const_scalar(im, hi, "max") : attr_float(n, "max", INFINITY);
  copy_shape(r, x);
  char s[120] = "";
  if (isfinite(a)) snprintf(s, sizeof s, ", min=%.9g", (double)a);
  if (isfinite(b)) snprintf(s + strlen(s), sizeof s - strlen(s), ", max=%.9g", (double)b);
  define(im, r, x->nhwc, "clip(%s%s)", x->nhwc ? x->id : nchw(im, x), s);
}

static void op_cast(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int64_t to = attr_int(n, "to", 0);
  bool to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  if (!to_int && to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    fail(im, "cast to ONNX data type %lld; gradc casts to float and int", (long long)to);
  copy_shape(r, x);
  r->is_int = to_int;
  if (x->is_const && x->is_int && to_int) {
    r->is_const = true, r->count = x->count, r->i = x->i;
    return;
  }
  define(im, r, x->nhwc, "cast(%s, dtype=%s)", x->nhwc ? x->id : nchw(im, x), to_int ? "i32" : "f32");
}

static void op_where(Importer *im, const Onnx__NodeProto *n) {
  Value *c = input(im, n, 0, true), *x = input(im, n, 1, true), *y = input(im, n, 2, true), *r = output(im, n);
  Value t = {0};
  broadcast(im, c, x, &t);
  broadcast(im, &t, y, r);
  r->is_int = x->is_int && y->is_int;
  define(im, r, false, "where(%s, %s, %s)", nchw(im, c), nchw(im, x), nchw(im, y));
}

/* Gather: a row lookup in a 2-D float table (an embedding), or an index
 * into a folded shape. */
static void op_gather(Importer *im, const Onnx__NodeProto *n) {
  Value *data = input(im, n, 0, true), *idx = input(im, n, 1, true), *r = output(im, n);
  int axis = axis_of(im, attr_int(n, "axis", 0), data->rank);
  if (data->is_const && data->is_int && idx->is_const && idx->is_int && data->rank == 1) {
    if (idx->count > 64) fail(im, "a constant of more than 64 integers");
    copy_shape(r, idx);
    r->is_const = true, r->count = idx->count;
    r->i = arena_alloc(im->a, sizeof(int64_t) * (size_t)(idx->count ? idx->count : 1));
    for (int64_t k = 0; k < idx->count; k++) {
      int64_t j = idx->i[k] < 0 ? idx->i[k] + data->count : idx->i[k];
      if (j < 0 || j >= data->count) fail(im, "index %lld is out of range", (long long)idx->i[k]);
      r->i[k] = data->i[j];
    }
    return;
  }
  if (!data->is_const || data->is_int || data->rank != 2 || axis != 0 || !idx->is_int)
    fail(im, "only embeddings are supported: rows (axis 0) of a 2-D float initializer by integer ids");
  if (idx->rank + 1 > OX_RANK) fail(im, "rank above %d", OX_RANK);
  copy_shape(r, idx);
  r->dim[r->rank++] = data->dim[1];
  r->is_int = false;
  define(im, r, false, "gather(%s, %s)", nchw(im, data), nchw(im, idx));
}

static void op_shape(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  if (attr(n, "start") || attr(n, "end")) fail(im, "start and end are not supported");
  r->rank = 1, r->dim[0] = x->rank, r->is_int = true, r->is_const = true, r->count = x->rank;
  r->i = arena_alloc(im->a, sizeof(int64_t) * OX_RANK);
  for (int k = 0; k < x->rank; k++) r->i[k] = x->dim[k];
}

static void op_constant(Importer *im, const Onnx__NodeProto *n) {
  Value *r = output(im, n);
  const Onnx__AttributeProto *a = attr(n, "value");
  if (a && a->t) {
    set_tensor(im, r, a->t);
  } else if ((a = attr(n, "value_float")) && a->has_f) {
    r->is_const = true, r->count = 1, r->f = arena_alloc(im->a, sizeof(float)), r->f[0] = a->f;
  } else if ((a = attr(n, "value_int")) && a->has_i) {
    r->is_const = true, r->is_int = true, r->count = 1, r->i = arena_alloc(im->a, sizeof(int64_t)), r->i[0] = a->i;
  } else if ((a = attr(n, "value_ints"))) {
    if (a->n_ints > 64) fail(im, "a constant of more than 64 integers");
    r->is_const = true, r->is_int = true, r->rank = 1, r->dim[0] = r->count = (int64_t)a->n_ints;
    r->i = arena_alloc(im->a, sizeof(int64_t) * (a->n_ints + 1));
    for (size_t k = 0; k < a->n_ints; k++) r->i[k] = a->ints[k];
  } else {
    fail(im, "only value, value_float, value_int and value_ints constants are supported");
  }
}

/* Resize by integer scales: nearest is upsample2d's repeat; linear is
 * upsample2d's bilinear, TF's half-pixel centres, which is ONNX's
 * half_pixel and PyTorch's pytorch_half_pixel (interpolate(...,
 * align_corners=False)) at integer scales, edges clamped alike.  The other
 * coordinate modes sample elsewhere: refused. */
static void op_resize(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *scales = input(im, n, 2, false), *sizes = input(im, n, 3, false);
  Value *r = output(im, n);
  bool linear = attr_is(n, "mode", "linear");
  if (!linear && !attr_is(n, "mode", "nearest") && !attr_is(n, "mode", NULL))
    fail(im, "only mode=nearest and mode=linear are supported");
  if (linear && !attr_is(n, "coordinate_transformation_mode", "half_pixel") &&
      !attr_is(n, "coordinate_transformation_mode", "pytorch_half_pixel"))
    fail(im, "mode=linear samples at half-pixel centres only (coordinate_transformation_mode half_pixel or "
         "pytorch_half_pixel: PyTorch's align_corners=False); align_corners and the other modes are not supported");
  if (!linear && (attr_is(n, "coordinate_transformation_mode", "align_corners") ||
                  attr_is(n, "coordinate_transformation_mode", "tf_crop_and_resize")))
    fail(im, "mode=nearest with coordinate_transformation_mode align_corners or tf_crop_and_resize is not supported");
  /* asymmetric samples at i / scale: a repeat only when rounded down */
  if (!linear && attr_is(n, "coordinate_transformation_mode", "asymmetric") && !attr_is(n, "nearest_mode", "floor"))
    fail(im, "mode=nearest with coordinate_transformation_mode asymmetric needs nearest_mode=floor (PyTorch's)");
  if (x->rank != 4) fail(im, "only 4-D NCHW inputs are supported");
  int64_t s[2];
  if (scales && scales->count == 4 && scales->is_const && !scales->is_int) {
    for (int k = 0; k < 2; k++) {
      float f = scales->f[2 + k];
      if (f < 1 || f > 64 || f != floorf(f)) fail(im, "only integer upsampling scales are supported");
      s[k] = (int64_t)f;
    }
    if (scales->f[0] != 1 || scales->f[1] != 1) fail(im, "batch and channels cannot be resized");
  } else if (sizes && sizes->is_const && sizes->is_int && sizes->count == 4) {
    for (int k = 0; k < 2; k++) {
      if (x->dim[2 + k] <= 0 || sizes->i[2 + k] % x->dim[2 + k]) fail(im, "only integer upsampling scales are supported");
      s[k] = sizes->i[2 + k] / x->dim[2 + k];
      if (s[k] < 1 || s[k] > 64) fail(im, "only upsampling by 1 to 64 is supported");
    }
  } else {
    fail(im, "scales or sizes must be constants of 4 values");
  }
  copy_shape(r, x);
  r->dim[2] *= s[0], r->dim[3] *= s[1];
  define(im, r, true, "upsample2d(%s, size=[%lld, %lld]%s)", nhwc(im, x), (long long)s[0], (long long)s[1],
         linear ? ", interpolation=bilinear" : "");
}

static void op_dropout(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *ratio = input(im, n, 1, false), *r = output(im, n);
  float rate = ratio ? const_scalar(im, ratio, "ratio") : attr_float(n, "ratio", 0.5f);
  if (n->n_output > 1 && n->output[1] && *n->output[1]) fail(im, "the mask output is not supported");
  copy_shape(r, x);
  if (!(rate >= 0 && rate < 1)) fail(im, "ratio %g is outside [0, 1)", (double)rate);
  const char *id = x->nhwc ? x->id : nchw(im, x);
  if (rate == 0) define(im, r, x->nhwc, "%s", id);
  else define(im, r, x->nhwc, "dropout(%s, %.9g)", id, (double)rate);
}

/* Slice: constant starts, ends, axes, steps, as ONNX clamps them, written
 * as gradc's x[b:e:s, ...] with non-negative bounds (an end before element
 * 0 of a negative step left out). */
static void op_slice(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n);
  int64_t st[OX_RANK], en[OX_RANK], ax[OX_RANK], sp[OX_RANK];
  int k = const_ints(im, input(im, n, 1, true), st, OX_RANK, "starts");
  if (const_ints(im, input(im, n, 2, true), en, OX_RANK, "ends") != k) fail(im, "starts and ends differ in length");
  Value *av = input(im, n, 3, false), *sv = input(im, n, 4, false);
  if (av && const_ints(im, av, ax, OX_RANK, "axes") != k) fail(im, "axes and starts differ in length");
  if (sv && const_ints(im, sv, sp, OX_RANK, "steps") != k) fail(im, "steps and starts differ in length");
  int64_t b[OX_RANK], e[OX_RANK], step[OX_RANK];
  for (int i = 0; i < x->rank; i++) b[i] = 0, e[i] = x->dim[i], step[i] = 1;
  bool seen[OX_RANK] = {0};
  for (int j = 0; j < k; j++) {
    int a = axis_of(im, av ? ax[j] : j, x->rank);
    if (seen[a]) fail(im, "axis %d is sliced twice", a);
    seen[a] = true;
    int64_t d = x->dim[a], s1 = sv ? sp[j] : 1, lo = st[j], hi = en[j];
    if (s1 == 0) fail(im, "a step of 0");
    if (d == BATCH) {
      if (lo != 0 || hi < (INT64_C(1) << 31) || s1 != 1) fail(im, "the batch dimension can only be taken whole");
      continue;
    }
    if (lo < 0) lo += d;
    if (hi < 0 && hi > INT64_MIN / 2) hi += d;
    if (s1 > 0) lo = lo < 0 ? 0 : lo > d ? d : lo, hi = hi < 0 ? 0 : hi > d ? d : hi;
    else lo = lo < 0 ? 0 : lo > d - 1 ? d - 1 : lo, hi = hi < -1 ? -1 : hi > d - 1 ? d - 1 : hi;
    b[a] = lo, e[a] = hi, step[a] = s1;
  }
  copy_shape(r, x);
  char idx[800] = "";
  for (int i = 0; i < x->rank; i++) {
    char part[80];
    if (x->dim[i] == BATCH) {
      snprintf(part, sizeof part, ":");
    } else {
      int64_t len = step[i] > 0 ? (e[i] - b[i] + step[i] - 1) / step[i] : (b[i] - e[i] - step[i] - 1) / -step[i];
      if (len <= 0) fail(im, "the slice of axis %d is empty", i);
      r->dim[i] = len;
      if (e[i] < 0) snprintf(part, sizeof part, "%lld::%lld", (long long)b[i], (long long)step[i]);
      else snprintf(part, sizeof part, "%lld:%lld:%lld", (long long)b[i], (long long)e[i], (long long)step[i]);
    }
    snprintf(idx + strlen(idx), sizeof idx - strlen(idx), "%s%s", i ? ", " : "", part);
  }
  if (!x->rank) fail(im, "a slice of a scalar");
  define(im, r, false, "%s[%s]", nchw(im, x), idx);
}

/* Expand: numpy's broadcast of x and a constant shape (gradc export
 * writes broadcast_to so, 1 where the batch is), broadcast_to. */
static void op_expand(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *r = output(im, n), to = {0};
  to.rank = const_ints(im, input(im, n, 1, true), to.dim, OX_RANK, "the shape");
  for (int k = 0; k < to.rank; k++)
    if (to.dim[k] < 0 && to.dim[k] != BATCH) fail(im, "shape entry %lld", (long long)to.dim[k]);
  broadcast(im, x, &to, r);
  r->is_int = x->is_int;
  bool same = r->rank == x->rank && !memcmp(r->dim, x->dim, sizeof(int64_t) * (size_t)r->rank);
  if (same) {
    define(im, r, x->nhwc, "%s", x->nhwc ? x->id : nchw(im, x));
    return;
  }
  char l[300];
  list_text(r->dim, r->rank, l, sizeof l);
  define(im, r, false, "broadcast_to(%s, %s)", nchw(im, x), l);
}

/* Pad with zeros (mode constant, value 0): gradc's pad. */
static void op_pad(Importer *im, const Onnx__NodeProto *n) {
  Value *x = input(im, n, 0, true), *pv = input(im, n, 1, true), *cv = input(im, n, 2, false), *r = output(im, n);
  if (input(im, n, 3, false)) fail(im, "the axes input is not supported");
  if (!attr_is(n, "mode", "constant") && !attr_is(n, "mode", NULL)) fail(im, "only mode=constant is supported");
  if (cv && const_scalar(im, cv, "constant_value") != 0) fail(im, "only padding with zeros is supported");
  int64_t p[2 * OX_RANK];
  if (const_ints(im, pv, p, 2 * OX_RANK, "pads") != 2 * x->rank) fail(im, "pads must have 2 values per axis");
  copy_shape(r, x);
  char l[600] = "[";
  bool any = false;
  for (int k = 0; k < x->rank; k++) {
    int64_t b = p[k], e = p[k + x->rank];
    if (b < 0 || e < 0 || b > 4096 || e > 4096) fail(im, "pads must be 0 to 4096");
    if ((b || e) && x->dim[k] == BATCH) fail(im, "the batch dimension cannot be padded");
    if (b || e) r->dim[k] += b + e, any = true;
    snprintf(l + strlen(l), sizeof l - strlen(l), "%s[%lld, %lld]", k ? ", " : "", (long long)b, (long long)e);
  }
  strcat(l, "]");
  const char *id = x->nhwc ? x->id : nchw(im, x);
  if (!any) {
    define(im, r, x->nhwc, "%s", id);
    return;
  }
  define(im, r, false, "pad(%s, %s)", nchw(im, x), l);
}

typedef struct OpRow {
  const char *name;
  void (*fn)(Importer *, const Onnx__NodeProto *, const char *);
  const char *arg;
} OpRow;

#define WRAP(f, call) static void f(Importer *im, const Onnx__NodeProto *n, const char *s) { (void)s; call; }
WRAP(w_matmul, op_gemm(im, n, false))
WRAP(w_gemm, op_gemm(im, n, true))
WRAP(w_conv, op_conv(im, n))
WRAP(w_convt, op_conv_transpose(im, n))
WRAP(w_maxpool, op_pool(im, n, true))
WRAP(w_avgpool, op_pool(im, n, false))
WRAP(w_gap, op_global_avgpool(im, n))
WRAP(w_bn, op_batch_norm(im, n))
WRAP(w_flatten, op_flatten(im, n))
WRAP(w_reshape, op_reshape(im, n))
WRAP(w_transpose, op_transpose(im, n))
WRAP(w_concat, op_concat(im, n))
WRAP(w_squeeze, op_squeeze(im, n, false))
WRAP(w_unsqueeze, op_squeeze(im, n, true))
WRAP(w_argmax, op_argmax(im, n))
WRAP(w_clip, op_clip(im, n))
WRAP(w_cast, op_cast(im, n))
WRAP(w_where, op_where(im, n))
WRAP(w_gather, op_gather(im, n))
WRAP(w_shape, op_shape(im, n))
WRAP(w_constant, op_constant(im, n))
WRAP(w_resize, op_resize(im, n))
WRAP(w_dropout, op_dropout(im, n))
WRAP(w_slice, op_slice(im, n))
WRAP(w_pad, op_pad(im, n))
WRAP(w_expand, op_expand(im, n))
static void w_unary(Importer *im, const Onnx__NodeProto *n, const char *s) { op_unary(im, n, s); }
static void w_sym(Importer *im, const Onnx__NodeProto *n, const char *s) { op_binary(im, n, s, NULL); }
static void w_fn2(Importer *im, const Onnx__NodeProto *n, const char *s) { op_binary(im, n, NULL, s); }
/* Comparisons give bool, which Where takes. */
static void w_compare(Importer *im, const Onnx__NodeProto *n, const char *s) {
  op_binary(im, n, s, NULL);
  im->vals[im->nvals - 1]->is_int = false;
}
static void w_reduce(Importer *im, const Onnx__NodeProto *n, const char *s) { op_reduce(im, n, s); }
static void w_softmax(Importer *im, const Onnx__NodeProto *n, const char *s) { op_softmax(im, n, s); }
static void w_leaky(Importer *im, const Onnx__NodeProto *n, const char *s) {
  (void)s;
  Value *x = input(im, n, 0, true), *r = output(im, n);
  copy_shape(r, x);
  define(im, r, x->nhwc, "leaky_relu(%s, alpha=%.7g)", x->nhwc ? x->id : nchw(im, x),
         (double)attr_float(n, "alpha", 0.01f));
}
static void w_identity(Importer *im, const Onnx__NodeProto *n, const char *s) {
  (void)s;
  Value *x = input(im, n, 0, true), *r = output(im, n);
  if (x->is_const) {
    *r = *x, r->name = arena_strdup(im->a, n->output[0]), r->id = NULL, r->other = NULL;
    return;
  }
  copy_shape(r, x);
  define(im, r, x->nhwc, "%s", x->nhwc ? x->id : nchw(im, x));
}

/* The operators gradc has, in ONNX's names. */
static const OpRow ops[] = {
    {"MatMul", w_matmul, NULL}, {"Gemm", w_gemm, NULL},
    {"Add", w_sym, "+"}, {"Sub", w_sym, "-"}, {"Mul", w_sym, "*"}, {"Div", w_sym, "/"}, {"Pow", w_fn2, "pow"},
    {"Neg", w_unary, "neg"}, {"Abs", w_unary, "abs"}, {"Sqrt", w_unary, "sqrt"}, {"Exp", w_unary, "exp"},
    {"Log", w_unary, "log"}, {"Relu", w_unary, "relu"}, {"Sigmoid", w_unary, "sigmoid"}, {"Tanh", w_unary, "tanh"},
    {"LeakyRelu", w_leaky, NULL}, {"Softmax", w_softmax, "softmax"}, {"LogSoftmax", w_softmax, "log_softmax"},
    {"ReduceSum", w_reduce, "sum"}, {"ReduceMean", w_reduce, "mean"}, {"ReduceMax", w_reduce, "max"},
    {"ReduceMin", w_reduce, "min"}, {"ArgMax", w_argmax, NULL}, {"Conv", w_conv, NULL},
    {"ConvTranspose", w_convt, NULL}, {"MaxPool", w_maxpool, NULL}, {"AveragePool", w_avgpool, NULL},
    {"GlobalAveragePool", w_gap, NULL}, {"BatchNormalization", w_bn, NULL}, {"Dropout", w_dropout, NULL},
    {"Flatten", w_flatten, NULL}, {"Reshape", w_reshape, NULL}, {"Transpose", w_transpose, NULL},
    {"Concat", w_concat, NULL}, {"Squeeze", w_squeeze, NULL}, {"Unsqueeze", w_unsqueeze, NULL},
    {"Gather", w_gather, NULL}, {"Shape", w_shape, NULL}, {"Constant", w_constant, NULL}, {"Clip", w_clip, NULL},
    {"Where", w_where, NULL}, {"Cast", w_cast, NULL}, {"Identity", w_identity, NULL}, {"Resize", w_resize, NULL},
    {"Slice", w_slice, NULL}, {"Pad", w_pad, NULL}, {"Expand", w_expand, NULL}, {"Max", w_fn2, "maximum"}, {"Min", w_fn2, "minimum"},
    {"Softplus", w_unary, "softplus"}, {"Erf", w_unary, "erf"}, {"Equal", w_compare, "=="}, {"Less", w_compare, "<"},
    {"LessOrEqual", w_compare, "<="}, {"Greater", w_compare, ">"}, {"GreaterOrEqual", w_compare, ">="},
};

/* ---------------------------------------------------------- the graph */

static void graph_input(Importer *im, const Onnx__ValueInfoProto *vi) {
  if (!vi || !vi->name) fail(im, "a graph input without a name");
  if (find(im, vi->name)) return;             /* an initializer listed as an input (IR < 4) */
  Value *v = new_value(im, vi->name);
  const Onnx__TypeProto *t = vi->type;
  if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type || !t->tensor_type->shape)
    fail(im, "input '%.100s' is not a tensor of known rank", vi->name);
  int32_t et = t->tensor_type->elem_type;
  if (et == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || et == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) v->is_int = true;
  else if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
    fail(im, "input '%.100s' has ONNX data type %d; gradc takes float and integer inputs", vi->name, et);
  const Onnx__TensorShapeProto *s = t->tensor_type->shape;
  if (s->n_dim > OX_RANK) fail(im, "input '%.100s' has rank %zu; at most %d", vi->name, s->n_dim, OX_RANK);
  v->rank = (int)s->n_dim;
  for (int k = 0; k < v->rank; k++) {
    const Onnx__TensorShapeProto__Dimension *d = s->dim[k];
    if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 1 &&
        d->dim_value <= (INT64_C(1) << 31)) {
      v->dim[k] = d->dim_value;
    } else if (k == 0) {
      v->dim[k] = BATCH;
    } else {
      fail(im, "input '%.100s': dimension %d is symbolic or invalid; only the first (the batch) may be", vi->name, k);
    }
  }
  char d[200];
  dims_text(v, d, sizeof d);
  v->id = new_id(im, vi->name, false);
  emit(im, "input %s : %s%s\n", v->id, v->is_int ? "i32" : "f32", d);
}

static void translate(Importer *im, const Onnx__ModelProto *m, const OnnxImportOptions *o) {
  if (!m->graph) fail(im, "the model has no graph");
  for (size_t k = 0; k < m->n_opset_import; k++) {
    const Onnx__OperatorSetIdProto *op = m->opset_import[k];
    if (op && (!op->domain || !*op->domain || !strcmp(op->domain, "ai.onnx")) && op->has_version)
      im->opset = (int)(op->version > 1000 ? 1000 : op->version < 0 ? 0 : op->version);
  }
  if (im->opset < 13 || im->opset > 17)
    fail(im, "opset %d; gradc imports opsets 13 to 17 (torch.onnx.export(..., opset_version=17))", im->opset);
  const Onnx__GraphProto *g = im->graph = m->graph;
  emit(im, "# imported from %s (opset %d%s%s)\n", im->file, im->opset, m->producer_name ? ", " : "",
       m->producer_name ? m->producer_name : "");
  for (size_t k = 0; k < g->n_initializer; k++) {
    if (!g->initializer[k] || !g->initializer[k]->name) fail(im, "an initializer without a name");
    Value *v = new_value(im, g->initializer[k]->name);
    set_tensor(im, v, g->initializer[k]);
    v->is_init = true;
  }
  if (g->n_sparse_initializer) fail(im, "sparse initializers are not supported");
  if (o && o->loss) reserve(im, o->label ? o->label : "y");   /* the label input appended below */
  for (size_t k = 0; k < g->n_input; k++) graph_input(im, g->input[k]);
  for (size_t k = 0; k < g->n_node; k++) {
    const Onnx__NodeProto *n = g->node[k];
    if (!n) continue;
    im->node = n;
    const OpRow *row = NULL;
    for (size_t j = 0; j < sizeof ops / sizeof *ops && n->op_type; j++)
      if (!strcmp(ops[j].name, n->op_type)) row = &ops[j];
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) row = NULL;
    if (!row)
      fail(im, "operator '%.60s%s%.60s' is not supported by gradc (gradc imports: MatMul, Gemm, Add, Sub, "
           "Mul, Div, Pow, Neg, Abs, Sqrt, Exp, Log, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, "
           "ReduceSum/Mean/Max/Min, ArgMax, Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, "
           "BatchNormalization, Dropout, Flatten, Reshape, Transpose, Concat, Squeeze, Unsqueeze, Gather, "
           "Shape, Constant, Clip, Where, Cast, Identity, Resize, Slice, Pad, Expand, Max, Min, Softplus, Erf, Equal, Less, LessOrEqual, Greater, "
           "GreaterOrEqual)",
           n->domain && *n->domain ? n->domain : "", n->domain && *n->domain ? "." : "",
           n->op_type ? n->op_type : "(none)");
    for (size_t j = 1; j < n->n_output; j++)
      if (n->output[j] && *n->output[j] && strcmp(n->op_type, "Dropout") && strcmp(n->op_type, "MaxPool") &&
          strcmp(n->op_type, "BatchNormalization"))
        fail(im, "nodes with several outputs are not supported");
    row->fn(im, n, row->arg);
  }
  im->node = NULL;
  if (g->n_output < 1) fail(im, "the graph has no output");
  const char *first = NULL;
  Value *first_v = NULL;
  for (size_t k = 0; k < g->n_output; k++) {
    if (!g->output[k] || !g->output[k]->name) fail(im, "a graph output without a name");
    Value *v = find(im, g->output[k]->name);
    if (!v) fail(im, "output '%.100s' is computed by no node", g->output[k]->name);
    const char *name = v->id;
    if (v->is_output || !v->id || v->is_const) {   /* not written as an output yet */
      const char *id = nchw(im, v);
      name = new_id(im, g->output[k]->name, false);
      emit(im, "output %s = %s\n", name, id);
      v->is_output = false;
    }
    if (!first) first = name, first_v = v;
  }
  if (o && o->loss) {
    const char *label = o->label ? o->label : "y";
    if (!strcmp(o->loss, "softmax_cross_entropy")) {
      if (first_v->rank != 2) fail(im, "softmax_cross_entropy needs a [batch, classes] output; '%s' has rank %d", first, first_v->rank);
      emit(im, "input %s : i32[%s]\n", label, first_v->dim[0] == BATCH ? "batch" : "1");
      emit(im, "loss = mean(softmax_cross_entropy(%s, %s))\n", first, label);
      emit(im, "metric accuracy = mean(argmax(%s, axis=-1) == %s)\n", first, label);
    } else if (!strcmp(o->loss, "mse")) {
      char d[200];
      dims_text(first_v, d, sizeof d);
      emit(im, "input %s : f32%s\n", label, d);
      emit(im, "loss = mse(%s, %s)\n", label, first);
    } else {
      snprintf(im->out->error, sizeof im->out->error, "%s: unknown loss '%s'; losses: softmax_cross_entropy, mse",
               im->file, o->loss);
      longjmp(im->fail, 1);
    }
    const char *opt = o->optimizer ? o->optimizer : "sgd(lr=0.01)";
    emit(im, "train loss with %s%s\n", opt, strchr(opt, '(') ? "" : "()");
  }
}

bool onnx_is_onnx_path(const char *path) {
  size_t n = path ? strlen(path) : 0;
  return n > 5 && !strcmp(path + n - 5, ".onnx");
}

bool onnx_import(Arena *a, const char *file, const void *buf, size_t len, const OnnxImportOptions *o,
                 OnnxImport *out) {
  memset(out, 0, sizeof *out);
  Importer *im = calloc(1, sizeof *im);
  if (!im) {
    snprintf(out->error, sizeof out->error, "%s: out of memory", file);
    return false;
  }
  im->a = a, im->file = file, im->out = out;
  Onnx__ModelProto *volatile m = NULL;
  bool ok = false;
  if (!setjmp(im->fail)) {
    m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) fail(im, "not an ONNX model: the protobuf does not parse as a ModelProto");
    translate(im, m, o);
    out->text = arena_strndup(a, im->text, im->len);
    out->len = im->len;
    out->params = arena_alloc(a, sizeof *out->params * (size_t)(im->nparams + 1));
    if (im->nparams) memcpy(out->params, im->params, sizeof *out->params * (size_t)im->nparams);
    out->nparams = im->nparams;
    out->opset = im->opset;
    ok = true;
  }
  if (m) onnx__model_proto__free_unpacked(m, NULL);
  free(im->text);
  free(im->vals);
  free(im->params);
  free(im->ids);
  free(im);
  return ok;
}
