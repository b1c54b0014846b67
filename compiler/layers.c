/*
 * layers.c - Keras-style layer sugar and the windowed ops' arguments: dense,
 * conv2d, the pooling family, upsample2d, pad, dropout and batch_norm.
 *
 * Every function here expands into primitive ops of the op table (conv2d is
 * im2col and one matrix product, batch_norm a train_select of its batch and
 * moving forms plus two update statements), so autodiff, the passes and
 * codegen never see a layer.  A layer creates its parameters (and state)
 * under its name with Keras' initializers and defaults, in its input's float
 * dtype (Keras builds a layer's weights in the layer's dtype, so an f64
 * model gets f64 kernels: the user cannot cast a kernel the layer makes);
 * the builtin table in call.c maps names to these functions and checks the
 * argument keywords.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"


/* The dtype of the parameters a layer makes for input x: x's own when it is
 * f32 or f64.  An integer input keeps f32, so that the layer's own check or
 * its first op's rule reports the input (not a mismatch with an i32 kernel). */
DType layer_dtype(const Node *x) {
  return dtype_is_float(x->dtype) ? x->dtype : DT_F32;
}

Node *layer_param(Parser *p, const char *name, DType t, const Shape *s, Init init, Loc loc) {
  Node *n = parse_param(p, name, t, s, loc);
  n->a.init = init;
  return n;
}

/* A layer's name, which prefixes its parameters: name=..., else the
 * binding's name (h = dense(...) makes h.kernel), else Keras' numbering
 * (dense, dense_1, ...). */
const char *layer_name(Parser *p, Call *c, const char *kind, int *counter) {
  Val *nm = call_kwarg(c, "name");
  const char *base;
  if (nm && nm->kind == V_NAME) base = nm->name;
  else if (nm) parse_fail(p, nm->loc, "%s: name must be an identifier", call_name(p, c));
  else if (p->bind_name) base = p->bind_name;
  else base = *counter ? arena_printf(p->arena, "%s_%d", kind, *counter) : kind;
  ++*counter;
  return base;
}

/* Activation names allowed in layer sugar: the unary ops plus linear. */
Node *layer_activate(Parser *p, Call *c, Val *v, Node *x) {
  if (!v || (v->kind == V_NAME && (strcmp(v->name, "linear") == 0 ||
                                   strcmp(v->name, "None") == 0)))
    return x;
  if (v->kind == V_NAME) {
    static const OpKind acts[] = {OP_RELU, OP_SIGMOID, OP_TANH, OP_EXP};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
      if (strcmp(v->name, op_info[acts[i]].name) == 0)
        return parse_mk1(p, acts[i], x, NULL, v->loc);
    if (strcmp(v->name, "softmax") == 0) {
      Attrs a = {.axis = x->shape.rank - 1};
      return parse_mk1(p, OP_SOFTMAX, x, &a, v->loc);
    }
  }
  static const char *const names[] = {"relu", "sigmoid", "tanh", "exp", "softmax", "linear"};
  const char *near = v->kind == V_NAME ? call_nearest(v->name, names, 6) : NULL;
  if (near)
    parse_fail(p, v->loc, "%s: unknown activation '%s'; did you mean '%s'?", call_name(p, c),
               v->name, near);
  parse_fail(p, v->loc, "%s: unknown activation; use relu, sigmoid, tanh, exp, "
          "softmax or linear", call_name(p, c));
}

/* The end of dense and conv2d: <base>.bias of [units] (in y's dtype) added
 * unless use_bias=false, then the activation. */
static Node *bias_and_activation(Parser *p, Call *c, const char *base, Node *y, int64_t units) {
  Val *ub = call_kwarg(c, "use_bias");
  if (!ub || call_bool(p, c, ub)) {
    Shape bs = {1, {{units, 0}}};
    Node *b = layer_param(p, arena_printf(p->arena, "%s.bias", base), layer_dtype(y), &bs,
                        (Init){INIT_ZEROS, 0, 0}, c->fn->loc);
    Val *bi = call_kwarg(c, "bias_initializer");
    if (bi) call_init(p, b, bi);
    call_regularizer_arg(p, c, "bias_regularizer", b);
    y = parse_mk2(p, OP_ADD, y, b, c->fn->loc);
  }
  return layer_activate(p, c, call_kwarg(c, "activation"), y);
}

/* dense(x, units, activation=linear, use_bias=true,
 *       kernel_initializer=glorot_uniform, bias_initializer=zeros, name=...)
 * Keras Dense: kernel [in, units], bias [units]. */
Node *layer_dense(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  int64_t units = call_count(p, c, 1, "units", "the number of units");
  if (x->shape.rank < 1 || x->shape.d[x->shape.rank - 1].sym)
    parse_fail(p, c->fn->loc, "dense: the input's last dimension must be static");
  if (!dtype_is_float(x->dtype))
    parse_fail(p, c->fn->loc, "dense: the input must be floating-point, got %s",
            dtype_names[x->dtype]);
  const char *base = layer_name(p, c, "dense", &p->ndense);
  Shape ks = {2, {{x->shape.d[x->shape.rank - 1].n, 0}, {units, 0}}};
  Node *k = layer_param(p, arena_printf(p->arena, "%s.kernel", base), layer_dtype(x), &ks,
                      (Init){INIT_GLOROT_UNIFORM, 0, 0}, c->fn->loc);
  Val *ki = call_kwarg(c, "kernel_initializer");
  if (ki) call_init(p, k, ki);
  call_regularizer_arg(p, c, "kernel_regularizer", k);
  Node *y = parse_mk2(p, OP_MATMUL, x, k, c->fn->loc);
  return bias_and_activation(p, c, base, y, units);
}


/* embedding(ids, input_dim, output_dim,
 *           embeddings_initializer=uniform(-0.05, 0.05), name=...)
 * Keras Embedding: NAME.embeddings [input_dim, output_dim], and each i32 id
 * picks its row: ids.shape + [output_dim].  An id outside [0, input_dim)
 * gives a zero row (TF on CPU raises instead) and its gradient goes
 * nowhere; the table's gradient is a scatter-add of the rows. */
Node *layer_embedding(Parser *p, Call *c, OpKind op) {
  Node *ids = call_tensor(p, c, 0, NULL);
  int64_t rows = call_count(p, c, 1, "input_dim", "input_dim");
  int64_t cols = call_count(p, c, 2, "output_dim", "output_dim");
  if (ids->dtype != DT_I32)
    parse_fail(p, c->fn->loc, "embedding: the ids must be i32, got %s; use cast(ids, i32)",
               dtype_names[ids->dtype]);
  const char *base = layer_name(p, c, "embedding", &p->nembedding);
  Shape es = {2, {{rows, 0}, {cols, 0}}};
  Node *e = layer_param(p, arena_printf(p->arena, "%s.embeddings", base), DT_F32, &es,
                      (Init){INIT_UNIFORM, -0.05, 0.05}, c->fn->loc);
  Val *ei = call_kwarg(c, "embeddings_initializer");
  if (ei) call_init(p, e, ei);
  Node *s[2] = {e, ids};
  return parse_mk(p, op, s, 2, NULL, c->fn->loc);
}

/* ------------------------------------------------------------ windows */

/* n | [n, m]: one positive integer per spatial axis (Keras accepts both). */
static void pair_arg(Parser *p, Call *c, Val *v, int64_t *out, int64_t dflt, const char *what) {
  if (!v) {
    out[0] = out[1] = dflt;
    return;
  }
  double x[2];
  if (v->kind == V_NUM) {
    x[0] = x[1] = call_num(p, c, v, true);
  } else if (v->kind == V_LIST && v->lshape.rank == 1 && v->lshape.d[0].n == 2 &&
             !v->items[0].name && !v->items[1].name && v->items[0].is_int && v->items[1].is_int) {
    x[0] = v->items[0].v, x[1] = v->items[1].v;
  } else {
    parse_fail(p, v->loc, "%s: %s must be an integer or a list of two integers",
               call_name(p, c), what);
  }
  for (int i = 0; i < 2; i++) {
    if (x[i] < 1 || x[i] > 1 << 20)
      parse_fail(p, v->loc, "%s: %s must be positive, got %g", call_name(p, c), what, x[i]);
    out[i] = (int64_t)x[i];
  }
}

/* padding = valid | same | [top, bottom, left, right].  same is TF's rule:
 * out = ceil(in / stride), the total padding split with the odd one at the
 * bottom (right).  x must be NHWC with static spatial dims for same. */
static void padding_arg(Parser *p, Call *c, Val *v, const Node *x, Window *w) {
  memset(w->pad, 0, sizeof w->pad);
  if (!v || (v->kind == V_NAME && strcmp(v->name, "valid") == 0)) return;
  if (v->kind == V_NAME && strcmp(v->name, "same") == 0) {
    if (x->shape.rank != 4 || x->shape.d[1].sym || x->shape.d[2].sym) return;  /* the rule reports it */
    for (int i = 0; i < 2; i++) {
      int64_t in = x->shape.d[1 + i].n, s = w->stride[i];
      int64_t out = (in + s - 1) / s, eff = (w->k[i] - 1) * w->dil[i] + 1;
      int64_t total = (out - 1) * s + eff - in;
      if (total < 0) total = 0;
      w->pad[2 * i] = total / 2, w->pad[2 * i + 1] = total - total / 2;
    }
    return;
  }
  if (v->kind == V_LIST && v->lshape.rank == 1 && v->lshape.d[0].n == 4) {
    for (int i = 0; i < 4; i++) {
      Item *it = &v->items[i];
      if (it->name || !it->is_int || it->v < 0 || it->v > 1 << 20)
        parse_fail(p, it->loc, "%s: padding amounts must be non-negative integers",
                   call_name(p, c));
      w->pad[i] = (int64_t)it->v;
    }
    return;
  }
  parse_fail(p, v->loc, "%s: padding must be valid, same or [top, bottom, left, right]",
             call_name(p, c));
}

static Node *window_node(Parser *p, Call *c, OpKind op, Node *x, const Window *w) {
  Attrs a = {.win = *w};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* im2col(x, kernel, strides=1, dilation=1, padding=valid) */
Node *layer_im2col(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *k = call_arg(c, 1, "kernel");
  if (!k) parse_fail(p, c->fn->loc, "im2col: missing kernel=[height, width]");
  Window w;
  pair_arg(p, c, k, w.k, 1, "kernel");
  pair_arg(p, c, call_kwarg(c, "strides"), w.stride, 1, "strides");
  pair_arg(p, c, call_kwarg(c, "dilation"), w.dil, 1, "dilation");
  padding_arg(p, c, call_kwarg(c, "padding"), x, &w);
  return window_node(p, c, op, x, &w);
}

/* maxpool2d / avgpool2d(x, pool=2, strides=pool, padding=valid): Keras
 * MaxPooling2D / AveragePooling2D, whose strides default to the pool size. */
Node *layer_pool(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *k = call_arg(c, 1, "pool");
  if (!k) k = call_kwarg(c, "pool_size");
  Window w;
  pair_arg(p, c, k, w.k, 2, "pool");
  Val *st = call_kwarg(c, "strides");
  if (st && st->kind == V_NAME && strcmp(st->name, "None") == 0) st = NULL;
  if (st) pair_arg(p, c, st, w.stride, 1, "strides");
  else w.stride[0] = w.k[0], w.stride[1] = w.k[1];
  w.dil[0] = w.dil[1] = 1;
  padding_arg(p, c, call_kwarg(c, "padding"), x, &w);
  return window_node(p, c, op, x, &w);
}

/* global_avgpool2d(x): Keras GlobalAveragePooling2D, the mean over height
 * and width: [b, h, w, c] -> [b, c]. */
Node *layer_global_avgpool(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  if (x->shape.rank != 4)
    parse_fail(p, c->fn->loc, "global_avgpool2d needs an NHWC tensor [batch, height, "
               "width, channels], got rank %d", x->shape.rank);
  Attrs a = {.axes = 6u};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* Bilinear resampling of n values to n*s along one axis, as the [n*s, n]
 * matrix of its weights: TF's resize_bilinear with half_pixel_centers,
 * which Keras 2's UpSampling2D(interpolation='bilinear') runs (through
 * tf.image.resize).  Output i samples the input at (i + 0.5) / s - 0.5,
 * between rows floor and ceil of it clamped to [0, n-1]: for s = 2,
 * rows 0.75 x0 + 0.25 x1, 0.25 x0 + 0.75 x1, ..., and the end rows copy
 * the end values. */
static Node *bilinear_weights(Parser *p, DType t, int64_t n, int64_t s, Loc loc) {
  Shape ws = {2, {{n * s, 0}, {n, 0}}};
  Node *w = graph_leaf(p->g, OP_CONST, NULL, t, &ws, loc);
  w->a.values = arena_alloc(p->arena, sizeof(double) * (size_t)(n * s * n));
  for (int64_t i = 0; i < n * s; i++) {
    double at = ((double)i + 0.5) / (double)s - 0.5, lo = floor(at), f = at - lo;
    int64_t a = lo < 0 ? 0 : (int64_t)lo, b = (int64_t)ceil(at) > n - 1 ? n - 1 : (int64_t)ceil(at);
    w->a.values[i * n + a] += 1 - f;
    w->a.values[i * n + b] += f;
  }
  w->flags |= N_USED;
  return w;
}

/* upsample2d(x, size=2, interpolation=nearest): Keras UpSampling2D.
 * nearest: [b,h,1,w,1,c] broadcast to [b,h,sh,w,sw,c] and read as
 * [b,h*sh,w*sw,c]; its gradient (a sum over each block) comes from
 * broadcast's rule.  bilinear: linear in x and separable, so it is two
 * products with constant weight matrices (bilinear_weights) on x read as
 * [b, c, h, w] - Wh @ X @ Ww^T - whose gradients and second gradients are
 * matmul's and transpose's. */
Node *layer_upsample(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  int64_t sz[2];
  pair_arg(p, c, call_arg(c, 1, "size"), sz, 2, "size");
  if (x->shape.rank != 4 || x->shape.d[1].sym || x->shape.d[2].sym)
    parse_fail(p, c->fn->loc, "upsample2d needs an NHWC tensor with static height and "
               "width");
  const Dim *d = x->shape.d;
  Val *iv = call_kwarg(c, "interpolation");
  bool bilinear = false;
  if (iv && iv->kind == V_NAME && !strcmp(iv->name, "bilinear")) bilinear = true;
  else if (iv && !(iv->kind == V_NAME && !strcmp(iv->name, "nearest")))
    parse_fail(p, iv->loc, "upsample2d: interpolation must be nearest or bilinear");
  if (bilinear) {
    Loc loc = c->fn->loc;
    if (!dtype_is_float(x->dtype))
      parse_fail(p, loc, "upsample2d: bilinear interpolation needs a floating-point input, "
                 "got %s", dtype_names[x->dtype]);
    Attrs to_chw = {.perm = {0, 3, 1, 2}}, to_hwc = {.perm = {0, 2, 3, 1}};
    Node *xc = parse_mk1(p, OP_TRANSPOSE, x, &to_chw, loc);          /* [b, c, h, w] */
    Node *wh = bilinear_weights(p, x->dtype, d[1].n, sz[0], loc);
    Node *ww = bilinear_weights(p, x->dtype, d[2].n, sz[1], loc);
    Node *rows = parse_mk2(p, OP_MATMUL, wh, xc, loc);              /* [b, c, h*sh, w] */
    Node *s[2] = {rows, ww};
    Attrs tb = {.tb = true};
    Node *y = parse_mk(p, OP_MATMUL, s, 2, &tb, loc);                /* [b, c, h*sh, w*sw] */
    return parse_mk1(p, OP_TRANSPOSE, y, &to_hwc, loc);
  }
  Shape s6 = {6, {d[0], d[1], {1, 0}, d[2], {1, 0}, d[3]}};
  Node *r = call_reshape(p, x, &s6, c->fn->loc);
  Attrs a = {.to = {6, {d[0], d[1], {sz[0], 0}, d[2], {sz[1], 0}, d[3]}}};
  Node *b = parse_mk1(p, OP_BROADCAST, r, &a, c->fn->loc);
  Shape s4 = {4, {d[0], {d[1].n * sz[0], 0}, {d[2].n * sz[1], 0}, d[3]}};
  return call_reshape(p, b, &s4, c->fn->loc);
}

/* pad(x, [[before, after], ...]): tf.pad with zeros, one pair per axis; a
 * symbolic axis cannot be padded.  The values are placed into zeros of the
 * padded shape, which is what unslice computes. */
Node *layer_pad(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *v = call_arg(c, 1, "paddings");
  int r = x->shape.rank;
  if (!v || v->kind != V_LIST || v->lshape.rank != 2 || v->lshape.d[0].n != r ||
      v->lshape.d[1].n != 2)
    parse_fail(p, v ? v->loc : c->fn->loc, "pad: paddings must be a [%d, 2] list of "
               "[before, after] pairs, one per axis", r);
  Attrs a = {.to = x->shape};
  for (int i = 0; i < r; i++) {
    Item *b = &v->items[2 * i], *e = &v->items[2 * i + 1];
    for (Item *it = b; it <= e; it++)
      if (it->name || !it->is_int || it->v < 0 || it->v > 1 << 20)
        parse_fail(p, it->loc, "pad: padding amounts must be non-negative integers");
    if (x->shape.d[i].sym && (b->v || e->v))
      parse_fail(p, b->loc, "pad: cannot pad the symbolic dimension '%s'",
                 p->g->sym[x->shape.d[i].sym]);
    a.begin[i] = (int64_t)b->v, a.step[i] = 1;
    a.end[i] = x->shape.d[i].sym ? INT64_MAX : a.begin[i] + x->shape.d[i].n;
    if (!x->shape.d[i].sym) a.to.d[i].n += (int64_t)(b->v + e->v);
  }
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* conv2d(x, w, strides=1, padding=valid, dilation=1) as tf.nn.conv2d with an
 * NHWC input and a [kh, kw, cin, cout] kernel, or the Keras layer
 * conv2d(x, filters, kernel, strides=1, padding=valid, dilation=1,
 * activation=linear, use_bias=true, kernel_initializer=glorot_uniform,
 * bias_initializer=zeros, name=...) creating <name>.kernel and <name>.bias.
 * Both become im2col (patches as rows) and one matrix product with the
 * kernel read as [kh*kw*cin, cout]: the products in both directions are
 * single large GEMMs, and the patch buffer is an ordinary planned value. */
Node *layer_conv2d(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  Val *wv = c->npos > 1 && c->args[1].kind == V_NODE ? call_arg(c, 1, NULL) : NULL;
  Val *filters = wv ? NULL : call_arg(c, 1, "filters");
  if (!wv && !filters)
    parse_fail(p, c->fn->loc, "conv2d: expected conv2d(x, kernel_tensor, ...) or the "
               "layer form conv2d(x, filters=32, kernel=3, ...)");
  if (x->shape.rank != 4)
    parse_fail(p, c->fn->loc, "conv2d needs an NHWC tensor [batch, height, width, "
               "channels], got rank %d", x->shape.rank);
  if (x->shape.d[3].sym)
    parse_fail(p, c->fn->loc, "conv2d: the input's channel dimension must be static");
  int64_t cin = x->shape.d[3].n, cout;
  Window w;
  Node *k = NULL;
  const char *base = NULL;
  if (wv) {
    k = wv->node;
    char b[SHAPE_STR_MAX];
    if (k->shape.rank != 4 || k->shape.d[0].sym || k->shape.d[1].sym ||
        k->shape.d[2].sym || k->shape.d[3].sym)
      parse_fail(p, wv->loc, "conv2d: the kernel must be a static [height, width, "
                 "in_channels, out_channels] tensor, got %s",
                 shape_str(p->g, &k->shape, b, sizeof b));
    if (k->shape.d[2].n != cin)
      parse_fail(p, wv->loc, "conv2d: the kernel expects %lld input channels but the "
                 "input has %lld", (long long)k->shape.d[2].n, (long long)cin);
    w.k[0] = k->shape.d[0].n, w.k[1] = k->shape.d[1].n;
    cout = k->shape.d[3].n;
  } else {
    double f = call_num(p, c, filters, true);
    if (f < 1 || f > 1 << 20)
      parse_fail(p, filters->loc, "conv2d: filters must be a positive integer, got %g", f);
    cout = (int64_t)f;
    Val *ks = call_arg(c, 2, "kernel");
    if (!ks) ks = call_kwarg(c, "kernel_size");
    if (!ks) parse_fail(p, c->fn->loc, "conv2d: missing kernel=3 (or [height, width])");
    pair_arg(p, c, ks, w.k, 1, "kernel");
    base = layer_name(p, c, "conv2d", &p->nconv);
  }
  pair_arg(p, c, call_kwarg(c, "strides"), w.stride, 1, "strides");
  Val *dl = call_kwarg(c, "dilation");
  if (!dl) dl = call_kwarg(c, "dilation_rate");
  pair_arg(p, c, dl, w.dil, 1, "dilation");
  padding_arg(p, c, call_kwarg(c, "padding"), x, &w);
  if (!k) {
    Shape ks = {4, {{w.k[0], 0}, {w.k[1], 0}, {cin, 0}, {cout, 0}}};
    k = layer_param(p, arena_printf(p->arena, "%s.kernel", base), layer_dtype(x), &ks,
                  (Init){INIT_GLOROT_UNIFORM, 0, 0}, c->fn->loc);
    Val *ki = call_kwarg(c, "kernel_initializer");
    if (ki) call_init(p, k, ki);
    call_regularizer_arg(p, c, "kernel_regularizer", k);
  }
  Node *cols = window_node(p, c, OP_IM2COL, x, &w);
  const Dim *d = cols->shape.d;
  Dim rows = {d[0].n * d[1].n * d[2].n, d[0].sym};
  Shape cs = {2, {rows, d[3]}}, kmat = {2, {d[3], {cout, 0}}};
  Node *y = parse_mk2(p, OP_MATMUL, call_reshape(p, cols, &cs, c->fn->loc),
                      call_reshape(p, k, &kmat, c->fn->loc), c->fn->loc);
  Shape ys = {4, {d[0], d[1], d[2], {cout, 0}}};
  y = call_reshape(p, y, &ys, c->fn->loc);
  if (wv) return y;
  return bias_and_activation(p, c, base, y, cout);
}

/* padding = valid | same of conv2d_transpose, and its output length along
 * one axis: Keras' deconv_output_length.  Without output_padding, valid
 * gives in*s + max(k - s, 0) and same in*s; with it, (in - 1)*s + k -
 * 2*pad + output_padding, pad being k/2 for same and 0 for valid. */
static int64_t transpose_length(int64_t in, int64_t k, int64_t s, bool same, int64_t outpad) {
  if (outpad < 0) return same ? in * s : in * s + (k > s ? k - s : 0);
  return (in - 1) * s + k - 2 * (same ? k / 2 : 0) + outpad;
}

/* conv2d_transpose(x, w, strides=1, padding=valid, output_padding=None) as
 * tf.nn.conv2d_transpose with a [kh, kw, out_channels, in_channels] kernel
 * and the output size Keras computes, or the Keras 2 Conv2DTranspose layer
 * conv2d_transpose(x, filters, kernel, strides=1, padding=valid,
 * output_padding=None, activation=linear, use_bias=true,
 * kernel_initializer=glorot_uniform, bias_initializer=zeros, name=...)
 * making NAME.kernel [kh, kw, filters, in_channels] (Keras' layout, so its
 * fans and Glorot limits are Keras') and NAME.bias [filters].
 *
 * It is the adjoint of conv2d over the output: one matrix product of the
 * input's pixels by the kernel read as [kh*kw*out, in], transposed, gives
 * each input pixel's patch, and col2im adds the patches into the output
 * (the path of conv2d's input gradient, so no kernel of its own).  The
 * padding is TF's for a convolution of the output (same: the odd one at
 * the bottom and right), which must map the output back to the input's
 * size, as tf.nn.conv2d_transpose checks. */
Node *layer_conv2d_transpose(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  Val *wv = c->npos > 1 && c->args[1].kind == V_NODE ? call_arg(c, 1, NULL) : NULL;
  Val *filters = wv ? NULL : call_arg(c, 1, "filters");
  Loc loc = c->fn->loc;
  if (!wv && !filters)
    parse_fail(p, loc, "conv2d_transpose: expected conv2d_transpose(x, kernel_tensor, ...) or "
               "the layer form conv2d_transpose(x, filters=32, kernel=3, ...)");
  char b[SHAPE_STR_MAX];
  if (x->shape.rank != 4 || x->shape.d[1].sym || x->shape.d[2].sym || x->shape.d[3].sym)
    parse_fail(p, loc, "conv2d_transpose needs an NHWC tensor [batch, height, width, channels] "
               "with static height, width and channels, got %s",
               shape_str(p->g, &x->shape, b, sizeof b));
  if (!dtype_is_float(x->dtype))
    parse_fail(p, loc, "conv2d_transpose: the input must be floating-point, got %s",
               dtype_names[x->dtype]);
  int64_t cin = x->shape.d[3].n, cout;
  Window w = {.dil = {1, 1}};
  Node *k = NULL;
  const char *base = NULL;
  if (wv) {
    k = wv->node;
    if (k->shape.rank != 4 || k->shape.d[0].sym || k->shape.d[1].sym || k->shape.d[2].sym ||
        k->shape.d[3].sym)
      parse_fail(p, wv->loc, "conv2d_transpose: the kernel must be a static [height, width, "
                 "out_channels, in_channels] tensor, got %s",
                 shape_str(p->g, &k->shape, b, sizeof b));
    if (k->shape.d[3].n != cin)
      parse_fail(p, wv->loc, "conv2d_transpose: the kernel [height, width, out_channels, "
                 "in_channels] expects %lld input channels but the input has %lld",
                 (long long)k->shape.d[3].n, (long long)cin);
    w.k[0] = k->shape.d[0].n, w.k[1] = k->shape.d[1].n;
    cout = k->shape.d[2].n;
  } else {
    double f = call_num(p, c, filters, true);
    if (f < 1 || f > 1 << 20)
      parse_fail(p, filters->loc, "conv2d_transpose: filters must be a positive integer, got %g", f);
    cout = (int64_t)f;
    Val *ks = call_arg(c, 2, "kernel");
    if (!ks) ks = call_kwarg(c, "kernel_size");
    if (!ks) parse_fail(p, loc, "conv2d_transpose: missing kernel=3 (or [height, width])");
    pair_arg(p, c, ks, w.k, 1, "kernel");
  }
  pair_arg(p, c, call_kwarg(c, "strides"), w.stride, 1, "strides");
  Val *pv = call_kwarg(c, "padding");
  bool same = pv && pv->kind == V_NAME && !strcmp(pv->name, "same");
  if (pv && !same && !(pv->kind == V_NAME && !strcmp(pv->name, "valid")))
    parse_fail(p, pv->loc, "conv2d_transpose: padding must be valid or same (Keras)");
  Val *ov = call_kwarg(c, "output_padding");
  int64_t outpad[2] = {-1, -1};
  if (ov && !(ov->kind == V_NAME && !strcmp(ov->name, "None"))) {
    double v[2];
    if (ov->kind == V_NUM) {
      v[0] = v[1] = call_num(p, c, ov, true);
    } else if (ov->kind == V_LIST && ov->lshape.rank == 1 && ov->lshape.d[0].n == 2 &&
               !ov->items[0].name && !ov->items[1].name && ov->items[0].is_int &&
               ov->items[1].is_int) {
      v[0] = ov->items[0].v, v[1] = ov->items[1].v;
    } else {
      parse_fail(p, ov->loc, "conv2d_transpose: output_padding must be an integer or a list "
                 "of two integers");
    }
    for (int i = 0; i < 2; i++) {
      /* Keras: "Stride ... must be greater than output padding" */
      if (v[i] < 0 || v[i] >= (double)w.stride[i])
        parse_fail(p, ov->loc, "conv2d_transpose: output_padding %g must lie in [0, %lld), "
                   "below the stride", v[i], (long long)w.stride[i]);
      outpad[i] = (int64_t)v[i];
    }
  }
  Shape to = {4, {x->shape.d[0], {0, 0}, {0, 0}, {cout, 0}}};
  for (int i = 0; i < 2; i++) {
    int64_t in = x->shape.d[1 + i].n, kk = w.k[i], s = w.stride[i];
    int64_t out = transpose_length(in, kk, s, same, outpad[i]);
    if (out < 1 || out > MAX_ELEMENTS)
      parse_fail(p, loc, "conv2d_transpose: the output would have %lld %s", (long long)out,
                 i ? "columns" : "rows");
    to.d[1 + i].n = out;
    int64_t total = 0;
    if (same) {
      total = ((out + s - 1) / s - 1) * s + kk - out;
      if (total < 0) total = 0;
    }
    w.pad[2 * i] = total / 2, w.pad[2 * i + 1] = total - total / 2;
  }
  int64_t oh = 0, ow = 0;
  if (!window_out(&w, &to, &oh, &ow) || oh != x->shape.d[1].n || ow != x->shape.d[2].n)
    parse_fail(p, ov ? ov->loc : loc, "conv2d_transpose: an output of %lldx%lld, which a "
               "stride-%lldx%lld %s convolution maps to %lldx%lld, not the input's %lldx%lld; "
               "choose another output_padding", (long long)to.d[1].n, (long long)to.d[2].n,
               (long long)w.stride[0], (long long)w.stride[1], same ? "same" : "valid",
               (long long)oh, (long long)ow, (long long)x->shape.d[1].n,
               (long long)x->shape.d[2].n);
  if (!k) {
    base = layer_name(p, c, "conv2d_transpose", &p->nconv_transpose);
    Shape ks = {4, {{w.k[0], 0}, {w.k[1], 0}, {cout, 0}, {cin, 0}}};
    k = layer_param(p, arena_printf(p->arena, "%s.kernel", base), layer_dtype(x), &ks,
                    (Init){INIT_GLOROT_UNIFORM, 0, 0}, loc);
    Val *ki = call_kwarg(c, "kernel_initializer");
    if (ki) call_init(p, k, ki);
  }
  const Dim *d = x->shape.d;
  Dim rows = {d[0].n * d[1].n * d[2].n, d[0].sym};
  int64_t patch = w.k[0] * w.k[1] * cout;
  Shape xs = {2, {rows, {cin, 0}}}, kmat = {2, {{patch, 0}, {cin, 0}}};
  Node *s2[2] = {call_reshape(p, x, &xs, loc), call_reshape(p, k, &kmat, loc)};
  Attrs tb = {.tb = true};
  Node *cols = parse_mk(p, OP_MATMUL, s2, 2, &tb, loc);
  Shape cs = {4, {d[0], d[1], d[2], {patch, 0}}};
  Attrs ca = {.win = w, .to = to};
  Node *y = parse_mk1(p, OP_COL2IM, call_reshape(p, cols, &cs, loc), &ca, loc);
  if (wv) return y;
  return bias_and_activation(p, c, base, y, cout);
}

/* col2im(x, kernel, strides=1, dilation=1, padding=valid, shape=[b, h, w,
 * c]): im2col's adjoint, each row of patch values [b, oh, ow, kh*kw*c]
 * added into the shape's image; written by gradc dump --format nn for
 * conv2d_transpose, so that the dump reads back.  Explicit padding only:
 * same would be the image's, which the op does not see. */
Node *layer_col2im(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *k = call_kwarg(c, "kernel"), *sv = call_kwarg(c, "shape"), *pv = call_kwarg(c, "padding");
  if (!k || !sv)
    parse_fail(p, c->fn->loc, "col2im: needs kernel=[height, width] and shape=[batch, height, "
               "width, channels]");
  Attrs a = {.to = call_shape(p, c, sv)};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n == -1) parse_fail(p, sv->loc, "col2im: -1 is not allowed in the shape");
  pair_arg(p, c, k, a.win.k, 1, "kernel");
  pair_arg(p, c, call_kwarg(c, "strides"), a.win.stride, 1, "strides");
  pair_arg(p, c, call_kwarg(c, "dilation"), a.win.dil, 1, "dilation");
  if (pv && pv->kind == V_NAME && !strcmp(pv->name, "same"))
    parse_fail(p, pv->loc, "col2im: padding must be valid or [top, bottom, left, right]");
  padding_arg(p, c, pv, x, &a.win);
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* ------------------------------------------------------------ train vs inference */

/* dropout_mask's and dropout's rate= and seed= */
static Attrs dropout_attrs(Parser *p, Call *c) {
  Val *r = call_arg(c, 1, "rate");
  if (!r) parse_fail(p, c->fn->loc, "%s: missing the rate", call_name(p, c));
  Attrs a = {.lo = call_num(p, c, r, false)};
  if (!(a.lo >= 0 && a.lo < 1))
    parse_fail(p, r->loc, "%s: the rate must lie in [0, 1), got %g", call_name(p, c), a.lo);
  Val *s = call_kwarg(c, "seed");
  if (s) {
    double v = call_num(p, c, s, true);
    if (v < 0 || v > 1e15) parse_fail(p, s->loc, "%s: seed must be a non-negative integer", call_name(p, c));
    a.seed = (int64_t)v;
  }
  return a;
}

/* dropout_mask(x, rate, seed=0): see ops.h; the primitive under dropout. */
Node *layer_dropout_mask(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Attrs a = dropout_attrs(p, c);
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* dropout(x, rate, seed=k): Keras Dropout.  In a train step each element is
 * zeroed with probability rate and the rest scaled by 1/(1-rate); forward
 * and eval pass x through.  The mask is a pure function of (seed, step,
 * index), the step being a step counter (optimizer.c), so runs repeat exactly;
 * the k-th dropout of a model gets seed k unless one is given.  Written out:
 * train_select(x * dropout_mask(x, rate, seed), x). */
Node *layer_dropout(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  int k = p->ndropout++;
  Attrs a = dropout_attrs(p, c);
  if (!call_kwarg(c, "seed")) a.seed = k;
  /* In a loop's body the mask is the same at every step (as Keras' cells
   * keep theirs): drawn from x's shape alone, it is computed once before
   * the loop, and the gradient reads it there, nothing saved per step. */
  Node *shape = x;
  if (p->g->cur_loop) {
    shape = graph_scalar(p->g, 0, x->dtype, c->fn->loc);
    Attrs to = {.to = x->shape};
    if (x->shape.rank) shape = parse_mk1(p, OP_BROADCAST, shape, &to, c->fn->loc);
  }
  Node *m = parse_mk1(p, OP_DROPOUT_MASK, shape, &a, c->fn->loc);
  Node *s[2] = {parse_mk2(p, OP_MUL, x, m, c->fn->loc), x};
  return parse_mk(p, OP_TRAIN_SELECT, s, 2, NULL, c->fn->loc);
}

/* batch_norm(x, axis=-1, momentum=0.99, epsilon=1e-3, name=...): Keras
 * BatchNormalization.  Parameters <name>.gamma (ones) and <name>.beta
 * (zeros); non-trainable state <name>.moving_mean (zeros) and
 * <name>.moving_variance (ones); all four in x's dtype.  A train step normalises with the batch
 * statistics over every axis but `axis` (biased variance) and moves the
 * state: moving = moving * momentum + batch * (1 - momentum), as Keras'
 * non-fused path (Keras 3 alike); forward and eval normalise with the
 * moving statistics.  Written out: train_select(batch form, moving form)
 * and two update statements.
 * sync=true: the batch statistics are those of the global batch of a
 * data-parallel step (PyTorch SyncBatchNorm): the mean, then the variance
 * around that mean, each a replica_mean of the replica's own, so N
 * replicas normalise as one process would the whole batch; on one
 * process, or without data parallelism, the same as sync=false. */
Node *layer_batch_norm(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  int r = x->shape.rank;
  if (r < 2) parse_fail(p, c->fn->loc, "batch_norm needs a tensor of rank >= 2");
  if (!dtype_is_float(x->dtype))
    parse_fail(p, c->fn->loc, "batch_norm: the input must be floating-point, got %s",
               dtype_names[x->dtype]);
  int ax = call_axis(p, c, call_arg(c, 1, "axis"), r, -1);
  if (x->shape.d[ax].sym)
    parse_fail(p, c->fn->loc, "batch_norm: the normalised axis %d must be static", ax);
  Val *mv = call_kwarg(c, "momentum"), *ev = call_kwarg(c, "epsilon"), *sv = call_kwarg(c, "sync");
  bool sync = sv && call_bool(p, c, sv);
  double momentum = mv ? call_num(p, c, mv, false) : 0.99, eps = ev ? call_num(p, c, ev, false) : 1e-3;
  if (!(momentum >= 0 && momentum < 1))
    parse_fail(p, mv->loc, "batch_norm: momentum must lie in [0, 1), got %g", momentum);
  if (!(eps > 0)) parse_fail(p, ev->loc, "batch_norm: epsilon must be positive, got %g", eps);
  const char *base = layer_name(p, c, "batch_normalization", &p->nbn);
  Loc loc = c->fn->loc;
  int64_t C = x->shape.d[ax].n;
  Shape cs = {1, {{C, 0}}}, ks = {.rank = r};
  for (int i = 0; i < r; i++) ks.d[i] = i == ax ? (Dim){C, 0} : (Dim){1, 0};
  Node *gamma = layer_param(p, arena_printf(p->arena, "%s.gamma", base), x->dtype, &cs,
                          (Init){INIT_ONES, 0, 0}, loc);
  Node *beta = layer_param(p, arena_printf(p->arena, "%s.beta", base), x->dtype, &cs,
                         (Init){INIT_ZEROS, 0, 0}, loc);
  Node *st[2];
  static const char *const what[2] = {"moving_mean", "moving_variance"};
  for (int k = 0; k < 2; k++) {
    st[k] = parse_shared_leaf(p, OP_STATE, arena_printf(p->arena, "%s.%s", base, what[k]), x->dtype, &cs, loc);
    st[k]->a.init = (Init){k ? INIT_ONES : INIT_ZEROS, 0, 0};
  }
  Node *g = call_reshape(p, gamma, &ks, loc), *b = call_reshape(p, beta, &ks, loc);
  Node *e = parse_scalar(p, eps, false, loc);
  Attrs red = {.axes = (uint32_t)((1u << r) - 1) & ~(1u << ax), .keepdims = true};
  /* train: batch statistics */
  Node *mean = parse_mk1(p, OP_MEAN, x, &red, loc);
  if (sync) mean = parse_mk1(p, OP_REPLICA_MEAN, mean, NULL, loc);
  Node *d = parse_mk2(p, OP_SUB, x, mean, loc);
  Node *var = parse_mk1(p, OP_MEAN, parse_mk1(p, OP_SQUARE, d, NULL, loc), &red, loc);
  if (sync) var = parse_mk1(p, OP_REPLICA_MEAN, var, NULL, loc);
  Node *sd = parse_mk1(p, OP_SQRT, parse_mk2(p, OP_ADD, var, e, loc), NULL, loc);
  Node *yt = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, parse_mk2(p, OP_DIV, d, sd, loc), g, loc), b, loc);
  /* inference: moving statistics */
  Node *mm = call_reshape(p, st[0], &ks, loc), *mvv = call_reshape(p, st[1], &ks, loc);
  Node *sdi = parse_mk1(p, OP_SQRT, parse_mk2(p, OP_ADD, mvv, e, loc), NULL, loc);
  Node *yi = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, parse_mk2(p, OP_DIV,
                        parse_mk2(p, OP_SUB, x, mm, loc), sdi, loc), g, loc), b, loc);
  Node *s2[2] = {yt, yi};
  Node *y = parse_mk(p, OP_TRAIN_SELECT, s2, 2, NULL, loc);
  /* the moving averages, after the step */
  Node *batch[2] = {call_reshape(p, mean, &cs, loc), call_reshape(p, var, &cs, loc)};
  for (int k = 0; k < 2; k++)
    parse_update_ema(p, st[k], momentum, parse_mk2(p, OP_MUL, batch[k], parse_scalar(p, 1 - momentum, false, loc), loc),
                     loc);
  return y;
}
