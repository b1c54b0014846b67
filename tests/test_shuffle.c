/*
 * test_shuffle.c - gradc_shuffle, the public order of `gradc train`'s
 * batches: it is the permutation the command line's fit loop draws
 * (data_permutation), and a program that feeds a dataset by it with
 * gradc_dataset_feed and steps with gradc_train_step ends with exactly the
 * parameters cli_train ends with - bit for bit, which is what the Python
 * package's fit promises on top of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gradc.h"
#include "runtime.h"

static char dir[256];

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

enum { N = 37, SIDE = 3 };   /* 37 samples: batches of 8 leave a partial one */

/* 3x3 images of 3 classes with noise from an LCG, plain IDX files. */
static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-shuffle-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  unsigned char img[16 + N * SIDE * SIDE], lab[8 + N];
  put_be32(img, 2051), put_be32(img + 4, N), put_be32(img + 8, SIDE), put_be32(img + 12, SIDE);
  put_be32(lab, 2049), put_be32(lab + 4, N);
  uint32_t seed = 5;
  for (int i = 0; i < N; i++) {
    lab[8 + i] = (unsigned char)(i % 3);
    for (int p = 0; p < SIDE * SIDE; p++) {
      seed = seed * 1664525u + 1013904223u;
      img[16 + i * SIDE * SIDE + p] = (unsigned char)((p / SIDE == i % 3 ? 160 : 30) + (seed >> 26));
    }
  }
  const char *names[2] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
  const unsigned char *bytes[2] = {img, lab};
  size_t sizes[2] = {sizeof img, sizeof lab};
  for (int k = 0; k < 2; k++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes[k], 1, sizes[k], f) != sizes[k] || fclose(f)) return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

static void test_is_the_cli_permutation(void **state) {
  (void)state;
  int64_t n_values[] = {1, 2, 37, 1000};
  for (size_t k = 0; k < sizeof n_values / sizeof *n_values; k++) {
    int64_t n = n_values[k];
    int64_t *a = malloc(sizeof(int64_t) * (size_t)n), *b = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t epoch = 0; epoch < 3; epoch++) {
      gradc_shuffle(a, n, 42 + (uint64_t)k, epoch);
      data_permutation(b, n, 42 + (uint64_t)k, epoch);
      assert_memory_equal(a, b, sizeof(int64_t) * (size_t)n);
    }
    free(a);
    free(b);
  }
  int64_t untouched[2] = {-7, -7};
  gradc_shuffle(untouched, 0, 1, 0);           /* n < 1: nothing written */
  gradc_shuffle(untouched, -3, 1, 0);
  gradc_shuffle(NULL, 5, 1, 0);                /* NULL: no crash */
  assert_int_equal(untouched[0], -7);
  assert_int_equal(untouched[1], -7);
}

static const char *model_src =
    "input x : f32[batch, 3, 3]\n"
    "input y : i32[batch]\n"
    "logits = dense(flatten(x), 3)\n"
    "loss = mean(softmax_cross_entropy(logits, y))\n"
    "metric accuracy = mean(argmax(logits, axis=-1) == y)\n"
    "train loss with adam(lr=0.05)\n";

static gradc_model *compile_tiny(void) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  o.seed = 9;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("shuffle.nn", model_src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

/* Three epochs of batches of 8 (the last of each epoch 5 samples). */
static void test_feeding_by_it_trains_as_the_cli(void **state) {
  (void)state;
  enum { EPOCHS = 3, BATCH = 8 };
  gradc_model *cli = compile_tiny(), *api = compile_tiny();
  FILE *quiet = fopen("/dev/null", "w");
  TrainOptions t = {.data_dir = dir, .epochs = EPOCHS, .batch = BATCH, .seed = 9, .out = quiet};
  RtError err = {{0}};
  gradc_status s = cli_train(cli, &t, &err);
  if (s) print_error("%s\n", err.msg);
  assert_int_equal(s, GRADC_OK);
  fclose(quiet);

  gradc_dataset *d = NULL;
  assert_int_equal(gradc_dataset_load(dir, 1, &d), GRADC_OK);
  int64_t order[N];
  for (int64_t epoch = 0; epoch < EPOCHS; epoch++) {
    gradc_shuffle(order, N, 9, epoch);
    for (int64_t at = 0; at < N; at += BATCH) {
      int64_t count = N - at < BATCH ? N - at : BATCH;
      assert_int_equal(gradc_dataset_feed(d, api, order, at, count), GRADC_OK);
      assert_int_equal(gradc_train_step(api, NULL), GRADC_OK);
    }
  }
  gradc_dataset_free(d);

  int compared = 0;
  for (int i = 0; i < gradc_tensor_count(api); i++) {
    gradc_tensor ti;
    assert_int_equal(gradc_tensor_info(api, i, &ti), GRADC_OK);
    if (ti.kind != GRADC_PARAM && ti.kind != GRADC_STATE) continue;
    int64_t na, nc;
    const void *a = gradc_data(api, ti.name, &na), *c = gradc_data(cli, ti.name, &nc);
    assert_non_null(a);
    assert_non_null(c);
    assert_int_equal(na, nc);
    size_t bytes = (size_t)na * (ti.dtype == GRADC_F64 ? 8 : ti.dtype == GRADC_BOOL ? 1 : 4);
    assert_memory_equal(a, c, bytes);
    compared++;
  }
  assert_true(compared >= 2);   /* the kernel and bias at least, with adam's slots */
  gradc_free(cli);
  gradc_free(api);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_is_the_cli_permutation),
      cmocka_unit_test(test_feeding_by_it_trains_as_the_cli),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
