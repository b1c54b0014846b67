/*
 * initializers.c - a parameter's initial value as the model file writes
 * it: `param W : f32[784, 512] = glorot_uniform`, a number, a list of
 * values, or a layer's kernel_initializer= / bias_initializer= argument.
 * Checks what the runtime cannot know later - the value fits the dtype,
 * the list the shape, orthogonal gets a matrix - and records the kind
 * and its numbers in the parameter's Attrs; runtime/init.c draws the
 * values from them (the same numbers in the evaluator, the JIT and a
 * .so).  Entry points: parse_init (after `=`), call_init (a parsed value).
 */
#include <math.h>
#include <string.h>

#include "compiler.h"

/* Keras' Orthogonal refuses tensors of rank < 2: it needs a matrix. */
static void orthogonal_shape(Parser *p, const Node *param, Loc loc) {
  if (param->a.init.kind == INIT_ORTHOGONAL && param->shape.rank < 2)
    parse_fail(p, loc, "orthogonal needs a parameter of rank >= 2 (a matrix), '%s' has rank %d",
               param->name ? param->name : "", param->shape.rank);
}

/* A number the initializer of param draws from or writes: it must be a
 * value of the parameter's dtype (uniform(-1e308, 1e308) for an f32
 * parameter gave infinities). */
static void init_value_fits(Parser *p, const Node *param, const char *what, double v, Loc loc) {
  if (!dtype_holds(param->dtype, v))
    parse_fail(p, loc, "%s%g is out of range for %s, the dtype of '%s' (%s)", what, v,
               dtype_names[param->dtype], param->name ? param->name : "", dtype_range(param->dtype));
}

static Val *init_arg(Parser *p, Call *c, const Node *param, int i, const char *k1, const char *k2,
                     double *out) {
  Val *v = call_arg(c, i, k1);
  if (!v && k2) v = call_kwarg(c, k2);
  if (v) {
    *out = call_num(p, c, v, false);
    init_value_fits(p, param, "", *out, v->loc);
  }
  return v;
}

/* init = NAME ("(" args ")")? | number | list
 * Keras definitions and defaults: RandomUniform(-0.05, 0.05),
 * RandomNormal(0, 0.05), TruncatedNormal(0, 0.05) cut at 2 std. */
Node *call_init(Parser *p, Node *param, Val *v) {
  Init in = {0};
  Loc loc = v->loc;
  int64_t count = shape_static_count(&param->shape);
  if (v->kind == V_NUM) {
    init_value_fits(p, param, "", v->num, loc);
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
      init_value_fits(p, param, "initial value ", v->items[i].v, v->items[i].loc);
      d[i] = v->items[i].v;
    }
    in.kind = INIT_VALUES;
    param->a.values = d;
  } else if (v->kind == V_NAME) {
    bool found = false;
    for (int k = 0; k < INIT_VALUES; k++)
      if (strcmp(v->name, init_names[k]) == 0) in.kind = (InitKind)k, found = true;
    if (!found || in.kind == INIT_CONSTANT || in.kind == INIT_UNIFORM ||
        in.kind == INIT_NORMAL || in.kind == INIT_TRUNCATED_NORMAL || in.kind == INIT_ORTHOGONAL) {
      if (found) goto defaults;
      const char *near = call_nearest(v->name, init_names, INIT_VALUES);
      if (near) parse_fail(p, loc, "unknown initializer '%s'; did you mean '%s'?", v->name, near);
      parse_fail(p, loc, "unknown initializer '%s'; use zeros, ones, constant(v), "
              "uniform(a,b), normal(mean,std), truncated_normal(std), "
              "glorot_uniform, glorot_normal, he_normal, he_uniform, "
              "lecun_normal, lecun_uniform or orthogonal", v->name);
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
  case INIT_ORTHOGONAL: in.a = 1, in.b = 0; break;
  default: in.a = 0, in.b = 0.05; break;
  }
  param->a.init = in;
  orthogonal_shape(p, param, loc);
  return param;
}

/* An initializer written as a call: constant(v), uniform(a, b), ... */
void parse_init(Parser *p, Node *param) {
  if (p->tok->kind == T_IDENT && tok_is(p->tok->next, "(")) {
    Call *c = call_begin(p, p->tok);
    char *name = parse_str(p, c->fn);
    p->tok = p->tok->next->next;
    if (!parse_at(p, ")")) {
      do call_parse_arg(p, c);
      while (parse_accept(p, ","));
    }
    parse_skip(p, ")");
    Init in = {0};
    bool found = false;
    for (int k = 0; k < INIT_VALUES; k++)
      if (strcmp(name, init_names[k]) == 0) in.kind = (InitKind)k, found = true;
    if (!found) {
      Val v = {.kind = V_NAME, .name = name, .loc = c->fn->loc};
      call_init(p, param, &v);     /* reports the unknown name */
    }
    const char *keys = "";
    switch (in.kind) {
    case INIT_CONSTANT:
      keys = "value";
      if (!init_arg(p, c, param, 0, "value", NULL, &in.a))
        parse_fail(p, c->fn->loc, "constant needs a value: constant(0.1)");
      break;
    case INIT_UNIFORM:
      keys = "minval,maxval";
      in.a = -0.05, in.b = 0.05;
      init_arg(p, c, param, 0, "minval", NULL, &in.a);
      init_arg(p, c, param, 1, "maxval", NULL, &in.b);
      if (in.a >= in.b)
        parse_fail(p, c->fn->loc, "uniform needs minval < maxval, got (%g, %g)", in.a, in.b);
      break;
    case INIT_NORMAL:
      keys = "mean,stddev,std";
      in.a = 0, in.b = 0.05;
      init_arg(p, c, param, 0, "mean", NULL, &in.a);
      init_arg(p, c, param, 1, "stddev", "std", &in.b);
      break;
    case INIT_TRUNCATED_NORMAL:
      /* truncated_normal(std) as in the TF course; mean= by keyword. */
      keys = "mean,stddev,std";
      in.a = 0, in.b = 0.05;
      init_arg(p, c, param, 0, "stddev", "std", &in.b);
      init_arg(p, c, param, MAX_ARGS, "mean", NULL, &in.a);   /* by keyword only */
      break;
    case INIT_ORTHOGONAL:
      /* Keras 2's Orthogonal(gain=1.0) */
      keys = "gain";
      in.a = 1;
      init_arg(p, c, param, 0, "gain", NULL, &in.a);
      break;
    default:
      if (c->nargs)
        parse_fail(p, c->args[0].loc, "%s takes no arguments", name);
    }
    for (int i = 0; i < c->nargs; i++) {
      if (c->args[i].key && !call_in_list(keys, c->args[i].key))
        parse_fail(p, c->args[i].keyloc, "%s has no argument '%s'", name, c->args[i].key);
      if (!c->args[i].used)
        parse_fail(p, c->args[i].loc, "%s: too many arguments", name);
    }
    if ((in.kind == INIT_NORMAL || in.kind == INIT_TRUNCATED_NORMAL) && !(in.b > 0))
      parse_fail(p, c->fn->loc, "%s needs a positive standard deviation", name);
    param->a.init = in;
    orthogonal_shape(p, param, c->fn->loc);
    call_end(p, c);
    return;
  }
  Val v = {.loc = p->tok->loc};
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
  call_init(p, param, &v);
}
