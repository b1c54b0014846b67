/*
 * check.c - gradc check: every symbolic gradient against central finite
 * differences, computed by the reference evaluator in double precision.
 *
 * Parameters come from the model's seeded initializers; float inputs are
 * drawn uniformly from [-1, 1], every symbolic dimension bound to a small
 * batch.  An integer input that indexes something (one_hot's depth, the class
 * count of softmax_cross_entropy, also through reshapes, slices and the like)
 * is drawn over that whole range, so every row of a table it selects gets a
 * gradient; one that indexes nothing is drawn from [0, 4).  Large parameters
 * are sampled: at most CHECK_SAMPLES elements each, chosen by the seed.
 *
 * The criterion is numpy's allclose, per element:
 *
 *     |a - n| <= atol + rtol * |n|
 *
 * with a the symbolic gradient, n the central difference (L(t+h) - L(t-h))/2h
 * at h = 1e-6 max(1, |t|), and rtol the --tol argument.  atol is the error of
 * n itself, which a relative criterion alone cannot know: a gradient that is
 * exactly zero (a bias before batch norm) or tiny (an L2 term, a mean over
 * many outputs) has a difference made of nothing but rounding.  The rounding
 * of one loss evaluation is taken as ROUND_ULPS units of DBL_EPSILON of the
 * loss's magnitude, so n carries ROUND_ULPS eps |L| / h of it; an element
 * within that passes at once (almost all of them, at two evaluations each:
 * over 30 seeds of test_autodiff's table the worst error was 0.09 of what
 * is allowed).  Where that is not enough, the difference is taken again at
 * h/2.  An element that matches n(h/2) within its own rounding passes (a
 * kink between h/2 and h spoils only the larger step).  Otherwise, Richardson
 * style, the two estimates differ by their truncation error plus their
 * rounding (which doubles at h/2), so 2 |n(h) - n(h/2)| is added to atol:
 * the rounding of a loss whose terms cancel is measured, not guessed.
 *
 * Kinks: where the loss is not differentiable within h of the point (relu
 * at 0, max-pool or maximum ties, abs at 0, clip's bounds: all of them at
 * once behind a batch norm at batch 1), the central difference averages two
 * slopes and matches neither.  Such an element is a kink, reported and
 * counted but not a failure, when the one-sided differences at h/2 disagree
 * by more than twice their own truncation (which halves with the step for a
 * smooth loss and does not for a kink) plus rounding, and the symbolic
 * gradient lies between them: relu'(0) = 0 and the first maximum taking a
 * tie are one side, max's shared ties a point in between.
 *
 * Order 2 (check_gradients_order, gradc check --order 2): the same
 * comparison for the scalar s = <v, dL/dparams>, v drawn uniformly from
 * [-1, 1] per element from the seed, whose symbolic gradient (a
 * Hessian-vector product) gradients() appends to the graph: the
 * differences of the first-order gradient nodes check the rules'
 * gradients.  A loss that holds grad() is already second order at order 1
 * (its gradient differentiates gradient nodes, the difference is of those
 * nodes); the table says so.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

enum {
  CHECK_SAMPLES = 48,
  ROUND_ULPS = 64,      /* rounding of one loss evaluation, in eps |L| */
  UNBOUNDED_INT = 4,    /* the range of an integer input that indexes nothing */
  SHOWN_FAILURES = 3,   /* failing elements printed per parameter */
};

static const double CHECK_STEP = 1e-6;

int64_t check_index_bound(const Graph *g, const Node *n, int64_t batch) {
  int64_t r = 0;
  for (int i = n->id + 1; i < g->nnodes; i++) {
    const Node *u = g->nodes[i];
    int64_t b = 0;
    if (u->op == OP_SOFTMAX_CE && u->src[1] == n) {
      Dim d = u->src[0]->shape.d[u->src[0]->shape.rank - 1];
      b = d.n * (d.sym ? batch : 1);
    } else if (u->op == OP_ONE_HOT && u->src[0] == n) {
      b = u->a.depth;
    } else if (u->op == OP_GATHER && u->src[1] == n) {
      b = u->src[0]->shape.d[0].n;
    } else if (u->op == OP_SCATTER_ADD && u->src[1] == n) {
      b = u->a.depth;
    } else {
      bool passes = u->op == OP_RESHAPE || u->op == OP_TRANSPOSE || u->op == OP_SLICE ||
                    u->op == OP_BROADCAST || u->op == OP_CONCAT;
      for (int k = 0; passes && k < u->nsrc && !b; k++)
        if (u->src[k] == n) b = check_index_bound(g, u, batch);
    }
    if (b > 0 && (r == 0 || b < r)) r = b;
  }
  return r;
}

static void fill_inputs(Eval *e, const Graph *g, uint64_t seed, int64_t batch, double lo) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_INPUT) continue;
    double *x = eval_data(e, n);
    uint64_t st = rng_stream(seed ^ 0x5eed5eedull, n->name);
    int64_t range = check_index_bound(g, n, batch);
    if (range == 0) range = UNBOUNDED_INT;
    for (int64_t k = 0, c = eval_count(e, n); k < c; k++) {
      double u = rng_uniform(st, (uint64_t)k);
      if (n->dtype == DT_I32) x[k] = floor(u * (double)range);
      else if (n->dtype == DT_BOOL) x[k] = u < 0.5;
      else x[k] = lo + (1 - lo) * u;
    }
  }
}

/* One line per integer input: the range it was drawn from. */
static void print_int_inputs(FILE *out, const Graph *g, int64_t batch) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_INPUT || n->dtype != DT_I32) continue;
    int64_t r = check_index_bound(g, n, batch);
    fprintf(out, "  input %s: integers from [0, %lld)%s\n", n->name,
            (long long)(r ? r : UNBOUNDED_INT), r ? ", every index it selects" : "");
  }
}

static double loss_at(Eval *e, Node *loss) {
  eval_run(e, &loss, 1);
  return eval_data(e, loss)[0];
}

/* The loss after parameter p alone has changed since the last loss_at. */
static double loss_after(Eval *e, Node *loss, const Node *p) {
  eval_rerun(e, loss, p);
  return eval_data(e, loss)[0];
}

/* Differences of the loss in element k of p at step h: central, forward and
 * backward, over the steps actually taken (t + h rounds), and the largest
 * loss magnitude seen. */
typedef struct Probe {
  double central, forward, backward, magnitude;
} Probe;

static Probe probe(Eval *e, Node *loss, const Node *p, int64_t k, double h, double l0) {
  double *theta = eval_data(e, p), t0 = theta[k];
  double tp = t0 + h, tm = t0 - h;
  theta[k] = tp;
  double lp = loss_after(e, loss, p);
  theta[k] = tm;
  double lm = loss_after(e, loss, p);
  theta[k] = t0;
  double hp = tp - t0, hm = t0 - tm;
  return (Probe){(lp - lm) / (hp + hm), (lp - l0) / hp, (l0 - lm) / hm,
                 fmax(fabs(l0), fmax(fabs(lp), fabs(lm)))};
}

/* The rounding error of a central difference at step h. */
static double rounding(const Probe *p, double h) {
  return ROUND_ULPS * DBL_EPSILON * p->magnitude / h;
}

typedef enum { ELEM_OK, ELEM_KINK, ELEM_FAIL } Verdict;

typedef struct Element {
  Verdict verdict;
  double numeric, error, atol, allowed;  /* n, |a - n|, atol + rtol |n| */
} Element;

/* The verdict on element k of p, whose symbolic gradient is a (see the essay
 * above for the criterion and the kink test). */
static Element check_element(Eval *e, Node *loss, const Node *p, int64_t k, double a,
                             double rtol, double l0) {
  double h = CHECK_STEP * fmax(1.0, fabs(eval_data(e, p)[k]));
  Probe p1 = probe(e, loss, p, k, h, l0);
  Element el = {ELEM_OK, p1.central, fabs(a - p1.central), rounding(&p1, h), 0};
  el.allowed = el.atol + rtol * fabs(p1.central);
  if (!isfinite(el.error)) {
    el.verdict = ELEM_FAIL;
    el.error = INFINITY;
    return el;
  }
  if (el.error <= el.allowed) return el;

  Probe p2 = probe(e, loss, p, k, h / 2, l0);
  /* A kink between h/2 and h spoils only the larger step. */
  Element half = {ELEM_OK, p2.central, fabs(a - p2.central), rounding(&p2, h / 2), 0};
  half.allowed = half.atol + rtol * fabs(p2.central);
  if (half.error <= half.allowed) return half;
  el.atol += 2 * fabs(p1.central - p2.central);
  el.allowed = el.atol + rtol * fabs(p1.central);
  if (el.error <= el.allowed) return el;

  /* One-sided differences at h/2: a kink keeps them apart at every step,
   * a smooth loss brings them together as fast as each moves from h to h/2. */
  double truncation = fabs(p1.forward - p2.forward) + fabs(p1.backward - p2.backward);
  double noise = 4 * rounding(&p2, h);        /* one-sided, at h/2 */
  double lo = fmin(p2.forward, p2.backward), hi = fmax(p2.forward, p2.backward);
  double slack = truncation + noise + rtol * fmax(fabs(lo), fabs(hi));
  if (hi - lo > 2 * (truncation + noise) + rtol * fmax(fabs(lo), fabs(hi)) &&
      a >= lo - slack && a <= hi + slack)
    el.verdict = ELEM_KINK;
  else
    el.verdict = ELEM_FAIL;
  return el;
}

/* A number for the table: NaN and infinities in words, not libc's "-nan". */
static const char *num(char *buf, size_t n, const char *fmt, double v) {
  if (isnan(v)) snprintf(buf, n, "NaN");
  else if (isinf(v)) snprintf(buf, n, "%s", v > 0 ? "inf" : "-inf");
  else snprintf(buf, n, fmt, v);
  return buf;
}

/* Where a non-finite gradient comes from: the first node in evaluation
 * order, among those grad is computed from, that holds a NaN or an
 * infinity (as --check-numerics names it for a training run). */
static void first_non_finite(FILE *out, Eval *e, const Graph *g, Node *grad) {
  unsigned char *mark = malloc((size_t)g->nnodes);
  GRADC_ASSERT(mark);
  graph_mark_needed(g, &grad, 1, true, mark);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (!mark[i] || !dtype_is_float(n->dtype) || n->op == OP_ASSIGN) continue;
    const double *v = eval_data(e, n);
    for (int64_t k = 0, c = v ? eval_count(e, n) : 0; k < c; k++) {
      if (isfinite(v[k])) continue;
      char b[16];
      fprintf(out, "      the first non-finite value is %s in node %%%d (%s%s%s) at %s:%d:%d\n",
              num(b, sizeof b, "%g", v[k]), n->id, op_info[n->op].name, n->name ? " " : "",
              n->name ? n->name : "", g->src->name, n->loc.line, n->loc.col);
      free(mark);
      return;
    }
  }
  free(mark);
}

/* What one table compares: the symbolic gradients of a scalar with
 * respect to parameters (a train step's loss, or at order 2 the scalar
 * <v, dL/dparams>), and how its header names them. */
typedef struct Target {
  const TrainStep *step;
  Node *loss;
  const Grad *grads;
  int ngrads;
  int order;             /* 2: loss is <v, dL/dparams> of step's loss L */
} Target;

typedef struct Totals {
  double worst;
  int64_t failed, kinks, checked, nonfinite;
} Totals;

/* The table's first line: which gradients are compared with what. */
static void print_header(FILE *out, const Graph *g, const Target *t, uint64_t seed, int64_t batch,
                         double l0) {
  const TrainStep *st = t->step;
  const char *lname = st->loss->name ? st->loss->name : "loss";
  fprintf(out, "gradc check %s", g->model_name);
  if (g->nsteps > 1) fprintf(out, ", train step %s", st->name);
  if (t->order == 2)
    fprintf(out, ", order 2: seed %llu, batch %lld, s = <v, d%s/dparams> = %.6g for a random v; "
            "ds/dparams against finite differences of s\n", (unsigned long long)seed,
            (long long)batch, lname, l0);
  else if (g->nsteps > 1)
    fprintf(out, ": seed %llu, batch %lld, loss %s = %.6g\n", (unsigned long long)seed,
            (long long)batch, lname, l0);
  else
    fprintf(out, ": seed %llu, batch %lld, loss %.6g\n", (unsigned long long)seed,
            (long long)batch, l0);
  if (t->order == 1 && g->ngrad_exprs)
    fprintf(out, "  second order: the loss holds grad(), so its gradient differentiates "
            "gradient nodes, checked against finite differences of them\n");
}

/* The gradients of one target; counts into the totals. */
static bool check_step(Eval *e, const Graph *g, const Target *tg, uint64_t seed, int64_t batch,
                       double tol, FILE *out, Totals *tot) {
  Node *loss = tg->loss;
  double l0 = loss_at(e, loss);
  if (!isfinite(l0)) {
    fprintf(out, "gradc check: the %s is %g at the random starting point; "
            "cannot compare gradients there\n", tg->order == 2 ? "scalar s" : "loss", l0);
    return false;
  }
  Node **roots = malloc(sizeof(Node *) * (size_t)(tg->ngrads + 1));
  GRADC_ASSERT(roots);
  roots[0] = loss;
  for (int i = 0; i < tg->ngrads; i++) roots[i + 1] = tg->grads[i].grad;
  eval_run(e, roots, tg->ngrads + 1);
  free(roots);

  print_header(out, g, tg, seed, batch, l0);
  print_int_inputs(out, g, batch);
  fprintf(out, "  pass: |symbolic - numeric| <= atol + %.1e |numeric|, atol the "
          "difference's own error\n", tol);
  fprintf(out, "  %-24s %10s %8s %6s %14s %14s\n", "parameter", "elements", "checked",
          "kinks", "max abs error", "error/allowed");
  for (int i = 0; i < tg->ngrads; i++) {
    Node *p = tg->grads[i].param;
    int64_t cnt = eval_count(e, p);
    double *an = malloc(sizeof(double) * (size_t)cnt);
    GRADC_ASSERT(an);
    memcpy(an, eval_data(e, tg->grads[i].grad), sizeof(double) * (size_t)cnt);
    int64_t checks = cnt < CHECK_SAMPLES ? cnt : CHECK_SAMPLES;
    uint64_t rs = rng_stream(seed ^ 0xc4ecull, p->name);
    double max_abs = 0, max_ratio = 0, bad = 0;
    int64_t pfailed = 0, pkinks = 0, pbad = 0;
    Element shown[SHOWN_FAILURES];
    int64_t shown_at[SHOWN_FAILURES];
    for (int64_t s = 0; s < checks; s++) {
      int64_t k = cnt <= CHECK_SAMPLES ? s : (int64_t)(rng_uniform(rs, (uint64_t)s) * (double)cnt);
      Element el = check_element(e, loss, p, k, an[k], tol, l0);
      if (el.verdict == ELEM_KINK) {
        pkinks++;
        continue;
      }
      if (!isfinite(an[k])) {
        /* not an error of some size: the table says NaN, below it where */
        if (!pbad++) bad = an[k];
        if (pfailed < SHOWN_FAILURES) shown[pfailed] = el, shown_at[pfailed] = k;
        pfailed++;
        continue;
      }
      double ratio = el.allowed > 0 ? el.error / el.allowed : el.error > 0 ? INFINITY : 0;
      if (el.error > max_abs) max_abs = el.error;
      if (ratio > max_ratio) max_ratio = ratio;
      if (el.verdict == ELEM_FAIL) {
        if (pfailed < SHOWN_FAILURES) shown[pfailed] = el, shown_at[pfailed] = k;
        pfailed++;
      }
    }
    loss_after(e, loss, p);   /* back to the unperturbed values for the next one */
    char b1[32], b2[32], b3[32], b4[32];
    fprintf(out, "  %-24s %10lld %8lld %6lld %14s %14s%s\n", p->name, (long long)cnt,
            (long long)checks, (long long)pkinks, num(b1, sizeof b1, "%.3e", pbad ? bad : max_abs),
            num(b2, sizeof b2, "%.3e", pbad ? bad : max_ratio), pfailed ? "  FAIL" : "");
    for (int64_t s = 0; s < pfailed && s < SHOWN_FAILURES; s++)
      fprintf(out, "      element %lld: symbolic %s, numeric %s, atol %s\n", (long long)shown_at[s],
              num(b1, sizeof b1, "%.9g", an[shown_at[s]]), num(b3, sizeof b3, "%.9g", shown[s].numeric),
              num(b4, sizeof b4, "%.3g", shown[s].atol));
    if (pbad) {
      fprintf(out, "      the symbolic gradient is %s at %lld of %lld elements checked\n",
              num(b1, sizeof b1, "%g", bad), (long long)pbad, (long long)checks);
      first_non_finite(out, e, g, tg->grads[i].grad);
    }
    tot->nonfinite += pbad;
    free(an);
    if (max_ratio > tot->worst) tot->worst = max_ratio;
    tot->failed += pfailed, tot->kinks += pkinks, tot->checked += checks;
  }
  return true;
}

/* Order 2 for train step st: s = sum over its parameters p of
 * sum(v_p * dL/dp), v_p uniform in [-1, 1] from the seed, and ds/dp by
 * gradients() (a Hessian-vector product).  Where s does not depend on a
 * parameter through operations with a gradient, ds/dp is zeros, which the
 * finite differences must then confirm. */
static bool second_order(Graph *g, const TrainStep *st, uint64_t seed, Target *out) {
  Target t = {.step = st, .order = 2};
  Node *s = NULL;
  Loc loc = st->loss->loc;
  for (int i = 0; i < st->ngrads; i++) {
    Node *p = st->grads[i].param, *gp = st->grads[i].grad;
    int64_t cnt = shape_static_count(&p->shape);
    Node *v = graph_leaf(g, OP_CONST, NULL, gp->dtype, &p->shape, loc);
    v->a.values = arena_alloc(g->arena, sizeof(double) * (size_t)(cnt ? cnt : 1));
    uint64_t rs = rng_stream(seed ^ 0x2dedull, p->name);
    for (int64_t k = 0; k < cnt; k++) v->a.values[k] = 2 * rng_uniform(rs, (uint64_t)k) - 1;
    Node *m[2] = {gp, v};
    Node *term = graph_node(g, OP_MUL, m, 2, NULL, loc);
    GRADC_ASSERT(term);
    if (term->shape.rank) {
      Attrs all = {.axes = (1u << term->shape.rank) - 1};
      term = graph_node(g, OP_SUM, &term, 1, &all, loc);
    }
    if (term->dtype != st->loss->dtype) {
      Attrs c = {.dtype = st->loss->dtype};
      term = graph_node(g, OP_CAST, &term, 1, &c, loc);
    }
    Node *add[2] = {s, term};
    s = s ? graph_node(g, OP_ADD, add, 2, NULL, loc) : term;
    GRADC_ASSERT(s);
  }
  Node **params = arena_alloc(g->arena, sizeof(Node *) * (size_t)st->ngrads);
  Node **hv = arena_alloc(g->arena, sizeof(Node *) * (size_t)st->ngrads);
  Grad *grads = arena_alloc(g->arena, sizeof(Grad) * (size_t)st->ngrads);
  for (int i = 0; i < st->ngrads; i++) params[i] = st->grads[i].param;
  /* Every op a rule emits has a rule (test_autodiff), but a model's own
   * op may not: then this is the diagnostic naming it. */
  if (!gradients(g, s, params, st->ngrads, hv)) return false;
  for (int i = 0; i < st->ngrads; i++) {
    Node *h = hv[i];
    if (!h) {
      Attrs to = {.to = params[i]->shape};
      h = graph_scalar(g, 0, params[i]->dtype, loc);
      if (to.to.rank) h = graph_node(g, OP_BROADCAST, &h, 1, &to, loc);
    }
    grads[i] = (Grad){params[i], h};
  }
  t.loss = s, t.grads = grads, t.ngrads = st->ngrads;
  *out = t;
  return true;
}

/* Every target's table, then the verdict. */
static int check_targets(const Graph *g, const Target *targets, int ntargets, uint64_t seed,
                         int64_t batch, double tol, FILE *out) {
  if (!ntargets) {
    fprintf(out, "gradc check: the model has no train statement or no trained "
            "parameter; nothing to check\n");
    return 1;
  }
  Eval *e = eval_new(g);
  bool ok = e != NULL;
  for (int k = 1; ok && k <= g->nsym; k++) ok = eval_bind(e, g->sym[k], batch);
  if (ok && !g->nsym) ok = eval_bind(e, "", 1);
  if (!ok) {
    fprintf(out, "gradc check: out of memory for the evaluator's buffers\n");
    eval_free(e);
    return 2;
  }
  eval_init(e, seed);
  /* Inputs in [-1, 1]; if that point is outside a loss's domain (log of a
   * negative input, say) retry once with inputs in [0.1, 1]. */
  fill_inputs(e, g, seed, batch, -1);
  bool finite = true;
  for (int s = 0; s < g->nsteps; s++) finite &= isfinite(loss_at(e, g->steps[s].loss));
  if (!finite) fill_inputs(e, g, seed, batch, 0.1);
  Totals tot = {0};
  for (int i = 0; i < ntargets; i++)
    if (!check_step(e, g, &targets[i], seed, batch, tol, out, &tot)) {
      eval_free(e);
      return 1;
    }
  eval_free(e);
  if (tot.nonfinite) {
    fprintf(out, "FAILED: %lld of %lld elements have a NaN or infinite symbolic gradient (the "
            "first non-finite value is named above)%s\n", (long long)tot.nonfinite,
            (long long)tot.checked, tot.failed > tot.nonfinite ? ", and others differ from finite "
            "differences" : "");
    return 1;
  }
  if (tot.failed) {
    fprintf(out, "FAILED: %lld of %lld elements differ from finite differences by more "
            "than atol + %.1e |numeric| (worst %.3g times that); %lld kinks stepped over\n",
            (long long)tot.failed, (long long)tot.checked, tol, tot.worst, (long long)tot.kinks);
    return 1;
  }
  fprintf(out, "ok: every gradient matches finite differences (worst %.3g of the allowed "
          "error, rtol %.1e); %lld kinks stepped over\n", tot.worst, tol, (long long)tot.kinks);
  return 0;
}

/* The train steps' own gradients (order 1). */
static int step_targets(const Graph *g, Target *t) {
  int n = 0;
  for (int s = 0; s < g->nsteps; s++)
    if (g->steps[s].ngrads)
      t[n++] = (Target){&g->steps[s], g->steps[s].loss, g->steps[s].grads, g->steps[s].ngrads, 1};
  return n;
}

int check_gradients(const Graph *g, uint64_t seed, int64_t batch, double tol, FILE *out) {
  Target *t = malloc(sizeof(Target) * (size_t)(g->nsteps + 1));
  GRADC_ASSERT(t);
  int rc = check_targets(g, t, step_targets(g, t), seed, batch, tol, out);
  free(t);
  return rc;
}

int check_gradients_order(Graph *g, uint64_t seed, int64_t batch, double tol, int order,
                          FILE *out) {
  if (order < 2) return check_gradients(g, seed, batch, tol, out);
  Target *t = malloc(sizeof(Target) * (size_t)(2 * g->nsteps + 1));
  GRADC_ASSERT(t);
  int n = step_targets(g, t), first = n;
  for (int i = 0; i < first; i++)
    if (!second_order(g, t[i].step, seed, &t[n++])) {
      fprintf(out, "gradc check: no second-order gradient:\n");
      diag_print(out, g->diags);
      free(t);
      return 1;
    }
  int rc = check_targets(g, t, n, seed, batch, tol, out);
  free(t);
  return rc;
}
