/*
 * call.c - function calls of the model language: argument parsing, the
 * builtin table (every primitive op under its name) and the Keras-style sugar
 * that expands into primitive ops (dense, flatten, mse, expand_dims, squeeze),
 * parameter initializers and optimizer settings.
 *
 * An argument is parsed before the callee says what it must be (a tensor, a
 * number, a list, a bare name such as relu or f32); each handler then asks
 * for what it needs and reports a precise error otherwise.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

/* ------------------------------------------------------------ calls */

/* arg = IDENT "=" value | value
 * value = list | number | IDENT (a bare name, when it is no tensor) | expr */
static void parse_arg(Parser *p, Call *c) {
  if (c->nargs == MAX_ARGS)
    parse_fail(p, p->tok->loc, "too many arguments (at most %d)", MAX_ARGS);
  Val *v = &c->args[c->nargs++];
  memset(v, 0, sizeof *v);
  if (p->tok->kind == T_IDENT && tok_is(p->tok->next, "=")) {
    v->key = parse_str(p, p->tok);
    v->keyloc = p->tok->loc;
    p->tok = p->tok->next->next;
  } else if (c->nargs > c->npos + 1) {
    parse_fail(p, p->tok->loc, "positional argument after keyword arguments");
  } else {
    c->npos++;
  }
  v->loc = p->tok->loc;
  Token *t = p->tok;
  Token *after = t->next;
  if (tok_is(t, "-") && (after->kind == T_INT || after->kind == T_FLOAT))
    after = after->next;
  bool ends = tok_is(after, ",") || tok_is(after, ")");
  if (parse_at(p, "[") && v->key) {
    parse_list_value(p, v);
  } else if (parse_at(p, "[")) {
    /* A positional list is a tensor literal unless followed by an operator;
     * keep both readings: the callee asks for what it needs. */
    Token *save = p->tok;
    parse_list_value(p, v);
    if (!parse_at(p, ",") && !parse_at(p, ")")) {
      p->tok = save;
      v->kind = V_NODE;
      v->node = parse_expr(p);
    }
  } else if ((t->kind == T_INT || t->kind == T_FLOAT || tok_is(t, "-")) && ends) {
    parse_number(p, &v->num, &v->is_int, &v->loc);
    v->kind = V_NUM;
  } else if (t->kind == T_IDENT && ends && !parse_lookup(p, parse_str(p, t))) {
    v->kind = V_NAME;
    v->name = parse_str(p, t);
    p->tok = t->next;
  } else {
    v->kind = V_NODE;
    v->node = parse_expr(p);
  }
}

static Val *kwarg(Call *c, const char *key) {
  for (int i = 0; i < c->nargs; i++)
    if (c->args[i].key && strcmp(c->args[i].key, key) == 0) {
      c->args[i].used = true;
      return &c->args[i];
    }
  return NULL;
}

/* The i-th positional argument, or else the keyword argument key. */
static Val *arg(Call *c, int i, const char *key) {
  if (i < c->npos) {
    c->args[i].used = true;
    return &c->args[i];
  }
  return key ? kwarg(c, key) : NULL;
}

static const char *fn_name(Parser *p, Call *c) { return parse_str(p, c->fn); }

static Node *as_tensor(Parser *p, Call *c, Val *v) {
  (void)c;
  switch (v->kind) {
  case V_NODE: return v->node;
  case V_NUM: return parse_scalar(p, v->num, v->is_int, v->loc);
  case V_LIST: return parse_list_tensor(p, v);
  case V_NAME: parse_unknown(p, v->name, v->loc);
  }
  return NULL;
}

static Node *tensor_arg(Parser *p, Call *c, int i, const char *key) {
  Val *v = arg(c, i, key);
  if (!v)
    parse_fail(p, c->fn->loc, "%s: missing argument %d%s%s%s", fn_name(p, c), i + 1,
            key ? " (" : "", key ? key : "", key ? ")" : "");
  return as_tensor(p, c, v);
}

static double num_arg(Parser *p, Call *c, Val *v, bool want_int) {
  if (v->kind != V_NUM)
    parse_fail(p, v->loc, "%s: expected a number here", fn_name(p, c));
  if (want_int && !v->is_int)
    parse_fail(p, v->loc, "%s: expected an integer, got %g", fn_name(p, c), v->num);
  return v->num;
}

static bool bool_arg(Parser *p, Call *c, Val *v) {
  if (v->kind == V_NAME && (strcmp(v->name, "true") == 0 || strcmp(v->name, "True") == 0))
    return true;
  if (v->kind == V_NAME && (strcmp(v->name, "false") == 0 || strcmp(v->name, "False") == 0))
    return false;
  if (v->kind == V_NUM && v->is_int && (v->num == 0 || v->num == 1)) return v->num != 0;
  parse_fail(p, v->loc, "%s: expected true or false", fn_name(p, c));
}

static int norm_axis(Parser *p, Call *c, Loc loc, double ax, int rank) {
  if (ax != floor(ax) || ax < -rank || ax >= rank || rank == 0)
    parse_fail(p, loc, "%s: axis %g is out of range for a tensor of rank %d",
            fn_name(p, c), ax, rank);
  return ax < 0 ? (int)ax + rank : (int)ax;
}

static int axis_arg(Parser *p, Call *c, Val *v, int rank, int dflt) {
  if (!v) return dflt < 0 ? dflt + rank : dflt;
  return norm_axis(p, c, v->loc, num_arg(p, c, v, true), rank);
}

/* axis = None | int | [int, ...] -> bit mask over the operand's axes */
static uint32_t axes_arg(Parser *p, Call *c, Val *v, int rank) {
  if (!v || (v->kind == V_NAME && strcmp(v->name, "None") == 0))
    return rank ? (uint32_t)((1u << rank) - 1) : 0;
  uint32_t m = 0;
  if (v->kind == V_LIST) {
    if (v->lshape.rank != 1)
      parse_fail(p, v->loc, "%s: axis must be an integer or a list of integers",
              fn_name(p, c));
    for (int64_t i = 0; i < v->lshape.d[0].n; i++) {
      Item *it = &v->items[i];
      if (it->name || !it->is_int)
        parse_fail(p, it->loc, "%s: axis must be an integer", fn_name(p, c));
      uint32_t bit = 1u << norm_axis(p, c, it->loc, it->v, rank);
      if (m & bit) parse_fail(p, it->loc, "%s: axis %g is repeated", fn_name(p, c), it->v);
      m |= bit;
    }
    return m;
  }
  return 1u << norm_axis(p, c, v->loc, num_arg(p, c, v, true), rank);
}

/* A shape given as a list: ints (-1 once, to infer) and symbolic names. */
static Shape shape_arg(Parser *p, Call *c, Val *v) {
  if (!v || v->kind != V_LIST || v->lshape.rank != 1)
    parse_fail(p, v ? v->loc : c->fn->loc, "%s: expected a shape such as [batch, 784]",
            fn_name(p, c));
  Shape s = {0};
  int64_t n = v->lshape.d[0].n;
  if (n > MAX_RANK)
    parse_fail(p, v->loc, "%s: rank %lld exceeds the limit of %d", fn_name(p, c),
            (long long)n, MAX_RANK);
  int infer = 0;
  for (int64_t i = 0; i < n; i++) {
    Item *it = &v->items[i];
    if (it->name) {
      if (parse_lookup(p, it->name))
        parse_fail(p, it->loc, "'%s' is a tensor, not a dimension", it->name);
      int k = graph_sym(p->g, it->name);
      if (!k) parse_fail(p, it->loc, "too many symbolic dimensions (at most %d)", MAX_SYMS);
      s.d[s.rank++] = (Dim){1, k};
    } else if (!it->is_int || (it->v < 1 && it->v != -1) || it->v > MAX_ELEMENTS) {
      parse_fail(p, it->loc, "%s: dimension %g must be a positive integer or -1",
              fn_name(p, c), it->v);
    } else {
      if (it->v == -1 && infer++)
        parse_fail(p, it->loc, "%s: only one dimension can be -1", fn_name(p, c));
      s.d[s.rank++] = (Dim){(int64_t)it->v, 0};
    }
  }
  return s;
}

static Node *reshape_to(Parser *p, Node *x, const Shape *to, Loc loc) {
  Attrs a = {0};
  a.to = *to;
  return parse_mk1(p, OP_RESHAPE, x, &a, loc);
}

DType parse_dtype(const char *s, bool *ok) {
  static const struct { const char *n; DType t; } names[] = {
      {"f32", DT_F32}, {"float32", DT_F32}, {"f64", DT_F64}, {"float64", DT_F64},
      {"i32", DT_I32}, {"int32", DT_I32}, {"bool", DT_BOOL},
  };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(s, names[i].n) == 0) {
      *ok = true;
      return names[i].t;
    }
  *ok = false;
  return DT_F32;
}

static Node *parse_init_into(Parser *p, Node *param, Call *c, Val *v);

static Node *new_param(Parser *p, const char *name, const Shape *s, Init init, Loc loc) {
  if (shape_static_count(s) < 0)
    parse_fail(p, loc, "parameter '%s' would have more than 2^40 elements", name);
  Node *n = graph_leaf(p->g, OP_PARAM, NULL, DT_F32, s, loc);
  n->a.init = init;
  parse_define(p, name, n, loc);
  return n;
}

/* The closest of names to s, if it is close enough to be a likely typo. */
static const char *nearest(const char *s, const char *const *names, int n) {
  const char *best = NULL;
  int bd = 1 << 30;
  for (int i = 0; i < n; i++) {
    int d = edit_distance(s, names[i]);
    if (d < bd) bd = d, best = names[i];
  }
  return bd <= (strlen(s) < 4 ? 1 : 2) ? best : NULL;
}

/* Activation names allowed in layer sugar: the unary ops plus linear. */
static Node *activate(Parser *p, Call *c, Val *v, Node *x) {
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
  const char *near = v->kind == V_NAME ? nearest(v->name, names, 6) : NULL;
  if (near)
    parse_fail(p, v->loc, "%s: unknown activation '%s'; did you mean '%s'?", fn_name(p, c),
               v->name, near);
  parse_fail(p, v->loc, "%s: unknown activation; use relu, sigmoid, tanh, exp, "
          "softmax or linear", fn_name(p, c));
}

/* dense(x, units, activation=linear, use_bias=true,
 *       kernel_initializer=glorot_uniform, bias_initializer=zeros, name=...)
 * Keras Dense: kernel [in, units], bias [units]. */
static Node *fn_dense(Parser *p, Call *c) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *u = arg(c, 1, "units");
  if (!u) parse_fail(p, c->fn->loc, "dense: missing the number of units");
  double units = num_arg(p, c, u, true);
  if (units < 1 || units > MAX_ELEMENTS)
    parse_fail(p, u->loc, "dense: units must be a positive integer, got %g", units);
  if (x->shape.rank < 1 || x->shape.d[x->shape.rank - 1].sym)
    parse_fail(p, c->fn->loc, "dense: the input's last dimension must be static");
  if (!dtype_is_float(x->dtype))
    parse_fail(p, c->fn->loc, "dense: the input must be floating-point, got %s",
            dtype_names[x->dtype]);
  Val *nm = kwarg(c, "name");
  const char *base;
  if (nm && nm->kind == V_NAME) base = nm->name;
  else if (nm) parse_fail(p, nm->loc, "dense: name must be an identifier");
  else if (p->bind_name) base = p->bind_name;
  else base = p->ndense ? arena_printf(p->arena, "dense_%d", p->ndense) : "dense";
  p->ndense++;
  Shape ks = {2, {{x->shape.d[x->shape.rank - 1].n, 0}, {(int64_t)units, 0}}};
  Node *k = new_param(p, arena_printf(p->arena, "%s.kernel", base), &ks,
                      (Init){INIT_GLOROT_UNIFORM, 0, 0}, c->fn->loc);
  Val *ki = kwarg(c, "kernel_initializer");
  if (ki) parse_init_into(p, k, c, ki);
  Node *y = parse_mk2(p, OP_MATMUL, x, k, c->fn->loc);
  Val *ub = kwarg(c, "use_bias");
  if (!ub || bool_arg(p, c, ub)) {
    Shape bs = {1, {{(int64_t)units, 0}}};
    Node *b = new_param(p, arena_printf(p->arena, "%s.bias", base), &bs,
                        (Init){INIT_ZEROS, 0, 0}, c->fn->loc);
    Val *bi = kwarg(c, "bias_initializer");
    if (bi) parse_init_into(p, b, c, bi);
    y = parse_mk2(p, OP_ADD, y, b, c->fn->loc);
  }
  return activate(p, c, kwarg(c, "activation"), y);
}

typedef Node *CallFn(Parser *p, Call *c, OpKind op);

static Node *fn_unary(Parser *p, Call *c, OpKind op) {
  return parse_mk1(p, op, tensor_arg(p, c, 0, NULL), NULL, c->fn->loc);
}

static Node *fn_binary(Parser *p, Call *c, OpKind op) {
  Node *a = tensor_arg(p, c, 0, NULL), *b = tensor_arg(p, c, 1, NULL);
  return parse_mk2(p, op, a, b, c->fn->loc);
}

/* matmul(a, b, transpose_a=false, transpose_b=false), as tf.matmul */
static Node *fn_matmul(Parser *p, Call *c, OpKind op) {
  Node *s[2] = {tensor_arg(p, c, 0, NULL), tensor_arg(p, c, 1, NULL)};
  Val *ta = kwarg(c, "transpose_a"), *tb = kwarg(c, "transpose_b");
  Attrs a = {.ta = ta && bool_arg(p, c, ta), .tb = tb && bool_arg(p, c, tb)};
  return parse_mk(p, op, s, 2, &a, c->fn->loc);
}

static Node *fn_where(Parser *p, Call *c, OpKind op) {
  Node *s[3] = {tensor_arg(p, c, 0, NULL), tensor_arg(p, c, 1, NULL),
                tensor_arg(p, c, 2, NULL)};
  return parse_mk(p, op, s, 3, NULL, c->fn->loc);
}

static Node *fn_clip(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *lo = arg(c, 1, "min"), *hi = arg(c, 2, "max");
  if (!lo || !hi) parse_fail(p, c->fn->loc, "clip: expected clip(x, min, max)");
  Attrs a = {.lo = num_arg(p, c, lo, false), .hi = num_arg(p, c, hi, false)};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_cast(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *t = arg(c, 1, "dtype");
  bool ok = false;
  Attrs a = {0};
  if (t && t->kind == V_NAME) a.dtype = parse_dtype(t->name, &ok);
  if (!ok)
    parse_fail(p, t ? t->loc : c->fn->loc, "cast: expected a dtype: f32, f64, i32 "
            "or bool");
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_axis(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Attrs a = {.axis = axis_arg(p, c, arg(c, 1, "axis"), x->shape.rank, -1)};
  if (x->shape.rank == 0) a.axis = 0;
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_reduce(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *kd = kwarg(c, "keepdims");
  Attrs a = {.axes = axes_arg(p, c, arg(c, 1, "axis"), x->shape.rank),
             .keepdims = kd && bool_arg(p, c, kd)};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* argmax(x, axis=0): TF's default axis is 0, not numpy's flatten. */
static Node *fn_argreduce(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *kd = kwarg(c, "keepdims");
  Attrs a = {.axis = x->shape.rank ? axis_arg(p, c, arg(c, 1, "axis"), x->shape.rank, 0) : 0,
             .keepdims = kd && bool_arg(p, c, kd)};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_reshape(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Shape s = shape_arg(p, c, arg(c, 1, "shape"));
  return reshape_to(p, x, &s, c->fn->loc);
}

static Node *fn_broadcast(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Attrs a = {.to = shape_arg(p, c, arg(c, 1, "shape"))};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n == -1)
      parse_fail(p, c->fn->loc, "broadcast_to: -1 is not allowed in the target shape");
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* transpose(x, perm): default reverses the axes, as in TF. */
static Node *fn_transpose(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "perm");
  Attrs a = {0};
  int r = x->shape.rank;
  if (!v) {
    for (int i = 0; i < r; i++) a.perm[i] = r - 1 - i;
  } else {
    if (v->kind != V_LIST || v->lshape.rank != 1 || v->lshape.d[0].n != r)
      parse_fail(p, v->loc, "transpose: perm must list %d axes", r);
    for (int i = 0; i < r; i++) {
      if (v->items[i].name || !v->items[i].is_int)
        parse_fail(p, v->items[i].loc, "transpose: perm entries must be integers");
      a.perm[i] = norm_axis(p, c, v->items[i].loc, v->items[i].v, r);
    }
  }
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_concat(Parser *p, Call *c, OpKind op) {
  Node *s[MAX_OPERANDS];
  int n = 0;
  for (int i = 0; i < c->npos; i++) {
    if (n == MAX_OPERANDS)
      parse_fail(p, c->args[i].loc, "concat: at most %d operands", MAX_OPERANDS);
    s[n++] = tensor_arg(p, c, i, NULL);
  }
  if (n < 1) parse_fail(p, c->fn->loc, "concat: expected concat(a, b, ..., axis=k)");
  Val *ax = kwarg(c, "axis");
  if (!ax) parse_fail(p, c->fn->loc, "concat: missing axis=");
  Attrs a = {.axis = axis_arg(p, c, ax, s[0]->shape.rank, 0)};
  return parse_mk(p, op, s, n, &a, c->fn->loc);
}

static Node *fn_one_hot(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *d = arg(c, 1, "depth");
  if (!d) parse_fail(p, c->fn->loc, "one_hot: missing depth");
  double depth = num_arg(p, c, d, true);
  if (depth < 1 || depth > MAX_ELEMENTS)
    parse_fail(p, d->loc, "one_hot: depth must be a positive integer, got %g", depth);
  Attrs a = {.depth = (int64_t)depth};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* expand_dims(x, axis): a reshape that inserts a 1 (axis may be -rank-1..rank) */
static Node *fn_expand_dims(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "axis");
  if (!v) parse_fail(p, c->fn->loc, "expand_dims: missing axis");
  int r = x->shape.rank;
  if (r == MAX_RANK) parse_fail(p, c->fn->loc, "expand_dims: rank would exceed %d", MAX_RANK);
  int ax = norm_axis(p, c, v->loc, num_arg(p, c, v, true), r + 1);
  Shape s = {.rank = r + 1};
  for (int i = 0, j = 0; i <= r; i++) s.d[i] = i == ax ? (Dim){1, 0} : x->shape.d[j++];
  return reshape_to(p, x, &s, c->fn->loc);
}

/* squeeze(x, axis=None): drops size-1 axes; naming a larger one is an error */
static Node *fn_squeeze(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "axis");
  uint32_t m = 0;
  if (v) m = axes_arg(p, c, v, x->shape.rank);
  Shape s = {0};
  for (int i = 0; i < x->shape.rank; i++) {
    bool one = dim_is_one(x->shape.d[i]);
    if ((m & (1u << i)) && !one) {
      char b[48];
      parse_fail(p, v->loc, "squeeze: axis %d has size %s, not 1", i,
              dim_str(p->g, x->shape.d[i], b, sizeof b));
    }
    if (v ? !(m & (1u << i)) : !one) s.d[s.rank++] = x->shape.d[i];
  }
  return reshape_to(p, x, &s, c->fn->loc);
}

/* flatten(x): Keras Flatten, keeps the first (batch) axis */
static Node *fn_flatten(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  if (x->shape.rank < 1) parse_fail(p, c->fn->loc, "flatten: needs a tensor of rank >= 1");
  Shape s = {2, {x->shape.d[0], {-1, 0}}};
  return reshape_to(p, x, &s, c->fn->loc);
}

/* mse(a, b): Keras MeanSquaredError per sample = mean over the last axis */
static Node *fn_mse(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *a = tensor_arg(p, c, 0, NULL), *b = tensor_arg(p, c, 1, NULL);
  Node *d = parse_mk1(p, OP_SQUARE, parse_mk2(p, OP_SUB, a, b, c->fn->loc), NULL, c->fn->loc);
  Attrs r = {.axes = d->shape.rank ? 1u << (d->shape.rank - 1) : 0};
  return parse_mk1(p, OP_MEAN, d, &r, c->fn->loc);
}

static Node *fn_dense_call(Parser *p, Call *c, OpKind op) {
  (void)op;
  return fn_dense(p, c);
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
    x[0] = x[1] = num_arg(p, c, v, true);
  } else if (v->kind == V_LIST && v->lshape.rank == 1 && v->lshape.d[0].n == 2 &&
             !v->items[0].name && !v->items[1].name && v->items[0].is_int && v->items[1].is_int) {
    x[0] = v->items[0].v, x[1] = v->items[1].v;
  } else {
    parse_fail(p, v->loc, "%s: %s must be an integer or a list of two integers",
               fn_name(p, c), what);
  }
  for (int i = 0; i < 2; i++) {
    if (x[i] < 1 || x[i] > 1 << 20)
      parse_fail(p, v->loc, "%s: %s must be positive, got %g", fn_name(p, c), what, x[i]);
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
                   fn_name(p, c));
      w->pad[i] = (int64_t)it->v;
    }
    return;
  }
  parse_fail(p, v->loc, "%s: padding must be valid, same or [top, bottom, left, right]",
             fn_name(p, c));
}

static Node *window_node(Parser *p, Call *c, OpKind op, Node *x, const Window *w) {
  Attrs a = {.win = *w};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* im2col(x, kernel, strides=1, dilation=1, padding=valid) */
static Node *fn_im2col(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *k = arg(c, 1, "kernel");
  if (!k) parse_fail(p, c->fn->loc, "im2col: missing kernel=[height, width]");
  Window w;
  pair_arg(p, c, k, w.k, 1, "kernel");
  pair_arg(p, c, kwarg(c, "strides"), w.stride, 1, "strides");
  pair_arg(p, c, kwarg(c, "dilation"), w.dil, 1, "dilation");
  padding_arg(p, c, kwarg(c, "padding"), x, &w);
  return window_node(p, c, op, x, &w);
}

/* maxpool2d / avgpool2d(x, pool=2, strides=pool, padding=valid): Keras
 * MaxPooling2D / AveragePooling2D, whose strides default to the pool size. */
static Node *fn_pool(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *k = arg(c, 1, "pool");
  if (!k) k = kwarg(c, "pool_size");
  Window w;
  pair_arg(p, c, k, w.k, 2, "pool");
  Val *st = kwarg(c, "strides");
  if (st && st->kind == V_NAME && strcmp(st->name, "None") == 0) st = NULL;
  if (st) pair_arg(p, c, st, w.stride, 1, "strides");
  else w.stride[0] = w.k[0], w.stride[1] = w.k[1];
  w.dil[0] = w.dil[1] = 1;
  padding_arg(p, c, kwarg(c, "padding"), x, &w);
  return window_node(p, c, op, x, &w);
}

/* global_avgpool2d(x): Keras GlobalAveragePooling2D, the mean over height
 * and width: [b, h, w, c] -> [b, c]. */
static Node *fn_global_avgpool(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  if (x->shape.rank != 4)
    parse_fail(p, c->fn->loc, "global_avgpool2d needs an NHWC tensor [batch, height, "
               "width, channels], got rank %d", x->shape.rank);
  Attrs a = {.axes = 6u};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* upsample2d(x, size=2): Keras UpSampling2D with nearest neighbours, as
 * [b,h,1,w,1,c] broadcast to [b,h,sh,w,sw,c] and read as [b,h*sh,w*sw,c];
 * its gradient (a sum over each block) comes from broadcast's rule. */
static Node *fn_upsample(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  int64_t sz[2];
  pair_arg(p, c, arg(c, 1, "size"), sz, 2, "size");
  if (x->shape.rank != 4 || x->shape.d[1].sym || x->shape.d[2].sym)
    parse_fail(p, c->fn->loc, "upsample2d needs an NHWC tensor with static height and "
               "width");
  const Dim *d = x->shape.d;
  Shape s6 = {6, {d[0], d[1], {1, 0}, d[2], {1, 0}, d[3]}};
  Node *r = reshape_to(p, x, &s6, c->fn->loc);
  Attrs a = {.to = {6, {d[0], d[1], {sz[0], 0}, d[2], {sz[1], 0}, d[3]}}};
  Node *b = parse_mk1(p, OP_BROADCAST, r, &a, c->fn->loc);
  Shape s4 = {4, {d[0], {d[1].n * sz[0], 0}, {d[2].n * sz[1], 0}, d[3]}};
  return reshape_to(p, b, &s4, c->fn->loc);
}

/* pad(x, [[before, after], ...]): tf.pad with zeros, one pair per axis; a
 * symbolic axis cannot be padded.  The values are placed into zeros of the
 * padded shape, which is what unslice computes. */
static Node *fn_pad(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *v = arg(c, 1, "paddings");
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
static Node *fn_conv2d(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *wv = c->npos > 1 && c->args[1].kind == V_NODE ? arg(c, 1, NULL) : NULL;
  Val *filters = wv ? NULL : arg(c, 1, "filters");
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
    double f = num_arg(p, c, filters, true);
    if (f < 1 || f > 1 << 20)
      parse_fail(p, filters->loc, "conv2d: filters must be a positive integer, got %g", f);
    cout = (int64_t)f;
    Val *ks = arg(c, 2, "kernel");
    if (!ks) ks = kwarg(c, "kernel_size");
    if (!ks) parse_fail(p, c->fn->loc, "conv2d: missing kernel=3 (or [height, width])");
    pair_arg(p, c, ks, w.k, 1, "kernel");
    Val *nm = kwarg(c, "name");
    if (nm && nm->kind == V_NAME) base = nm->name;
    else if (nm) parse_fail(p, nm->loc, "conv2d: name must be an identifier");
    else if (p->bind_name) base = p->bind_name;
    else base = p->nconv ? arena_printf(p->arena, "conv2d_%d", p->nconv) : "conv2d";
    p->nconv++;
  }
  pair_arg(p, c, kwarg(c, "strides"), w.stride, 1, "strides");
  Val *dl = kwarg(c, "dilation");
  if (!dl) dl = kwarg(c, "dilation_rate");
  pair_arg(p, c, dl, w.dil, 1, "dilation");
  padding_arg(p, c, kwarg(c, "padding"), x, &w);
  if (!k) {
    Shape ks = {4, {{w.k[0], 0}, {w.k[1], 0}, {cin, 0}, {cout, 0}}};
    k = new_param(p, arena_printf(p->arena, "%s.kernel", base), &ks,
                  (Init){INIT_GLOROT_UNIFORM, 0, 0}, c->fn->loc);
    Val *ki = kwarg(c, "kernel_initializer");
    if (ki) parse_init_into(p, k, c, ki);
  }
  Node *cols = window_node(p, c, OP_IM2COL, x, &w);
  const Dim *d = cols->shape.d;
  Dim rows = {d[0].n * d[1].n * d[2].n, d[0].sym};
  Shape cs = {2, {rows, d[3]}}, kmat = {2, {d[3], {cout, 0}}};
  Node *y = parse_mk2(p, OP_MATMUL, reshape_to(p, cols, &cs, c->fn->loc),
                      reshape_to(p, k, &kmat, c->fn->loc), c->fn->loc);
  Shape ys = {4, {d[0], d[1], d[2], {cout, 0}}};
  y = reshape_to(p, y, &ys, c->fn->loc);
  if (wv) return y;
  Val *ub = kwarg(c, "use_bias");
  if (!ub || bool_arg(p, c, ub)) {
    Shape bs = {1, {{cout, 0}}};
    Node *b = new_param(p, arena_printf(p->arena, "%s.bias", base), &bs,
                        (Init){INIT_ZEROS, 0, 0}, c->fn->loc);
    Val *bi = kwarg(c, "bias_initializer");
    if (bi) parse_init_into(p, b, c, bi);
    y = parse_mk2(p, OP_ADD, y, b, c->fn->loc);
  }
  return activate(p, c, kwarg(c, "activation"), y);
}

/* ------------------------------------------------------------ train vs inference */

/* dropout_mask(x, rate, seed=0): see ops.h; the primitive under dropout. */
static Node *fn_dropout_mask(Parser *p, Call *c, OpKind op) {
  Node *x = tensor_arg(p, c, 0, NULL);
  Val *r = arg(c, 1, "rate");
  if (!r) parse_fail(p, c->fn->loc, "%s: missing the rate", fn_name(p, c));
  Attrs a = {.lo = num_arg(p, c, r, false)};
  if (!(a.lo >= 0 && a.lo < 1))
    parse_fail(p, r->loc, "%s: the rate must lie in [0, 1), got %g", fn_name(p, c), a.lo);
  Val *s = kwarg(c, "seed");
  if (s) {
    double v = num_arg(p, c, s, true);
    if (v < 0 || v > 1e15) parse_fail(p, s->loc, "%s: seed must be a non-negative integer", fn_name(p, c));
    a.seed = (int64_t)v;
  }
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* dropout(x, rate, seed=k): Keras Dropout.  In train_step each element is
 * zeroed with probability rate and the rest scaled by 1/(1-rate); forward
 * and eval pass x through.  The mask is a pure function of (seed, step,
 * index), the step being the train step counter, so runs repeat exactly;
 * the k-th dropout of a model gets seed k unless one is given.  Written out:
 * train_select(x * dropout_mask(x, rate, seed), x). */
static Node *fn_dropout(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  int k = p->ndropout++;
  Node *m = fn_dropout_mask(p, c, OP_DROPOUT_MASK);
  if (!kwarg(c, "seed")) m->a.seed = k;
  Node *s[2] = {parse_mk2(p, OP_MUL, x, m, c->fn->loc), x};
  return parse_mk(p, OP_TRAIN_SELECT, s, 2, NULL, c->fn->loc);
}

/* batch_norm(x, axis=-1, momentum=0.99, epsilon=1e-3, name=...): Keras
 * BatchNormalization.  Parameters <name>.gamma (ones) and <name>.beta
 * (zeros); non-trainable state <name>.moving_mean (zeros) and
 * <name>.moving_variance (ones).  train_step normalises with the batch
 * statistics over every axis but `axis` (biased variance) and moves the
 * state: moving = moving * momentum + batch * (1 - momentum), as Keras'
 * non-fused path (Keras 3 alike); forward and eval normalise with the
 * moving statistics.  Written out: train_select(batch form, moving form)
 * and two update statements. */
static Node *fn_batch_norm(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = tensor_arg(p, c, 0, NULL);
  int r = x->shape.rank;
  if (r < 2) parse_fail(p, c->fn->loc, "batch_norm needs a tensor of rank >= 2");
  if (!dtype_is_float(x->dtype))
    parse_fail(p, c->fn->loc, "batch_norm: the input must be floating-point, got %s",
               dtype_names[x->dtype]);
  int ax = axis_arg(p, c, arg(c, 1, "axis"), r, -1);
  if (x->shape.d[ax].sym)
    parse_fail(p, c->fn->loc, "batch_norm: the normalised axis %d must be static", ax);
  Val *mv = kwarg(c, "momentum"), *ev = kwarg(c, "epsilon");
  double momentum = mv ? num_arg(p, c, mv, false) : 0.99, eps = ev ? num_arg(p, c, ev, false) : 1e-3;
  if (!(momentum >= 0 && momentum < 1))
    parse_fail(p, mv->loc, "batch_norm: momentum must lie in [0, 1), got %g", momentum);
  if (!(eps > 0)) parse_fail(p, ev->loc, "batch_norm: epsilon must be positive, got %g", eps);
  Val *nm = kwarg(c, "name");
  const char *base;
  if (nm && nm->kind == V_NAME) base = nm->name;
  else if (nm) parse_fail(p, nm->loc, "batch_norm: name must be an identifier");
  else if (p->bind_name) base = p->bind_name;
  else base = p->nbn ? arena_printf(p->arena, "batch_normalization_%d", p->nbn) : "batch_normalization";
  p->nbn++;
  Loc loc = c->fn->loc;
  int64_t C = x->shape.d[ax].n;
  Shape cs = {1, {{C, 0}}}, ks = {.rank = r};
  for (int i = 0; i < r; i++) ks.d[i] = i == ax ? (Dim){C, 0} : (Dim){1, 0};
  Node *gamma = new_param(p, arena_printf(p->arena, "%s.gamma", base), &cs, (Init){INIT_ONES, 0, 0}, loc);
  Node *beta = new_param(p, arena_printf(p->arena, "%s.beta", base), &cs, (Init){INIT_ZEROS, 0, 0}, loc);
  Node *st[2];
  static const char *const what[2] = {"moving_mean", "moving_variance"};
  for (int k = 0; k < 2; k++) {
    st[k] = graph_leaf(p->g, OP_STATE, arena_printf(p->arena, "%s.%s", base, what[k]),
                       x->dtype, &cs, loc);
    st[k]->a.init = (Init){k ? INIT_ONES : INIT_ZEROS, 0, 0};
    parse_define(p, st[k]->name, st[k], loc);
  }
  Node *g = reshape_to(p, gamma, &ks, loc), *b = reshape_to(p, beta, &ks, loc);
  Node *e = parse_scalar(p, eps, false, loc);
  Attrs red = {.axes = (uint32_t)((1u << r) - 1) & ~(1u << ax), .keepdims = true};
  /* train: batch statistics */
  Node *mean = parse_mk1(p, OP_MEAN, x, &red, loc);
  Node *d = parse_mk2(p, OP_SUB, x, mean, loc);
  Node *var = parse_mk1(p, OP_MEAN, parse_mk1(p, OP_SQUARE, d, NULL, loc), &red, loc);
  Node *sd = parse_mk1(p, OP_SQRT, parse_mk2(p, OP_ADD, var, e, loc), NULL, loc);
  Node *yt = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, parse_mk2(p, OP_DIV, d, sd, loc), g, loc), b, loc);
  /* inference: moving statistics */
  Node *mm = reshape_to(p, st[0], &ks, loc), *mvv = reshape_to(p, st[1], &ks, loc);
  Node *sdi = parse_mk1(p, OP_SQRT, parse_mk2(p, OP_ADD, mvv, e, loc), NULL, loc);
  Node *yi = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, parse_mk2(p, OP_DIV,
                        parse_mk2(p, OP_SUB, x, mm, loc), sdi, loc), g, loc), b, loc);
  Node *s2[2] = {yt, yi};
  Node *y = parse_mk(p, OP_TRAIN_SELECT, s2, 2, NULL, loc);
  /* the moving averages, after the step */
  Node *batch[2] = {reshape_to(p, mean, &cs, loc), reshape_to(p, var, &cs, loc)};
  for (int k = 0; k < 2; k++) {
    Node *keep = parse_mk2(p, OP_MUL, st[k], parse_scalar(p, momentum, false, loc), loc);
    Node *add = parse_mk2(p, OP_MUL, batch[k], parse_scalar(p, 1 - momentum, false, loc), loc);
    parse_update(p, st[k], parse_mk2(p, OP_ADD, keep, add, loc), loc);
  }
  return y;
}

static const struct Builtin {
  const char *name;
  CallFn *fn;
  OpKind op;
  int min_pos, max_pos;      /* positional arguments accepted */
  const char *kw;            /* comma-separated keyword arguments */
} builtins[] = {
    {"add", fn_binary, OP_ADD, 2, 2, ""},
    {"sub", fn_binary, OP_SUB, 2, 2, ""},
    {"mul", fn_binary, OP_MUL, 2, 2, ""},
    {"div", fn_binary, OP_DIV, 2, 2, ""},
    {"pow", fn_binary, OP_POW, 2, 2, ""},
    {"maximum", fn_binary, OP_MAXIMUM, 2, 2, ""},
    {"minimum", fn_binary, OP_MINIMUM, 2, 2, ""},
    {"equal", fn_binary, OP_EQ, 2, 2, ""},
    {"not_equal", fn_binary, OP_NE, 2, 2, ""},
    {"less", fn_binary, OP_LT, 2, 2, ""},
    {"less_equal", fn_binary, OP_LE, 2, 2, ""},
    {"greater", fn_binary, OP_GT, 2, 2, ""},
    {"greater_equal", fn_binary, OP_GE, 2, 2, ""},
    {"matmul", fn_matmul, OP_MATMUL, 2, 2, "transpose_a,transpose_b"},
    {"neg", fn_unary, OP_NEG, 1, 1, ""},
    {"abs", fn_unary, OP_ABS, 1, 1, ""},
    {"square", fn_unary, OP_SQUARE, 1, 1, ""},
    {"relu", fn_unary, OP_RELU, 1, 1, ""},
    {"sigmoid", fn_unary, OP_SIGMOID, 1, 1, ""},
    {"tanh", fn_unary, OP_TANH, 1, 1, ""},
    {"exp", fn_unary, OP_EXP, 1, 1, ""},
    {"log", fn_unary, OP_LOG, 1, 1, ""},
    {"sqrt", fn_unary, OP_SQRT, 1, 1, ""},
    {"clip", fn_clip, OP_CLIP, 1, 3, "min,max"},
    {"cast", fn_cast, OP_CAST, 1, 2, "dtype"},
    {"where", fn_where, OP_WHERE, 3, 3, ""},
    {"softmax", fn_axis, OP_SOFTMAX, 1, 2, "axis"},
    {"log_softmax", fn_axis, OP_LOG_SOFTMAX, 1, 2, "axis"},
    {"sum", fn_reduce, OP_SUM, 1, 2, "axis,keepdims"},
    {"mean", fn_reduce, OP_MEAN, 1, 2, "axis,keepdims"},
    {"max", fn_reduce, OP_MAX, 1, 2, "axis,keepdims"},
    {"min", fn_reduce, OP_MIN, 1, 2, "axis,keepdims"},
    {"argmax", fn_argreduce, OP_ARGMAX, 1, 2, "axis,keepdims"},
    {"argmin", fn_argreduce, OP_ARGMIN, 1, 2, "axis,keepdims"},
    {"reshape", fn_reshape, OP_RESHAPE, 1, 2, "shape"},
    {"transpose", fn_transpose, OP_TRANSPOSE, 1, 2, "perm"},
    {"broadcast_to", fn_broadcast, OP_BROADCAST, 1, 2, "shape"},
    {"concat", fn_concat, OP_CONCAT, 1, MAX_OPERANDS, "axis"},
    {"one_hot", fn_one_hot, OP_ONE_HOT, 1, 2, "depth"},
    {"softmax_cross_entropy", fn_binary, OP_SOFTMAX_CE, 2, 2, ""},
    {"sigmoid_cross_entropy", fn_binary, OP_SIGMOID_CE, 2, 2, ""},
    {"expand_dims", fn_expand_dims, OP_RESHAPE, 1, 2, "axis"},
    {"squeeze", fn_squeeze, OP_RESHAPE, 1, 2, "axis"},
    {"flatten", fn_flatten, OP_RESHAPE, 1, 1, ""},
    {"mse", fn_mse, OP_MEAN, 2, 2, ""},
    {"dense", fn_dense_call, OP_MATMUL, 1, 2,
     "units,activation,use_bias,kernel_initializer,bias_initializer,name"},
    {"conv2d", fn_conv2d, OP_MATMUL, 1, 3,
     "filters,kernel,kernel_size,strides,padding,dilation,dilation_rate,activation,"
     "use_bias,kernel_initializer,bias_initializer,name"},
    {"im2col", fn_im2col, OP_IM2COL, 1, 2, "kernel,strides,dilation,padding"},
    {"maxpool2d", fn_pool, OP_MAXPOOL, 1, 2, "pool,pool_size,strides,padding"},
    {"avgpool2d", fn_pool, OP_AVGPOOL, 1, 2, "pool,pool_size,strides,padding"},
    {"global_avgpool2d", fn_global_avgpool, OP_MEAN, 1, 1, ""},
    {"upsample2d", fn_upsample, OP_BROADCAST, 1, 2, "size"},
    {"pad", fn_pad, OP_UNSLICE, 1, 2, "paddings"},
    {"train_select", fn_binary, OP_TRAIN_SELECT, 2, 2, ""},
    {"dropout_mask", fn_dropout_mask, OP_DROPOUT_MASK, 1, 2, "rate,seed"},
    {"dropout", fn_dropout, OP_TRAIN_SELECT, 1, 2, "rate,seed"},
    {"batch_norm", fn_batch_norm, OP_TRAIN_SELECT, 1, 2, "axis,momentum,epsilon,name"},
};

static bool in_list(const char *list, const char *key) {
  size_t n = strlen(key);
  for (const char *s = list; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == n && memcmp(s, key, n) == 0) return true;
    if (!e) break;
    s = e + 1;
  }
  return false;
}

static const struct Builtin *find_builtin(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

/* call = IDENT "(" (arg ("," arg)*)? ")" */
Node *parse_call(Parser *p) {
  Call *c = arena_alloc(p->arena, sizeof *c);
  c->fn = p->tok;
  char *name = parse_str(p, c->fn);
  const struct Builtin *b = find_builtin(name);
  if (!b) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
      int d = edit_distance(name, builtins[i].name);
      if (d < bd) bd = d, best = builtins[i].name;
    }
    if (parse_lookup(p, name))
      parse_fail(p, c->fn->loc, "'%s' is a tensor, not a function", name);
    if (bd <= 2)
      parse_fail(p, c->fn->loc, "unknown function '%s'; did you mean '%s'?", name, best);
    parse_fail(p, c->fn->loc, "unknown function '%s'", name);
  }
  const char *outer = p->bind_name;
  p->bind_name = NULL;        /* a binding names only the outermost call */
  p->tok = p->tok->next;
  parse_skip(p, "(");
  if (!parse_at(p, ")")) {
    do parse_arg(p, c);
    while (parse_accept(p, ","));
  }
  parse_skip(p, ")");
  p->bind_name = NULL;
  if (c->npos < b->min_pos || c->npos > b->max_pos) {
    bool has_kw_for_missing = c->npos < b->min_pos && *b->kw;
    if (!has_kw_for_missing || c->npos == 0) {
      if (b->min_pos == b->max_pos)
        parse_fail(p, c->fn->loc, "%s takes %d argument%s, got %d", name, b->min_pos,
                b->min_pos == 1 ? "" : "s", c->npos);
      if (c->npos > b->max_pos)
        parse_fail(p, c->fn->loc, "%s takes at most %d positional arguments, got %d",
                name, b->max_pos, c->npos);
    }
  }
  for (int i = 0; i < c->nargs; i++)
    if (c->args[i].key && !in_list(b->kw, c->args[i].key))
      parse_fail(p, c->args[i].keyloc, "%s has no argument '%s'%s%s", name,
              c->args[i].key, *b->kw ? "; it takes: " : "", b->kw);
  if (b->fn == fn_dense_call || b->fn == fn_conv2d || b->fn == fn_batch_norm)
    p->bind_name = outer;
  Node *n = b->fn(p, c, b->op);
  p->bind_name = NULL;
  for (int i = 0; i < c->nargs; i++)
    if (!c->args[i].used && c->args[i].kind == V_NAME && !c->args[i].key)
      parse_unknown(p, c->args[i].name, c->args[i].loc);
  (void)outer;
  return n;
}

static Val *init_arg(Parser *p, Call *c, int i, const char *k1, const char *k2,
                     double *out) {
  Val *v = arg(c, i, k1);
  if (!v && k2) v = kwarg(c, k2);
  if (v) *out = num_arg(p, c, v, false);
  return v;
}

/* init = NAME ("(" args ")")? | number | list
 * Keras definitions and defaults: RandomUniform(-0.05, 0.05),
 * RandomNormal(0, 0.05), TruncatedNormal(0, 0.05) cut at 2 std. */
static Node *parse_init_into(Parser *p, Node *param, Call *outer, Val *v) {
  (void)outer;
  Init in = {0};
  Loc loc = v->loc;
  int64_t count = shape_static_count(&param->shape);
  if (v->kind == V_NUM) {
    in = (Init){INIT_CONSTANT, v->num, 0};
  } else if (v->kind == V_LIST) {
    if (!shape_eq(&v->lshape, &param->shape) &&
        !(v->lshape.rank == 1 && v->lshape.d[0].n == count)) {
      char b1[SHAPE_STR_MAX], b2[SHAPE_STR_MAX];
      parse_fail(p, loc, "initial values have shape %s but '%s' is %s",
              shape_str(p->g, &v->lshape, b1, sizeof b1), param->name,
              shape_str(p->g, &param->shape, b2, sizeof b2));
    }
    double *d = arena_alloc(p->arena, sizeof(double) * (size_t)(count ? count : 1));
    for (int64_t i = 0; i < count; i++) {
      if (v->items[i].name) parse_unknown(p, v->items[i].name, v->items[i].loc);
      d[i] = v->items[i].v;
    }
    in.kind = INIT_VALUES;
    param->a.values = d;
  } else if (v->kind == V_NAME) {
    bool found = false;
    for (int k = 0; k < INIT_VALUES; k++)
      if (strcmp(v->name, init_names[k]) == 0) in.kind = (InitKind)k, found = true;
    if (!found || in.kind == INIT_CONSTANT || in.kind == INIT_UNIFORM ||
        in.kind == INIT_NORMAL || in.kind == INIT_TRUNCATED_NORMAL) {
      if (found) goto defaults;
      const char *near = nearest(v->name, init_names, INIT_VALUES);
      if (near) parse_fail(p, loc, "unknown initializer '%s'; did you mean '%s'?", v->name, near);
      parse_fail(p, loc, "unknown initializer '%s'; use zeros, ones, constant(v), "
              "uniform(a,b), normal(mean,std), truncated_normal(std), "
              "glorot_uniform, glorot_normal, he_normal, he_uniform, "
              "lecun_normal or lecun_uniform", v->name);
    }
  } else {
    parse_fail(p, loc, "expected an initializer such as glorot_uniform, a number or "
            "a list of values");
  }
  param->a.init = in;
  return param;
defaults:
  switch (in.kind) {
  case INIT_CONSTANT: parse_fail(p, loc, "constant needs a value: constant(0.1)");
  case INIT_UNIFORM: in.a = -0.05, in.b = 0.05; break;
  default: in.a = 0, in.b = 0.05; break;
  }
  param->a.init = in;
  return param;
}

/* An initializer written as a call: constant(v), uniform(a, b), ... */
void parse_init(Parser *p, Node *param) {
  if (p->tok->kind == T_IDENT && tok_is(p->tok->next, "(")) {
    Call *c = arena_alloc(p->arena, sizeof *c);
    c->fn = p->tok;
    char *name = parse_str(p, c->fn);
    p->tok = p->tok->next->next;
    if (!parse_at(p, ")")) {
      do parse_arg(p, c);
      while (parse_accept(p, ","));
    }
    parse_skip(p, ")");
    Init in = {0};
    bool found = false;
    for (int k = 0; k < INIT_VALUES; k++)
      if (strcmp(name, init_names[k]) == 0) in.kind = (InitKind)k, found = true;
    if (!found) {
      Val v = {.kind = V_NAME, .name = name, .loc = c->fn->loc};
      parse_init_into(p, param, c, &v);     /* reports the unknown name */
    }
    const char *keys = "";
    switch (in.kind) {
    case INIT_CONSTANT:
      keys = "value";
      if (!init_arg(p, c, 0, "value", NULL, &in.a))
        parse_fail(p, c->fn->loc, "constant needs a value: constant(0.1)");
      break;
    case INIT_UNIFORM:
      keys = "minval,maxval";
      in.a = -0.05, in.b = 0.05;
      init_arg(p, c, 0, "minval", NULL, &in.a);
      init_arg(p, c, 1, "maxval", NULL, &in.b);
      if (in.a >= in.b)
        parse_fail(p, c->fn->loc, "uniform needs minval < maxval, got (%g, %g)", in.a, in.b);
      break;
    case INIT_NORMAL:
      keys = "mean,stddev,std";
      in.a = 0, in.b = 0.05;
      init_arg(p, c, 0, "mean", NULL, &in.a);
      init_arg(p, c, 1, "stddev", "std", &in.b);
      break;
    case INIT_TRUNCATED_NORMAL:
      /* truncated_normal(std) as in the TF course; mean= by keyword. */
      keys = "mean,stddev,std";
      in.a = 0, in.b = 0.05;
      init_arg(p, c, 0, "stddev", "std", &in.b);
      if (kwarg(c, "mean")) in.a = num_arg(p, c, kwarg(c, "mean"), false);
      break;
    default:
      if (c->nargs)
        parse_fail(p, c->args[0].loc, "%s takes no arguments", name);
    }
    for (int i = 0; i < c->nargs; i++) {
      if (c->args[i].key && !in_list(keys, c->args[i].key))
        parse_fail(p, c->args[i].keyloc, "%s has no argument '%s'", name, c->args[i].key);
      if (!c->args[i].used)
        parse_fail(p, c->args[i].loc, "%s: too many arguments", name);
    }
    if ((in.kind == INIT_NORMAL || in.kind == INIT_TRUNCATED_NORMAL) && !(in.b > 0))
      parse_fail(p, c->fn->loc, "%s needs a positive standard deviation", name);
    param->a.init = in;
    return;
  }
  Val v = {.loc = p->tok->loc};
  Call c = {.fn = p->tok};
  if (parse_at(p, "[")) {
    parse_list_value(p, &v);
  } else if (parse_number(p, &v.num, &v.is_int, &v.loc)) {
    v.kind = V_NUM;
  } else if (p->tok->kind == T_IDENT) {
    v.kind = V_NAME;
    v.name = parse_str(p, p->tok);
    p->tok = p->tok->next;
  } else {
    parse_fail(p, v.loc, "expected an initializer such as glorot_uniform, a "
            "number or a list of values");
  }
  parse_init_into(p, param, &c, &v);
}

/* optimizer = NAME ("(" args ")")?  with Keras defaults for every
 * hyperparameter (tf.keras.optimizers, TF 2.x). */
Optimizer parse_optimizer(Parser *p, Token *ot) {
  char *on = parse_str(p, ot);
  Optimizer o = {.loc = ot->loc, .eps = 1e-7};
  Loc lr_loc = ot->loc;
  bool found = false;
  for (int k = 0; k < OPT_COUNT; k++)
    if (strcmp(on, opt_names[k]) == 0) o.kind = (OptKind)k, found = true;
  if (!found) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int k = 0; k < OPT_COUNT; k++) {
      int d = edit_distance(on, opt_names[k]);
      if (d < bd) bd = d, best = opt_names[k];
    }
    if (bd <= 2)
      parse_fail(p, ot->loc, "unknown optimizer '%s'; did you mean '%s'?", on, best);
    parse_fail(p, ot->loc, "unknown optimizer '%s'; use sgd, rmsprop, adam or adagrad", on);
  }
  const char *keys = "";
  switch (o.kind) {
  case OPT_SGD: o.lr = 0.01; keys = "lr,learning_rate,momentum,nesterov"; break;
  case OPT_RMSPROP:
    o.lr = 0.001, o.rho = 0.9;
    keys = "lr,learning_rate,rho,momentum,eps,epsilon,centered";
    break;
  case OPT_ADAM:
    o.lr = 0.001, o.beta1 = 0.9, o.beta2 = 0.999;
    keys = "lr,learning_rate,beta1,beta_1,beta2,beta_2,eps,epsilon";
    break;
  case OPT_ADAGRAD:
    o.lr = 0.001, o.initial_accumulator = 0.1;
    keys = "lr,learning_rate,initial_accumulator,initial_accumulator_value,eps,epsilon";
    break;
  case OPT_COUNT: break;
  }
  Call *c = arena_alloc(p->arena, sizeof *c);
  c->fn = ot;
  if (parse_accept(p, "(")) {
    if (!parse_at(p, ")")) {
      do parse_arg(p, c);
      while (parse_accept(p, ","));
    }
    parse_skip(p, ")");
  }
  for (int i = 0; i < c->nargs; i++) {
    Val *v = &c->args[i];
    if (!v->key) {
      if (i > 0) parse_fail(p, v->loc, "%s: only the learning rate may be positional", on);
      o.lr = num_arg(p, c, v, false);
      lr_loc = v->loc;
      continue;
    }
    if (!in_list(keys, v->key))
      parse_fail(p, v->keyloc, "%s has no argument '%s'; it takes: %s", on, v->key, keys);
    const char *k = v->key;
    if (!strcmp(k, "nesterov")) o.nesterov = bool_arg(p, c, v);
    else if (!strcmp(k, "centered")) o.centered = bool_arg(p, c, v);
    else {
      double x = num_arg(p, c, v, false);
      if (!strcmp(k, "lr") || !strcmp(k, "learning_rate")) o.lr = x, lr_loc = v->loc;
      else if (!strcmp(k, "momentum")) o.momentum = x;
      else if (!strcmp(k, "rho")) o.rho = x;
      else if (!strcmp(k, "eps") || !strcmp(k, "epsilon")) o.eps = x;
      else if (!strcmp(k, "beta1") || !strcmp(k, "beta_1")) o.beta1 = x;
      else if (!strcmp(k, "beta2") || !strcmp(k, "beta_2")) o.beta2 = x;
      else o.initial_accumulator = x;
    }
  }
  if (!(o.lr > 0)) parse_fail(p, lr_loc, "%s: the learning rate must be positive, got %g", on, o.lr);
  if (o.momentum < 0 || o.momentum >= 1 || o.rho < 0 || o.rho >= 1 ||
      o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1)
    parse_fail(p, ot->loc, "%s: momentum, rho and betas must lie in [0, 1)", on);
  if (o.eps < 0) parse_fail(p, ot->loc, "%s: eps must not be negative", on);
  return o;
}
