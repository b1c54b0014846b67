/*
 * dims.c - binding symbolic dimensions one at a time through a shared
 * object (dims_bind_dim), for tests/run_aot_tests.sh; tests/aot/dims.nn,
 * the model of test_bind_dim in tests/test_train.c.
 *
 *   cc -include dims.h dims.c -L. -ldims && ./dims
 *
 * Prints the row sums of x = 1, 2, ... for [batch, n] = [2, 3], [2, 2] and
 * [5, 5] and the refusals' messages, the lines `jit_ref dims` prints from
 * the JIT, and checks the sums and shapes itself.
 */
#define DRIVER "dims"
#include "driver.h"

/* x = 1, 2, ... then the row sums, printed; the sums' array. */
static float *sums(gradc_aot_model *m, int64_t rows, int64_t cols) {
  gradc_aot_tensor t;
  expect(!dims_tensor_info(m, DIMS_T_X, &t) && t.dims[0] == rows && t.dims[1] == cols && t.count == rows * cols,
         "x's shape is the bound one");
  int64_t n = 0;
  float *x = dims_data(m, "x", &n);
  expect(x && n == rows * cols, "x's count");
  for (int64_t i = 0; x && i < n; i++) x[i] = (float)(i + 1);
  expect(!dims_forward(m), "forward");
  float *s = dims_data(m, "s", &n);
  expect(s && n == rows, "s's count");
  printf("[%lld, %lld]:", (long long)rows, (long long)cols);
  for (int64_t i = 0; s && i < n; i++) printf(" %.9g", (double)s[i]);
  printf("\n");
  return s;
}

int main(void) {
  gradc_aot_model *m = dims_new();
  expect(m != NULL, "new");
  expect(!dims_bind_dim(m, "batch", 2), "bind_dim batch");
  expect(!dims_bind_dim(m, "n", 3), "bind_dim n");
  float *s = sums(m, 2, 3);
  expect(s && s[0] == 6 && s[1] == 15, "rows of three: 6 15");
  expect(!dims_bind_dim(m, "n", 2), "bind_dim n again");
  s = sums(m, 2, 2);
  expect(s && s[0] == 3 && s[1] == 7, "rows of two: 3 7");
  expect(dims_bind_dim(m, "k", 2) == GRADC_AOT_ERR_ARG, "an unknown dimension");
  printf("error: %s\n", dims_last_error(m));
  expect(dims_bind_dim(m, "n", 0) == GRADC_AOT_ERR_SHAPE, "a value out of range");
  printf("error: %s\n", dims_last_error(m));
  expect(dims_bind_dim(NULL, "n", 2) == GRADC_AOT_ERR_ARG, "a NULL model");
  expect(dims_set_hyper(m, NULL, "lr", 1) == GRADC_AOT_ERR_ARG, "set_hyper without a train step");
  printf("error: %s\n", dims_last_error(m));
  expect(!dims_bind(m, 5, NULL), "bind sets every dimension");
  s = sums(m, 5, 5);
  expect(s && s[0] == 15 && s[4] == 115, "rows of five: 15 ... 115");
  dims_free(m);
  return finish();
}
