/*
 * test_gan.c - what the generative models need beyond random ops and
 * grad() (issue 18): post-update constraints, batch norm inside a function
 * called several times, several train steps run by a schedule in gradc
 * train, PNG grids of samples, and the Inception score.
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

#include "cli.h"

#include "util_files.h"

static float *f32(gradc_model *m, const char *name, int64_t *n) {
  float *p = gradc_data(m, name, n);
  if (!p) print_error("no tensor '%s': %s\n", name, gradc_last_error(m));
  assert_non_null(p);
  return p;
}

/* An MNIST-format split of n h x w images: pixel (i, k) = px(i, k). */
static void write_split(const char *prefix, int n, int h, int w, uint8_t (*px)(int i, int k)) {
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  FILE *f = fopen(path_of(name), "wb");
  assert_non_null(f);
  uint8_t head[16] = {0, 0, 8, 3, 0, 0, (uint8_t)(n >> 8), (uint8_t)n, 0, 0, 0, (uint8_t)h, 0, 0, 0, (uint8_t)w};
  fwrite(head, 1, 16, f);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < h * w; k++) fputc(px(i, k), f);
  fclose(f);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  f = fopen(path_of(name), "wb");
  assert_non_null(f);
  uint8_t lhead[8] = {0, 0, 8, 1, 0, 0, (uint8_t)(n >> 8), (uint8_t)n};
  fwrite(lhead, 1, 8, f);
  for (int i = 0; i < n; i++) fputc(i % 4, f);
  fclose(f);
}

static uint8_t noise(int i, int k) { return (uint8_t)((i * 131 + k * 71 + (i * k) % 17) & 255); }
/* pixel (i % 4) of the first row is white, the rest black */
static uint8_t one_hot(int i, int k) { return k == i % 4 ? 255 : 0; }

/* ------------------------------------------------------------ constraints */

/* clip(lo, hi) applies to the value the optimizer wrote: the constrained
 * model's parameters after a step are the unconstrained twin's, clipped. */
static void test_constraint_clips_the_update(void **state) {
  (void)state;
  static const char *body =
      "input x : f32[batch, 3]\n"
      "param v : f32[3, 2] = uniform(-1, 1)\n"
      "h = dense(x @ v, 4)\n"
      "loss = mean(square(h - 3))\n";
  char src[2][1024];
  snprintf(src[0], sizeof src[0], "%strain loss with sgd(lr=0.5)\n", body);
  snprintf(src[1], sizeof src[1], "%sconstraint v, h.kernel = clip(-0.05, 0.02)\nconstraint h.bias = non_neg\n"
           "train loss with sgd(lr=0.5)\n", body);
  gradc_model *m[2];
  for (int k = 0; k < 2; k++) {
    m[k] = compile_src("t.nn", src[k]);
    assert_int_equal(gradc_bind(m[k], 5), GRADC_OK);
    int64_t n;
    float *x = f32(m[k], "x", &n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)sin((double)i);
    double loss;
    assert_int_equal(gradc_train_step(m[k], &loss), GRADC_OK);
  }
  static const struct { const char *name; double lo, hi; } rows[] = {
      {"v", -0.05, 0.02}, {"h.kernel", -0.05, 0.02}, {"h.bias", 0, INFINITY}};
  int clipped = 0;
  for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
    int64_t n0, n1;
    float *free_ = f32(m[0], rows[r].name, &n0), *held = f32(m[1], rows[r].name, &n1);
    assert_int_equal(n0, n1);
    for (int64_t i = 0; i < n0; i++) {
      float want = free_[i] < rows[r].lo ? (float)rows[r].lo : free_[i] > rows[r].hi ? (float)rows[r].hi : free_[i];
      clipped += want != free_[i];
      if (held[i] != want) print_error("%s[%lld]: %g, want clip(%g) = %g\n", rows[r].name, (long long)i, held[i],
                                       free_[i], want);
      assert_true(held[i] == want);
    }
  }
  assert_true(clipped > 6);        /* the step moved most values past the bounds */
  gradc_free(m[0]);
  gradc_free(m[1]);
}

/* ------------------------------------------- batch norm in a function */

/* Each call of a function's batch_norm updates the moving statistics,
 * after the call before (Keras' order); a step applies the calls its loss
 * runs, chained: m = .5 (.5 m0 + .5 mean_a) + .5 mean_b for both, .5 mean_b
 * for the step that runs only f(b). */
static void test_batch_norm_in_function(void **state) {
  (void)state;
  gradc_model *m = compile_src("t.nn",
      "input a : f32[batch, 2]\n"
      "input b : f32[batch, 2]\n"
      "def f(v) {\n  return batch_norm(v, momentum=0.5)\n}\n"
      "la = mean(square(f(a) - 2))\n"
      "lb = mean(square(f(b) - 1))\n"
      "both = la + lb\n"
      "train both with sgd(lr=0.1) as both\n"
      "train lb with sgd(lr=0.1) as only_b\n");
  assert_int_equal(gradc_bind(m, 4), GRADC_OK);
  int64_t n;
  float *a = f32(m, "a", &n), *b = f32(m, "b", &n);
  double ma[2] = {0, 0}, mb[2] = {0, 0};
  for (int i = 0; i < 8; i++) {
    a[i] = (float)(i * 0.5 + 1), b[i] = (float)(3 - i * i * 0.25);
    ma[i % 2] += a[i] / 4, mb[i % 2] += b[i] / 4;
  }
  double loss;
  float *mean = f32(m, "f.batch_normalization.moving_mean", &n);
  assert_int_equal(n, 2);
  assert_int_equal(gradc_step(m, "both", &loss), GRADC_OK);
  for (int c = 0; c < 2; c++) assert_float_equal(mean[c], 0.25 * ma[c] + 0.5 * mb[c], 1e-5);
  mean[0] = mean[1] = 0;
  assert_int_equal(gradc_step(m, "only_b", &loss), GRADC_OK);
  for (int c = 0; c < 2; c++) assert_float_equal(mean[c], 0.5 * mb[c], 1e-5);
  gradc_free(m);
}

/* ------------------------------------------------------------ schedule */

static const char *gan_src =
    "input x : f32[batch, 4, 4]\n"
    "def gen(z) {\n  return reshape(dense(z, 16, activation=tanh), [-1, 4, 4])\n}\n"
    "def critic(v) {\n  return dense(flatten(v), 1)\n}\n"
    "z = random_normal([batch, 3])\n"
    "output fake = gen(z)\n"
    "c_loss = mean(critic(fake)) - mean(critic(x))\n"
    "g_loss = -mean(critic(fake))\n"
    "metric real = mean(critic(x))\n"
    "train c_loss of critic.* with adam(lr=1e-3) as c\n"
    "train g_loss of gen.* with adam(lr=1e-3) as g\n";

static char *train(gradc_model *m, TrainOptions *t) {
  char *text = NULL;
  size_t len = 0;
  t->out = open_memstream(&text, &len);
  RtError err = {{0}};
  gradc_status s = cli_train(m, t, &err);
  fclose(t->out);
  if (s) print_error("cli_train: %s\n%s\n", err.msg, text);
  assert_int_equal(s, GRADC_OK);
  return text;
}

static int32_t counter(gradc_model *m, const char *name) {
  int32_t *p = gradc_data(m, name, NULL);
  assert_non_null(p);
  return *p;
}

/* critic * 2, g over 4 batches an epoch: the critic takes every batch, the
 * generator (whose loss reads no data) runs after each two: 8 critic and 4
 * generator steps in two epochs.  Without a schedule, each step once in
 * turn: c takes a batch, g runs on it, 8 and 8. */
static void test_schedule(void **state) {
  (void)state;
  write_split("train", 64, 4, 4, noise);
  write_split("t10k", 16, 4, 4, noise);
  char src[2048];
  snprintf(src, sizeof src, "%sschedule c * 2, g\n", gan_src);
  const char *hist = path_of("h.csv");
  static const struct { bool schedule; int c, g; } rows[] = {{true, 8, 4}, {false, 8, 8}};
  for (size_t r = 0; r < 2; r++) {
    gradc_model *m = compile_src("t.nn", rows[r].schedule ? src : gan_src);
    TrainOptions t = {.data_dir = dir, .epochs = 2, .batch = 16, .seed = 1, .history = hist,
                      .test = true};
    char *text = train(m, &t);
    assert_int_equal(counter(m, "c/optimizer/iterations"), rows[r].c);
    assert_int_equal(counter(m, "g/optimizer/iterations"), rows[r].g);
    assert_non_null(strstr(text, " - c_loss: "));
    assert_non_null(strstr(text, " - g_loss: "));
    assert_non_null(strstr(text, "test: 16 samples - test_c_loss: "));
    free(text);
    FILE *f = fopen(hist, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "epoch,c_loss,g_loss,real,seconds\n");
    gradc_free(m);
  }
}

/* ------------------------------------------------------------ pictures */

static void png_size(const char *path, uint32_t *w, uint32_t *h) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t b[24];
  assert_int_equal(fread(b, 1, 24, f), 24);
  fclose(f);
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  assert_memory_equal(b, sig, 8);
  assert_memory_equal(b + 12, "IHDR", 4);
  *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
  *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
}

/* A generator's grid (8 a row, 2 pixels apart) and an auto-encoder's
 * pairs (each row of inputs above its reconstructions). */
static void test_samples_png(void **state) {
  (void)state;
  write_split("t10k", 20, 4, 4, noise);
  gradc_model *gan = compile_src("t.nn", gan_src);
  TrainOptions t = {.data_dir = dir, .batch = 16, .signed_pixels = true};
  RtError err = {{0}};
  const char *path = path_of("grid.png");
  assert_int_equal(cli_sample(gan, &t, path, 12, false, &err), GRADC_OK);
  uint32_t w, h;
  png_size(path, &w, &h);
  assert_int_equal(w, 2 + 8 * 6);
  assert_int_equal(h, 2 + 2 * 6);
  gradc_free(gan);

  gradc_model *ae = compile_src("t.nn", "input x : f32[batch, 16]\n"
                            "output x_hat = sigmoid(dense(dense(x, 3, activation=relu), 16))\n"
                            "loss = mean(square(x_hat - x))\ntrain loss with adam\n");
  t.signed_pixels = false;
  assert_int_equal(cli_sample(ae, &t, path, 20, false, &err), GRADC_OK);
  png_size(path, &w, &h);
  assert_int_equal(w, 2 + 8 * 6);
  assert_int_equal(h, 2 + 6 * 6);  /* 20 pairs: 3 rows of inputs, 3 of outputs */
  t.sample_output = "loss";
  assert_int_equal(cli_sample(ae, &t, path, 4, false, &err), GRADC_ERR_ARG);
  assert_non_null(strstr(err.msg, "the model has no output 'loss'"));
  gradc_free(ae);
}

/* ------------------------------------------------------------ score */

/* IS = exp(E KL(p(y|x) || p(y))): 4 for confident, balanced classes; 1
 * for a classifier that says the same for every image; logits refused. */
static void test_inception_score(void **state) {
  (void)state;
  write_split("t10k", 40, 4, 4, one_hot);
  static const struct { const char *out; double score; } rows[] = {
      {"softmax(flatten(x)[:, 0:4] * 100)", 4},
      {"softmax(flatten(x)[:, 0:4] * 0)", 1},
  };
  for (size_t r = 0; r < 2; r++) {
    char src[256];
    snprintf(src, sizeof src, "input x : f32[batch, 4, 4]\noutput p = %s\n", rows[r].out);
    gradc_model *m = compile_src("t.nn", src);
    TrainOptions t = {.data_dir = dir, .batch = 16};
    RtError err = {{0}};
    double is = 0;
    int64_t n = 0;
    gradc_status s = cli_score(m, &t, &is, &n, &err);
    if (s) print_error("%s\n", err.msg);
    assert_int_equal(s, GRADC_OK);
    assert_int_equal(n, 40);
    assert_float_equal(is, rows[r].score, 1e-6);
    gradc_free(m);
  }
  gradc_model *m = compile_src("t.nn", "input x : f32[batch, 4, 4]\noutput p = flatten(x)[:, 0:4] * 3 - 1\n");
  TrainOptions t = {.data_dir = dir, .batch = 16};
  RtError err = {{0}};
  double is;
  int64_t n;
  assert_int_equal(cli_score(m, &t, &is, &n, &err), GRADC_ERR_ARG);
  assert_non_null(strstr(err.msg, "is not a probability distribution"));
  gradc_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constraint_clips_the_update),
      cmocka_unit_test(test_batch_norm_in_function),
      cmocka_unit_test_setup_teardown(test_schedule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_samples_png, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inception_score, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
