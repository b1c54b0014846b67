/*
 * test_random.c - random_normal, random_uniform and truncated_normal inside
 * the compiled step.
 *
 * 1. Moments of a large draw (100,000 values each) against the
 *    distribution's, within 5 standard errors computed from n; the
 *    truncated normal inside [mean - 2 stddev, mean + 2 stddev] and
 *    shaped like a normal cut there, not clipped to it.
 * 2. The draws are a function of (seed, step, element): forward twice
 *    gives the same values, a train step moves them on, another instance
 *    on two threads gives the same bits after the same steps, and the
 *    compiled values are the evaluator's doubles rounded to f32.
 * 3. The passes keep them: two draws differing only in their seed stay two
 *    (CSE), a static-shaped draw is no constant (fold).
 * 4. A random op inside a scan body is refused with a diagnostic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"
#include "util_tensor.h"

enum { BATCH = 100, WIDTH = 1000, N = BATCH * WIDTH };

static const char *const model =
    "input x : f32[batch, 1]\n"
    "param w : f32[1] = 0.5\n"
    "n = random_normal([batch, 1000], mean=1.5, stddev=2, seed=11)\n"
    "u = random_uniform([batch, 1000], minval=-1, maxval=3, seed=12)\n"
    "t = truncated_normal([batch, 1000], -1, 0.5, seed=13)\n"
    "output n\n"
    "output u\n"
    "output t\n"
    "loss = mean(square(x * w))\n"
    "train loss with sgd\n";

static gradc_model *random_model(const char *src, int threads) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = threads;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("random.nn", src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

static const float *out(gradc_model *m, const char *name, int64_t want) {
  int64_t cnt = 0;
  const float *p = gradc_data(m, name, &cnt);
  assert_non_null(p);
  assert_int_equal(cnt, want);
  return p;
}

typedef struct Moments {
  double mean, var, lo, hi;
} Moments;

static Moments moments(const float *v, int64_t n) {
  Moments m = {0, 0, INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; i++) {
    m.mean += v[i];
    m.lo = fmin(m.lo, v[i]), m.hi = fmax(m.hi, v[i]);
  }
  m.mean /= (double)n;
  for (int64_t i = 0; i < n; i++) m.var += (v[i] - m.mean) * (v[i] - m.mean);
  m.var /= (double)(n - 1);
  return m;
}

/* The share of v within r of c. */
static double share_within(const float *v, int64_t n, double c, double r) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) k += fabs(v[i] - c) <= r;
  return (double)k / (double)n;
}

/* |got - want| within 5 standard errors se. */
static void within(const char *what, double got, double want, double se) {
  if (fabs(got - want) > 5 * se) {
    print_error("%s: %.6f, expected %.6f +- %.6f (5 standard errors)\n", what, got, want, 5 * se);
    fail();
  }
}

/* Share p of a Bernoulli event over n draws: standard error sqrt(p(1-p)/n). */
static double share_se(double p) { return sqrt(p * (1 - p) / N); }

static void test_moments(void **state) {
  (void)state;
  gradc_model *m = random_model(model, 1);
  assert_int_equal(gradc_bind(m, BATCH), GRADC_OK);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  /* normal(1.5, 2): var of the sample variance 2 sigma^4 / (n - 1) */
  const float *n = out(m, "n", N);
  Moments mn = moments(n, N);
  within("normal mean", mn.mean, 1.5, 2 / sqrt(N));
  within("normal variance", mn.var, 4, 4 * sqrt(2.0 / (N - 1)));
  within("normal share within 1 stddev", share_within(n, N, 1.5, 2), 0.682689492, share_se(0.682689492));
  within("normal share within 2 stddev", share_within(n, N, 1.5, 4), 0.954499736, share_se(0.954499736));
  /* uniform[-1, 3): mean 1, variance 16/12, fourth central moment 256/80 */
  const float *u = out(m, "u", N);
  Moments mu = moments(u, N);
  assert_true(mu.lo >= -1 && mu.hi < 3);
  within("uniform mean", mu.mean, 1, sqrt(16.0 / 12 / N));
  within("uniform variance", mu.var, 16.0 / 12, sqrt((256.0 / 80 - (16.0 / 12) * (16.0 / 12)) / N));
  within("uniform share below 0", share_within(u, N, -0.5, 0.5), 0.25, share_se(0.25));
  /* truncated normal(-1, 0.5) at 2 stddev: inside [-2, 0], standard
   * deviation 0.5 * 0.8796, and the share within 1 stddev that of a normal
   * cut at 2 (a clip would pile 4.6% of the draws onto the bounds) */
  const float *t = out(m, "t", N);
  Moments mt = moments(t, N);
  assert_true(mt.lo >= -2 && mt.hi <= 0);
  double st = 0.5 * 0.87962566103423978;
  within("truncated mean", mt.mean, -1, st / sqrt(N));
  within("truncated variance", mt.var, st * st, st * st * sqrt(2.0 / (N - 1)));
  double p1 = 0.682689492 / 0.954499736;
  within("truncated share within 1 stddev", share_within(t, N, -1, 0.5), p1, share_se(p1));
  within("truncated share beyond 1.98 stddev", 1 - share_within(t, N, -1, 0.99), 0.0016, share_se(0.0016));
  gradc_free(m);
}

/* Counts the elements where a and b differ. */
static int64_t differ(const float *a, const float *b, int64_t n) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) k += memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return k;
}

/* The compiled draws are the evaluator's doubles rounded once to f32. */
static void same_as_evaluator(gradc_model *m, Eval *e, const char *when) {
  const Graph *g = jitmodel_graph(m);
  const char *names[] = {"n", "u", "t"};
  for (int k = 0; k < 3; k++) {
    const float *jit = out(m, names[k], N);
    const double *ref = eval_data(e, must_name(g, names[k]));
    for (int64_t i = 0; i < N; i++)
      if (jit[i] != (float)ref[i]) {
        print_error("%s %s[%lld]: jit %.9g, evaluator %.17g\n", when, names[k], (long long)i,
                    (double)jit[i], ref[i]);
        fail();
      }
  }
}

static void test_steps_seeds_threads(void **state) {
  (void)state;
  gradc_model *a = random_model(model, 1), *b = random_model(model, 2);
  const Graph *g = jitmodel_graph(a);
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "batch", BATCH));
  eval_init(e, 1);
  assert_int_equal(gradc_bind(a, BATCH), GRADC_OK);
  assert_int_equal(gradc_bind(b, BATCH), GRADC_OK);
  float *x = gradc_data(a, "x", NULL), *xb = gradc_data(b, "x", NULL);
  double *xe = eval_data(e, must_name(g, "x"));
  for (int i = 0; i < BATCH; i++) x[i] = xb[i] = (float)(xe[i] = i % 7 - 3);
  /* forward twice: the same draws (the counter as it stands, not moved) */
  assert_int_equal(gradc_forward(a), GRADC_OK);
  float *n0 = copy(out(a, "n", N), N);
  assert_int_equal(gradc_forward(a), GRADC_OK);
  assert_int_equal(differ(n0, out(a, "n", N), N), 0);
  eval_forward(e);
  same_as_evaluator(a, e, "forward");
  for (int s = 1; s <= 3; s++) {
    double la, lb;
    assert_int_equal(gradc_train_step(a, &la), GRADC_OK);
    assert_int_equal(gradc_train_step(b, &lb), GRADC_OK);
    eval_step(e, 0);
    /* the first step draws what forward drew (counter 0); each later
     * one anew (a repeat would be chance, 2^-53 per element) */
    float *n1 = copy(out(a, "n", N), N);
    if (s == 1) assert_int_equal(differ(n0, n1, N), 0);
    else assert_true(differ(n0, n1, N) > N - 10);
    free(n0);
    n0 = n1;
    /* two threads, another instance: the same bits */
    const char *names[] = {"n", "u", "t"};
    for (int k = 0; k < 3; k++) assert_int_equal(differ(out(a, names[k], N), out(b, names[k], N), N), 0);
    same_as_evaluator(a, e, "train step");
  }
  /* after three steps, forward draws for step 3: what the fourth step will
   * see, since it reads the counter before advancing it */
  assert_int_equal(gradc_forward(a), GRADC_OK);
  float *f3 = copy(out(a, "n", N), N);
  double l;
  assert_int_equal(gradc_train_step(a, &l), GRADC_OK);
  assert_int_equal(differ(f3, out(a, "n", N), N), 0);
  free(f3);
  free(n0);
  eval_free(e);
  gradc_free(a);
  gradc_free(b);
}

/* Same shape and arguments, seeds 1 and 2: two ops after CSE, different
 * values; the same seed: one op (the same draws, rightly merged).  A
 * static shape does not make a draw a constant. */
static void test_passes_keep_draws(void **state) {
  (void)state;
  gradc_model *m = random_model("input x : f32[batch, 2]\n"
                           "param w : f32[2] = 0.5\n"
                           "a = random_normal([4, 3], seed=1)\n"
                           "b = random_normal([4, 3], seed=2)\n"
                           "c = random_normal([4, 3], seed=1)\n"
                           "output a\noutput b\noutput c\n"
                           "loss = mean(square(x * w)) + sum(a) + sum(b) + sum(c)\n"
                           "train loss with sgd\n",
                           1);
  const Graph *g = jitmodel_graph(m);
  int draws = 0;
  for (int i = 0; i < g->nnodes; i++) draws += g->nodes[i]->op == OP_RANDOM_NORMAL;
  assert_int_equal(draws, 2);
  assert_int_equal(gradc_bind(m, 2), GRADC_OK);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  assert_int_equal(differ(out(m, "a", 12), out(m, "b", 12), 12), 12);
  assert_int_equal(differ(out(m, "a", 12), out(m, "c", 12), 12), 0);
  float *a0 = copy(out(m, "a", 12), 12);
  double l;
  assert_int_equal(gradc_train_step(m, &l), GRADC_OK);    /* draws for counter 0 */
  assert_int_equal(gradc_train_step(m, &l), GRADC_OK);    /* for counter 1 */
  assert_int_equal(differ(a0, out(m, "a", 12), 12), 12);
  free(a0);
  gradc_free(m);
}

static void expect_error(const char *src, const char *text) {
  gradc_model *m = NULL;
  assert_int_not_equal(gradc_compile_string("bad.nn", src, NULL, &m), GRADC_OK);
  assert_null(m);
  if (!strstr(gradc_last_error(NULL), text)) {
    print_error("expected '%s' in:\n%s\n", text, gradc_last_error(NULL));
    fail();
  }
}

static void test_errors(void **state) {
  (void)state;
  expect_error("def cell(x, h) {\n"
               "  out = tanh(x + h + random_normal([batch, 3]))\n"
               "  return out, out\n"
               "}\n"
               "input xs : f32[batch, 5, 3]\n"
               "input h0 : f32[batch, 3]\n"
               "ys, hT = scan(cell, xs, h0)\n"
               "output ys\n",
               "bad.nn:2:22: error: random_normal inside a scan body would draw once for every step");
  expect_error("e = random_uniform([4], minval=1, maxval=1)\noutput e\n",
               "bad.nn:1:5: error: random_uniform: maxval must be greater than minval, got minval=1, "
               "maxval=1");
  expect_error("e = truncated_normal([4], 0, -1)\noutput e\n",
               "bad.nn:1:5: error: truncated_normal: stddev must be a non-negative number, got -1");
  expect_error("e = random_normal([batch, -1])\noutput e\n",
               "bad.nn:1:5: error: random_normal: -1 is not allowed in the shape");
  expect_error("e = random_normal([3], dtype=i32)\noutput e\n",
               "bad.nn:1:5: error: random_normal: draws are floating-point (f32 or f64), not i32");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_moments),
      cmocka_unit_test(test_steps_seeds_threads),
      cmocka_unit_test(test_passes_keep_draws),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
