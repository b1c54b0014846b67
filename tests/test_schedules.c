/*
 * test_schedules.c - learning-rate schedules (issue 22) against Keras'
 * formulas, written out here independently of optimizer.c
 * (keras/optimizers/schedules/learning_rate_schedule.py, TF 2.13+).
 *
 * The probe: a scalar f64 parameter w, loss = w, so the gradient is 1 and
 * one sgd step from w = 0 leaves w = -lr(step) exactly (adam's, with g = 1,
 * -lr * (1 +- 3e-6)).  Each step resets w to 0 and reads the rate back,
 * over enough steps to pass every boundary, warm-up and decay end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradc.h"

enum { STEPS = 260 };

typedef double Formula(double step);

static gradc_model *compile_src(const char *src) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("sched.nn", src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

static void near(double got, double want, double rel, int step) {
  if (fabs(got - want) <= rel * fabs(want) + 1e-17) return;
  print_error("step %d: lr %.17g, Keras %.17g\n", step, got, want);
  fail();
}

/* The rate each of STEPS steps used, against f(step) * scale. */
static void check_rates(const char *opt, Formula *f, double scale, double rel, const char *set_lr) {
  char src[512];
  snprintf(src, sizeof src, "param w : f64[] = 0\nloss = w\ntrain loss with %s\n", opt);
  gradc_model *m = compile_src(src);
  assert_int_equal(gradc_bind(m, 1), GRADC_OK);
  if (set_lr) {
    double lr;
    assert_int_equal(gradc_get_hyper(m, NULL, "lr", &lr), GRADC_OK);
    assert_int_equal(gradc_set_hyper(m, NULL, "lr", lr * scale), GRADC_OK);
  }
  double *w = gradc_data(m, "w", NULL);
  assert_non_null(w);
  for (int k = 0; k < STEPS; k++) {
    *w = 0;
    assert_int_equal(gradc_train_step(m, NULL), GRADC_OK);
    near(-*w, f(k) * scale, rel, k);
  }
  gradc_free(m);
}

/* ExponentialDecay(0.1, decay_steps=50, decay_rate=0.5) */
static double exponential(double s) { return 0.1 * pow(0.5, s / 50); }
static double exponential_stair(double s) { return 0.1 * pow(0.5, floor(s / 50)); }
/* InverseTimeDecay(0.1, 20, 0.5) */
static double inverse_time(double s) { return 0.1 / (1 + 0.5 * s / 20); }
static double inverse_time_stair(double s) { return 0.1 / (1 + 0.5 * floor(s / 20)); }
/* PolynomialDecay(0.1, 200, end_learning_rate=0.001, power=2) */
static double polynomial(double s) {
  s = fmin(s, 200);
  return (0.1 - 0.001) * pow(1 - s / 200, 2) + 0.001;
}
/* PiecewiseConstantDecay([10, 100], [0.1, 0.01, 0.001]) */
static double piecewise(double s) { return s <= 10 ? 0.1 : s <= 100 ? 0.01 : 0.001; }
/* CosineDecay(0.1, 200, alpha=0.1) */
static double cosine(double s) {
  s = fmin(s, 200);
  return 0.1 * ((1 - 0.1) * 0.5 * (1 + cos(M_PI * s / 200)) + 0.1);
}
/* CosineDecay(0.0, 200, warmup_target=0.1, warmup_steps=30) */
static double cosine_warmup(double s) {
  s = fmin(s, 230);
  if (s < 30) return 0.1 * s / 30;
  return 0.1 * 0.5 * (1 + cos(M_PI * (s - 30) / 200));
}

static void test_exponential(void **state) {
  (void)state;
  check_rates("sgd(lr=exponential_decay(0.1, steps=50, rate=0.5))", exponential, 1, 1e-14, NULL);
  check_rates("sgd(lr=exponential_decay(initial_learning_rate=0.1, decay_steps=50, "
              "decay_rate=0.5, staircase=true))", exponential_stair, 1, 1e-14, NULL);
}

static void test_inverse_time_polynomial(void **state) {
  (void)state;
  check_rates("sgd(inverse_time_decay(0.1, 20, 0.5))", inverse_time, 1, 1e-14, NULL);
  check_rates("sgd(inverse_time_decay(0.1, 20, 0.5, staircase=true))", inverse_time_stair, 1,
              1e-14, NULL);
  check_rates("sgd(lr=polynomial_decay(0.1, 200, end_learning_rate=0.001, power=2))", polynomial,
              1, 1e-13, NULL);
}

static void test_piecewise(void **state) {
  (void)state;
  check_rates("sgd(lr=piecewise([10, 100], [0.1, 0.01, 0.001]))", piecewise, 1, 1e-15, NULL);
  check_rates("sgd(learning_rate=piecewise_constant_decay(boundaries=[10, 100], "
              "values=[0.1, 0.01, 0.001]), momentum=0)", piecewise, 1, 1e-15, NULL);
}

static void test_cosine(void **state) {
  (void)state;
  check_rates("sgd(lr=cosine(0.1, 200, alpha=0.1))", cosine, 1, 1e-12, NULL);
  /* the rate near the end of the decay is ~1e-5 of the peak: the cosine's
   * absolute error (1e-16) is what the relative bound must allow */
  check_rates("sgd(lr=cosine_decay(0.0, 200, warmup_target=0.1, warmup_steps=30))",
              cosine_warmup, 1, 1e-9, NULL);
}

/* Adam reads the scheduled rate too (its step size lr * sqrt(1-b2^t) /
 * (1-b1^t) times m/(sqrt(v)+eps) = 1/(1+eps/sqrt(v)) for g = 1). */
static void test_adam(void **state) {
  (void)state;
  check_rates("adam(lr=piecewise([10, 100], [0.1, 0.01, 0.001]))", piecewise, 1, 1e-5, NULL);
}

/* The run-time lr (--lr, gradc_set_hyper, ReduceLROnPlateau) scales the
 * whole curve: optimizer/lr holds the nominal rate. */
static void test_override_scales(void **state) {
  (void)state;
  check_rates("sgd(lr=exponential_decay(0.1, steps=50, rate=0.5))", exponential, 0.25, 1e-14, "");
  check_rates("sgd(lr=cosine_decay(0.0, 200, warmup_target=0.1, warmup_steps=30))", cosine_warmup,
              3, 1e-9, "");
  gradc_model *m = compile_src("param w : f64[] = 0\nloss = w\n"
                               "train loss with sgd(lr=cosine(0, 10, warmup_target=0.5))\n");
  double lr = 0;
  assert_int_equal(gradc_bind(m, 1), GRADC_OK);
  assert_int_equal(gradc_get_hyper(m, NULL, "lr", &lr), GRADC_OK);
  assert_true(lr == 0.5);
  gradc_free(m);
}

/* Mistakes point at the offending text. */
static void test_errors(void **state) {
  (void)state;
  static const struct {
    const char *opt, *msg;
  } cases[] = {
      {"sgd(lr=piecewise([10, 20], [0.1, 0.01]))",
       "3:24: error: piecewise: needs one value more than boundaries (Keras), got 2 boundaries and 2 values"},
      {"sgd(lr=piecewise([20, 10], [0.1, 0.01, 0.001]))",
       "3:24: error: piecewise: boundaries must increase, got 10 after 20"},
      {"sgd(lr=exponential_decay(0.1, steps=0, rate=0.5))",
       "3:24: error: exponential_decay: decay_steps must be positive, got 0"},
      {"sgd(lr=exponential_decay(0.1, steps=10))",
       "3:24: error: exponential_decay: missing argument decay_rate"},
      {"sgd(lr=cosine(0.1, 10, warmup=5))",
       "3:40: error: cosine has no argument 'warmup'; it takes: initial_learning_rate,initial,"
       "decay_steps,steps,alpha,warmup_target,warmup_steps"},
      {"sgd(lr=cosine(0.1, 10, warmup_steps=5))",
       "3:24: error: cosine: warmup_steps needs warmup_target, the rate warm-up ends at"},
      {"sgd(lr=cosine(0, 10))",
       "3:24: error: cosine: the initial learning rate must be positive, got 0"},
      {"sgd(exponential_decay(0.1, 10, 0.5), lr=0.1)",
       "3:54: error: sgd: the learning rate is given twice (a schedule and a number)"},
      {"sgd(lr=0.1, momentum=exponential_decay(0.1, 10, 0.5))",
       "3:38: error: unknown function 'exponential_decay'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "param w : f64[] = 0\nloss = w\ntrain loss with %s\n", cases[i].opt);
    gradc_options o;
    gradc_options_default(&o);
    gradc_model *m = NULL;
    assert_int_not_equal(gradc_compile_string("sched.nn", src, &o, &m), GRADC_OK);
    const char *e = gradc_last_error(NULL);
    if (!strstr(e, cases[i].msg)) {
      print_error("case %zu: want\n  %s\ngot\n%s\n", i, cases[i].msg, e);
      fail();
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exponential),     cmocka_unit_test(test_inverse_time_polynomial),
      cmocka_unit_test(test_piecewise),       cmocka_unit_test(test_cosine),
      cmocka_unit_test(test_adam),            cmocka_unit_test(test_override_scales),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
