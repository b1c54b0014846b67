/*
 * test_regularizers.c - weight penalties and decoupled weight decay
 * (issue 22): kernel_regularizer= on the layer sugar and regularizer= on
 * param (Keras: l1 * sum|w| + l2 * sum w^2, added to the trained loss), the
 * penalty as its own metric, the regularized loss's gradient against
 * finite differences, and weight_decay= (Keras 2.11+ / AdamW).
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

static gradc_model *compile_src(const char *src) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("reg.nn", src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

static void near(double got, double want, double rel, const char *what, int i) {
  if (fabs(got - want) <= rel * fabs(want) + 1e-12) return;
  print_error("%s[%d]: got %.17g, want %.17g\n", what, i, got, want);
  fail();
}

static double *f64(gradc_model *m, const char *name, int64_t want) {
  int64_t n = 0;
  double *p = gradc_data(m, name, &n);
  if (!p) print_error("no tensor '%s': %s\n", name, gradc_last_error(m));
  assert_non_null(p);
  assert_int_equal(n, want);
  return p;
}

static const char *const fd_model =
    "input x : f64[batch, 3]\n"
    "param W : f64[3, 2] = [[0.5, -0.25], [1.5, 0.75], [-1, 2]] regularizer=l1_l2(l1=0.03, l2=0.02)\n"
    "h = dense(x, 2, kernel_regularizer=l2(0.001), bias_regularizer=l1(0.5), "
    "bias_initializer=0.125)\n"
    "loss = mean(square(x @ W + h))\n"
    "train loss with sgd(lr=1)\n";

static double loss_at(gradc_model *m) {
  assert_int_equal(gradc_forward(m), GRADC_OK);
  return *f64(m, "loss", 1);
}

/* The penalty is the metric `regularization`, the loss includes it, and
 * the trained gradient (w - w' after one sgd(lr=1) step) matches central
 * differences of the loss. */
static void test_penalty_and_gradient(void **state) {
  (void)state;
  gradc_model *m = compile_src(fd_model);
  assert_int_equal(gradc_bind(m, 2), GRADC_OK);
  double *x = f64(m, "x", 6);
  const double xs[6] = {0.3, -0.7, 1.1, 0.9, 0.2, -0.4};
  memcpy(x, xs, sizeof xs);
  double *W = f64(m, "W", 6), *K = f64(m, "h.kernel", 6), *B = f64(m, "h.bias", 2);
  double w0[6], k0[6], b0[2];
  memcpy(w0, W, sizeof w0), memcpy(k0, K, sizeof k0), memcpy(b0, B, sizeof b0);
  double want = 0;
  for (int i = 0; i < 6; i++) want += 0.03 * fabs(W[i]) + 0.02 * W[i] * W[i] + 0.001 * K[i] * K[i];
  for (int i = 0; i < 2; i++) want += 0.5 * fabs(B[i]);
  double l0 = loss_at(m);
  near(*f64(m, "regularization", 1), want, 1e-14, "regularization", 0);
  /* the data loss, from the same parameters on the host */
  double data = 0;
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 2; j++) {
      double v = B[j];
      for (int i = 0; i < 3; i++) v += xs[r * 3 + i] * (W[i * 2 + j] + K[i * 2 + j]);
      data += v * v / 4;
    }
  near(l0, data + want, 1e-13, "loss", 0);
  /* central differences, every element of every penalised parameter */
  double fd[14];
  double *ps[3] = {W, K, B};
  int ns[3] = {6, 6, 2}, at = 0;
  for (int q = 0; q < 3; q++)
    for (int i = 0; i < ns[q]; i++) {
      double keep = ps[q][i], h = 1e-6;
      ps[q][i] = keep + h;
      double up = loss_at(m);
      ps[q][i] = keep - h;
      double dn = loss_at(m);
      ps[q][i] = keep;
      fd[at++] = (up - dn) / (2 * h);
    }
  assert_int_equal(gradc_train_step(m, NULL), GRADC_OK);
  double *before[3] = {w0, k0, b0};
  at = 0;
  for (int q = 0; q < 3; q++)
    for (int i = 0; i < ns[q]; i++, at++) near(before[q][i] - ps[q][i], fd[at], 1e-6, "grad", at);
  gradc_free(m);
}

/* With `of` patterns, a step's penalty covers only what it trains: two
 * steps, two metrics PREFIX/regularization, none for a step whose
 * parameters have no regularizer. */
static void test_per_step(void **state) {
  (void)state;
  gradc_model *m = compile_src("param a : f64[2] = [1, -2] regularizer=l2(0.5)\n"
                               "param b : f64[2] = [3, 4]\n"
                               "la = sum(a * b)\n"
                               "lb = sum(square(b)) + sum(a)\n"
                               "train la of a with sgd as sa\n"
                               "train lb of b with sgd as sb\n");
  assert_int_equal(gradc_bind(m, 1), GRADC_OK);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  near(*f64(m, "sa/regularization", 1), 0.5 * (1 + 4), 1e-15, "sa/regularization", 0);
  assert_null(gradc_data(m, "sb/regularization", NULL));
  gradc_free(m);
}

/* weight_decay: p <- p - p * wd * lr, then the update, which never sees
 * it: sgd's w' = w - lr*wd*w - lr*g; adam's first step, lr * g / (|g| +
 * eps / sqrt(1 - beta2)), on top. */
static void test_weight_decay(void **state) {
  (void)state;
  const char *opts[2] = {"sgd(lr=0.1, weight_decay=0.5)", "adam(lr=0.1, weight_decay=0.5)"};
  for (int k = 0; k < 2; k++) {
    char src[256];
    snprintf(src, sizeof src, "param w : f64[2] = [1, -2]\nloss = sum(square(w))\ntrain loss with %s\n",
             opts[k]);
    gradc_model *m = compile_src(src);
    assert_int_equal(gradc_bind(m, 1), GRADC_OK);
    double *w = f64(m, "w", 2);
    const double w0[2] = {1, -2};
    assert_int_equal(gradc_train_step(m, NULL), GRADC_OK);
    for (int i = 0; i < 2; i++) {
      double g = 2 * w0[i];
      /* Keras' eps is added to sqrt(v) before v's bias correction,
       * sqrt(v) = sqrt(1 - beta2) |g| at the first step */
      double step = k == 0 ? 0.1 * g : 0.1 * (g > 0 ? 1 : -1) / (1 + 1e-7 / (sqrt(0.001) * fabs(g)));
      near(w[i], w0[i] - 0.1 * 0.5 * w0[i] - step, 1e-12, opts[k], i);
    }
    double wd = 0;
    assert_int_equal(gradc_get_hyper(m, NULL, "weight_decay", &wd), GRADC_OK);
    assert_true(wd == 0.5);
    gradc_free(m);
  }
}

static void test_errors(void **state) {
  (void)state;
  static const struct {
    const char *line, *msg;
  } cases[] = {
      {"h = dense(x, 2, kernel_regularizer=l3(0.1))",
       "2:36: error: unknown regularizer 'l3' (the regularizers are l1(x), l2(x) and l1_l2(l1=x, l2=y))"},
      {"h = dense(x, 2, kernel_regularizer=l2(-0.1))",
       "2:39: error: l2: the factor must not be negative, got -0.1"},
      {"param W : f32[3, 2] = zeros regularizer=l1_l2(l3=1)\nh = x @ W",
       "2:47: error: l1_l2 has no argument 'l3'"},
      {"param W : f32[3, 2] = zeros regularizer=l2 regularizer=l1\nh = x @ W",
       "2:44: error: parameter 'W' already has a regularizer (line 2)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "input x : f32[batch, 3]\n%s\nloss = mean(h)\ntrain loss with sgd\n",
             cases[i].line);
    gradc_options o;
    gradc_options_default(&o);
    gradc_model *m = NULL;
    assert_int_not_equal(gradc_compile_string("reg.nn", src, &o, &m), GRADC_OK);
    const char *e = gradc_last_error(NULL);
    if (!strstr(e, cases[i].msg)) {
      print_error("case %zu: want\n  %s\ngot\n%s\n", i, cases[i].msg, e);
      fail();
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_penalty_and_gradient),
      cmocka_unit_test(test_per_step),
      cmocka_unit_test(test_weight_decay),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
