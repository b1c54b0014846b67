/*
 * test_fuzz_api_findings.c - what tests/fuzz/fuzz_api.c found, pinned in
 * every build (the fuzz targets run only in CI's fuzz step; their
 * reproducers are in tests/fuzz/regressions/api/).
 *
 * feed-start-count-overflow: gradc_dataset_feed with start INT64_MAX and
 * count 2^24 + 1 refused the call, but computed start + count - 1 for its
 * message: a signed overflow (UBSan stops the ASan build on it; the
 * release build printed a negative index).  The message now holds the last
 * index at INT64_MAX, and a count below 1 has a message of its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradc.h"

static char dir[64];
static gradc_dataset *ds;
static gradc_model *m;

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-fuzz-api-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char path[128];
  snprintf(path, sizeof path, "%s/seq.csv", dir);
  FILE *f = fopen(path, "w");
  if (!f || fputs("1,5,6\n0,1,2,3\n2,7\n", f) < 0 || fclose(f)) return -1;
  if (gradc_dataset_load_sequences_csv(path, &ds)) return -1;
  return gradc_compile_string("feed.nn",
                              "input y : i32[batch]\ninput ids : i32[batch, 4]\n"
                              "e = embedding(ids, 10, 2)\n"
                              "loss = mean(softmax_cross_entropy(reshape(e, [-1, 8]), y))\n"
                              "train loss with sgd\n",
                              NULL, &m)
             ? -1
             : 0;
}

static int teardown(void **state) {
  (void)state;
  gradc_free(m);
  gradc_dataset_free(ds);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

static void expect_refused(int64_t start, int64_t count, const char *message) {
  assert_int_equal(gradc_dataset_feed(ds, m, NULL, start, count), GRADC_ERR_ARG);
  assert_string_equal(gradc_last_error(m), message);
}

static void test_feed_extreme_start_and_count(void **state) {
  (void)state;
  expect_refused(INT64_MAX, (1 << 24) + 1,
                 "gradc_dataset_feed: samples 9223372036854775807..9223372036854775807 are outside the dataset of 3");
  expect_refused(INT64_MAX, INT64_MAX,
                 "gradc_dataset_feed: samples 9223372036854775807..9223372036854775807 are outside the dataset of 3");
  expect_refused(2, INT64_MAX,
                 "gradc_dataset_feed: samples 2..9223372036854775807 are outside the dataset of 3");
  expect_refused(INT64_MIN, 1,
                 "gradc_dataset_feed: samples -9223372036854775808..-9223372036854775808 are outside the dataset of 3");
  expect_refused(-1, INT64_MAX,
                 "gradc_dataset_feed: samples -1..9223372036854775805 are outside the dataset of 3");
  expect_refused(2, 2, "gradc_dataset_feed: samples 2..3 are outside the dataset of 3");
  expect_refused(0, 0, "gradc_dataset_feed: count 0 is not a number of samples");
  expect_refused(INT64_MIN, INT64_MIN, "gradc_dataset_feed: count -9223372036854775808 is not a number of samples");
  /* The refusals changed nothing: the dataset still feeds. */
  assert_int_equal(gradc_dataset_feed(ds, m, NULL, 1, 2), GRADC_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_feed_extreme_start_and_count),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
