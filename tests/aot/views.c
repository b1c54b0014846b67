/*
 * views.c - tests/aot/views.nn through its shared object alone, for
 * tests/run_aot_tests.sh (built at -O0 and at -O3):
 *
 *   cc -include views.h views.c -L. -lviews && ./a.out
 *
 * Every output and metric of the model is a parameter, state or a
 * constant, or a view of one.  After each step it must hold the step's
 * value (W and s as the step found them, state st before its update);
 * after a forward, the forward's.  Exact values: a copy is bitwise.
 * Prints "views: ok" and exits 0 when all hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fails;

static void expect(gradc_aot_model *m, const char *name, const float *want, int64_t n, const char *when) {
  int64_t count = -1;
  const float *got = views_data(m, name, &count);
  if (!got || count != n) {
    fprintf(stderr, "views: '%s' %s: %s (count %lld)\n", name, when,
            got ? "wrong count" : views_last_error(m), (long long)count);
    fails++;
    return;
  }
  for (int64_t k = 0; k < n; k++)
    if (got[k] != want[k]) {
      fprintf(stderr, "views: '%s'[%lld] %s: %.9g, expected %.9g\n", name, (long long)k, when,
              (double)got[k], (double)want[k]);
      fails++;
    }
}

/* Every root against the values the step (or forward) started from. */
static void expect_views(gradc_aot_model *m, const float *w0, float s, float st, const char *when) {
  float wt[6], sv[2] = {st, st}, c[2] = {3, 4};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) wt[j * 2 + i] = w0[i * 3 + j];
  static const char *const as_w[] = {"a", "e", "q", "pw"};
  for (int k = 0; k < 4; k++) expect(m, as_w[k], w0, 6, when);
  expect(m, "t", wt, 6, when);
  expect(m, "so", sv, 2, when);
  expect(m, "sr", sv, 2, when);
  expect(m, "oc", c, 2, when);
  expect(m, "rc", c, 2, when);
  expect(m, "ms", &s, 1, when);
  expect(m, "mr", &s, 1, when);
  expect(m, "m0", &c[0], 1, when);
  expect(m, "m2", &c[1], 1, when);
}

int main(void) {
  gradc_aot_model *m = views_new();
  if (!m || views_bind(m, 1, NULL)) {
    fprintf(stderr, "views: new or bind failed\n");
    return 1;
  }
  float w0[6], zero[6] = {0};
  double loss;
  memcpy(w0, views_data(m, "W", NULL), sizeof w0);
  if (views_forward(m)) fails++;
  expect_views(m, w0, 0.75f, 1, "after forward");
  if (views_train_step(m, &loss)) fails++;
  expect(m, "W", zero, 6, "W after the step");
  expect_views(m, w0, 0.75f, 1, "after step 1");
  if (views_train_step(m, &loss)) fails++;
  expect_views(m, zero, 0, 1.5f, "after step 2");
  if (views_forward(m)) fails++;
  expect_views(m, zero, 0, 1.75f, "after the last forward");
  views_free(m);
  if (!fails) printf("views: ok\n");
  return fails != 0;
}
