/*
 * call.c - function calls of the model language: argument parsing, the
 * builtin table (every primitive op under its name - a plain elementwise
 * op straight from its row of the op table - the layers of layers.c, and
 * small sugar: flatten, mse, expand_dims, squeeze).  Initializers are
 * initializers.c's, optimizers steps.c's.
 *
 * An argument is parsed before the callee says what it must be (a tensor, a
 * number, a list, a bare name such as relu or f32); each handler then asks
 * for what it needs and reports a precise error otherwise.
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

/* ------------------------------------------------------------ calls */

/* A Call has room for every argument a call may have (19 KB), and calls
 * nest (an argument holds a call): the record of a finished call is kept
 * for the next one, since one from the arena per call made 100,000 calls
 * take 2 GB.  A parse that fails does not give its calls back; it ends. */
Call *call_begin(Parser *p, Token *fn) {
  Call *c = p->free_calls;
  if (c) p->free_calls = c->next_free;
  else c = arena_alloc(p->arena, sizeof *c);
  c->fn = fn;
  c->nargs = c->npos = 0;
  c->results = NULL, c->nresults = 0;
  c->next_free = NULL;
  return c;
}

void call_end(Parser *p, Call *c) {
  c->next_free = p->free_calls;
  p->free_calls = c;
}

/* arg = IDENT "=" value | value
 * value = list | number | IDENT (a bare name, when it is no tensor) | expr */
void call_parse_arg(Parser *p, Call *c) {
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
  size_t kl = v->key ? strlen(v->key) : 0;
  if (kl >= 11 && !strcmp(v->key + kl - 11, "regularizer")) {
    /* kernel_regularizer=l2(0.001): no tensor, parsed here (see
     * parse_regularizer) */
    parse_regularizer(p, v->reg);
    v->kind = V_NAME;
    v->name = "regularizer";
  } else if (parse_at(p, "[") && v->key) {
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

Val *call_kwarg(Call *c, const char *key) {
  for (int i = 0; i < c->nargs; i++)
    if (c->args[i].key && strcmp(c->args[i].key, key) == 0) {
      c->args[i].used = true;
      return &c->args[i];
    }
  return NULL;
}

/* The i-th positional argument, or else the keyword argument key. */
Val *call_arg(Call *c, int i, const char *key) {
  if (i < c->npos) {
    c->args[i].used = true;
    return &c->args[i];
  }
  return key ? call_kwarg(c, key) : NULL;
}

const char *call_name(Parser *p, Call *c) { return parse_str(p, c->fn); }

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

Node *call_tensor(Parser *p, Call *c, int i, const char *key) {
  Val *v = call_arg(c, i, key);
  if (!v)
    parse_fail(p, c->fn->loc, "%s: missing argument %d%s%s%s", call_name(p, c), i + 1,
            key ? " (" : "", key ? key : "", key ? ")" : "");
  return as_tensor(p, c, v);
}

double call_num(Parser *p, Call *c, Val *v, bool want_int) {
  if (v->kind != V_NUM)
    parse_fail(p, v->loc, "%s: expected a number here", call_name(p, c));
  if (want_int && !v->is_int)
    parse_fail(p, v->loc, "%s: expected an integer, got %g", call_name(p, c), v->num);
  return v->num;
}

bool call_bool(Parser *p, Call *c, Val *v) {
  if (v->kind == V_NAME && (strcmp(v->name, "true") == 0 || strcmp(v->name, "True") == 0))
    return true;
  if (v->kind == V_NAME && (strcmp(v->name, "false") == 0 || strcmp(v->name, "False") == 0))
    return false;
  if (v->kind == V_NUM && v->is_int && (v->num == 0 || v->num == 1)) return v->num != 0;
  parse_fail(p, v->loc, "%s: expected true or false", call_name(p, c));
}

static int norm_axis(Parser *p, Call *c, Loc loc, double ax, int rank) {
  if (ax != floor(ax) || ax < -rank || ax >= rank || rank == 0)
    parse_fail(p, loc, "%s: axis %g is out of range for a tensor of rank %d",
            call_name(p, c), ax, rank);
  return ax < 0 ? (int)ax + rank : (int)ax;
}

int call_axis(Parser *p, Call *c, Val *v, int rank, int dflt) {
  if (!v) return dflt < 0 ? dflt + rank : dflt;
  return norm_axis(p, c, v->loc, call_num(p, c, v, true), rank);
}

/* axis = None | int | [int, ...] -> bit mask over the operand's axes */
static uint32_t axes_arg(Parser *p, Call *c, Val *v, int rank) {
  if (!v || (v->kind == V_NAME && strcmp(v->name, "None") == 0))
    return rank ? (uint32_t)((1u << rank) - 1) : 0;
  uint32_t m = 0;
  if (v->kind == V_LIST) {
    if (v->lshape.rank != 1)
      parse_fail(p, v->loc, "%s: axis must be an integer or a list of integers",
              call_name(p, c));
    for (int64_t i = 0; i < v->lshape.d[0].n; i++) {
      Item *it = &v->items[i];
      if (it->name || !it->is_int)
        parse_fail(p, it->loc, "%s: axis must be an integer", call_name(p, c));
      uint32_t bit = 1u << norm_axis(p, c, it->loc, it->v, rank);
      if (m & bit) parse_fail(p, it->loc, "%s: axis %g is repeated", call_name(p, c), it->v);
      m |= bit;
    }
    return m;
  }
  return 1u << norm_axis(p, c, v->loc, call_num(p, c, v, true), rank);
}

/* A shape given as a list: ints (-1 once, to infer) and symbolic names. */
static Shape shape_arg(Parser *p, Call *c, Val *v) {
  if (!v || v->kind != V_LIST || v->lshape.rank != 1)
    parse_fail(p, v ? v->loc : c->fn->loc, "%s: expected a shape such as [batch, 784]",
            call_name(p, c));
  Shape s = {0};
  int64_t n = v->lshape.d[0].n;
  if (n > MAX_RANK)
    parse_fail(p, v->loc, "%s: rank %lld exceeds the limit of %d", call_name(p, c),
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
              call_name(p, c), it->v);
    } else {
      if (it->v == -1 && infer++)
        parse_fail(p, it->loc, "%s: only one dimension can be -1", call_name(p, c));
      s.d[s.rank++] = (Dim){(int64_t)it->v, 0};
    }
  }
  return s;
}

Shape call_shape(Parser *p, Call *c, Val *v) { return shape_arg(p, c, v); }

/* The closest of names to s, if it is close enough to be a likely typo. */
const char *call_nearest(const char *s, const char *const *names, int n) {
  const char *best = NULL;
  int bd = 1 << 30;
  for (int i = 0; i < n; i++) {
    int d = edit_distance(s, names[i]);
    if (d < bd) bd = d, best = names[i];
  }
  return bd <= (strlen(s) < 4 ? 1 : 2) ? best : NULL;
}

/* A size such as units or depth: argument i or key=, an integer in
 * [1, MAX_ELEMENTS]; `what` names it when it is missing. */
int64_t call_count(Parser *p, Call *c, int i, const char *key, const char *what) {
  Val *v = call_arg(c, i, key);
  if (!v) parse_fail(p, c->fn->loc, "%s: missing %s", call_name(p, c), what);
  double x = call_num(p, c, v, true);
  if (x < 1 || x > MAX_ELEMENTS)
    parse_fail(p, v->loc, "%s: %s must be a positive integer, got %g", call_name(p, c), key, x);
  return (int64_t)x;
}

Node *call_reshape(Parser *p, Node *x, const Shape *to, Loc loc) {
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


static Node *fn_unary(Parser *p, Call *c, OpKind op) {
  return parse_mk1(p, op, call_tensor(p, c, 0, NULL), NULL, c->fn->loc);
}

static Node *fn_binary(Parser *p, Call *c, OpKind op) {
  Node *a = call_tensor(p, c, 0, NULL), *b = call_tensor(p, c, 1, NULL);
  return parse_mk2(p, op, a, b, c->fn->loc);
}

/* matmul(a, b, transpose_a=false, transpose_b=false), as tf.matmul */
static Node *fn_matmul(Parser *p, Call *c, OpKind op) {
  Node *s[2] = {call_tensor(p, c, 0, NULL), call_tensor(p, c, 1, NULL)};
  Val *ta = call_kwarg(c, "transpose_a"), *tb = call_kwarg(c, "transpose_b");
  Attrs a = {.ta = ta && call_bool(p, c, ta), .tb = tb && call_bool(p, c, tb)};
  return parse_mk(p, op, s, 2, &a, c->fn->loc);
}

/* where(cond, a, b), or where(cond): the coordinates of cond's true
 * elements (tensor.c) */
static Node *fn_where(Parser *p, Call *c, OpKind op) {
  if (c->npos == 1) return tensor_where_true(p, c, op);
  if (c->npos != 3) parse_fail(p, c->fn->loc, "where takes 1 or 3 arguments, got %d", c->npos);
  Node *s[3] = {call_tensor(p, c, 0, NULL), call_tensor(p, c, 1, NULL),
                call_tensor(p, c, 2, NULL)};
  return parse_mk(p, op, s, 3, NULL, c->fn->loc);
}

static Node *fn_clip(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *lo = call_arg(c, 1, "min"), *hi = call_arg(c, 2, "max");
  if (!lo || !hi) parse_fail(p, c->fn->loc, "clip: expected clip(x, min, max)");
  Attrs a = {.lo = call_num(p, c, lo, false), .hi = call_num(p, c, hi, false)};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_cast(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *t = call_arg(c, 1, "dtype");
  bool ok = false;
  Attrs a = {0};
  if (t && t->kind == V_NAME) a.dtype = parse_dtype(t->name, &ok);
  if (!ok)
    parse_fail(p, t ? t->loc : c->fn->loc, "cast: expected a dtype: f32, f64, i32 "
            "or bool");
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_axis(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Attrs a = {.axis = call_axis(p, c, call_arg(c, 1, "axis"), x->shape.rank, -1)};
  if (x->shape.rank == 0) a.axis = 0;
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_reduce(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *kd = call_kwarg(c, "keepdims");
  Attrs a = {.axes = axes_arg(p, c, call_arg(c, 1, "axis"), x->shape.rank),
             .keepdims = kd && call_bool(p, c, kd)};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* argmax(x, axis=0): TF's default axis is 0, not numpy's flatten. */
static Node *fn_argreduce(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *kd = call_kwarg(c, "keepdims");
  Attrs a = {.axis = x->shape.rank ? call_axis(p, c, call_arg(c, 1, "axis"), x->shape.rank, 0) : 0,
             .keepdims = kd && call_bool(p, c, kd)};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

static Node *fn_reshape(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  Shape s = shape_arg(p, c, call_arg(c, 1, "shape"));
  return call_reshape(p, x, &s, c->fn->loc);
}

static Node *fn_broadcast(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Attrs a = {.to = shape_arg(p, c, call_arg(c, 1, "shape"))};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n == -1)
      parse_fail(p, c->fn->loc, "broadcast_to: -1 is not allowed in the target shape");
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* transpose(x, perm): default reverses the axes, as in TF. */
static Node *fn_transpose(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *v = call_arg(c, 1, "perm");
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
    s[n++] = call_tensor(p, c, i, NULL);
  }
  if (n < 1) parse_fail(p, c->fn->loc, "concat: expected concat(a, b, ..., axis=k)");
  Val *ax = call_kwarg(c, "axis");
  if (!ax) parse_fail(p, c->fn->loc, "concat: missing axis=");
  Attrs a = {.axis = call_axis(p, c, ax, s[0]->shape.rank, 0)};
  return parse_mk(p, op, s, n, &a, c->fn->loc);
}

static Node *fn_one_hot(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Attrs a = {.depth = call_count(p, c, 1, "depth", "depth")};
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* scatter_add(updates, ids, depth): gather's adjoint, [depth, D] */
static Node *fn_scatter_add(Parser *p, Call *c, OpKind op) {
  Node *s[2] = {call_tensor(p, c, 0, NULL), call_tensor(p, c, 1, NULL)};
  Attrs a = {.depth = call_count(p, c, 2, "depth", "depth")};
  return parse_mk(p, op, s, 2, &a, c->fn->loc);
}

/* expand_dims(x, axis): a reshape that inserts a 1 (axis may be -rank-1..rank) */
static Node *fn_expand_dims(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  Val *v = call_arg(c, 1, "axis");
  if (!v) parse_fail(p, c->fn->loc, "expand_dims: missing axis");
  int r = x->shape.rank;
  if (r == MAX_RANK) parse_fail(p, c->fn->loc, "expand_dims: rank would exceed %d", MAX_RANK);
  int ax = norm_axis(p, c, v->loc, call_num(p, c, v, true), r + 1);
  Shape s = {.rank = r + 1};
  for (int i = 0, j = 0; i <= r; i++) s.d[i] = i == ax ? (Dim){1, 0} : x->shape.d[j++];
  return call_reshape(p, x, &s, c->fn->loc);
}

/* squeeze(x, axis=None): drops size-1 axes; naming a larger one is an error */
static Node *fn_squeeze(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  Val *v = call_arg(c, 1, "axis");
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
  return call_reshape(p, x, &s, c->fn->loc);
}

/* flatten(x): Keras Flatten, keeps the first (batch) axis */
static Node *fn_flatten(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *x = call_tensor(p, c, 0, NULL);
  if (x->shape.rank < 1) parse_fail(p, c->fn->loc, "flatten: needs a tensor of rank >= 1");
  Shape s = {2, {x->shape.d[0], {-1, 0}}};
  return call_reshape(p, x, &s, c->fn->loc);
}

/* leaky_relu(x, alpha=0.2): tf.nn.leaky_relu and its default slope (Keras 2's
 * LeakyReLU layer defaults to 0.3, Keras 3's to 0.2; the GANs and
 * TF's function use 0.2). */
static Node *fn_leaky_relu(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Val *v = call_arg(c, 1, "alpha");
  Attrs a = {.alpha = v ? call_num(p, c, v, false) : 0.2};
  if (!isfinite(a.alpha)) parse_fail(p, v->loc, "leaky_relu: alpha must be a finite number");
  return parse_mk1(p, op, x, &a, c->fn->loc);
}

/* norm(x, ord=euclidean, axis=None, keepdims=false), as tf.norm: axis
 * None (every element), an axis or a list of them.  Over one axis or all
 * of them, a vector norm: ord 1 (sum of magnitudes), 2 or euclidean (the
 * square root of the sum of squares), inf (the largest magnitude).  Over
 * two axes [rows, cols], TF's matrix norms: euclidean or fro (Frobenius),
 * 1 (the largest column sum of magnitudes), inf (the largest row sum); its
 * ord=2 there, the largest singular value, is refused.  Over three or more
 * axes (TF refuses them), the vector norm of their elements, which is what
 * WGAN-GP computes per image: norm(g, axis=[1, 2, 3]).  The Euclidean
 * norm is one op (NORM), whose gradient is 0 where the norm is 0. */
static Node *fn_norm(Parser *p, Call *c, OpKind op) {
  Node *x = call_tensor(p, c, 0, NULL);
  Loc loc = c->fn->loc;
  int r = x->shape.rank;
  if (r == 0) parse_fail(p, loc, "norm needs a tensor of rank >= 1, got a scalar");
  if (!dtype_is_float(x->dtype))
    parse_fail(p, loc, "norm needs a floating-point tensor, got %s; use cast(x, f32)",
               dtype_names[x->dtype]);
  enum { ORD_1, ORD_2, ORD_EUCLID, ORD_FRO, ORD_INF } ord = ORD_EUCLID;
  Val *o = call_arg(c, 1, "ord");
  if (o && o->kind == V_NUM && o->num == 1) ord = ORD_1;
  else if (o && o->kind == V_NUM && o->num == 2) ord = ORD_2;
  else if (o && o->kind == V_NAME && !strcmp(o->name, "euclidean")) ord = ORD_EUCLID;
  else if (o && o->kind == V_NAME && !strcmp(o->name, "fro")) ord = ORD_FRO;
  else if (o && o->kind == V_NAME && !strcmp(o->name, "inf")) ord = ORD_INF;
  else if (o)
    parse_fail(p, o->loc, "norm: ord must be 1, 2, inf, euclidean or fro");
  /* the axes in the order written: a matrix norm's first is its rows */
  Val *ax = call_arg(c, 2, "axis");
  int axes[MAX_RANK], naxes = 0;
  uint32_t mask = 0;
  if (!ax || (ax->kind == V_NAME && !strcmp(ax->name, "None"))) {
    for (int i = 0; i < r; i++) axes[naxes++] = i;
    mask = (1u << r) - 1;
  } else {
    mask = axes_arg(p, c, ax, r);
    if (ax->kind == V_LIST)
      for (int64_t i = 0; i < ax->lshape.d[0].n; i++)
        axes[naxes++] = norm_axis(p, c, ax->items[i].loc, ax->items[i].v, r);
    else
      axes[naxes++] = norm_axis(p, c, ax->loc, ax->num, r);
  }
  bool matrix = ax && ax->kind == V_LIST && naxes == 2;
  Val *kd = call_kwarg(c, "keepdims");
  bool keep = kd && call_bool(p, c, kd);
  if (ord == ORD_FRO && !matrix)
    parse_fail(p, o->loc, "norm: ord=fro is a matrix norm (axis=[rows, cols]), as in tf.norm; "
               "use euclidean");
  if (ord == ORD_2 && matrix)
    parse_fail(p, o->loc, "norm: ord=2 over two axes is the spectral norm (tf.norm's largest "
               "singular value), which gradc does not compute; use euclidean or fro");
  Attrs all = {.axes = mask, .keepdims = keep};
  if (ord == ORD_2 || ord == ORD_EUCLID || ord == ORD_FRO) return parse_mk1(p, op, x, &all, loc);
  Node *m = parse_mk1(p, OP_ABS, x, NULL, loc);
  if (!matrix) return parse_mk1(p, ord == ORD_1 ? OP_SUM : OP_MAX, m, &all, loc);
  /* tf.norm: the sum along the rows axis (ord 1) or the cols axis (inf),
   * then the largest of those sums */
  int sum_axis = ord == ORD_1 ? axes[0] : axes[1], max_axis = ord == ORD_1 ? axes[1] : axes[0];
  Attrs sa = {.axes = 1u << sum_axis, .keepdims = true}, ma = {.axes = 1u << max_axis, .keepdims = true};
  Node *y = parse_mk1(p, OP_MAX, parse_mk1(p, OP_SUM, m, &sa, loc), &ma, loc);
  if (keep) return y;
  Shape s = {0};
  for (int i = 0; i < r; i++)
    if (!(mask & (1u << i))) s.d[s.rank++] = x->shape.d[i];
  return call_reshape(p, y, &s, loc);
}

/* grad(y, x): the gradient of the sum of y's elements with respect to x
 * (x's shape), TF's tape.gradient(y, x); differentiable again, so a loss
 * may hold it (WGAN-GP's gradient penalty).  A placeholder until the
 * autodiff stage writes it out (autodiff.c: lower_grads). */
static Node *fn_grad(Parser *p, Call *c, OpKind op) {
  Node *s[2] = {call_tensor(p, c, 0, NULL), call_tensor(p, c, 1, NULL)};
  /* Why refused: a body's nodes run once per iteration, and the gradient
   * nodes appended for them would not be part of the loop. */
  if (p->g->cur_loop)
    parse_fail(p, c->fn->loc, "grad() inside a loop body is not supported; take the "
               "gradient of the loop's results outside it");
  return parse_mk(p, op, s, 2, NULL, c->fn->loc);
}

/* mse(a, b): Keras MeanSquaredError per sample = mean over the last axis */
static Node *fn_mse(Parser *p, Call *c, OpKind op) {
  (void)op;
  Node *a = call_tensor(p, c, 0, NULL), *b = call_tensor(p, c, 1, NULL);
  Node *d = parse_mk1(p, OP_SQUARE, parse_mk2(p, OP_SUB, a, b, c->fn->loc), NULL, c->fn->loc);
  Attrs r = {.axes = d->shape.rank ? 1u << (d->shape.rank - 1) : 0};
  return parse_mk1(p, OP_MEAN, d, &r, c->fn->loc);
}

/* random_normal(shape, mean=0, stddev=1, seed=k, dtype=f32),
 * random_uniform(shape, minval=0, maxval=1, ...), truncated_normal(shape,
 * mean=0, stddev=1, ...): TF's tf.random.* inside the step, shapes with
 * symbolic dimensions ([batch, 100]).  Drawn afresh every train step (see
 * ops.h, eval.c); the k-th unseeded random op of a model gets seed k. */
static Node *fn_random(Parser *p, Call *c, OpKind op) {
  bool uniform = op == OP_RANDOM_UNIFORM;
  Attrs a = {.to = shape_arg(p, c, call_arg(c, 0, "shape")), .hi = 1, .dtype = DT_F32};
  for (int i = 0; i < a.to.rank; i++)
    if (a.to.d[i].n == -1)
      parse_fail(p, c->fn->loc, "%s: -1 is not allowed in the shape", call_name(p, c));
  Val *lo = call_arg(c, 1, uniform ? "minval" : "mean"), *hi = call_arg(c, 2, uniform ? "maxval" : "stddev");
  if (lo) a.lo = call_num(p, c, lo, false);
  if (hi) a.hi = call_num(p, c, hi, false);
  Val *s = call_kwarg(c, "seed");
  a.seed = p->nrandom++;
  if (s) {
    double v = call_num(p, c, s, true);
    if (v < 0 || v > 1e15) parse_fail(p, s->loc, "%s: seed must be a non-negative integer", call_name(p, c));
    a.seed = (int64_t)v;
  }
  Val *t = call_kwarg(c, "dtype");
  if (t) {
    bool ok = false;
    if (t->kind == V_NAME) a.dtype = parse_dtype(t->name, &ok);
    if (!ok) parse_fail(p, t->loc, "%s: expected a dtype: f32 or f64", call_name(p, c));
  }
  /* Why refused: a node that reads nothing of a loop's body is computed
   * once before the loop, so every iteration would see the same draw. */
  if (p->g->cur_loop)
    parse_fail(p, c->fn->loc, "%s inside a scan body would draw once for every step of the "
               "loop; draw the noise for all steps outside and pass it in as a sequence",
               call_name(p, c));
  return parse_mk(p, op, NULL, 0, &a, c->fn->loc);
}

/* Keras' backend.epsilon(), the clipping of its losses on probabilities. */
static const double KERAS_EPSILON = 1e-7;

static Node *mean_last_axis(Parser *p, Node *x, Loc loc) {
  Attrs r = {.axes = x->shape.rank ? 1u << (x->shape.rank - 1) : 0};
  return parse_mk1(p, OP_MEAN, x, &r, loc);
}

/* binary_crossentropy(y_true, y_pred): Keras 2's on probabilities
 * (keras.losses.binary_crossentropy, backend.binary_crossentropy with
 * from_logits=False): p = clip(y_pred, eps, 1 - eps), then
 * -(t log(p + eps) + (1 - t) log(1 - p + eps)), averaged over the last
 * axis, eps = 1e-7.  (Keras' graph mode reads the logits back when y_pred
 * is a sigmoid's output; we compute what its eager mode does: from logits,
 * write sigmoid_cross_entropy.) */
static Node *fn_binary_crossentropy(Parser *p, Call *c, OpKind op) {
  (void)op;
  Loc loc = c->fn->loc;
  Node *t = call_tensor(p, c, 0, "y_true"), *y = call_tensor(p, c, 1, "y_pred");
  Attrs clip = {.lo = KERAS_EPSILON, .hi = 1 - KERAS_EPSILON};
  Node *q = parse_mk1(p, OP_CLIP, y, &clip, loc);
  Node *eps = parse_scalar(p, KERAS_EPSILON, false, loc), *one = parse_scalar(p, 1, false, loc);
  Node *l1 = parse_mk1(p, OP_LOG, parse_mk2(p, OP_ADD, q, eps, loc), NULL, loc);
  Node *l0 = parse_mk1(p, OP_LOG, parse_mk2(p, OP_ADD, parse_mk2(p, OP_SUB, one, q, loc), eps, loc), NULL, loc);
  Node *b = parse_mk2(p, OP_ADD, parse_mk2(p, OP_MUL, t, l1, loc),
                      parse_mk2(p, OP_MUL, parse_mk2(p, OP_SUB, one, t, loc), l0, loc), loc);
  return mean_last_axis(p, parse_mk1(p, OP_NEG, b, NULL, loc), loc);
}

/* kl_divergence(y_true, y_pred): Keras' KLDivergence per sample,
 * sum(t log(t / q)) over the last axis with t and q clipped to [eps, 1]. */
static Node *fn_kl_divergence(Parser *p, Call *c, OpKind op) {
  (void)op;
  Loc loc = c->fn->loc;
  Attrs clip = {.lo = KERAS_EPSILON, .hi = 1};
  Node *t = parse_mk1(p, OP_CLIP, call_tensor(p, c, 0, "y_true"), &clip, loc);
  Node *q = parse_mk1(p, OP_CLIP, call_tensor(p, c, 1, "y_pred"), &clip, loc);
  Node *k = parse_mk2(p, OP_MUL, t, parse_mk1(p, OP_LOG, parse_mk2(p, OP_DIV, t, q, loc), NULL, loc), loc);
  Attrs r = {.axes = k->shape.rank ? 1u << (k->shape.rank - 1) : 0};
  return parse_mk1(p, OP_SUM, k, &r, loc);
}

typedef struct Builtin {
  const char *name;
  CallFn *fn;
  OpKind op;
  int min_pos, max_pos;      /* positional arguments accepted */
  const char *kw;            /* comma-separated keyword arguments */
} Builtin;

/* The functions that are more than an op of the table under its name: ops
 * with arguments of their own (clip's bounds, a reduction's axis), ops of
 * other kinds, layers and sugar.  A plain elementwise op (table_builtin)
 * needs no row here. */
static const Builtin builtins[] = {
    {"matmul", fn_matmul, OP_MATMUL, 2, 2, "transpose_a,transpose_b"},
    {"clip", fn_clip, OP_CLIP, 1, 3, "min,max"},
    {"cast", fn_cast, OP_CAST, 1, 2, "dtype"},
    {"where", fn_where, OP_WHERE, 1, 3, ""},
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
    {"gather", tensor_gather, OP_GATHER, 2, 2, "params,indices,axis,batch_dims"},
    /* issue 24: the tensor toolkit (tensor.c) */
    {"gather_nd", tensor_gather_nd, OP_TAKE, 2, 2, "params,indices"},
    {"scatter_nd", tensor_scatter_nd, OP_TAKE_ADD, 2, 3, "indices,updates,shape"},
    {"take", tensor_take, OP_TAKE, 2, 2, ""},
    {"take_add", tensor_take_add, OP_TAKE_ADD, 2, 3, "shape"},
    {"tile", tensor_tile, OP_TAKE, 1, 2, "input,multiples"},
    {"repeat", tensor_repeat, OP_TAKE, 1, 3, "input,repeats,axis"},
    {"stack", tensor_stack, OP_CONCAT, 1, MAX_OPERANDS, "axis"},
    {"unstack", tensor_unstack, OP_SLICE, 1, 2, "value,axis"},
    {"split", tensor_split, OP_SLICE, 1, 3, "value,num_or_size_splits,axis"},
    {"reverse", tensor_reverse, OP_SLICE, 1, 2, "tensor,axis"},
    {"range", tensor_range, OP_CONST, 1, 3, "start,limit,delta"},
    {"linspace", tensor_linspace, OP_CONST, 0, 3, "start,stop,num"},
    {"meshgrid", tensor_meshgrid, OP_BROADCAST, 1, MAX_RANK, "indexing"},
    {"fill", tensor_fill, OP_BROADCAST, 0, 2, "dims,value"},
    {"zeros_like", tensor_like, OP_BROADCAST, 1, 1, "input"},
    {"ones_like", tensor_like, OP_BROADCAST, 1, 1, "input"},
    {"argsort", tensor_argsort, OP_ARGSORT, 1, 2, "values,axis,direction"},
    {"sort", tensor_sort, OP_TAKE, 1, 2, "values,axis,direction"},
    {"top_k", tensor_top_k, OP_TAKE, 1, 2, "input,k"},
    {"cumsum", tensor_cumsum, OP_CUMSUM, 1, 2, "x,axis,exclusive,reverse"},
    {"cumprod", tensor_cumsum, OP_CUMPROD, 1, 2, "x,axis,exclusive,reverse"},
    {"top_k_accuracy", tensor_top_k_accuracy, OP_MEAN, 0, 3, "y_pred,y_true,k"},
    /* data-dependent sizes: padded results (tensor.c) */
    {"boolean_mask", tensor_boolean_mask, OP_TAKE_ADD, 2, 3, "tensor,mask,axis"},
    {"unique", tensor_unique, OP_TAKE_ADD, 1, 1, "x"},
    {"valid_shape", tensor_valid_shape, OP_TAKE_ADD, 1, 1, "input"},
    {"scatter_add", fn_scatter_add, OP_SCATTER_ADD, 2, 3, "depth"},
    {"softmax_cross_entropy", fn_binary, OP_SOFTMAX_CE, 2, 2, ""},
    {"sigmoid_cross_entropy", fn_binary, OP_SIGMOID_CE, 2, 2, ""},
    {"expand_dims", fn_expand_dims, OP_RESHAPE, 1, 2, "axis"},
    {"squeeze", fn_squeeze, OP_RESHAPE, 1, 2, "axis"},
    {"flatten", fn_flatten, OP_RESHAPE, 1, 1, ""},
    {"mse", fn_mse, OP_MEAN, 2, 2, ""},
    {"binary_crossentropy", fn_binary_crossentropy, OP_MEAN, 0, 2, "y_true,y_pred"},
    {"kl_divergence", fn_kl_divergence, OP_SUM, 0, 2, "y_true,y_pred"},
    {"leaky_relu", fn_leaky_relu, OP_LEAKY_RELU, 1, 2, "alpha"},
    {"norm", fn_norm, OP_NORM, 1, 3, "ord,axis,keepdims"},
    {"grad", fn_grad, OP_GRAD, 2, 2, ""},
    {"dense", layer_dense, OP_MATMUL, 1, 2,
     "units,activation,use_bias,kernel_initializer,bias_initializer,kernel_regularizer,"
     "bias_regularizer,name"},
    {"conv2d", layer_conv2d, OP_MATMUL, 1, 3,
     "filters,kernel,kernel_size,strides,padding,dilation,dilation_rate,activation,"
     "use_bias,kernel_initializer,bias_initializer,kernel_regularizer,bias_regularizer,name"},
    {"conv2d_transpose", layer_conv2d_transpose, OP_COL2IM, 1, 3,
     "filters,kernel,kernel_size,strides,padding,output_padding,activation,use_bias,"
     "kernel_initializer,bias_initializer,name"},
    {"im2col", layer_im2col, OP_IM2COL, 1, 2, "kernel,strides,dilation,padding"},
    {"col2im", layer_col2im, OP_COL2IM, 1, 1, "kernel,strides,dilation,padding,shape"},
    {"maxpool2d", layer_pool, OP_MAXPOOL, 1, 2, "pool,pool_size,strides,padding"},
    {"avgpool2d", layer_pool, OP_AVGPOOL, 1, 2, "pool,pool_size,strides,padding"},
    {"global_avgpool2d", layer_global_avgpool, OP_MEAN, 1, 1, ""},
    {"upsample2d", layer_upsample, OP_BROADCAST, 1, 2, "size,interpolation"},
    {"pad", layer_pad, OP_UNSLICE, 1, 2, "paddings"},
    {"train_select", fn_binary, OP_TRAIN_SELECT, 2, 2, ""},
    {"dropout_mask", layer_dropout_mask, OP_DROPOUT_MASK, 1, 2, "rate,seed"},
    {"dropout", layer_dropout, OP_TRAIN_SELECT, 1, 2, "rate,seed"},
    {"random_normal", fn_random, OP_RANDOM_NORMAL, 1, 3, "shape,mean,stddev,seed,dtype"},
    {"random_uniform", fn_random, OP_RANDOM_UNIFORM, 1, 3, "shape,minval,maxval,seed,dtype"},
    {"truncated_normal", fn_random, OP_TRUNCATED_NORMAL, 1, 3, "shape,mean,stddev,seed,dtype"},
    /* issue 22: data augmentation in the train step (augment.c) */
    {"random_flip", augment_flip, OP_TRAIN_SELECT, 1, 2, "x,mode,seed"},
    {"random_translation", augment_translation, OP_TRAIN_SELECT, 1, 5,
     "x,height_factor,width_factor,fill_mode,fill_value,seed"},
    {"random_crop", augment_crop, OP_TRAIN_SELECT, 1, 2, "x,pad,seed"},
    {"batch_norm", layer_batch_norm, OP_TRAIN_SELECT, 1, 2, "axis,momentum,epsilon,name,sync"},
    {"embedding", layer_embedding, OP_GATHER, 1, 3, "input_dim,output_dim,embeddings_initializer,name"},
    {"simple_rnn", layer_simple_rnn, OP_CARRY, 1, 2,
     "units,activation,use_bias,kernel_initializer,recurrent_initializer,bias_initializer,"
     "dropout,recurrent_dropout,return_sequences,go_backwards,bidirectional,seed,name"},
    {"lstm", layer_lstm, OP_CARRY, 1, 2,
     "units,activation,recurrent_activation,use_bias,kernel_initializer,"
     "recurrent_initializer,bias_initializer,unit_forget_bias,dropout,recurrent_dropout,"
     "return_sequences,go_backwards,bidirectional,seed,name"},
    {"gru", layer_gru, OP_CARRY, 1, 2,
     "units,activation,recurrent_activation,use_bias,kernel_initializer,"
     "recurrent_initializer,bias_initializer,reset_after,dropout,recurrent_dropout,"
     "return_sequences,go_backwards,bidirectional,seed,name"},
};

bool call_in_list(const char *list, const char *key) {
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

/* An elementwise op of one or two operands is a function of its name in
 * the op table, taking its operands and nothing else (sigmoid(x),
 * maximum(a, b)): adding such an op to ops.h is all the parser needs.  One
 * with arguments of its own (clip, cast) has a row in builtins, which wins. */
static bool table_builtin(OpKind op, Builtin *out) {
  const OpInfo *o = &op_info[op];
  if (!(o->flags & F_ELEMENTWISE) || (o->kind != K_UNARY && o->kind != K_BINARY)) return false;
  *out = (Builtin){o->name, o->kind == K_UNARY ? fn_unary : fn_binary, op, o->arity, o->arity, ""};
  return true;
}

static bool find_builtin(const char *name, Builtin *out) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(builtins[i].name, name) == 0) return *out = builtins[i], true;
  for (int op = 0; op < OP_COUNT; op++)
    if (table_builtin((OpKind)op, out) && strcmp(out->name, name) == 0) return true;
  return false;
}

/* The known function name nearest to name (edit distance), and how near;
 * the table's ops first, in table order, then builtins. */
static const char *nearest_builtin(const char *name, int *distance) {
  const char *best = NULL;
  int bd = 1 << 30;
  Builtin b;
  for (int op = 0; op < OP_COUNT; op++) {
    if (!table_builtin((OpKind)op, &b)) continue;
    int d = edit_distance(name, b.name);
    if (d < bd) bd = d, best = b.name;
  }
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
    int d = edit_distance(name, builtins[i].name);
    if (d < bd) bd = d, best = builtins[i].name;
  }
  *distance = bd;
  return best;
}

bool call_is_builtin(const char *name) {
  Builtin b;
  return find_builtin(name, &b);
}

/* call = IDENT "(" (arg ("," arg)*)? ")" */
/* A call of a builtin: *r pointed at its results (in the arena), their
 * number returned. */
static int call_builtin(Parser *p, Node ***r) {
  Call *c = call_begin(p, p->tok);
  char *name = parse_str(p, c->fn);
  Builtin bv, *b = &bv;
  if (!find_builtin(name, b)) {
    int bd;
    const char *best = nearest_builtin(name, &bd);
    if (parse_lookup(p, name))
      parse_fail(p, c->fn->loc, "'%s' is a tensor, not a function", name);
    /* Functions too are defined in file order (see parse_unknown). */
    for (const Token *t = c->fn; t->kind != T_EOF; t = t->next)
      if (tok_is(t, "def") && tok_is(t->next, name))
        parse_fail(p, c->fn->loc, "unknown function '%s': it is defined later, at line %d; a "
                   "function must be defined before its first call", name, t->next->loc.line);
    if (bd <= 2)
      parse_fail(p, c->fn->loc, "unknown function '%s'; did you mean '%s'?", name, best);
    parse_fail(p, c->fn->loc, "unknown function '%s'", name);
  }
  const char *outer = p->bind_name;
  p->bind_name = NULL;        /* a binding names only the outermost call */
  p->tok = p->tok->next;
  parse_skip(p, "(");
  if (!parse_at(p, ")")) {
    do call_parse_arg(p, c);
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
    if (c->args[i].key && !call_in_list(b->kw, c->args[i].key))
      parse_fail(p, c->args[i].keyloc, "%s has no argument '%s'%s%s", name,
              c->args[i].key, *b->kw ? "; it takes: " : "", b->kw);
  if (b->fn == layer_dense || b->fn == layer_conv2d || b->fn == layer_conv2d_transpose ||
      b->fn == layer_batch_norm ||
      b->fn == layer_embedding || b->fn == layer_simple_rnn || b->fn == layer_lstm ||
      b->fn == layer_gru)
    p->bind_name = outer;
  Node *n = b->fn(p, c, b->op);
  p->bind_name = NULL;
  for (int i = 0; i < c->nargs; i++)
    if (!c->args[i].used && c->args[i].kind == V_NAME && !c->args[i].key)
      parse_unknown(p, c->args[i].name, c->args[i].loc);
  (void)outer;
  int count = c->nresults ? c->nresults : 1;
  if (c->nresults) *r = c->results;
  else *r = arena_alloc(p->arena, sizeof(Node *)), (*r)[0] = n;
  call_end(p, c);
  return count;
}

Node *parse_call(Parser *p) {
  Token *fn = p->tok;
  Node **r;
  int n = call_builtin(p, &r);
  if (n != 1) {
    char *name = parse_str(p, fn);
    parse_fail(p, fn->loc, "%s gives %d results here; assign them with a tuple: a, b = %s(...)", name, n, name);
  }
  return r[0];
}

int parse_call_results(Parser *p, Node ***r) { return call_builtin(p, r); }
