/*
 * onnx_read.c - the importer's values and the text it writes: the
 * protobuf's tensors (decoded into floats or integers, every count checked
 * against the dimensions) and attributes, the values of the graph as the
 * translation tracks them (shape in ONNX order, the batch as BATCH, the
 * layout each is stored in, constant contents), the identifiers of the
 * model text and the text itself.  Values keep their ONNX shape; one made
 * by a window is stored NHWC and seen from elsewhere through one transpose
 * back (ox_nchw), written once per value.  Nothing here knows an operator.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

void ox_fail(Importer *im, const char *fmt, ...) {
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
  if (!q) ox_fail(im, "out of memory");
  *cap = n;
  return q;
}

/* ------------------------------------------------------------ the text */

void ox_emit(Importer *im, const char *fmt, ...) {
  va_list ap;
  if (!im->text) {           /* text + len must point into a buffer */
    if (!(im->text = malloc(im->cap = 4096))) ox_fail(im, "out of memory");
  }
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(im->text + im->len, im->cap - im->len, fmt, ap);
    va_end(ap);
    if (n < 0) ox_fail(im, "cannot format the model text");
    if ((size_t)n < im->cap - im->len) {
      im->len += (size_t)n;
      return;
    }
    size_t cap = im->cap * 2 + (size_t)n + 256;
    char *t = realloc(im->text, cap);
    if (!t) ox_fail(im, "out of memory");
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
const char *ox_new_id(Importer *im, const char *name, bool keep_dots) {
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
const char *ox_reserve(Importer *im, const char *name) {
  if (im->nids == im->capids) im->ids = grow(im, im->ids, &im->capids, sizeof *im->ids);
  return im->ids[im->nids++] = name;
}

const char *ox_tmp_id(Importer *im) {
  char b[32];
  snprintf(b, sizeof b, "t%d", ++im->tmp);
  return ox_new_id(im, b, false);
}

void ox_dims_text(const Value *v, char *buf, size_t size) {
  size_t n = 0;
  buf[n++] = '[';
  for (int k = 0; k < v->rank && n + 24 < size; k++)
    n += (size_t)snprintf(buf + n, size - n, "%s", k ? ", " : ""),
    n += v->dim[k] == BATCH ? (size_t)snprintf(buf + n, size - n, "batch")
                            : (size_t)snprintf(buf + n, size - n, "%lld", (long long)v->dim[k]);
  snprintf(buf + n, size - n, "]");
}

/* ----------------------------------------------------------- the values */

Value *ox_find(Importer *im, const char *name) {
  for (int i = im->nvals - 1; i >= 0; i--)
    if (!strcmp(im->vals[i]->name, name)) return im->vals[i];
  return NULL;
}

Value *ox_new_value(Importer *im, const char *name) {
  if (!name) name = "";
  Value *v = arena_alloc(im->a, sizeof *v);
  v->name = arena_strdup(im->a, name);
  if (im->nvals == im->capvals) im->vals = grow(im, im->vals, &im->capvals, sizeof *im->vals);
  return im->vals[im->nvals++] = v;
}

static int64_t count_of(Importer *im, int rank, const int64_t *dim) {
  int64_t n = 1;
  for (int k = 0; k < rank; k++) {
    if (dim[k] < 0) ox_fail(im, "a tensor dimension is %lld", (long long)dim[k]);
    if (dim[k] && n > (INT64_C(1) << 34) / dim[k]) ox_fail(im, "a tensor of more than 2^34 elements");
    n *= dim[k];
  }
  return n;
}

/* An initializer or Constant's tensor as a constant value. */
void ox_set_tensor(Importer *im, Value *v, const Onnx__TensorProto *t) {
  if (t->n_dims > OX_RANK) ox_fail(im, "tensor '%.100s' has rank %zu; at most %d", v->name, t->n_dims, OX_RANK);
  v->rank = (int)t->n_dims;
  for (int k = 0; k < v->rank; k++) v->dim[k] = t->dims[k];
  int64_t n = v->count = count_of(im, v->rank, v->dim);
  v->is_const = true;
  if (t->n_external_data || (t->has_data_location && t->data_location))
    ox_fail(im, "tensor '%.100s' keeps its data in an external file, which gradc does not read", v->name);
  const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
  size_t rawlen = t->has_raw_data ? t->raw_data.len : 0;
  switch (t->data_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
    bool dbl = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    size_t have = raw ? rawlen / (dbl ? 8 : 4) : dbl ? t->n_double_data : t->n_float_data;
    if ((raw && rawlen != (size_t)n * (dbl ? 8 : 4)) || (int64_t)have != n)
      ox_fail(im, "tensor '%.100s' has %zu values for its %lld elements", v->name, have, (long long)n);
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
      ox_fail(im, "tensor '%.100s' has %zu values for its %lld elements", v->name, have, (long long)n);
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
    ox_fail(im, "tensor '%.100s' has ONNX data type %d; gradc reads float, double, int32, int64 and bool",
         v->name, t->data_type);
  }
}

Value *ox_input(Importer *im, const Onnx__NodeProto *n, size_t k, bool required) {
  if (k >= n->n_input || !n->input[k] || !*n->input[k]) {
    if (required) ox_fail(im, "input %zu is missing", k + 1);
    return NULL;
  }
  Value *v = ox_find(im, n->input[k]);
  if (!v) ox_fail(im, "input '%.100s' is not defined before the node", n->input[k]);
  return v;
}

Value *ox_output(Importer *im, const Onnx__NodeProto *n) {
  if (n->n_output < 1 || !n->output[0] || !*n->output[0]) ox_fail(im, "the node has no output");
  Value *v = ox_new_value(im, n->output[0]);
  for (size_t k = 0; k < im->graph->n_output; k++)
    v->is_output |= im->graph->output[k] && im->graph->output[k]->name && !strcmp(im->graph->output[k]->name, v->name);
  return v;
}

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t k = 0; k < n->n_attribute; k++)
    if (n->attribute[k] && n->attribute[k]->name && !strcmp(n->attribute[k]->name, name)) return n->attribute[k];
  return NULL;
}

int64_t ox_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_i ? a->i : def;
}

float ox_attr_float(const Onnx__NodeProto *n, const char *name, float def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_f ? a->f : def;
}

/* An ints attribute into out[max]; its count, or -1 when absent. */
int ox_attr_ints(Importer *im, const Onnx__NodeProto *n, const char *name, int64_t *out, int max) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a) return -1;
  if (a->n_ints > (size_t)max) ox_fail(im, "attribute %s has %zu values; at most %d", name, a->n_ints, max);
  for (size_t k = 0; k < a->n_ints; k++) out[k] = a->ints[k];
  return (int)a->n_ints;
}

bool ox_attr_is(const Onnx__NodeProto *n, const char *name, const char *want) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || !a->has_s) return want == NULL;
  return want && a->s.len == strlen(want) && !memcmp(a->s.data, want, a->s.len);
}

/* An integer constant operand (axes, shapes, pads) into out[max]. */
int ox_const_ints(Importer *im, const Value *v, int64_t *out, int max, const char *what) {
  if (!v->is_const || !v->is_int)
    ox_fail(im, "%s must be a constant integer tensor (an initializer or Constant), not a computed value", what);
  if (v->count > max) ox_fail(im, "%s has %lld values; at most %d", what, (long long)v->count, max);
  for (int64_t k = 0; k < v->count; k++) out[k] = v->i[k];
  return (int)v->count;
}

float ox_const_scalar(Importer *im, const Value *v, const char *what) {
  if (!v->is_const || v->count != 1) ox_fail(im, "%s must be a constant scalar", what);
  return v->is_int ? (float)v->i[0] : v->f[0];
}

int ox_axis_of(Importer *im, int64_t a, int rank) {
  if (a < -rank || a >= (rank ? rank : 1)) ox_fail(im, "axis %lld is out of range for rank %d", (long long)a, rank);
  return (int)(a < 0 ? a + rank : a);
}

/* The parameter declaration of a float constant (initializer), in ONNX
 * layout, written once. */
void ox_add_param(Importer *im, const char *name, int rank, const int64_t *dim, const float *data, bool state) {
  if (im->nparams == im->capparams) im->params = grow(im, im->params, &im->capparams, sizeof *im->params);
  if (!id_used(im, name)) ox_reserve(im, name);
  OnnxParam *p = &im->params[im->nparams++];
  *p = (OnnxParam){.name = name, .rank = rank, .data = data, .state = state};
  for (int k = 0; k < rank; k++) p->dims[k] = dim[k];
}

/* The identifier of v in NCHW (ONNX) layout, writing a transpose, a param
 * or a const the first time one is needed. */
const char *ox_nchw(Importer *im, Value *v) {
  if (v->id && !v->nhwc) return v->id;
  if (v->nhwc) {
    if (!v->other) {
      v->other = ox_tmp_id(im);
      ox_emit(im, "%s = transpose(%s, [0, 3, 1, 2])\n", v->other, v->id);
    }
    return v->other;
  }
  if (!v->is_const) ox_fail(im, "value '%.100s' is used but never computed", v->name);
  char d[200];
  ox_dims_text(v, d, sizeof d);
  if (v->count == 1 && v->rank == 0) {
    v->id = ox_new_id(im, v->name, false);
    if (v->is_int) ox_emit(im, "const %s : i32[] = %lld\n", v->id, (long long)v->i[0]);
    else ox_emit(im, "const %s : f32[] = %.9g\n", v->id, (double)v->f[0]);
    return v->id;
  }
  if (v->is_int) ox_fail(im, "integer tensor '%.100s' is used as a value; gradc takes integer constants only as shapes and axes", v->name);
  v->id = ox_new_id(im, v->name, true);
  v->param_written = true;
  ox_emit(im, "param %s : f32%s = zeros\n", v->id, d);
  ox_add_param(im, v->id, v->rank, v->dim, v->f, false);
  return v->id;
}

const char *ox_nhwc(Importer *im, Value *v) {
  if (v->nhwc) return v->id;
  if (v->rank != 4) ox_fail(im, "expected a 4-D NCHW tensor, '%.100s' has rank %d", v->name, v->rank);
  if (!v->other) {
    const char *x = ox_nchw(im, v);
    v->other = ox_tmp_id(im);
    ox_emit(im, "%s = transpose(%s, [0, 2, 3, 1])\n", v->other, x);
  }
  return v->other;
}

/* Binds v to expr (in the layout the flag says). */
void ox_define(Importer *im, Value *v, bool is_nhwc, const char *fmt, ...) {
  char expr[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(expr, sizeof expr, fmt, ap);
  va_end(ap);
  v->id = ox_new_id(im, v->name, false);
  v->nhwc = is_nhwc;
  bool out = v->is_output && !is_nhwc;
  ox_emit(im, "%s%s = %s\n", out ? "output " : "", v->id, expr);
  v->is_output &= !out;      /* written */
}

void ox_copy_shape(Value *dst, const Value *src) {
  dst->rank = src->rank;
  memcpy(dst->dim, src->dim, sizeof dst->dim);
  dst->is_int = src->is_int;
}

void ox_list_text(const int64_t *x, int n, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < n && k + 24 < size; i++)
    k += x[i] == BATCH ? (size_t)snprintf(buf + k, size - k, "%sbatch", i ? ", " : "")
                       : (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)x[i]);
  snprintf(buf + k, size - k, "]");
}

/* Broadcast shape of two operands (numpy rules, as ONNX's). */
void ox_broadcast(Importer *im, const Value *x, const Value *y, Value *r) {
  int rank = x->rank > y->rank ? x->rank : y->rank;
  r->rank = rank;
  for (int k = 0; k < rank; k++) {
    int kx = k - (rank - x->rank), ky = k - (rank - y->rank);
    int64_t a = kx >= 0 ? x->dim[kx] : 1, b = ky >= 0 ? y->dim[ky] : 1;
    if (a != b && a != 1 && b != 1) ox_fail(im, "operands of shapes that do not broadcast");
    r->dim[k] = a == 1 ? b : a;
  }
}

