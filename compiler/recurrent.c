/*
 * recurrent.c - Keras' recurrent layers as loops: simple_rnn, lstm, gru.
 *
 * Each is one scan (compiler.h: Scan) over the time axis of a [batch,
 * time, features] input with the cell as its body, and Keras 2's
 * parameters (NAME.kernel [features, g*units], NAME.recurrent_kernel
 * [units, g*units], NAME.bias), initializers and defaults:
 *
 *   simple_rnn  h = act(x K + h R + b)
 *   lstm        z = x K + h R + b, gates i f c o in Keras' order;
 *               c = f c + i act(z_c), h = o act(c); the forget gate's
 *               bias starts at 1 (unit_forget_bias)
 *   gru         reset_after (Keras 2's default), bias [2, 3*units]:
 *               z = rec(x K_z + b0_z + h R_z + b1_z), r likewise,
 *               h = z h + (1 - z) act(x K_h + b0_h + r (h R_h + b1_h))
 *
 * act defaults to tanh and rec to sigmoid.  The input products x K of all
 * time steps become one product before the loop (hoist.c); only h R runs
 * per step.  dropout and recurrent_dropout draw one mask per train step
 * for the inputs and one for the state, the same at every time step, as
 * Keras' cells do; the input mask is applied to the whole sequence before
 * the loop.  go_backwards reads the sequence from its end and returns the
 * outputs in the order they were computed (Keras).  The initial state is
 * zeros.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

enum { SIMPLE_RNN, LSTM, GRU };
static const char *const kinds[] = {"simple_rnn", "lstm", "gru"};
static const int ngates[] = {1, 4, 3};

/* v as a tensor of shape s (a broadcast scalar: never stored) */
static Node *filled(Parser *p, double v, DType t, const Shape *s, Loc loc) {
  Node *k = graph_scalar(p->g, v, t, loc);
  if (!s->rank) return k;
  Attrs a = {.to = *s};
  return parse_mk1(p, OP_BROADCAST, k, &a, loc);
}

/* x[..., from:to] along axis, everything of the other axes */
static Node *take(Parser *p, Node *x, int axis, int64_t from, int64_t to, int64_t step,
                  Loc loc) {
  Attrs a = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    a.begin[i] = 0, a.step[i] = 1;
    a.end[i] = x->shape.d[i].sym ? INT64_MAX : x->shape.d[i].n;
  }
  a.begin[axis] = from, a.end[axis] = to, a.step[axis] = step;
  return parse_mk1(p, OP_SLICE, x, &a, loc);
}

static Node *gate(Parser *p, Node *z, int k, int64_t units, Loc loc) {
  int last = z->shape.rank - 1;
  if (z->shape.d[last].n == units) return z;
  return take(p, z, last, k * units, (k + 1) * units, 1, loc);
}

/* activation=NAME, or the default op */
static Node *act(Parser *p, Call *c, const char *key, OpKind dflt, Node *x) {
  Val *v = call_kwarg(c, key);
  return v ? layer_activate(p, c, v, x) : parse_mk1(p, dflt, x, NULL, x->loc);
}

static double rate_arg(Parser *p, Call *c, const char *key) {
  Val *v = call_kwarg(c, key);
  if (!v) return 0;
  double r = call_num(p, c, v, false);
  if (!(r >= 0 && r < 1))
    parse_fail(p, v->loc, "%s: %s must lie in [0, 1), got %g", call_name(p, c), key, r);
  return r;
}

static bool flag_arg(Parser *p, Call *c, const char *key, bool dflt) {
  Val *v = call_kwarg(c, key);
  return v ? call_bool(p, c, v) : dflt;
}

/* A dropout mask of shape s (keep ? 1/(1-rate) : 0), drawn once per train
 * step: the k-th dropout of the model gets seed k, or seed= plus k. */
static Node *drop_mask(Parser *p, Call *c, double rate, const Shape *s, DType t, Loc loc) {
  Attrs a = {.lo = rate, .seed = p->ndropout++};
  Val *sv = call_kwarg(c, "seed");
  if (sv) a.seed += (int64_t)call_num(p, c, sv, true);
  return parse_mk1(p, OP_DROPOUT_MASK, filled(p, 0, t, s, loc), &a, loc);
}

/* train_select(x * m, x): m in train steps only */
static Node *apply_mask(Parser *p, Node *x, Node *m, Loc loc) {
  Node *sel[2] = {parse_mk2(p, OP_MUL, x, m, loc), x};
  return parse_mk(p, OP_TRAIN_SELECT, sel, 2, NULL, loc);
}

/* A layer's arguments, read once for both directions of a bidirectional
 * layer. */
typedef struct Spec {
  int kind;
  int64_t units;
  bool seqs, back, bias;
  double rate, rrate;
} Spec;

/* One direction: its parameters under base, the loop, the output. */
static Node *direction(Parser *p, Call *c, const Spec *sp, Node *x, const char *base, bool back) {
  Loc loc = c->fn->loc;
  int kind = sp->kind, g = ngates[kind];
  int64_t units = sp->units;
  DType t = layer_dtype(x);
  Dim batch = x->shape.d[0], time = x->shape.d[1];
  int64_t features = x->shape.d[2].n;

  Shape ks = {2, {{features, 0}, {g * units, 0}}}, rs = {2, {{units, 0}, {g * units, 0}}};
  Node *kernel = layer_param(p, arena_printf(p->arena, "%s.kernel", base), t, &ks,
                             (Init){INIT_GLOROT_UNIFORM, 0, 0}, loc);
  Val *v = call_kwarg(c, "kernel_initializer");
  if (v) call_init(p, kernel, v);
  Node *rkernel = layer_param(p, arena_printf(p->arena, "%s.recurrent_kernel", base), t, &rs,
                              (Init){INIT_ORTHOGONAL, 1, 0}, loc);
  if ((v = call_kwarg(c, "recurrent_initializer"))) call_init(p, rkernel, v);
  Node *bias = NULL;
  if (sp->bias) {
    Shape bs = kind == GRU ? (Shape){2, {{2, 0}, {g * units, 0}}} : (Shape){1, {{g * units, 0}}};
    bias = layer_param(p, arena_printf(p->arena, "%s.bias", base), t, &bs,
                       (Init){INIT_ZEROS, 0, 0}, loc);
    Val *bi = call_kwarg(c, "bias_initializer");
    bool forget = kind == LSTM && flag_arg(p, c, "unit_forget_bias", true);
    if (bi && forget)
      parse_fail(p, bi->loc, "lstm: with a bias_initializer, say unit_forget_bias=false "
                 "(Keras would mix the two)");
    if (bi) call_init(p, bias, bi);
    if (forget) {
      double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(4 * units));
      for (int64_t i = units; i < 2 * units; i++) d[i] = 1;
      bias->a.init = (Init){INIT_VALUES, 0, 0};
      bias->a.values = d;
    }
  }

  /* the sequence as the loop reads it */
  Node *xs = x;
  if (back) {
    if (time.sym)
      parse_fail(p, loc, "%s: go_backwards needs a static number of time steps", kinds[kind]);
    xs = take(p, x, 1, time.n - 1, -1, -1, loc);
  }
  Shape bf = {2, {batch, {features, 0}}}, bu = {2, {batch, {units, 0}}};
  if (sp->rate > 0) {
    /* [batch, features] across the time axis */
    Shape b1f = {3, {batch, {1, 0}, {features, 0}}};
    xs = apply_mask(p, xs, call_reshape(p, drop_mask(p, c, sp->rate, &bf, t, loc), &b1f, loc), loc);
  }
  Node *state0 = filled(p, 0, t, &bu, loc);
  Node *rmask = sp->rrate > 0 ? drop_mask(p, c, sp->rrate, &bu, t, loc) : NULL;
  /* the cell, once per time step */
  int l = graph_new_scan(p->g, time, false, loc);
  p->g->cur_loop = l;
  Attrs c0 = {.slot = 0}, c1 = {.slot = 1}, ax = {.axis = 1};
  Node *xt = parse_mk1(p, OP_SCAN_SLICE, xs, &ax, loc);      /* the order of scan() */
  Node *h = parse_mk1(p, OP_CARRY, state0, &c0, loc);
  Node *cell = kind == LSTM ? parse_mk1(p, OP_CARRY, state0, &c1, loc) : NULL;
  Node *hin = rmask ? apply_mask(p, h, rmask, loc) : h;
  Node *zx = parse_mk2(p, OP_MATMUL, xt, kernel, loc);
  Node *zh = parse_mk2(p, OP_MATMUL, hin, rkernel, loc);
  Node *next = NULL;
  if (kind == GRU) {
    if (bias) {
      zx = parse_mk2(p, OP_ADD, zx, take(p, bias, 0, 0, 1, 1, loc), loc);
      zh = parse_mk2(p, OP_ADD, zh, take(p, bias, 0, 1, 2, 1, loc), loc);
    }
    Node *z = act(p, c, "recurrent_activation", OP_SIGMOID,
                  parse_mk2(p, OP_ADD, gate(p, zx, 0, units, loc), gate(p, zh, 0, units, loc), loc));
    Node *r = act(p, c, "recurrent_activation", OP_SIGMOID,
                  parse_mk2(p, OP_ADD, gate(p, zx, 1, units, loc), gate(p, zh, 1, units, loc), loc));
    Node *hh = act(p, c, "activation", OP_TANH,
                   parse_mk2(p, OP_ADD, gate(p, zx, 2, units, loc),
                             parse_mk2(p, OP_MUL, r, gate(p, zh, 2, units, loc), loc), loc));
    Node *one = parse_scalar(p, 1, false, loc);
    next = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, z, h, loc),
                     parse_mk2(p, OP_MUL, parse_mk2(p, OP_SUB, one, z, loc), hh, loc), loc);
  } else {
    Node *z = parse_mk2(p, OP_ADD, zx, zh, loc);
    if (bias) z = parse_mk2(p, OP_ADD, z, bias, loc);
    if (kind == SIMPLE_RNN) {
      next = act(p, c, "activation", OP_TANH, z);
    } else {
      Node *i = act(p, c, "recurrent_activation", OP_SIGMOID, gate(p, z, 0, units, loc));
      Node *f = act(p, c, "recurrent_activation", OP_SIGMOID, gate(p, z, 1, units, loc));
      Node *cc = act(p, c, "activation", OP_TANH, gate(p, z, 2, units, loc));
      Node *o = act(p, c, "recurrent_activation", OP_SIGMOID, gate(p, z, 3, units, loc));
      cell = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, f, cell, loc),
                       parse_mk2(p, OP_MUL, i, cc, loc), loc);
      next = parse_mk2(p, OP_MUL, o, act(p, c, "activation", OP_TANH, cell), loc);
    }
  }
  /* the loop_end as scan() makes it: the next values, then the output
   * stacked with return_sequences; the result is the stack or h's last */
  Node *ends[3];
  int n = 0, ncarry = kind == LSTM ? 2 : 1;
  ends[n++] = next;
  if (kind == LSTM) ends[n++] = cell;
  if (sp->seqs) ends[n++] = next;
  Attrs ea = {.slot = ncarry};
  Node *e = parse_mk(p, OP_LOOP_END, ends, n, &ea, loc);
  Node *r[3];
  scan_results(p, e, 1, r);
  return r[0];
}


static double rates(Parser *p, Call *c, const char *key) { return rate_arg(p, c, key); }

/* bidirectional=concat|sum|mul|ave: Keras' Bidirectional wrapper: a
 * forward layer NAME.forward and a go_backwards copy NAME.backward, whose
 * sequence is turned back to time order before the two are merged. */
static Node *merge(Parser *p, Val *mode, Node *f, Node *b, Loc loc) {
  const char *m = mode->kind == V_NAME ? mode->name : "";
  if (!strcmp(m, "concat")) {
    Attrs a = {.axis = f->shape.rank - 1};
    return parse_mk(p, OP_CONCAT, (Node *[]){f, b}, 2, &a, loc);
  }
  if (!strcmp(m, "sum")) return parse_mk2(p, OP_ADD, f, b, loc);
  if (!strcmp(m, "mul")) return parse_mk2(p, OP_MUL, f, b, loc);
  if (!strcmp(m, "ave"))
    return parse_mk2(p, OP_MUL, parse_mk2(p, OP_ADD, f, b, loc), parse_scalar(p, 0.5, false, loc), loc);
  parse_fail(p, mode->loc, "bidirectional must be concat, sum, mul or ave (Keras' merge_mode)");
}

static Node *recurrent(Parser *p, Call *c, int kind) {
  Loc loc = c->fn->loc;
  const char *what = kinds[kind];
  Node *x = call_tensor(p, c, 0, NULL);
  Spec sp = {.kind = kind, .units = call_count(p, c, 1, "units", "the number of units")};
  char b[SHAPE_STR_MAX];
  if (x->shape.rank != 3 || x->shape.d[2].sym)
    parse_fail(p, loc, "%s: the input must be [batch, time, features] with a static "
               "number of features, got %s", what, shape_str(p->g, &x->shape, b, sizeof b));
  if (!dtype_is_float(x->dtype))
    parse_fail(p, loc, "%s: the input must be floating-point, got %s (an embedding makes "
               "vectors of token ids)", what, dtype_names[x->dtype]);
  if (p->g->cur_loop) parse_fail(p, loc, "%s inside the body of a loop is not supported", what);
  sp.seqs = flag_arg(p, c, "return_sequences", false);
  sp.back = flag_arg(p, c, "go_backwards", false);
  sp.bias = flag_arg(p, c, "use_bias", true);
  sp.rate = rates(p, c, "dropout"), sp.rrate = rates(p, c, "recurrent_dropout");
  if (kind == GRU && !flag_arg(p, c, "reset_after", true))
    parse_fail(p, loc, "gru: reset_after=false (Keras 1's GRU) is not supported; Keras 2's "
               "default reset_after=true is");
  const char *base = layer_name(p, c, what, &p->nrnn[kind]);
  Val *bi = call_kwarg(c, "bidirectional");
  if (!bi) return direction(p, c, &sp, x, base, sp.back);
  Node *f = direction(p, c, &sp, x, arena_printf(p->arena, "%s.forward", base), sp.back);
  Node *r = direction(p, c, &sp, x, arena_printf(p->arena, "%s.backward", base), !sp.back);
  if (sp.seqs) r = take(p, r, 1, r->shape.d[1].n - 1, -1, -1, loc);
  return merge(p, bi, f, r, loc);
}

Node *layer_simple_rnn(Parser *p, Call *c, OpKind op) { (void)op; return recurrent(p, c, SIMPLE_RNN); }
Node *layer_lstm(Parser *p, Call *c, OpKind op) { (void)op; return recurrent(p, c, LSTM); }
Node *layer_gru(Parser *p, Call *c, OpKind op) { (void)op; return recurrent(p, c, GRU); }
