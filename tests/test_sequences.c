/*
 * test_sequences.c - the recurrent models learn what order means.
 *
 * The IMDB models of the seeds (models/imdb_*.nn, SEEDS M30-M33) need
 * reviews we do not have, so small versions of them are trained here on a
 * synthetic sentiment-like task that only a model reading the ids in order
 * can solve: sequences of 20 to 40 ids from a vocabulary of 64, each with
 * one marker A and one marker B at random positions among filler ids,
 * labelled 1 iff A comes before B.  Both classes hold the same bag of
 * words, so a bag-of-words model (embedding, mean over time, dense) stays
 * at chance, while a SimpleRNN, an LSTM, a GRU and two cells of a def
 * stacked by scan (M30's form) must reach 0.95 on held-out sequences.  If
 * a loop stopped carrying its state from step to step (or read the steps
 * out of order) the recurrent models would fall to the bag-of-words level.
 *
 * The data are IDX files written by a seeded generator (a train and a test
 * split, ids pre-padded with 0 to 40 as Keras' pad_sequences), trained
 * through cli_train as `gradc train` does.  Compiled at -O1 on one thread,
 * with small layers and few epochs, so the whole file takes seconds.
 * scripts/order_task.py writes the same task at any size for `gradc train`
 * (the README's runs of the full-size models).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "gradc.h"
#include "runtime.h"

enum { LENGTH = 40, MIN_LENGTH = 20, VOCAB = 64, MARK_A = 1, MARK_B = 2, FIRST_FILLER = 3 };
enum { TRAIN = 1024, TEST = 512 };

static char dir[256];

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static uint32_t next(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;       /* Numerical Recipes' LCG */
  return *s >> 8;
}

static void write_file(const char *split, const char *kind, const unsigned char *b, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s-%s", dir, split, kind);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* n sequences of the order task as SPLIT-sequences-idx2-ubyte and
 * SPLIT-labels-idx1-ubyte; returns the share labelled 1. */
static double write_split(const char *split, int n, uint32_t seed) {
  unsigned char *seq = calloc((size_t)n * LENGTH + 12, 1), *lab = malloc((size_t)n + 8);
  assert_true(seq && lab);
  put_be32(seq, 0x0802), put_be32(seq + 4, (uint32_t)n), put_be32(seq + 8, LENGTH);
  put_be32(lab, 0x0801), put_be32(lab + 4, (uint32_t)n);
  int ones = 0;
  for (int i = 0; i < n; i++) {
    int len = MIN_LENGTH + (int)(next(&seed) % (LENGTH - MIN_LENGTH + 1));
    unsigned char *s = seq + 12 + (size_t)i * LENGTH + (LENGTH - len);   /* pre-padded */
    for (int t = 0; t < len; t++) s[t] = (unsigned char)(FIRST_FILLER + next(&seed) % (VOCAB - FIRST_FILLER));
    int a = (int)(next(&seed) % (uint32_t)len), b = (int)(next(&seed) % (uint32_t)(len - 1));
    b += b >= a;                          /* a position other than a */
    s[a] = MARK_A, s[b] = MARK_B;
    lab[8 + i] = a < b;
    ones += a < b;
  }
  write_file(split, "sequences-idx2-ubyte", seq, (size_t)n * LENGTH + 12);
  write_file(split, "labels-idx1-ubyte", lab, (size_t)n + 8);
  free(seq);
  free(lab);
  return (double)ones / n;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-seq-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  double train = write_split("train", TRAIN, 1), test = write_split("t10k", TEST, 2);
  /* both classes about equally common: chance is about 0.5 */
  return train > 0.45 && train < 0.55 && test > 0.45 && test < 0.55 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

/* The IMDB models' frame at a small size: ids embedded in 16 dimensions,
 * a body making h [batch, units], Dense(1) on it, binary cross-entropy on
 * the logit with the i32 labels as floats. */
static const char *const head =
    "input ids : i32[batch, 40]\n"
    "input y : i32[batch]\n"
    "x = embedding(ids, 64, 16)\n";
static const char *const tail =
    "logit = dense(h, 1)\n"
    "output prob = sigmoid(logit)\n"
    "loss = mean(sigmoid_cross_entropy(logit[:, 0], cast(y, f32)))\n"
    "metric accuracy = mean(cast(logit[:, 0] > 0, i32) == y)\n"
    "train loss with adam(lr=0.01)\n";

/* Trains head + body + tail for epochs; returns the test accuracy. */
static double train(const char *name, const char *body, int epochs) {
  size_t n = strlen(head) + strlen(body) + strlen(tail) + 1;
  char *src = malloc(n);
  assert_non_null(src);
  snprintf(src, n, "%s%s%s", head, body, tail);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  gradc_options o;
  gradc_options_default(&o);
  o.opt_level = 1, o.threads = 1;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string(name, src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  free(src);
  char *text = NULL;
  size_t len = 0;
  TrainOptions t = {.data_dir = dir, .epochs = epochs, .batch = 32, .seed = 1, .test = true};
  t.out = open_memstream(&text, &len);
  RtError err = {{0}};
  s = cli_train(m, &t, &err);
  fclose(t.out);
  if (s) print_error("cli_train: %s\n%s\n", err.msg, text);
  assert_int_equal(s, GRADC_OK);
  const char *at = strstr(text, "test_accuracy: ");
  assert_non_null(at);
  double acc = atof(at + strlen("test_accuracy: "));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message("%-12s test accuracy %.4f after %d epochs, %.2f s (compile and train)\n", name, acc,
                epochs, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  free(text);
  gradc_free(m);
  return acc;
}

static void test_simple_rnn_learns_order(void **state) {
  (void)state;
  assert_true(train("simple_rnn", "h = simple_rnn(x, 16)\n", 5) >= 0.95);
}

static void test_lstm_learns_order(void **state) {
  (void)state;
  assert_true(train("lstm", "h = lstm(x, 16)\n", 5) >= 0.95);
}

static void test_gru_learns_order(void **state) {
  (void)state;
  assert_true(train("gru", "h = gru(x, 16)\n", 5) >= 0.95);
}

/* M30's form: a def cell looped by scan, two instances stacked, the first
 * one's outputs the second one's sequence. */
static void test_scan_cells_learn_order(void **state) {
  (void)state;
  const char *body =
      "def cell(x, h) {\n"
      "  param recurrent_kernel : f32[16, 16] = orthogonal\n"
      "  out = tanh(dense(x, 16, name=input) + h @ recurrent_kernel)\n"
      "  return out, out\n"
      "}\n"
      "h0 = broadcast_to(cast(0, f32), [batch, 16])\n"
      "o0, s0 = scan(cell, x, h0, name=cell0)\n"
      "o1, h = scan(cell, o0, h0, name=cell1)\n";
  assert_true(train("scan_cells", body, 5) >= 0.95);
}

/* The same ids in any order give the same mean: no better than chance. */
static void test_bag_of_words_cannot(void **state) {
  (void)state;
  assert_true(train("bag_of_words", "h = mean(x, axis=1)\n", 5) <= 0.65);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_rnn_learns_order), cmocka_unit_test(test_lstm_learns_order),
      cmocka_unit_test(test_gru_learns_order),        cmocka_unit_test(test_scan_cells_learn_order),
      cmocka_unit_test(test_bag_of_words_cannot),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
