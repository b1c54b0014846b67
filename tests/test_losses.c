/*
 * test_losses.c - Keras' losses on probabilities by value: binary
 * cross-entropy (keras.losses.binary_crossentropy, from_logits=False) and
 * KL divergence, compiled, against the formulas of Keras 2's backend
 * written out here in double, including the clipping at epsilon = 1e-7 at
 * both ends (a prediction of exactly 0 or 1, a target of 0).  Their
 * gradients are checked by the finite-difference rows of test_autodiff.
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

enum { ROWS = 3, COLS = 4 };

static const float t[ROWS][COLS] = {{1, 0, 1, 0}, {0.2f, 0.5f, 0.3f, 0}, {1, 1, 0, 0}};
static const float q[ROWS][COLS] = {{0.9f, 0.2f, 0, 1}, {0.1f, 0.4f, 0.3f, 0.2f}, {1, 0.5f, 0.5f, 0}};

static double clip(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* keras.backend.binary_crossentropy, averaged over the last axis */
static double keras_bce(int r) {
  const double eps = 1e-7;
  double s = 0;
  for (int c = 0; c < COLS; c++) {
    double p = clip(q[r][c], (float)eps, (float)(1 - eps));
    s += -(t[r][c] * log(p + eps) + (1 - t[r][c]) * log(1 - p + eps));
  }
  return s / COLS;
}

/* keras.losses.kl_divergence */
static double keras_kl(int r) {
  double s = 0;
  for (int c = 0; c < COLS; c++) {
    double a = clip(t[r][c], (float)1e-7, 1), b = clip(q[r][c], (float)1e-7, 1);
    s += a * log(a / b);
  }
  return s;
}

static void test_values(void **state) {
  (void)state;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("losses.nn",
                                        "input t : f32[batch, 4]\n"
                                        "input q : f32[batch, 4]\n"
                                        "output bce = binary_crossentropy(t, q)\n"
                                        "output kl = kl_divergence(y_true=t, y_pred=q)\n",
                                        NULL, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  assert_int_equal(gradc_bind(m, ROWS), GRADC_OK);
  memcpy(gradc_data(m, "t", NULL), t, sizeof t);
  memcpy(gradc_data(m, "q", NULL), q, sizeof q);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  int64_t n = 0;
  const float *bce = gradc_data(m, "bce", &n);
  assert_int_equal(n, ROWS);
  const float *kl = gradc_data(m, "kl", &n);
  assert_int_equal(n, ROWS);
  for (int r = 0; r < ROWS; r++) {
    double want = keras_bce(r), wk = keras_kl(r);
    if (fabs(bce[r] - want) > 2e-6 * fabs(want) || fabs(kl[r] - wk) > 2e-6 * fabs(wk) + 1e-7) {
      print_error("row %d: bce %.9g (Keras %.9g), kl %.9g (Keras %.9g)\n", r, (double)bce[r], want,
                  (double)kl[r], wk);
      fail();
    }
  }
  /* confident misses are clipped, not infinite: row 0 holds two */
  assert_true(isfinite(bce[0]) && bce[0] > 7 && bce[0] < 8);
  gradc_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_values)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
