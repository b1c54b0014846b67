/*
 * optimizer.c - the optimizer table and the train steps' updates.
 *
 * One row per optimizer (opt_info): its name, its hyperparameters with
 * Keras' defaults and valid ranges, its boolean switches, and the builder of
 * one parameter's update.  The parser reads the names, keys, defaults and
 * ranges from here (call.c, parse_optimizer); the stage below builds the
 * update from the same row.
 *
 * Input: a graph after autodiff (each train step's grads, g->steps[s]).
 * Output: per train step, its update nodes appended - new values for the
 * parameters it trains and their optimizer slots (under the step's state
 * prefix), the model's own state updates its loss feeds (update
 * statements: batch norm's moving statistics; every step's when no loss
 * feeds one) - then one ASSIGN per state, owned by its step (a.owner), all
 * at the very end, so "all reads, then all writes" holds by executing the
 * array in order.  A step with Adam or a learning-rate schedule gets its
 * counter PREFIXoptimizer/iterations (Adam's t, the schedule's step).  Every random op (dropout_mask, random_normal,
 * ...) takes a step counter as its last operand: that one with one step,
 * else dropout/iterations, which every step advances, so draws never
 * repeat between steps.
 *
 * Hyperparameters are run-time values: each one an update reads becomes a
 * scalar f64 STATE node optimizer/NAME, initialised (INIT_CONSTANT) to the
 * model's setting, never folded, saved in checkpoints with the rest of the
 * state, and written through the API (gradc_set_hyper) between steps, so a
 * schedule needs no recompilation.  Only what the built update reads
 * exists: sgd without momentum has no momentum slot and no optimizer/
 * momentum (Keras builds the same two forms).  Scalars derived from them
 * (1 - rho) are computed in f64 and then rounded to the parameter's dtype:
 * the same bits as the folded constants of a compile-time setting, so
 * results do not change.  Adam's step size lr * sqrt(1 - beta2^t) /
 * (1 - beta1^t) is computed in each parameter's dtype, as Keras computes it
 * in the variable's.
 *
 * With data parallelism (g->data_parallel), each gradient passes through
 * an allreduce node before clipping and the update: the sum over the
 * replicas, each weighted by its share of the batch, that the instance's
 * callback computes (a loss that is a mean over the batch then gets the
 * gradient of the whole batch); without a callback the node is the
 * gradient itself.
 *
 * Gradient clipping is an option of every optimizer, Keras 2.x's
 * (optimizer_v2._transform_gradients), applied in its order before the
 * update: clipvalue=c clips each element to [-c, c]; clipnorm=c scales each
 * gradient by c / max(||g||, c) (tf.clip_by_norm); global_clipnorm=c scales
 * all of the step's gradients by c / max(global norm, c)
 * (tf.clip_by_global_norm).  Norms are sums of squares (accumulated in f64,
 * as every f32 sum) and the scale is computed in f64, then rounded to the
 * gradient's dtype.  The thresholds are run-time hyperparameters like the
 * others (optimizer/clipnorm, ...); one not given makes no node at all, so
 * a model without clipping has the graph it always had.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "compiler.h"

#define H(name, alias, field, dflt, range) {name, alias, offsetof(Optimizer, field), dflt, range}

typedef struct Update {
  Node *dst, *value;
} Update;

/* The builder's state: what the step has made so far. */
struct OptBuild {
  Graph *g;
  const TrainStep *st;                /* the step whose update this is */
  const OptInfo *info;
  Node *fwd;                          /* the node whose location new nodes take */
  Node *hyper[OPT_MAX_HYPERS];        /* the f64 state, made on first read */
  Node *cast[OPT_MAX_HYPERS][DT_COUNT];
  Node *it, *t1;                      /* iterations, iterations + 1 */
  Node *lr64;                         /* the scheduled lr, f64, made on first read */
  Node *adam_alpha[DT_COUNT];
  Update *ups;
  int nups;
};

/* ------------------------------------------------------------ builders */

static Node *node(OptBuild *b, OpKind op, Node **src, int n, const Attrs *a) {
  Node *r = graph_node(b->g, op, src, n, a, b->fwd->loc);
  GRADC_ASSERT(r);           /* scalars and the parameter's own shape */
  r->fwd = b->fwd;
  r->rule = b->info->name;
  return r;
}

static Node *un(OptBuild *b, OpKind op, Node *x) { return node(b, op, &x, 1, NULL); }

static Node *bin(OptBuild *b, OpKind op, Node *x, Node *y) {
  Node *s[2] = {x, y};
  return node(b, op, s, 2, NULL);
}

static Node *cast(OptBuild *b, Node *x, DType t) {
  if (x->dtype == t) return x;
  Attrs c = {.dtype = t};
  return node(b, OP_CAST, &x, 1, &c);
}

static Node *konst(OptBuild *b, double v, DType t) {
  Node *k = graph_scalar(b->g, v, t, b->fwd->loc);
  k->fwd = b->fwd;
  k->rule = b->info->name;
  return k;
}

static int hyper_index(const OptInfo *o, const char *name) {
  for (int i = 0; i < o->nhyper; i++)
    if (!strcmp(o->hyper[i].name, name)) return i;
  GRADC_ASSERT(!"the row has no such hyperparameter");
  return -1;
}

/* The f64 state optimizer/NAME, made once, on first read. */
static Node *hyper64(OptBuild *b, const char *name) {
  int i = hyper_index(b->info, name);
  if (!b->hyper[i]) {
    const OptHyper *h = &b->info->hyper[i];
    Shape s = {0};
    Node *n = graph_leaf(b->g, OP_STATE,
                         arena_printf(b->g->arena, "%soptimizer/%s", b->st->prefix, h->name),
                         DT_F64, &s, b->st->opt.loc);
    n->a.init = (Init){INIT_CONSTANT, opt_hyper_value(&b->st->opt, h), 0};
    n->rule = b->info->name;        /* an optimizer's state, not the model's */
    b->hyper[i] = n;
  }
  return b->hyper[i];
}

static Node *scheduled_lr(OptBuild *b);

/* A hyperparameter in dtype t (one cast per dtype in use); lr under a
 * schedule is the schedule's value at this step. */
static Node *hyper(OptBuild *b, const char *name, DType t) {
  int i = hyper_index(b->info, name);
  if (!b->cast[i][t]) {
    bool sched = b->st->opt.sched.kind != SCHED_NONE && !strcmp(name, "lr");
    b->cast[i][t] = cast(b, sched ? scheduled_lr(b) : hyper64(b, name), t);
  }
  return b->cast[i][t];
}

/* 1 - hyper, computed in f64 and rounded to t: the bits of the constant a
 * compile-time setting gave. */
static Node *one_minus(OptBuild *b, const char *name, DType t) {
  return cast(b, bin(b, OP_SUB, konst(b, 1, DT_F64), hyper64(b, name)), t);
}

static Node *slot(OptBuild *b, Node *p, const char *what, InitKind init, double v) {
  Node *s = graph_leaf(b->g, OP_STATE,
                       arena_printf(b->g->arena, "%s%s/%s", b->st->prefix, p->name, what),
                       p->dtype, &p->shape, p->loc);
  s->a.init = (Init){init, v, 0};
  s->fwd = p;
  s->rule = b->info->name;
  return s;
}

static void set(OptBuild *b, Node *dst, Node *value) { b->ups[b->nups++] = (Update){dst, value}; }

/* new = a*x + (1-a)*y, the exponential moving average step */
static Node *ema(OptBuild *b, const char *a, Node *x, Node *y, DType t) {
  return bin(b, OP_ADD, bin(b, OP_MUL, hyper(b, a, t), x),
             bin(b, OP_MUL, one_minus(b, a, t), y));
}

/* num / (sqrt(denom) + eps): Keras adds eps outside the square root. */
static Node *scaled(OptBuild *b, Node *num, Node *denom, DType t) {
  Node *d = bin(b, OP_ADD, un(b, OP_SQRT, denom), hyper(b, "eps", t));
  return bin(b, OP_DIV, num, d);
}

/* ------------------------------------------------------------ schedules */

/* Keras' learning-rate schedules (keras/optimizers/schedules/
 * learning_rate_schedule.py), of the step counter before this step's
 * increment (optimizer.iterations, 0 at the first step), computed in f64
 * inside the step, so a schedule costs a few scalar nodes and no host
 * round trip.  optimizer/lr stays the run-time hyperparameter: it holds
 * the schedule's nominal rate (opt_schedule_nominal) and the step uses
 * schedule(step) * (optimizer/lr / nominal), so `--lr X`, gradc_set_hyper
 * and ReduceLROnPlateau scale the whole curve (by 1 when untouched: the
 * exact Keras value). */
const ScheduleInfo sched_info[SCHED_COUNT] = {
    [SCHED_NONE] = {NULL, NULL},
    [SCHED_EXPONENTIAL] = {"exponential_decay", "ExponentialDecay"},
    [SCHED_INVERSE_TIME] = {"inverse_time_decay", "InverseTimeDecay"},
    [SCHED_POLYNOMIAL] = {"polynomial_decay", "PolynomialDecay"},
    [SCHED_PIECEWISE] = {"piecewise_constant_decay", "piecewise"},
    [SCHED_COSINE] = {"cosine_decay", "cosine"},
};

double opt_schedule_nominal(const LrSchedule *s) {
  if (s->kind == SCHED_PIECEWISE) return s->values[0];
  if (s->kind == SCHED_COSINE && s->warmup) return s->warmup_target;
  return s->initial;
}

static Node *k64(OptBuild *b, double v) { return konst(b, v, DT_F64); }

/* floor(x) for x >= 0 (a step ratio): the IR has no floor, and a
 * truncating cast to i32 is floor there. */
static Node *floor_nonneg(OptBuild *b, Node *x) { return cast(b, cast(b, x, DT_I32), DT_F64); }

/* cos(pi * f) for f in [0, 1], in f64: the IR has no cos, so -sin(u) at u =
 * pi*f - pi/2 in [-pi/2, pi/2] by its Taylor series to u^25, whose
 * remainder (pi/2)^27/27! ~ 2e-23 lies far below f64's rounding.  (Once
 * the IR has cos, it replaces this.) */
static Node *cos_pi(OptBuild *b, Node *f) {
  Node *u = bin(b, OP_SUB, bin(b, OP_MUL, f, k64(b, M_PI)), k64(b, M_PI / 2));
  Node *u2 = un(b, OP_SQUARE, u);
  double coef[13];
  double fact = 1;
  for (int k = 0; k < 13; k++) {
    if (k) fact *= (double)(2 * k) * (double)(2 * k + 1);
    coef[k] = (k % 2 ? -1 : 1) / fact;
  }
  Node *y = k64(b, coef[12]);
  for (int k = 11; k >= 0; k--) y = bin(b, OP_ADD, bin(b, OP_MUL, y, u2), k64(b, coef[k]));
  /* clamped, so that the end of the decay is exactly 0, never -1e-18 */
  Node *c = un(b, OP_NEG, bin(b, OP_MUL, y, u));
  Attrs unit = {.lo = -1, .hi = 1};
  return node(b, OP_CLIP, &c, 1, &unit);
}

/* CosineDecay's _decay_function: from * ((1 - alpha) * cos_decayed + alpha),
 * step already clamped to [0, decay_steps]. */
static Node *cosine_decayed(OptBuild *b, const LrSchedule *s, Node *step, double from) {
  Node *c = cos_pi(b, bin(b, OP_DIV, step, k64(b, s->decay_steps)));
  Node *half = bin(b, OP_MUL, k64(b, 0.5), bin(b, OP_ADD, k64(b, 1), c));
  Node *d = bin(b, OP_ADD, bin(b, OP_MUL, k64(b, 1 - s->alpha), half), k64(b, s->alpha));
  return bin(b, OP_MUL, k64(b, from), d);
}

static Node *schedule_value(OptBuild *b, const LrSchedule *s, Node *step) {
  switch (s->kind) {
  case SCHED_EXPONENTIAL: {
    /* initial * rate ^ (step / decay_steps), the exponent floored when
     * staircase */
    Node *p = bin(b, OP_DIV, step, k64(b, s->decay_steps));
    if (s->staircase) p = floor_nonneg(b, p);
    return bin(b, OP_MUL, k64(b, s->initial), bin(b, OP_POW, k64(b, s->rate), p));
  }
  case SCHED_INVERSE_TIME: {
    /* initial / (1 + rate * step / decay_steps) */
    Node *p = bin(b, OP_DIV, step, k64(b, s->decay_steps));
    if (s->staircase) p = floor_nonneg(b, p);
    return bin(b, OP_DIV, k64(b, s->initial),
               bin(b, OP_ADD, k64(b, 1), bin(b, OP_MUL, k64(b, s->rate), p)));
  }
  case SCHED_POLYNOMIAL: {
    /* (initial - end) * (1 - min(step, decay_steps) / decay_steps)^power
     * + end (cycle=False) */
    Node *st = bin(b, OP_MINIMUM, step, k64(b, s->decay_steps));
    Node *f = bin(b, OP_SUB, k64(b, 1), bin(b, OP_DIV, st, k64(b, s->decay_steps)));
    Node *pw = bin(b, OP_POW, f, k64(b, s->power));
    return bin(b, OP_ADD, bin(b, OP_MUL, k64(b, s->initial - s->end), pw), k64(b, s->end));
  }
  case SCHED_PIECEWISE: {
    /* values[i] while step <= boundaries[i], from the last boundary on
     * values[n-1] */
    Node *r = k64(b, s->values[s->nvalues - 1]);
    for (int i = s->nvalues - 2; i >= 0; i--) {
      Node *src[3] = {bin(b, OP_LE, step, k64(b, s->boundaries[i])), k64(b, s->values[i]), r};
      r = node(b, OP_WHERE, src, 3, NULL);
    }
    return r;
  }
  case SCHED_COSINE: {
    if (!s->warmup)
      return cosine_decayed(b, s, bin(b, OP_MINIMUM, step, k64(b, s->decay_steps)), s->initial);
    /* step clamped to decay_steps + warmup_steps; below warmup_steps the
     * linear ramp initial + (target - initial) * step / warmup_steps, then
     * the decay from warmup_target over step - warmup_steps */
    Node *st = bin(b, OP_MINIMUM, step, k64(b, s->decay_steps + s->warmup_steps));
    Node *ramp = bin(b, OP_ADD,
                     bin(b, OP_MUL, k64(b, s->warmup_target - s->initial),
                         bin(b, OP_DIV, st, k64(b, s->warmup_steps > 0 ? s->warmup_steps : 1))),
                     k64(b, s->initial));
    Node *decay = cosine_decayed(b, s, bin(b, OP_SUB, st, k64(b, s->warmup_steps)), s->warmup_target);
    Node *src[3] = {bin(b, OP_LT, st, k64(b, s->warmup_steps)), ramp, decay};
    return node(b, OP_WHERE, src, 3, NULL);
  }
  case SCHED_NONE:
  case SCHED_COUNT: break;
  }
  GRADC_ASSERT(!"no such schedule");
  return NULL;
}

/* The step's learning rate under its schedule, f64, made once. */
static Node *scheduled_lr(OptBuild *b) {
  if (b->lr64) return b->lr64;
  GRADC_ASSERT(b->it);           /* opt_update made the counter */
  const LrSchedule *s = &b->st->opt.sched;
  Node *fwd = b->fwd;
  b->fwd = b->st->loss;
  Node *v = schedule_value(b, s, cast(b, b->it, DT_F64));
  Node *scale = bin(b, OP_DIV, hyper64(b, "lr"), k64(b, opt_schedule_nominal(s)));
  b->lr64 = bin(b, OP_MUL, v, scale);
  b->fwd = fwd;
  return b->lr64;
}

/* ------------------------------------------------------------ updates */

/* Keras 2.x update rules (keras/optimizers/optimizer_v2, one file each); the
 * seed quotes RMSprop's.  Each returns the parameter's new value and sets
 * its slots. */

static Node *update_sgd(OptBuild *b, Node *p, Node *g) {
  const Optimizer *o = &b->st->opt;
  DType t = p->dtype;
  Node *lrg = bin(b, OP_MUL, hyper(b, "lr", t), g);
  if (o->momentum == 0) return bin(b, OP_SUB, p, lrg);
  /* v = m*v - lr*g;  p += v  (nesterov: p += m*v - lr*g) */
  Node *v = slot(b, p, "momentum", INIT_ZEROS, 0);
  Node *vn = bin(b, OP_SUB, bin(b, OP_MUL, hyper(b, "momentum", t), v), lrg);
  set(b, v, vn);
  if (o->nesterov)
    return bin(b, OP_ADD, p, bin(b, OP_SUB, bin(b, OP_MUL, hyper(b, "momentum", t), vn), lrg));
  return bin(b, OP_ADD, p, vn);
}

static Node *update_rmsprop(OptBuild *b, Node *p, Node *g) {
  const Optimizer *o = &b->st->opt;
  DType t = p->dtype;
  Node *rms = slot(b, p, "rms", INIT_ZEROS, 0);
  Node *rn = ema(b, "rho", rms, un(b, OP_SQUARE, g), t);
  set(b, rms, rn);
  Node *denom = rn;
  if (o->centered) {
    Node *mg = slot(b, p, "mg", INIT_ZEROS, 0);
    Node *mn = ema(b, "rho", mg, g, t);
    set(b, mg, mn);
    denom = bin(b, OP_SUB, rn, un(b, OP_SQUARE, mn));
  }
  if (o->momentum > 0) {
    /* Keras hands this case to TF's fused ApplyRMSProp, whose eps sits
     * inside the square root: mom = m*mom + lr*g / sqrt(denom + eps). */
    Node *mom = slot(b, p, "momentum", INIT_ZEROS, 0);
    Node *root = un(b, OP_SQRT, bin(b, OP_ADD, denom, hyper(b, "eps", t)));
    Node *step = bin(b, OP_ADD, bin(b, OP_MUL, hyper(b, "momentum", t), mom),
                     bin(b, OP_DIV, bin(b, OP_MUL, hyper(b, "lr", t), g), root));
    set(b, mom, step);
    return bin(b, OP_SUB, p, step);
  }
  return bin(b, OP_SUB, p, scaled(b, bin(b, OP_MUL, hyper(b, "lr", t), g), denom, t));
}

/* Keras: t = iterations + 1; alpha = lr * sqrt(1 - b2^t) / (1 - b1^t), in
 * the parameter's dtype. */
static Node *adam_alpha(OptBuild *b, DType t) {
  if (b->adam_alpha[t]) return b->adam_alpha[t];
  Node *tf = cast(b, b->t1, t);
  Node *b1p = bin(b, OP_POW, hyper(b, "beta1", t), tf);
  Node *b2p = bin(b, OP_POW, hyper(b, "beta2", t), tf);
  Node *one = konst(b, 1, t);
  b->adam_alpha[t] = bin(b, OP_DIV,
                         bin(b, OP_MUL, hyper(b, "lr", t), un(b, OP_SQRT, bin(b, OP_SUB, one, b2p))),
                         bin(b, OP_SUB, one, b1p));
  return b->adam_alpha[t];
}

static Node *update_adam(OptBuild *b, Node *p, Node *g) {
  DType t = p->dtype;
  Node *alpha = adam_alpha(b, t);
  Node *m = slot(b, p, "m", INIT_ZEROS, 0), *v = slot(b, p, "v", INIT_ZEROS, 0);
  Node *mn = bin(b, OP_ADD, m, bin(b, OP_MUL, bin(b, OP_SUB, g, m), one_minus(b, "beta1", t)));
  Node *vn = bin(b, OP_ADD, v, bin(b, OP_MUL, bin(b, OP_SUB, un(b, OP_SQUARE, g), v),
                                   one_minus(b, "beta2", t)));
  set(b, m, mn);
  set(b, v, vn);
  return bin(b, OP_SUB, p, scaled(b, bin(b, OP_MUL, mn, alpha), vn, t));
}

/* The initial accumulator is the slot's initializer, not a run-time value. */
static Node *update_adagrad(OptBuild *b, Node *p, Node *g) {
  DType t = p->dtype;
  Node *acc = slot(b, p, "accumulator", INIT_CONSTANT, b->st->opt.initial_accumulator);
  Node *an = bin(b, OP_ADD, acc, un(b, OP_SQUARE, g));
  set(b, acc, an);
  return bin(b, OP_SUB, p, scaled(b, bin(b, OP_MUL, hyper(b, "lr", t), g), an, t));
}

/* ------------------------------------------------------------ clipping */

/* The sum of the squares of g's elements, as an f64 scalar. */
static Node *sum_squares(OptBuild *b, Node *g) {
  Node *sq = un(b, OP_SQUARE, g);
  if (g->shape.rank) {
    Attrs all = {.axes = (1u << g->shape.rank) - 1};
    sq = node(b, OP_SUM, &sq, 1, &all);
  }
  return cast(b, sq, DT_F64);
}

/* c / max(sqrt(sum of squares), c) for the threshold optimizer/NAME. */
static Node *norm_scale(OptBuild *b, Node *squares, const char *name) {
  Node *c = hyper64(b, name);
  return bin(b, OP_DIV, c, bin(b, OP_MAXIMUM, un(b, OP_SQRT, squares), c));
}

/* The step's gradients after Keras' clipping (clipped[i] for grads[i]); the
 * gradients themselves when the step clips nothing. */
static void clip_gradients(OptBuild *b, Node **clipped) {
  const TrainStep *st = b->st;
  const Optimizer *o = &st->opt;
  for (int i = 0; i < st->ngrads; i++) {
    b->fwd = st->grads[i].param;
    /* Data parallel: every replica's gradient of its shard, summed, is
     * what clipping and the update see, so they stay identical. */
    Node *g = clipped[i] = b->g->data_parallel ? un(b, OP_ALLREDUCE, st->grads[i].grad) : st->grads[i].grad;
    if (o->clipvalue > 0) {
      Node *c = hyper(b, "clipvalue", g->dtype);
      g = clipped[i] = bin(b, OP_MINIMUM, bin(b, OP_MAXIMUM, g, un(b, OP_NEG, c)), c);
    }
    if (o->clipnorm > 0)
      clipped[i] = bin(b, OP_MUL, g, cast(b, norm_scale(b, sum_squares(b, g), "clipnorm"), g->dtype));
  }
  if (!(o->global_clipnorm > 0) || !st->ngrads) return;
  b->fwd = st->loss;
  Node *total = NULL;
  for (int i = 0; i < st->ngrads; i++) {
    Node *ss = sum_squares(b, clipped[i]);
    total = total ? bin(b, OP_ADD, total, ss) : ss;
  }
  Node *scale = norm_scale(b, total, "global_clipnorm");
  Node *as[DT_COUNT] = {0};
  for (int i = 0; i < st->ngrads; i++) {
    DType t = clipped[i]->dtype;
    if (!as[t]) as[t] = cast(b, scale, t);
    clipped[i] = bin(b, OP_MUL, clipped[i], as[t]);
  }
}

/* ------------------------------------------------------------ the table */

/* Keras 2.x defaults (keras/optimizers/optimizer_v2); eps is Keras'
 * backend epsilon, 1e-7.  Every optimizer takes the clipping options
 * (Keras' None is 0 here: no clipping) and weight_decay (0: none). */
#define CLIP_HYPERS                                                            \
  H("clipnorm", NULL, clipnorm, 0, RANGE_CLIP),                                \
      H("global_clipnorm", NULL, global_clipnorm, 0, RANGE_CLIP),              \
      H("clipvalue", NULL, clipvalue, 0, RANGE_CLIP),                          \
      H("weight_decay", NULL, weight_decay, 0, RANGE_OPTIONAL)
const OptInfo opt_info[OPT_COUNT] = {
    [OPT_SGD] = {"sgd", update_sgd, 6,
                 {H("lr", "learning_rate", lr, 0.01, RANGE_POSITIVE),
                  H("momentum", NULL, momentum, 0, RANGE_UNIT), CLIP_HYPERS},
                 {"nesterov"}},
    [OPT_RMSPROP] = {"rmsprop", update_rmsprop, 8,
                     {H("lr", "learning_rate", lr, 0.001, RANGE_POSITIVE),
                      H("rho", NULL, rho, 0.9, RANGE_UNIT),
                      H("momentum", NULL, momentum, 0, RANGE_UNIT),
                      H("eps", "epsilon", eps, 1e-7, RANGE_NONNEGATIVE), CLIP_HYPERS},
                     {"centered"}},
    [OPT_ADAM] = {"adam", update_adam, 8,
                  {H("lr", "learning_rate", lr, 0.001, RANGE_POSITIVE),
                   H("beta1", "beta_1", beta1, 0.9, RANGE_UNIT),
                   H("beta2", "beta_2", beta2, 0.999, RANGE_UNIT),
                   H("eps", "epsilon", eps, 1e-7, RANGE_NONNEGATIVE), CLIP_HYPERS},
                  {NULL}},
    [OPT_ADAGRAD] = {"adagrad", update_adagrad, 7,
                     {H("lr", "learning_rate", lr, 0.001, RANGE_POSITIVE),
                      H("initial_accumulator", "initial_accumulator_value",
                        initial_accumulator, 0.1, RANGE_ANY),
                      H("eps", "epsilon", eps, 1e-7, RANGE_NONNEGATIVE), CLIP_HYPERS},
                     {NULL}},
};

double opt_hyper_value(const Optimizer *o, const OptHyper *h) {
  return *(const double *)((const char *)o + h->field);
}

void opt_set_hyper(Optimizer *o, const OptHyper *h, double v) {
  *(double *)((char *)o + h->field) = v;
}

/* ------------------------------------------------------------ the stage */

/* The step counter PREFIXoptimizer/iterations (Adam's t - 1), made by
 * the caller before any update reads it; its increment is b->t1. */
/* The parameter's new value under its constraint, if it has one: Keras
 * applies kernel_constraint to the value the optimizer wrote. */
static Node *constrained(OptBuild *b, Node *p, Node *value) {
  for (int i = 0; i < b->g->nconstraints; i++) {
    const Constraint *c = &b->g->constraints[i];
    if (c->param != p) continue;
    Attrs a = {.lo = c->lo, .hi = c->hi};
    return node(b, OP_CLIP, &value, 1, &a);
  }
  return value;
}

static Node *counter(OptBuild *b, const char *name, Loc loc) {
  Shape s = {0};
  Node *it = graph_leaf(b->g, OP_STATE, name, DT_I32, &s, loc);
  it->a.init = (Init){INIT_ZEROS, 0, 0};
  it->rule = b->info->name;
  return it;
}

/* Does the value of a state update use what loss computes (in training
 * mode), beyond leaves?  Batch norm's moving statistics read the batch
 * statistics of a forward pass; the step whose loss runs that pass
 * updates them. */
static bool feeds(Graph *g, Node *value, Node *loss, unsigned char *a, unsigned char *b) {
  graph_mark_needed(g, &loss, 1, true, a);
  graph_mark_needed(g, &value, 1, true, b);
  for (int i = 0; i < g->nnodes; i++)
    if (a[i] && b[i] && op_info[g->nodes[i]->op].kind != K_LEAF) return true;
  return false;
}

/* Data parallel: each allreduce right after its gradient (outside loops),
 * so that the reduction can start while the rest of the backward pass
 * runs; the order of the others is kept (the sums are read by the updates,
 * after the backward pass). */
static void place_reductions(Graph *g) {
  Node **ar = arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nnodes + 1));
  Node **order = arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nnodes + 1));
  int nar = 0, n = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_ALLREDUCE && !g->nodes[i]->src[0]->a.loop) ar[nar++] = g->nodes[i];
  for (int i = 0; i < g->nnodes; i++) {
    Node *x = g->nodes[i];
    if (x->op == OP_ALLREDUCE && !x->src[0]->a.loop) continue;
    order[n++] = x;
    for (int k = 0; k < nar; k++)
      if (ar[k]->src[0] == x) order[n++] = ar[k];
  }
  GRADC_ASSERT(n == g->nnodes);
  for (int i = 0; i < n; i++) g->nodes[i] = order[i], g->nodes[i]->id = i;
}

void opt_update(Graph *g) {
  if (!g->nsteps) return;
  int nfwd = g->nnodes, nups = g->nupdates;
  bool random = false, reordered = false;
  for (int i = 0; i < nfwd; i++) random |= (op_info[g->nodes[i]->op].flags & F_RANDOM) != 0;
  for (int s = 0; s < g->nsteps; s++) nups += g->steps[s].ngrads * 4 + g->nupdates + 3;
  Update *ups = arena_alloc(g->arena, sizeof(Update) * (size_t)nups);
  int *owner = arena_alloc(g->arena, sizeof(int) * (size_t)nups), n = 0;
  unsigned char *ma = arena_alloc(g->arena, (size_t)(nfwd ? nfwd : 1));
  unsigned char *mb = arena_alloc(g->arena, (size_t)(nfwd ? nfwd : 1));
  /* Which steps apply each model state update: all of them with one
   * step, else those whose loss feeds it (every step when none does). */
  bool *applies = arena_alloc(g->arena, (size_t)(g->nupdates * g->nsteps + 1));
  bool *head = arena_alloc(g->arena, (size_t)(g->nupdates + 1));   /* its value begins a chain */
  for (int u = 0; u < g->nupdates; u++) {
    bool any = false;
    for (int s = 0; s < g->nsteps; s++)
      any |= applies[u * g->nsteps + s] =
          g->nsteps == 1 || feeds(g, g->updates[u].value, g->steps[s].loss, ma, mb);
    for (int s = 0; !any && s < g->nsteps; s++) applies[u * g->nsteps + s] = true;
  }
  /* The random ops' step counter (dropout's masks, random_normal, ...):
   * the step's own with one step (its Adam t), else one every step
   * advances, so draws never repeat between steps.  (Named
   * dropout/iterations since dropout was the first to need it: checkpoints
   * keep the name.) */
  Node *shared = NULL, *shared1 = NULL;
  for (int s = 0; s < g->nsteps; s++) {
    TrainStep *st = &g->steps[s];
    OptBuild bv = {.g = g, .st = st, .info = &opt_info[st->opt.kind], .fwd = st->loss};
    OptBuild *b = &bv;
    b->ups = ups + n;
    /* A state several calls update (a function's batch_norm): the
     * step's applying updates chained in call order, one assign. */
    for (int u = 0; u < g->nupdates; u++) {
      const StateUpdate *up = &g->updates[u];
      if (!applies[u * g->nsteps + s]) continue;
      bool seen = false;
      for (int v = 0; v < u && !seen; v++) seen = g->updates[v].state == up->state && applies[v * g->nsteps + s];
      if (seen) continue;
      Node *value = up->value;
      head[u] = true;
      for (int v = u + 1; v < g->nupdates; v++) {
        const StateUpdate *w = &g->updates[v];
        if (w->state != up->state || !applies[v * g->nsteps + s]) continue;
        b->fwd = up->state;
        value = bin(b, OP_ADD, bin(b, OP_MUL, value, konst(b, w->keep, value->dtype)), w->add);
      }
      b->fwd = st->loss;
      set(b, up->state, value);
    }
    Node *it = NULL;
    if (((st->opt.kind == OPT_ADAM || st->opt.sched.kind != SCHED_NONE) && st->ngrads) ||
        (random && g->nsteps == 1)) {
      it = b->it = counter(b, arena_printf(g->arena, "%soptimizer/iterations", st->prefix), st->opt.loc);
      b->t1 = bin(b, OP_ADD, it, konst(b, 1, DT_I32));
      set(b, it, b->t1);
    }
    if (random && g->nsteps > 1) {
      if (!shared) {
        shared = counter(b, "dropout/iterations", st->opt.loc);
        shared->rule = "dropout";
        shared1 = bin(b, OP_ADD, shared, konst(b, 1, DT_I32));
      }
      set(b, shared, shared1);
    }
    if (s == 0 && random) {
      Node *mask_step = g->nsteps == 1 ? it : shared;
      for (int i = 0; i < nfwd; i++) {
        Node *m = g->nodes[i];
        if (!(op_info[m->op].flags & F_RANDOM) || graph_random_step(m)) continue;
        Node **src = arena_alloc(g->arena, sizeof(Node *) * (size_t)(m->nsrc + 1));
        for (int k = 0; k < m->nsrc; k++) src[k] = m->src[k];
        src[m->nsrc] = mask_step;
        m->src = src, m->nsrc++;
        reordered = true;      /* the counter was made after the mask */
      }
    }
    Node **grads = arena_alloc(g->arena, sizeof(Node *) * (size_t)(st->ngrads + 1));
    clip_gradients(b, grads);
    for (int i = 0; i < st->ngrads; i++) {
      Node *p = st->grads[i].param;
      b->fwd = p;
      Node *np = b->info->update(b, p, grads[i]);
      if (st->opt.weight_decay > 0) {
        /* Decoupled weight decay, Keras 2.11+'s _apply_weight_decay
         * (AdamW, Loshchilov & Hutter): p -= p * wd * lr before the
         * update, which subtracts the same from its result; the update
         * itself never sees it (no L2 term in the gradient or slots). */
        Node *d = bin(b, OP_MUL, bin(b, OP_MUL, p, hyper(b, "weight_decay", p->dtype)),
                      hyper(b, "lr", p->dtype));
        np = bin(b, OP_SUB, np, d);
      }
      np = constrained(b, p, np);
      set(b, p, np);
    }
    for (int i = 0; i < b->nups; i++) owner[n + i] = s;
    n += b->nups;
  }
  /* A chained update's own value (state * k + add) is no node's operand
   * unless it began a chain: the graph keeps only those that did. */
  int kept = 0;
  for (int u = 0; u < g->nupdates; u++)
    if (head[u]) g->updates[kept++] = g->updates[u];
  g->nupdates = kept;
  /* All writes after all reads: the assigns close the steps. */
  for (int i = 0; i < n; i++) {
    Node *src[2] = {ups[i].dst, ups[i].value};
    Attrs a = {.owner = owner[i]};
    Node *as = graph_node(g, OP_ASSIGN, src, 2, &a, ups[i].dst->loc);
    GRADC_ASSERT(as);
    as->fwd = ups[i].dst;
    as->rule = opt_info[g->steps[owner[i]].opt.kind].name;
  }
  if (g->data_parallel) place_reductions(g);
  if (reordered) graph_sort(g);
}
