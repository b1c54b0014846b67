/*
 * onnx_layers.c - the ONNX operators that become gradc layers: a product
 * by a 2-D initializer is dense (PyTorch's [out, in] weight transposed to
 * the kernel [in, out]), Conv conv2d (kernel [kh, kw, in, out]; groups
 * written with what conv2d has), ConvTranspose conv2d_transpose,
 * BatchNormalization batch_norm, and the windows: pools, Resize.  Their
 * weights are handed to the caller in gradc's layouts (ox_add_param) under
 * the layer's name, taken from PyTorch's module path.  Window ops read and
 * write NHWC values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

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
  return ox_new_id(im, b, true);
}

void ox_gemm(Importer *im, const Onnx__NodeProto *n, bool gemm) {
  Value *a = ox_input(im, n, 0, true), *b = ox_input(im, n, 1, true), *c = gemm ? ox_input(im, n, 2, false) : NULL;
  Value *r = ox_output(im, n);
  int64_t ta = gemm ? ox_attr_int(n, "transA", 0) : 0, tb = gemm ? ox_attr_int(n, "transB", 0) : 0;
  float alpha = gemm ? ox_attr_float(n, "alpha", 1) : 1, beta = gemm ? ox_attr_float(n, "beta", 1) : 1;
  if (a->rank < 1 || b->rank < 1) ox_fail(im, "matrix product of a scalar");
  if (gemm && (a->rank != 2 || b->rank != 2)) ox_fail(im, "Gemm needs 2-D operands");
  /* dense: x @ W (+ b) with W a 2-D initializer, the form of nn.Linear. */
  if (!ta && alpha == 1 && beta == 1 && a->rank >= 2 && b->is_const && !b->is_int && b->rank == 2 &&
      (!c || (c->is_const && !c->is_int && c->rank == 1)) && !b->param_written) {
    int64_t in = tb ? b->dim[1] : b->dim[0], units = tb ? b->dim[0] : b->dim[1];
    if (a->dim[a->rank - 1] != in) ox_fail(im, "inner dimensions differ (%lld vs %lld)", (long long)a->dim[a->rank - 1], (long long)in);
    if (c && c->dim[0] != units) ox_fail(im, "the bias has %lld values for %lld units", (long long)c->dim[0], (long long)units);
    const char *L = onnx_layer_name(im, b, "dense");
    float *k = arena_alloc(im->a, sizeof(float) * (size_t)(in * units));
    for (int64_t i = 0; i < in; i++)
      for (int64_t j = 0; j < units; j++) k[i * units + j] = tb ? b->f[j * in + i] : b->f[i * units + j];
    int64_t kd[2] = {in, units};
    ox_add_param(im, arena_printf(im->a, "%s.kernel", L), 2, kd, k, false);
    if (c) ox_add_param(im, arena_printf(im->a, "%s.bias", L), 1, &units, c->f, false);
    b->param_written = true;
    /* Another product with the same weight (a shared layer) reads the
     * layer's kernel when its layout is ONNX's. */
    if (!tb) b->id = arena_printf(im->a, "%s.kernel", L);
    ox_copy_shape(r, a);
    r->dim[r->rank - 1] = units;
    r->is_int = false;
    ox_define(im, r, false, "dense(%s, %lld, use_bias=%s, name=%s)", ox_nchw(im, a), (long long)units,
           c ? "true" : "false", L);
    return;
  }
  if (a->rank != 2 || b->rank != 2) {
    if (a->rank < 2 || b->rank < 2) ox_fail(im, "MatMul of a 1-D operand; reshape it to 2-D first");
  }
  int64_t m = ta ? a->dim[a->rank - 1] : a->dim[a->rank - 2], ka = ta ? a->dim[a->rank - 2] : a->dim[a->rank - 1];
  int64_t kb = tb ? b->dim[b->rank - 1] : b->dim[b->rank - 2], nn = tb ? b->dim[b->rank - 2] : b->dim[b->rank - 1];
  if (ka != kb) ox_fail(im, "inner dimensions differ (%lld vs %lld)", (long long)ka, (long long)kb);
  Value tmp = {0};
  if (a->rank >= b->rank) ox_copy_shape(&tmp, a); else ox_copy_shape(&tmp, b);
  tmp.dim[tmp.rank - 2] = m, tmp.dim[tmp.rank - 1] = nn, tmp.is_int = false;
  char prod[600];
  snprintf(prod, sizeof prod, "matmul(%s, %s%s%s)", ox_nchw(im, a), ox_nchw(im, b), ta ? ", transpose_a=true" : "",
           tb ? ", transpose_b=true" : "");
  ox_copy_shape(r, &tmp);
  char extra[400] = "";
  if (alpha != 1) snprintf(extra, sizeof extra, " * %.9g", (double)alpha);
  if (c && beta != 0) {
    size_t e = strlen(extra);
    if (beta == 1) snprintf(extra + e, sizeof extra - e, " + %s", ox_nchw(im, c));
    else snprintf(extra + e, sizeof extra - e, " + %s * %.9g", ox_nchw(im, c), (double)beta);
  }
  ox_define(im, r, false, "%s%s", prod, extra);
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
  int c = ox_attr_ints(im, n, "strides", v, 8);
  if (c >= 0 && c != 2) ox_fail(im, "strides must have 2 values (2-D windows only)");
  if (c == 2) w->stride[0] = v[0], w->stride[1] = v[1];
  c = ox_attr_ints(im, n, "dilations", v, 8);
  if (c >= 0 && c != 2) ox_fail(im, "dilations must have 2 values");
  if (c == 2) w->dil[0] = v[0], w->dil[1] = v[1];
  c = ox_attr_ints(im, n, "pads", v, 8);
  if (c >= 0 && c != 4) ox_fail(im, "pads must have 4 values");
  if (c == 4) w->pad[0] = v[0], w->pad[1] = v[2], w->pad[2] = v[1], w->pad[3] = v[3];
  const Onnx__AttributeProto *ap = ox_attr(n, "auto_pad");
  if (ap && !ox_attr_is(n, "auto_pad", "NOTSET") && !ox_attr_is(n, "auto_pad", "VALID"))
    ox_fail(im, "auto_pad SAME_UPPER/SAME_LOWER is not supported; export with explicit pads");
  for (int k = 0; k < 2; k++)
    if (w->k[k] < 1 || w->stride[k] < 1 || w->dil[k] < 1 || w->k[k] > 4096 || w->stride[k] > 4096 || w->dil[k] > 4096)
      ox_fail(im, "kernel, strides and dilations must be positive");
  for (int k = 0; k < 4; k++)
    if (w->pad[k] < 0 || w->pad[k] > 4096) ox_fail(im, "pads must be non-negative");
}

static void onnx_window_out(Importer *im, const Value *x, const OnnxWindow *w, int64_t channels, Value *r) {
  r->rank = 4;
  r->dim[0] = x->dim[0], r->dim[1] = channels;
  for (int k = 0; k < 2; k++) {
    int64_t in = x->dim[2 + k], span = w->dil[k] * (w->k[k] - 1) + 1;
    if (in < 0) ox_fail(im, "the image's height and width must be static");
    int64_t o = (in + w->pad[2 * k] + w->pad[2 * k + 1] - span) / w->stride[k] + 1;
    if (in + w->pad[2 * k] + w->pad[2 * k + 1] < span) ox_fail(im, "the window is larger than the padded image");
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
  ox_add_param(im, arena_printf(im->a, "%s.kernel", L), 4, (int64_t[]){kh, kw, wt->dim[1], out},
            conv_kernel(im, wt, o0, out), false);
  if (b) ox_add_param(im, arena_printf(im->a, "%s.bias", L), 1, &out, b->f + o0, false);
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
  const char *src = ox_nhwc(im, x);
  if (w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3]) {
    const char *t = ox_tmp_id(im);
    ox_emit(im, "%s = pad(%s, [[0, 0], [%lld, %lld], [%lld, %lld], [0, 0]])\n", t, src, (long long)w->pad[0],
         (long long)w->pad[1], (long long)w->pad[2], (long long)w->pad[3]);
    src = t;
  }
  if (m > 1) {   /* repeat's, but with the batch symbolic */
    const char *t = ox_tmp_id(im), *B = x->dim[0] == BATCH ? "batch" : arena_printf(im->a, "%lld", (long long)x->dim[0]);
    long long C = x->dim[1], H = x->dim[2] + w->pad[0] + w->pad[1], W = x->dim[3] + w->pad[2] + w->pad[3];
    ox_emit(im, "%s = reshape(broadcast_to(reshape(%s, [%s, %lld, %lld, %lld, 1]), [%s, %lld, %lld, %lld, %lld]), "
         "[%s, %lld, %lld, %lld])\n", t, src, B, H, W, C, B, H, W, C, (long long)m, B, H, W, (long long)O);
    src = t;
  }
  const char *K = arena_printf(im->a, "%s.kernel", L);
  float *k = arena_alloc(im->a, sizeof(float) * (size_t)(O * kh * kw));
  for (int64_t o = 0; o < O; o++)
    for (int64_t y = 0; y < kh * kw; y++) k[y * O + o] = wt->f[o * kh * kw + y];
  ox_add_param(im, K, 3, (int64_t[]){kh, kw, O}, k, false);
  ox_emit(im, "param %s : f32[%lld, %lld, %lld] = zeros\n", K, (long long)kh, (long long)kw, (long long)O);
  const char *acc = NULL;
  for (int64_t y = 0; y < kh; y++)
    for (int64_t z = 0; z < kw; z++) {
      int64_t r0 = y * w->dil[0], c0 = z * w->dil[1];
      const char *t = ox_tmp_id(im);
      ox_emit(im, "%s = %s%s%s[:, %lld:%lld:%lld, %lld:%lld:%lld, :] * %s[%lld, %lld]\n", t, acc ? acc : "",
           acc ? " + " : "", src, (long long)r0, (long long)(r0 + (r->dim[2] - 1) * w->stride[0] + 1),
           (long long)w->stride[0], (long long)c0, (long long)(c0 + (r->dim[3] - 1) * w->stride[1] + 1),
           (long long)w->stride[1], K, (long long)y, (long long)z);
      acc = t;
    }
  if (b) {
    const char *B = arena_printf(im->a, "%s.bias", L);
    ox_add_param(im, B, 1, &O, b->f, false);
    ox_emit(im, "param %s : f32[%lld] = zeros\n", B, (long long)O);
    ox_define(im, r, true, "%s + %s", acc, B);
  } else {
    ox_define(im, r, true, "%s", acc);
  }
}

/* Conv is conv2d.  gradc's conv2d has no groups: group > 1 is written
 * with what it has, a depthwise convolution (group = input channels:
 * MobileNet's, PyTorch's groups=in_channels) by depthwise() above, any
 * other grouping as one conv2d per group on its slice of the channels,
 * concatenated (ResNeXt's 32 groups: 32 convolutions). */
void ox_conv(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *wt = ox_input(im, n, 1, true), *b = ox_input(im, n, 2, false), *r = ox_output(im, n);
  if (x->rank != 4) ox_fail(im, "only 2-D convolutions (4-D NCHW inputs) are supported");
  if (!wt->is_const || wt->is_int || wt->rank != 4 || wt->param_written)
    ox_fail(im, "the weight must be a 4-D float initializer");
  if (b && (!b->is_const || b->is_int || b->rank != 1 || b->dim[0] != wt->dim[0]))
    ox_fail(im, "the bias must be a 1-D float initializer of %lld values", (long long)wt->dim[0]);
  int64_t O = wt->dim[0], I = wt->dim[1], kh = wt->dim[2], kw = wt->dim[3], G = ox_attr_int(n, "group", 1);
  if (G < 1 || G > 4096 || x->dim[1] != I * G || O % G)
    ox_fail(im, "group=%lld with a weight of %lld outputs and %lld inputs a group does not divide the input's %lld "
         "channels", (long long)G, (long long)O, (long long)I, (long long)x->dim[1]);
  OnnxWindow w;
  onnx_window_attrs(im, n, &w, (int64_t[]){kh, kw});
  onnx_window_out(im, x, &w, O, r);
  const char *L = onnx_layer_name(im, wt, "conv");
  wt->param_written = true;
  if (G == 1) {
    ox_define(im, r, true, "%s", conv_call(im, ox_nhwc(im, x), wt, b, 0, O, &w, L));
  } else if (I == 1) {
    /* a line of text a tap: bounded like the model files' size */
    if (kh * kw > 1024) ox_fail(im, "a depthwise kernel of %lld taps; at most 1024", (long long)(kh * kw));
    depthwise(im, x, wt, b, r, &w, L);
  } else {
    if (G > 64) ox_fail(im, "group=%lld: at most 64 groups of more than one channel", (long long)G);
    const char *in = ox_nhwc(im, x), *parts[64];
    char list[1200] = "";
    for (int64_t g = 0; g < G; g++) {
      const char *slice = ox_tmp_id(im), *Lg = ox_new_id(im, arena_printf(im->a, "%s_g%lld", L, (long long)g), true);
      ox_emit(im, "%s = %s[:, :, :, %lld:%lld]\n", slice, in, (long long)(g * I), (long long)((g + 1) * I));
      parts[g] = ox_tmp_id(im);
      ox_emit(im, "%s = %s\n", parts[g], conv_call(im, slice, wt, b, g * (O / G), O / G, &w, Lg));
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", g ? ", " : "", parts[g]);
    }
    ox_define(im, r, true, "concat(%s, axis=3)", list);
  }
}

/* ConvTranspose without padding: gradc's conv2d_transpose with valid
 * padding computes (in - 1) * stride + kernel, ONNX's size when pads and
 * output_padding are 0. */
void ox_conv_transpose(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *wt = ox_input(im, n, 1, true), *b = ox_input(im, n, 2, false), *r = ox_output(im, n);
  if (x->rank != 4) ox_fail(im, "only 2-D transposed convolutions are supported");
  if (ox_attr_int(n, "group", 1) != 1) ox_fail(im, "grouped convolutions are not supported");
  if (!wt->is_const || wt->is_int || wt->rank != 4 || wt->param_written) ox_fail(im, "the weight must be a 4-D float initializer");
  int64_t I = wt->dim[0], O = wt->dim[1], kh = wt->dim[2], kw = wt->dim[3];
  if (b && (!b->is_const || b->is_int || b->rank != 1 || b->dim[0] != O)) ox_fail(im, "the bias must be a 1-D float initializer");
  if (x->dim[1] != I) ox_fail(im, "the weight expects %lld input channels", (long long)I);
  if (x->dim[2] < 1 || x->dim[3] < 1) ox_fail(im, "the image's height and width must be static");
  OnnxWindow w;
  onnx_window_attrs(im, n, &w, (int64_t[]){kh, kw});
  int64_t v[8];
  int c = ox_attr_ints(im, n, "output_padding", v, 8);
  for (int k = 0; k < c; k++)
    if (v[k]) ox_fail(im, "output_padding is not supported");
  if (ox_attr(n, "output_shape")) ox_fail(im, "output_shape is not supported");
  for (int k = 0; k < 4; k++)
    if (w.pad[k]) ox_fail(im, "pads are not supported (gradc's conv2d_transpose pads as Keras does)");
  if (w.dil[0] != 1 || w.dil[1] != 1) ox_fail(im, "dilations are not supported");
  if (kh < w.stride[0] || kw < w.stride[1]) ox_fail(im, "a kernel smaller than its stride is not supported");
  r->rank = 4, r->dim[0] = x->dim[0], r->dim[1] = O;
  r->dim[2] = (x->dim[2] - 1) * w.stride[0] + kh, r->dim[3] = (x->dim[3] - 1) * w.stride[1] + kw;
  const char *L = onnx_layer_name(im, wt, "deconv");
  float *k = arena_alloc(im->a, sizeof(float) * (size_t)(O * I * kh * kw));
  for (int64_t i = 0; i < I; i++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t y = 0; y < kh; y++)
        for (int64_t z = 0; z < kw; z++)
          k[((y * kw + z) * O + o) * I + i] = wt->f[((i * O + o) * kh + y) * kw + z];
  ox_add_param(im, arena_printf(im->a, "%s.kernel", L), 4, (int64_t[]){kh, kw, O, I}, k, false);
  if (b) ox_add_param(im, arena_printf(im->a, "%s.bias", L), 1, &O, b->f, false);
  wt->param_written = true;
  ox_define(im, r, true, "conv2d_transpose(%s, filters=%lld, kernel=[%lld, %lld], strides=[%lld, %lld], "
         "padding=valid, use_bias=%s, name=%s)", ox_nhwc(im, x), (long long)O, (long long)kh, (long long)kw,
         (long long)w.stride[0], (long long)w.stride[1], b ? "true" : "false", L);
}

void ox_pool(Importer *im, const Onnx__NodeProto *n, bool max) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  if (n->n_output > 1 && n->output[1] && *n->output[1]) ox_fail(im, "the Indices output is not supported");
  if (x->rank != 4) ox_fail(im, "only 2-D pooling (4-D NCHW inputs) is supported");
  int64_t ks[8];
  if (ox_attr_ints(im, n, "kernel_shape", ks, 8) != 2) ox_fail(im, "kernel_shape must have 2 values");
  if (ox_attr_int(n, "ceil_mode", 0)) ox_fail(im, "ceil_mode=1 is not supported");
  OnnxWindow w;
  onnx_window_attrs(im, n, &w, ks);
  if (w.dil[0] != 1 || w.dil[1] != 1) ox_fail(im, "dilated pooling is not supported");
  if (!max && (w.pad[0] || w.pad[1] || w.pad[2] || w.pad[3]))
    ox_fail(im, "padded average pooling is not supported");
  onnx_window_out(im, x, &w, x->dim[1], r);
  ox_define(im, r, true, "%s(%s, pool=[%lld, %lld], strides=[%lld, %lld], padding=[%lld, %lld, %lld, %lld])",
         max ? "maxpool2d" : "avgpool2d", ox_nhwc(im, x), (long long)w.k[0], (long long)w.k[1],
         (long long)w.stride[0], (long long)w.stride[1], (long long)w.pad[0], (long long)w.pad[1],
         (long long)w.pad[2], (long long)w.pad[3]);
}

void ox_global_avgpool(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  if (x->rank != 4) ox_fail(im, "only 4-D NCHW inputs are supported");
  r->rank = 4, r->dim[0] = x->dim[0], r->dim[1] = x->dim[1], r->dim[2] = r->dim[3] = 1;
  ox_define(im, r, true, "reshape(global_avgpool2d(%s), [%s, 1, 1, %lld])", ox_nhwc(im, x),
         x->dim[0] == BATCH ? "batch" : "-1", (long long)x->dim[1]);
}

void ox_batch_norm(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *r = ox_output(im, n);
  Value *p[4];
  for (int k = 0; k < 4; k++) {
    p[k] = ox_input(im, n, (size_t)k + 1, true);
    if (!p[k]->is_const || p[k]->is_int || p[k]->rank != 1 || p[k]->dim[0] != (x->rank > 1 ? x->dim[1] : -1) ||
        p[k]->param_written)
      ox_fail(im, "scale, bias, mean and var must be 1-D float initializers of one value per channel");
  }
  if (x->rank != 4 && x->rank != 2) ox_fail(im, "only [N, C] and [N, C, H, W] inputs are supported");
  /* training_mode=1 adds the updated running statistics as outputs;
   * gradc's batch_norm updates them itself, so they may not be used. */
  for (size_t k = 1; k < n->n_output; k++)
    if (n->output[k] && *n->output[k] && !ox_attr_int(n, "training_mode", 0))
      ox_fail(im, "the running statistics outputs are not supported");
  float eps = ox_attr_float(n, "epsilon", 1e-5f), mom = ox_attr_float(n, "momentum", 0.9f);
  const char *L = onnx_layer_name(im, p[0], "batch_norm");
  static const char *const part[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
  for (int k = 0; k < 4; k++) {
    ox_add_param(im, arena_printf(im->a, "%s.%s", L, part[k]), 1, p[k]->dim, p[k]->f, k >= 2);
    p[k]->param_written = true;
  }
  ox_copy_shape(r, x);
  /* ONNX's momentum is Keras': moving = moving * momentum + batch * (1 - momentum). */
  ox_define(im, r, x->rank == 4, "batch_norm(%s, momentum=%.7g, epsilon=%.7g, name=%s)",
         x->rank == 4 ? ox_nhwc(im, x) : ox_nchw(im, x), (double)mom, (double)eps, L);
}

/* Resize by integer scales: nearest is upsample2d's repeat; linear is
 * upsample2d's bilinear, TF's half-pixel centres, which is ONNX's
 * half_pixel and PyTorch's pytorch_half_pixel (interpolate(...,
 * align_corners=False)) at integer scales, edges clamped alike.  The other
 * coordinate modes sample elsewhere: refused. */
void ox_resize(Importer *im, const Onnx__NodeProto *n) {
  Value *x = ox_input(im, n, 0, true), *scales = ox_input(im, n, 2, false), *sizes = ox_input(im, n, 3, false);
  Value *r = ox_output(im, n);
  bool linear = ox_attr_is(n, "mode", "linear");
  if (!linear && !ox_attr_is(n, "mode", "nearest") && !ox_attr_is(n, "mode", NULL))
    ox_fail(im, "only mode=nearest and mode=linear are supported");
  if (linear && !ox_attr_is(n, "coordinate_transformation_mode", "half_pixel") &&
      !ox_attr_is(n, "coordinate_transformation_mode", "pytorch_half_pixel"))
    ox_fail(im, "mode=linear samples at half-pixel centres only (coordinate_transformation_mode half_pixel or "
         "pytorch_half_pixel: PyTorch's align_corners=False); align_corners and the other modes are not supported");
  if (!linear && (ox_attr_is(n, "coordinate_transformation_mode", "align_corners") ||
                  ox_attr_is(n, "coordinate_transformation_mode", "tf_crop_and_resize")))
    ox_fail(im, "mode=nearest with coordinate_transformation_mode align_corners or tf_crop_and_resize is not supported");
  /* asymmetric samples at i / scale: a repeat only when rounded down */
  if (!linear && ox_attr_is(n, "coordinate_transformation_mode", "asymmetric") && !ox_attr_is(n, "nearest_mode", "floor"))
    ox_fail(im, "mode=nearest with coordinate_transformation_mode asymmetric needs nearest_mode=floor (PyTorch's)");
  if (x->rank != 4) ox_fail(im, "only 4-D NCHW inputs are supported");
  int64_t s[2];
  if (scales && scales->count == 4 && scales->is_const && !scales->is_int) {
    for (int k = 0; k < 2; k++) {
      float f = scales->f[2 + k];
      if (f < 1 || f > 64 || f != floorf(f)) ox_fail(im, "only integer upsampling scales are supported");
      s[k] = (int64_t)f;
    }
    if (scales->f[0] != 1 || scales->f[1] != 1) ox_fail(im, "batch and channels cannot be resized");
  } else if (sizes && sizes->is_const && sizes->is_int && sizes->count == 4) {
    for (int k = 0; k < 2; k++) {
      if (x->dim[2 + k] <= 0 || sizes->i[2 + k] % x->dim[2 + k]) ox_fail(im, "only integer upsampling scales are supported");
      s[k] = sizes->i[2 + k] / x->dim[2 + k];
      if (s[k] < 1 || s[k] > 64) ox_fail(im, "only upsampling by 1 to 64 is supported");
    }
  } else {
    ox_fail(im, "scales or sizes must be constants of 4 values");
  }
  ox_copy_shape(r, x);
  r->dim[2] *= s[0], r->dim[3] *= s[1];
  ox_define(im, r, true, "upsample2d(%s, size=[%lld, %lld]%s)", ox_nhwc(im, x), (long long)s[0], (long long)s[1],
         linear ? ", interpolation=bilinear" : "");
}

