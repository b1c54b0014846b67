/*
 * onnx_export.c - a parsed graph as an ONNX ModelProto, opset 17.
 *
 * Input: the graph at the parse stage (before autodiff), whose outputs are
 * walked back to the inputs and parameters in inference mode: of each
 * train_select only the second operand (forward's), so dropout is off and
 * batch norm reads its moving statistics, and nothing of the loss, the
 * metrics or the state updates is written.  Each gradc op becomes the
 * ONNX op of the same meaning, named after the value it computes (the
 * model file's names where it has them); parameters and state become
 * initializers with the values the caller supplies.
 *
 * Layout.  gradc's images are NHWC and ONNX's windows NCHW: a convolution
 * (im2col, a matrix product with the kernel read as [kh*kw*cin, cout], and
 * the reshape back, as layers.c builds it) is recognised and written as
 * one Conv between two Transposes, its kernel as an initializer in ONNX's
 * [cout, cin, kh, kw]; pools likewise.  Inputs and outputs keep the
 * shapes the model file declares; a symbolic dimension is a dim_param of
 * its name (batch).
 *
 * An op ONNX cannot express here (a random op reached in inference mode,
 * loops, a transposed convolution) is an error naming the op and its
 * source line; nothing is written then.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx.pb-c.h"

enum { ONNX_FLOAT = 1, ONNX_BOOL = 9, ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_DOUBLE = 11 };

typedef struct Exporter {
  Arena *a;
  const Graph *g;
  OnnxValueFn *value;
  void *ctx;
  const char **name;         /* per node id: its ONNX value, once written */
  Onnx__NodeProto **nodes;
  size_t nnodes, capnodes;
  Onnx__TensorProto **inits;
  size_t ninits, capinits;
  const char **used;         /* value names taken */
  size_t nused, capused;
  int tmp;
  char *err;
  size_t errlen;
  bool failed;
} Exporter;

static void *push(Exporter *e, void *arr, size_t *n, size_t *cap, size_t elem) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    void *b = arena_alloc(e->a, c * elem);
    if (*n) memcpy(b, arr, *n * elem);
    arr = b, *cap = c;
  }
  return arr;
}

static bool taken(const Exporter *e, const char *s) {
  for (size_t i = 0; i < e->nused; i++)
    if (!strcmp(e->used[i], s)) return true;
  return false;
}

/* A fresh value name: want when free, else want_N. */
static const char *fresh(Exporter *e, const char *want) {
  char b[300];
  if (!want) snprintf(b, sizeof b, "t%d", ++e->tmp);
  else snprintf(b, sizeof b, "%s", want);
  for (int k = 1; taken(e, b); k++) snprintf(b, sizeof b, "%s_%d", want ? want : "t", k);
  e->used = push(e, e->used, &e->nused, &e->capused, sizeof *e->used);
  return e->used[e->nused++] = arena_strdup(e->a, b);
}

static void fail(Exporter *e, const Node *n, const char *fmt, const char *what) {
  if (e->failed) return;
  char msg[300];
  snprintf(msg, sizeof msg, fmt, what);
  if (n && n->loc.src)
    snprintf(e->err, e->errlen, "%s:%d:%d: %s", n->loc.src->name, n->loc.line, n->loc.col, msg);
  else
    snprintf(e->err, e->errlen, "%s", msg);
  e->failed = true;
}

static Onnx__NodeProto *node(Exporter *e, const char *op, int nin, const char *const *in, const char *out) {
  Onnx__NodeProto *n = arena_alloc(e->a, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = arena_strdup(e->a, op);
  n->n_input = (size_t)nin;
  n->input = arena_alloc(e->a, sizeof(char *) * (size_t)(nin + 1));
  for (int i = 0; i < nin; i++) n->input[i] = (char *)in[i];
  n->n_output = 1;
  n->output = arena_alloc(e->a, sizeof(char *));
  n->output[0] = (char *)out;
  n->name = arena_printf(e->a, "%s_%s", op, out);
  n->attribute = arena_alloc(e->a, sizeof(Onnx__AttributeProto *) * 8);
  e->nodes = push(e, e->nodes, &e->nnodes, &e->capnodes, sizeof *e->nodes);
  e->nodes[e->nnodes++] = n;
  return n;
}

static Onnx__AttributeProto *attr(Exporter *e, Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = arena_alloc(e->a, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = arena_strdup(e->a, name);
  a->has_type = true, a->type = type;
  n->attribute[n->n_attribute++] = a;
  return a;
}

static void attr_int(Exporter *e, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = true, a->i = v;
}

static void attr_float(Exporter *e, Onnx__NodeProto *n, const char *name, double v) {
  Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = true, a->f = (float)v;
}

static void attr_ints(Exporter *e, Onnx__NodeProto *n, const char *name, const int64_t *v, int k) {
  Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = (size_t)k;
  a->ints = arena_alloc(e->a, sizeof(int64_t) * (size_t)(k + 1));
  memcpy(a->ints, v, sizeof(int64_t) * (size_t)k);
}

static Onnx__TensorProto *tensor(Exporter *e, const char *name, int type, int rank, const int64_t *dims) {
  Onnx__TensorProto *t = arena_alloc(e->a, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = (char *)name;
  t->has_data_type = true, t->data_type = type;
  t->n_dims = (size_t)rank;
  t->dims = arena_alloc(e->a, sizeof(int64_t) * (size_t)(rank + 1));
  if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
  e->inits = push(e, e->inits, &e->ninits, &e->capinits, sizeof *e->inits);
  e->inits[e->ninits++] = t;
  return t;
}

static void set_raw(Exporter *e, Onnx__TensorProto *t, const void *data, size_t bytes) {
  t->has_raw_data = true;
  t->raw_data.len = bytes;
  t->raw_data.data = arena_alloc(e->a, bytes + 1);
  if (bytes) memcpy(t->raw_data.data, data, bytes);
}

/* A 1-D int64 initializer (shapes, axes, pads). */
static const char *ints(Exporter *e, const int64_t *v, int k) {
  const char *name = fresh(e, "const");
  int64_t d = k;
  set_raw(e, tensor(e, name, ONNX_INT64, 1, &d), v, sizeof(int64_t) * (size_t)k);
  return name;
}

static int onnx_type(DType t) {
  return t == DT_F32 ? ONNX_FLOAT : t == DT_F64 ? ONNX_DOUBLE : t == DT_I32 ? ONNX_INT32 : ONNX_BOOL;
}

static const char *op1(Exporter *e, const char *op, const char *x, const char *out) {
  const char *in[1] = {x};
  node(e, op, 1, in, out);
  return out;
}

static const char *op2(Exporter *e, const char *op, const char *x, const char *y, const char *out) {
  const char *in[2] = {x, y};
  node(e, op, 2, in, out);
  return out;
}

static const char *transpose(Exporter *e, const char *x, const int64_t *perm, int rank, const char *out) {
  Onnx__NodeProto *n = node(e, "Transpose", 1, (const char *[]){x}, out ? out : fresh(e, NULL));
  attr_ints(e, n, "perm", perm, rank);
  return n->output[0];
}

static const int64_t TO_NCHW[4] = {0, 3, 1, 2}, TO_NHWC[4] = {0, 2, 3, 1};

/* A shape for Reshape: static dimensions as they are, the one symbolic
 * (batch-sized) dimension -1. */
static const char *shape_const(Exporter *e, const Node *n, const Shape *s) {
  int64_t d[MAX_RANK];
  int syms = 0;
  for (int k = 0; k < s->rank; k++) {
    d[k] = s->d[k].sym ? -1 : s->d[k].n;
    syms += s->d[k].sym != 0;
  }
  if (syms > 1) fail(e, n, "%s: a reshape to two symbolic dimensions cannot be exported", "reshape");
  return ints(e, d, s->rank);
}

static const char *value(Exporter *e, const Node *n);

/* A parameter or state's initializer, in gradc's layout, or transposed to
 * ONNX's conv kernel layout [cout, cin, kh, kw] when conv. */
static const char *initializer(Exporter *e, const Node *n, bool conv) {
  int64_t dims[MAX_RANK], count = 1;
  for (int k = 0; k < n->shape.rank; k++) {
    if (n->shape.d[k].sym) fail(e, n, "%s: a parameter of symbolic shape cannot be exported", n->name);
    dims[k] = n->shape.d[k].n, count *= dims[k];
  }
  if (n->dtype != DT_F32) {
    fail(e, n, "'%s': only f32 parameters can be exported", n->name);
    return "";
  }
  const float *v = e->value(e->ctx, n->name, count);
  if (!v) {
    fail(e, n, "no value for '%s'", n->name);
    return "";
  }
  if (!conv) {
    const char *name = fresh(e, n->name);
    set_raw(e, tensor(e, name, ONNX_FLOAT, n->shape.rank, dims), v, sizeof(float) * (size_t)count);
    return name;
  }
  int64_t kh = dims[0], kw = dims[1], ci = dims[2], co = dims[3], od[4] = {co, ci, kh, kw};
  float *w = arena_alloc(e->a, sizeof(float) * (size_t)count);
  for (int64_t y = 0; y < kh; y++)
    for (int64_t x = 0; x < kw; x++)
      for (int64_t i = 0; i < ci; i++)
        for (int64_t o = 0; o < co; o++) w[((o * ci + i) * kh + y) * kw + x] = v[((y * kw + x) * ci + i) * co + o];
  const char *name = fresh(e, n->name);
  set_raw(e, tensor(e, name, ONNX_FLOAT, 4, od), w, sizeof(float) * (size_t)count);
  return name;
}

/* reshape(matmul(reshape(im2col(x)), reshape(K))) with K a 4-D parameter:
 * the convolution layers.c builds.  Its Conv, or NULL when n is not one. */
static const char *conv(Exporter *e, const Node *n, const char *out) {
  if (n->op != OP_RESHAPE || n->shape.rank != 4) return NULL;
  const Node *mm = n->src[0];
  if (mm->op != OP_MATMUL || mm->a.ta || mm->a.tb || mm->src[0]->op != OP_RESHAPE || mm->src[1]->op != OP_RESHAPE)
    return NULL;
  const Node *cols = mm->src[0]->src[0], *k = mm->src[1]->src[0];
  if (cols->op != OP_IM2COL || k->op != OP_PARAM || k->shape.rank != 4) return NULL;
  const Window *w = &cols->a.win;
  const char *x = transpose(e, value(e, cols->src[0]), TO_NCHW, 4, NULL);
  const char *kname = initializer(e, k, true);
  Onnx__NodeProto *c = node(e, "Conv", 2, (const char *[]){x, kname}, fresh(e, NULL));
  attr_ints(e, c, "kernel_shape", w->k, 2);
  attr_ints(e, c, "strides", w->stride, 2);
  attr_ints(e, c, "dilations", w->dil, 2);
  int64_t pads[4] = {w->pad[0], w->pad[2], w->pad[1], w->pad[3]};
  attr_ints(e, c, "pads", pads, 4);
  return transpose(e, c->output[0], TO_NHWC, 4, out);
}

static const char *pool(Exporter *e, const Node *n, const char *out) {
  const Window *w = &n->a.win;
  bool max = n->op == OP_MAXPOOL;
  if (!max && (w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3]))
    fail(e, n, "%s: padded average pooling cannot be exported", "avgpool2d");
  if (w->dil[0] != 1 || w->dil[1] != 1) fail(e, n, "%s: dilated pooling cannot be exported", op_info[n->op].name);
  const char *x = transpose(e, value(e, n->src[0]), TO_NCHW, 4, NULL);
  Onnx__NodeProto *p = node(e, max ? "MaxPool" : "AveragePool", 1, &x, fresh(e, NULL));
  attr_ints(e, p, "kernel_shape", w->k, 2);
  attr_ints(e, p, "strides", w->stride, 2);
  int64_t pads[4] = {w->pad[0], w->pad[2], w->pad[1], w->pad[3]};
  attr_ints(e, p, "pads", pads, 4);
  return transpose(e, p->output[0], TO_NHWC, 4, out);
}

static const char *constant(Exporter *e, const Node *n) {
  int64_t dims[MAX_RANK], count = 1;
  for (int k = 0; k < n->shape.rank; k++) {
    if (n->shape.d[k].sym) fail(e, n, "%s: a constant of symbolic shape cannot be exported", "const");
    dims[k] = n->shape.d[k].n, count *= dims[k];
  }
  if (e->failed) return "";
  const char *name = fresh(e, n->name);
  Onnx__TensorProto *t = tensor(e, name, onnx_type(n->dtype), n->shape.rank, dims);
  size_t size = dtype_size(n->dtype);
  unsigned char *buf = arena_alloc(e->a, size * (size_t)(count + 1));
  for (int64_t i = 0; i < count; i++) {
    double v = n->a.values ? n->a.values[i] : 0;
    if (n->dtype == DT_F32) { float f = (float)v; memcpy(buf + 4 * i, &f, 4); }
    else if (n->dtype == DT_F64) memcpy(buf + 8 * i, &v, 8);
    else if (n->dtype == DT_I32) { int32_t x = (int32_t)v; memcpy(buf + 4 * i, &x, 4); }
    else buf[i] = v != 0;
  }
  set_raw(e, t, buf, size * (size_t)count);
  return name;
}

static const char *reduce(Exporter *e, const Node *n, const char *x, const char *out) {
  static const char *const names[] = {[OP_SUM] = "ReduceSum", [OP_MEAN] = "ReduceMean", [OP_MAX] = "ReduceMax",
                                      [OP_MIN] = "ReduceMin"};
  int64_t axes[MAX_RANK];
  int k = 0;
  for (int i = 0; i < n->src[0]->shape.rank; i++)
    if (n->a.axes & (1u << i)) axes[k++] = i;
  Onnx__NodeProto *r;
  if (n->op == OP_SUM) {
    r = node(e, "ReduceSum", 2, (const char *[]){x, ints(e, axes, k)}, out);
  } else {
    r = node(e, names[n->op], 1, &x, out);
    attr_ints(e, r, "axes", axes, k);
  }
  attr_int(e, r, "keepdims", n->a.keepdims);
  return out;
}

/* The ONNX value of n, writing its node (and its operands') first. */
static const char *value(Exporter *e, const Node *n) {
  if (e->failed) return "";
  if (e->name[n->id]) return e->name[n->id];
  if (n->op == OP_TRAIN_SELECT) return e->name[n->id] = value(e, n->src[1]);   /* inference */
  if (n->op == OP_INPUT) return e->name[n->id] = n->name;   /* written as graph inputs */
  if (n->op == OP_PARAM || n->op == OP_STATE) return e->name[n->id] = initializer(e, n, false);
  if (n->op == OP_CONST) return e->name[n->id] = constant(e, n);
  const char *out = fresh(e, n->name);
  const char *r = conv(e, n, out);
  if (r) return e->name[n->id] = r;
  const char *x = n->nsrc > 0 ? value(e, n->src[0]) : NULL, *y = n->nsrc > 1 ? value(e, n->src[1]) : NULL;
  if (e->failed) return "";
  Onnx__NodeProto *o;
  switch (n->op) {
  case OP_ADD: r = op2(e, "Add", x, y, out); break;
  case OP_SUB: r = op2(e, "Sub", x, y, out); break;
  case OP_MUL: r = op2(e, "Mul", x, y, out); break;
  case OP_DIV: r = op2(e, "Div", x, y, out); break;
  case OP_POW: r = op2(e, "Pow", x, y, out); break;
  case OP_MAXIMUM: r = op2(e, "Max", x, y, out); break;
  case OP_MINIMUM: r = op2(e, "Min", x, y, out); break;
  case OP_EQ: r = op2(e, "Equal", x, y, out); break;
  case OP_NE: r = op1(e, "Not", op2(e, "Equal", x, y, fresh(e, NULL)), out); break;
  case OP_LT: r = op2(e, "Less", x, y, out); break;
  case OP_LE: r = op2(e, "LessOrEqual", x, y, out); break;
  case OP_GT: r = op2(e, "Greater", x, y, out); break;
  case OP_GE: r = op2(e, "GreaterOrEqual", x, y, out); break;
  case OP_NEG: r = op1(e, "Neg", x, out); break;
  case OP_ABS: r = op1(e, "Abs", x, out); break;
  case OP_SQUARE: r = op2(e, "Mul", x, x, out); break;
  case OP_RELU: r = op1(e, "Relu", x, out); break;
  case OP_SIGMOID: r = op1(e, "Sigmoid", x, out); break;
  case OP_TANH: r = op1(e, "Tanh", x, out); break;
  case OP_EXP: r = op1(e, "Exp", x, out); break;
  case OP_LOG: r = op1(e, "Log", x, out); break;
  case OP_SQRT: r = op1(e, "Sqrt", x, out); break;
  case OP_SOFTPLUS: r = op1(e, "Softplus", x, out); break;
  case OP_ERF: r = op1(e, "Erf", x, out); break;
  case OP_LEAKY_RELU:
    o = node(e, "LeakyRelu", 1, &x, out);
    attr_float(e, o, "alpha", n->a.alpha);
    r = out;
    break;
  case OP_CLIP: {
    /* Clip's bounds are inputs of the operand's type (opset 13). */
    const char *in[3] = {x, "", ""};
    double b[2] = {n->a.lo, n->a.hi};
    for (int k = 0; k < 2; k++) {
      if (!isfinite(b[k])) continue;
      Node c = {.dtype = n->dtype, .shape = {0}, .a.values = &b[k]};
      in[1 + k] = constant(e, &c);
    }
    node(e, "Clip", isfinite(b[1]) ? 3 : isfinite(b[0]) ? 2 : 1, in, out);
    r = out;
    break;
  }
  case OP_CAST:
    o = node(e, "Cast", 1, &x, out);
    attr_int(e, o, "to", onnx_type(n->a.dtype));
    r = out;
    break;
  case OP_WHERE:
    node(e, "Where", 3, (const char *[]){x, y, value(e, n->src[2])}, out);
    r = out;
    break;
  case OP_MATMUL: {
    int64_t perm[MAX_RANK];
    const char *ab[2] = {x, y};
    for (int s = 0; s < 2; s++) {
      int rank = n->src[s]->shape.rank;
      if (!(s ? n->a.tb : n->a.ta) || rank < 2) continue;
      for (int k = 0; k < rank; k++) perm[k] = k;
      perm[rank - 2] = rank - 1, perm[rank - 1] = rank - 2;
      ab[s] = transpose(e, ab[s], perm, rank, NULL);
    }
    r = op2(e, "MatMul", ab[0], ab[1], out);
    break;
  }
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
    o = node(e, n->op == OP_SOFTMAX ? "Softmax" : "LogSoftmax", 1, &x, out);
    attr_int(e, o, "axis", n->a.axis);
    r = out;
    break;
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN:
    r = reduce(e, n, x, out);
    break;
  case OP_ARGMAX: {
    /* ONNX's ArgMax is int64; gradc's i32. */
    o = node(e, "ArgMax", 1, &x, fresh(e, NULL));
    attr_int(e, o, "axis", n->a.axis);
    attr_int(e, o, "keepdims", n->a.keepdims);
    o = node(e, "Cast", 1, (const char *[]){o->output[0]}, out);
    attr_int(e, o, "to", ONNX_INT32);
    r = out;
    break;
  }
  case OP_RESHAPE:
    r = op2(e, "Reshape", x, shape_const(e, n, &n->shape), out);
    break;
  case OP_TRANSPOSE: {
    int64_t perm[MAX_RANK];
    for (int k = 0; k < n->shape.rank; k++) perm[k] = n->a.perm[k];
    r = transpose(e, x, perm, n->shape.rank, out);
    break;
  }
  case OP_BROADCAST: {
    /* Expand broadcasts like numpy: 1 where the target is symbolic keeps
     * the operand's (batch) dimension. */
    int64_t d[MAX_RANK];
    for (int k = 0; k < n->shape.rank; k++) d[k] = n->shape.d[k].sym ? 1 : n->shape.d[k].n;
    r = op2(e, "Expand", x, ints(e, d, n->shape.rank), out);
    break;
  }
  case OP_CONCAT: {
    const char **in = arena_alloc(e->a, sizeof(char *) * (size_t)n->nsrc);
    for (int k = 0; k < n->nsrc; k++) in[k] = value(e, n->src[k]);
    o = node(e, "Concat", n->nsrc, in, out);
    attr_int(e, o, "axis", n->a.axis);
    r = out;
    break;
  }
  case OP_SLICE: {
    /* gradc's end -1 of a negative step means "through element 0", which
     * ONNX spells INT64_MIN (its -1 is the last element). */
    int rank = n->shape.rank;
    int64_t b[MAX_RANK], en[MAX_RANK], ax[MAX_RANK], st[MAX_RANK];
    for (int k = 0; k < rank; k++) {
      b[k] = n->a.begin[k], st[k] = n->a.step[k], ax[k] = k;
      en[k] = st[k] < 0 && n->a.end[k] < 0 ? INT64_MIN : n->a.end[k];
    }
    node(e, "Slice", 5, (const char *[]){x, ints(e, b, rank), ints(e, en, rank), ints(e, ax, rank),
                                         ints(e, st, rank)}, out);
    r = out;
    break;
  }
  case OP_UNSLICE: {
    /* pad (the model language's, an imported Pad or depthwise Conv) is an
     * unslice of step 1: zeros before begin and after end, ONNX's Pad */
    int rank = n->shape.rank;
    const Shape *s = &n->src[0]->shape;
    int64_t p[2 * MAX_RANK];
    for (int k = 0; k < rank; k++) {
      const Dim *d = &s->d[k], *to = &n->shape.d[k];
      bool same = d->sym == to->sym && d->n == to->n;
      if (n->a.step[k] != 1 || (d->sym && (!same || n->a.begin[k])) || (!d->sym && to->sym)) {
        fail(e, n, "%s other than padding with zeros cannot be exported to ONNX", "an unslice");
        return "";
      }
      p[k] = n->a.begin[k];
      p[k + rank] = d->sym ? 0 : to->n - n->a.begin[k] - d->n;
    }
    node(e, "Pad", 2, (const char *[]){x, ints(e, p, 2 * rank)}, out);
    r = out;
    break;
  }
  case OP_GATHER:
    r = op2(e, "Gather", x, y, out);
    break;
  case OP_MAXPOOL:
  case OP_AVGPOOL:
    r = pool(e, n, out);
    break;
  default:
    fail(e, n, "%s cannot be exported to ONNX", op_info[n->op].name);
    return "";
  }
  return e->name[n->id] = r;
}

static Onnx__ValueInfoProto *value_info(Exporter *e, const char *name, const Node *n) {
  Onnx__ValueInfoProto *v = arena_alloc(e->a, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = (char *)name;
  Onnx__TypeProto *t = arena_alloc(e->a, sizeof *t);
  onnx__type_proto__init(t);
  Onnx__TypeProto__Tensor *tt = arena_alloc(e->a, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = true, tt->elem_type = onnx_type(n->dtype);
  Onnx__TensorShapeProto *s = arena_alloc(e->a, sizeof *s);
  onnx__tensor_shape_proto__init(s);
  s->n_dim = (size_t)n->shape.rank;
  s->dim = arena_alloc(e->a, sizeof(void *) * (size_t)(n->shape.rank + 1));
  for (int k = 0; k < n->shape.rank; k++) {
    Onnx__TensorShapeProto__Dimension *d = arena_alloc(e->a, sizeof *d);
    onnx__tensor_shape_proto__dimension__init(d);
    const Dim *gd = &n->shape.d[k];
    if (!gd->sym) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = gd->n;
    } else if (gd->n == 1) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = (char *)e->g->sym[gd->sym];
    }
    s->dim[k] = d;
  }
  tt->shape = s;
  t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
  v->type = t;
  return v;
}

bool onnx_export(const Graph *g, OnnxValueFn *value_fn, void *ctx, const char *path, char *err, size_t errlen) {
  Arena *a = arena_new();
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  Exporter e = {.a = a, .g = g, .value = value_fn, .ctx = ctx, .err = err, .errlen = errlen};
  e.name = arena_alloc(a, sizeof(char *) * (size_t)(g->nnodes + 1));
  if (!g->noutputs) fail(&e, NULL, "%s: the model declares no output to export", g->model_name);
  /* Inputs first, so that no value takes their names. */
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_INPUT) fresh(&e, g->nodes[i]->name);
  Onnx__ValueInfoProto **outs = arena_alloc(a, sizeof(void *) * (size_t)(g->noutputs + 1));
  for (int i = 0; i < g->noutputs && !e.failed; i++) {
    const char *v = value(&e, g->outputs[i].node);
    const char *name = g->outputs[i].name;
    if (strcmp(v, name)) {
      if (taken(&e, name)) name = fresh(&e, name);
      else fresh(&e, name);
      op1(&e, "Identity", v, name);
    }
    outs[i] = value_info(&e, name, g->outputs[i].node);
  }
  /* The inputs the outputs need. */
  Onnx__ValueInfoProto **ins = arena_alloc(a, sizeof(void *) * (size_t)(g->nnodes + 1));
  size_t nins = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_INPUT && e.name[i]) ins[nins++] = value_info(&e, g->nodes[i]->name, g->nodes[i]);
  bool ok = !e.failed;
  if (ok) {
    Onnx__GraphProto gp;
    onnx__graph_proto__init(&gp);
    gp.name = (char *)g->model_name;
    gp.n_node = e.nnodes, gp.node = e.nodes;
    gp.n_initializer = e.ninits, gp.initializer = e.inits;
    gp.n_input = nins, gp.input = ins;
    gp.n_output = (size_t)g->noutputs, gp.output = outs;
    Onnx__OperatorSetIdProto opset;
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "", opset.has_version = true, opset.version = 17;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = true, m.ir_version = 8;   /* the IR of opset 17 */
    m.producer_name = "gradc";
    m.n_opset_import = 1, m.opset_import = opsets;
    m.graph = &gp;
    size_t size = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(size ? size : 1);
    FILE *f = buf ? fopen(path, "wb") : NULL;
    if (!buf || !f) {
      snprintf(err, errlen, "cannot write '%s': %s", path, buf ? strerror(errno) : "out of memory");
      ok = false;
    } else {
      onnx__model_proto__pack(&m, buf);
      bool bad = fwrite(buf, 1, size, f) != size;
      bad |= fclose(f) != 0;
      if (bad) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
        ok = false;
      }
      f = NULL;
    }
    if (f) fclose(f);
    free(buf);
  }
  arena_free(a);
  return ok;
}
