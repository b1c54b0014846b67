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
 * This file walks the ModelProto (opset, initializers, inputs, nodes,
 * outputs) and appends the loss the caller asks for; onnx_ops.c and
 * onnx_layers.c translate each node, onnx_read.c keeps the values and the
 * text (onnx_internal.h).
 *
 * Errors (a broken protobuf, an unsupported opset or operator, an
 * attribute gradc cannot honour) end the import through a longjmp to
 * onnx_import, with a message naming the node, its operator and the opset;
 * the protobuf is freed there.  protobuf-c checks the wire format; every
 * count and index read from the message is checked here before use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static void graph_input(Importer *im, const Onnx__ValueInfoProto *vi) {
  if (!vi || !vi->name) ox_fail(im, "a graph input without a name");
  if (ox_find(im, vi->name)) return;             /* an initializer listed as an input (IR < 4) */
  Value *v = ox_new_value(im, vi->name);
  const Onnx__TypeProto *t = vi->type;
  if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type || !t->tensor_type->shape)
    ox_fail(im, "input '%.100s' is not a tensor of known rank", vi->name);
  int32_t et = t->tensor_type->elem_type;
  if (et == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || et == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) v->is_int = true;
  else if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
    ox_fail(im, "input '%.100s' has ONNX data type %d; gradc takes float and integer inputs", vi->name, et);
  const Onnx__TensorShapeProto *s = t->tensor_type->shape;
  if (s->n_dim > OX_RANK) ox_fail(im, "input '%.100s' has rank %zu; at most %d", vi->name, s->n_dim, OX_RANK);
  v->rank = (int)s->n_dim;
  for (int k = 0; k < v->rank; k++) {
    const Onnx__TensorShapeProto__Dimension *d = s->dim[k];
    if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 1 &&
        d->dim_value <= (INT64_C(1) << 31)) {
      v->dim[k] = d->dim_value;
    } else if (k == 0) {
      v->dim[k] = BATCH;
    } else {
      ox_fail(im, "input '%.100s': dimension %d is symbolic or invalid; only the first (the batch) may be", vi->name, k);
    }
  }
  char d[200];
  ox_dims_text(v, d, sizeof d);
  v->id = ox_new_id(im, vi->name, false);
  ox_emit(im, "input %s : %s%s\n", v->id, v->is_int ? "i32" : "f32", d);
}

static void translate(Importer *im, const Onnx__ModelProto *m, const OnnxImportOptions *o) {
  if (!m->graph) ox_fail(im, "the model has no graph");
  for (size_t k = 0; k < m->n_opset_import; k++) {
    const Onnx__OperatorSetIdProto *op = m->opset_import[k];
    if (op && (!op->domain || !*op->domain || !strcmp(op->domain, "ai.onnx")) && op->has_version)
      im->opset = (int)(op->version > 1000 ? 1000 : op->version < 0 ? 0 : op->version);
  }
  if (im->opset < 13 || im->opset > 17)
    ox_fail(im, "opset %d; gradc imports opsets 13 to 17 (torch.onnx.export(..., opset_version=17))", im->opset);
  const Onnx__GraphProto *g = im->graph = m->graph;
  ox_emit(im, "# imported from %s (opset %d%s%s)\n", im->file, im->opset, m->producer_name ? ", " : "",
       m->producer_name ? m->producer_name : "");
  for (size_t k = 0; k < g->n_initializer; k++) {
    if (!g->initializer[k] || !g->initializer[k]->name) ox_fail(im, "an initializer without a name");
    Value *v = ox_new_value(im, g->initializer[k]->name);
    ox_set_tensor(im, v, g->initializer[k]);
    v->is_init = true;
  }
  if (g->n_sparse_initializer) ox_fail(im, "sparse initializers are not supported");
  if (o && o->loss) ox_reserve(im, o->label ? o->label : "y");   /* the label input appended below */
  for (size_t k = 0; k < g->n_input; k++) graph_input(im, g->input[k]);
  for (size_t k = 0; k < g->n_node; k++) {
    const Onnx__NodeProto *n = g->node[k];
    if (!n) continue;
    im->node = n;
    ox_translate_node(im, n);
  }
  im->node = NULL;
  if (g->n_output < 1) ox_fail(im, "the graph has no output");
  const char *first = NULL;
  Value *first_v = NULL;
  for (size_t k = 0; k < g->n_output; k++) {
    if (!g->output[k] || !g->output[k]->name) ox_fail(im, "a graph output without a name");
    Value *v = ox_find(im, g->output[k]->name);
    if (!v) ox_fail(im, "output '%.100s' is computed by no node", g->output[k]->name);
    const char *name = v->id;
    if (v->is_output || !v->id || v->is_const) {   /* not written as an output yet */
      const char *id = ox_nchw(im, v);
      name = ox_new_id(im, g->output[k]->name, false);
      ox_emit(im, "output %s = %s\n", name, id);
      v->is_output = false;
    }
    if (!first) first = name, first_v = v;
  }
  if (o && o->loss) {
    const char *label = o->label ? o->label : "y";
    if (!strcmp(o->loss, "softmax_cross_entropy")) {
      if (first_v->rank != 2) ox_fail(im, "softmax_cross_entropy needs a [batch, classes] output; '%s' has rank %d", first, first_v->rank);
      ox_emit(im, "input %s : i32[%s]\n", label, first_v->dim[0] == BATCH ? "batch" : "1");
      ox_emit(im, "loss = mean(softmax_cross_entropy(%s, %s))\n", first, label);
      ox_emit(im, "metric accuracy = mean(argmax(%s, axis=-1) == %s)\n", first, label);
    } else if (!strcmp(o->loss, "mse")) {
      char d[200];
      ox_dims_text(first_v, d, sizeof d);
      ox_emit(im, "input %s : f32%s\n", label, d);
      ox_emit(im, "loss = mean(mse(%s, %s))\n", label, first);   /* mse is per sample (Keras) */
    } else {
      snprintf(im->out->error, sizeof im->out->error, "%s: unknown loss '%s'; losses: softmax_cross_entropy, mse",
               im->file, o->loss);
      longjmp(im->fail, 1);
    }
    const char *opt = o->optimizer ? o->optimizer : "sgd(lr=0.01)";
    ox_emit(im, "train loss with %s%s\n", opt, strchr(opt, '(') ? "" : "()");
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
    if (!m) ox_fail(im, "not an ONNX model: the protobuf does not parse as a ModelProto");
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

