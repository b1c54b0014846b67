/*
 * check.c - gradc check: every symbolic gradient against central finite
 * differences, computed by the reference evaluator in double precision.
 *
 * Parameters come from the model's seeded initializers; inputs are drawn
 * uniformly from [-1, 1] (integer inputs as valid class indices for the ops
 * that read them), with every symbolic dimension bound to a small batch.
 * Large parameters are sampled: at most CHECK_SAMPLES elements each, chosen
 * by the seed.  The error of one element is |a - n| / max(|a| + |n|, 1e-6).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

enum { CHECK_SAMPLES = 48 };

/* The largest valid value + 1 of an integer input, from the ops that use it
 * as a class index; 4 when nothing constrains it. */
static int64_t int_range(const Graph *g, const Node *in) {
  int64_t r = 4;
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_SOFTMAX_CE && n->src[1] == in) {
      int64_t c = n->src[0]->shape.d[n->src[0]->shape.rank - 1].n;
      if (c < r) r = c;
    }
    if (n->op == OP_ONE_HOT && n->src[0] == in && n->a.depth < r) r = n->a.depth;
  }
  return r;
}

static void fill_inputs(Eval *e, const Graph *g, uint64_t seed, double lo) {
  for (int i = 0; i < g->nnodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_INPUT) continue;
    double *x = eval_data(e, n);
    uint64_t st = rng_stream(seed ^ 0x5eed5eedull, n->name);
    int64_t range = int_range(g, n);
    for (int64_t k = 0, c = eval_count(e, n); k < c; k++) {
      double u = rng_uniform(st, (uint64_t)k);
      if (n->dtype == DT_I32) x[k] = floor(u * (double)range);
      else if (n->dtype == DT_BOOL) x[k] = u < 0.5;
      else x[k] = lo + (1 - lo) * u;
    }
  }
}

static double loss_at(Eval *e, const Graph *g) {
  Node *root = g->loss;
  eval_run(e, &root, 1);
  return eval_data(e, g->loss)[0];
}

/* The loss after parameter p alone has changed since the last loss_at. */
static double loss_after(Eval *e, const Graph *g, const Node *p) {
  eval_rerun(e, g->loss, p);
  return eval_data(e, g->loss)[0];
}

int check_gradients(const Graph *g, uint64_t seed, int64_t batch, double tol, FILE *out) {
  if (!g->has_train || !g->ngrads) {
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
  /* Inputs in [-1, 1]; if that point is outside the loss's domain (log of a
   * negative input, say) retry once with inputs in [0.1, 1]. */
  fill_inputs(e, g, seed, -1);
  if (!isfinite(loss_at(e, g))) fill_inputs(e, g, seed, 0.1);
  double l0 = loss_at(e, g);
  if (!isfinite(l0)) {
    fprintf(out, "gradc check: the loss is %g at the random starting point; "
            "cannot compare gradients there\n", l0);
    eval_free(e);
    return 1;
  }
  Node **roots = malloc(sizeof(Node *) * (size_t)(g->ngrads + 1));
  GRADC_ASSERT(roots);
  roots[0] = g->loss;
  for (int i = 0; i < g->ngrads; i++) roots[i + 1] = g->grads[i].grad;
  eval_run(e, roots, g->ngrads + 1);
  free(roots);

  fprintf(out, "gradc check %s: seed %llu, batch %lld, loss %.6g\n", g->model_name,
          (unsigned long long)seed, (long long)batch, l0);
  fprintf(out, "  %-24s %10s %8s %14s %14s\n", "parameter", "elements", "checked",
          "max rel error", "max abs error");
  double worst = 0;
  for (int i = 0; i < g->ngrads; i++) {
    Node *p = g->grads[i].param;
    int64_t cnt = eval_count(e, p);
    double *theta = eval_data(e, p);
    double *an = malloc(sizeof(double) * (size_t)cnt);
    GRADC_ASSERT(an);
    memcpy(an, eval_data(e, g->grads[i].grad), sizeof(double) * (size_t)cnt);
    int64_t checks = cnt < CHECK_SAMPLES ? cnt : CHECK_SAMPLES;
    uint64_t st = rng_stream(seed ^ 0xc4ecull, p->name);
    double max_rel = 0, max_abs = 0;
    for (int64_t s = 0; s < checks; s++) {
      int64_t k = cnt <= CHECK_SAMPLES ? s : (int64_t)(rng_uniform(st, (uint64_t)s) * (double)cnt);
      double t0 = theta[k], h = 1e-6 * fmax(1.0, fabs(t0));
      theta[k] = t0 + h;
      double lp = loss_after(e, g, p);
      theta[k] = t0 - h;
      double lm = loss_after(e, g, p);
      theta[k] = t0;
      double num = (lp - lm) / (2 * h), a = an[k];
      double abs_err = fabs(a - num);
      double rel = abs_err / fmax(fabs(a) + fabs(num), 1e-6);
      if (!isfinite(rel)) rel = INFINITY;
      if (rel > max_rel) max_rel = rel;
      if (abs_err > max_abs) max_abs = abs_err;
    }
    loss_after(e, g, p);      /* back to the unperturbed values for the next one */
    free(an);
    fprintf(out, "  %-24s %10lld %8lld %14.3e %14.3e%s\n", p->name, (long long)cnt,
            (long long)checks, max_rel, max_abs, max_rel > tol ? "  FAIL" : "");
    if (max_rel > worst || isnan(max_rel)) worst = max_rel;
  }
  eval_free(e);
  if (worst > tol || isnan(worst)) {
    fprintf(out, "FAILED: worst relative error %.3e is above the tolerance %.1e\n", worst, tol);
    return 1;
  }
  fprintf(out, "ok: every gradient matches finite differences (worst %.3e, tolerance %.1e)\n",
          worst, tol);
  return 0;
}
