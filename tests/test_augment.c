/*
 * test_augment.c - random_flip, random_translation and random_crop
 * (augment.c, issue 22).
 *
 * Images of 5x4 pixels and 2 channels whose every value is distinct and
 * nonzero, so an output image is identified exactly: each one must be one
 * of the transforms the op may draw, computed here by hand from its
 * definition (a mirror, a shift with Keras' fill modes), never by the
 * compiler's construction.
 * 1. Train steps: every image is x, its mirror or a shift within the
 *    factor's range; the draws cover that range; forced shifts give the
 *    hand-computed image exactly.
 * 2. Forward (eval, predict) passes x through, before and after training.
 * 3. The draws are a function of (seed, step): another instance on four
 *    threads gives the same bits, the evaluator too; the next step draws
 *    anew; another seed draws otherwise.
 * 4. On an activation the gradient matches finite differences.
 * 5. Diagnostics at the call's line and column.
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
#include "util_tensor.h"

enum { B = 200, H = 5, W = 4, C = 2, IMG = H * W * C, N = B * IMG };

typedef enum { CONSTANT, REFLECT, NEAREST } Mode;

/* A model whose output a is the augmentation written in aug (of x). */
static char *model_src(const char *aug) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "input x : f32[batch, %d, %d, %d]\n"
           "param w : f32[1] = 0.5\n"
           "a = %s\n"
           "output a\n"
           "loss = mean(square(x * w))\n"
           "train loss with sgd\n",
           H, W, C, aug);
  return buf;
}

static gradc_model *compile_aug(const char *aug, int threads, int opt_level) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = threads;
  o.opt_level = opt_level;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("aug.nn", model_src(aug), &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  assert_int_equal(gradc_bind(m, B), GRADC_OK);
  return m;
}

static float pixel(int b, int h, int w, int c) { return (float)(1000 * b + 100 * h + 10 * w + c + 1); }

static void fill_x(float *x) {
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int w = 0; w < W; w++)
        for (int c = 0; c < C; c++) x[((b * H + h) * W + w) * C + c] = pixel(b, h, w, c);
}

static const float *out(gradc_model *m, const char *name) {
  int64_t n = 0;
  const float *p = gradc_data(m, name, &n);
  assert_non_null(p);
  assert_int_equal(n, N);
  return p;
}

static gradc_model *ready_at(const char *aug, int threads, int opt_level) {
  gradc_model *m = compile_aug(aug, threads, opt_level);
  fill_x(gradc_data(m, "x", NULL));
  return m;
}

static gradc_model *ready(const char *aug, int threads) { return ready_at(aug, threads, 3); }

/* Keras' fill modes for a source index i of an axis of n: reflect
 * (d c b a | a b c d), nearest (a a a a | a b c d); -1 for the fill. */
static int source(int i, int n, Mode mode) {
  if (i >= 0 && i < n) return i;
  if (mode == CONSTANT) return -1;
  if (mode == NEAREST) return i < 0 ? 0 : n - 1;
  return i < 0 ? -i - 1 : 2 * n - 1 - i;
}

/* Does image b of y equal image b of x shifted down dy and right dx
 * (out[h][w] = x[h - dy][w - dx]), optionally mirrored first? */
static bool is_transform(const float *y, int b, int dy, int dx, bool flip_h, bool flip_v, Mode mode, float fill) {
  for (int h = 0; h < H; h++)
    for (int w = 0; w < W; w++)
      for (int c = 0; c < C; c++) {
        int sh = source(h - dy, H, mode), sw = source(w - dx, W, mode);
        float want = fill;
        if (sh >= 0 && sw >= 0) want = pixel(b, flip_v ? H - 1 - sh : sh, flip_h ? W - 1 - sw : sw, c);
        if (y[((b * H + h) * W + w) * C + c] != want) return false;
      }
  return true;
}

/* The shift of image b within [-K, K]^2, as dy * 100 + dx; fails if none. */
static int find_shift(const float *y, int b, int K, Mode mode, float fill) {
  for (int dy = -K; dy <= K; dy++)
    for (int dx = -K; dx <= K; dx++)
      if (is_transform(y, b, dy, dx, false, false, mode, fill)) return dy * 100 + dx;
  print_error("image %d is no shift of x within %d pixels\n", b, K);
  fail();
  return 0;
}

static void train(gradc_model *m) {
  double l;
  assert_int_equal(gradc_train_step(m, &l), GRADC_OK);
}

/* ------------------------------------------------------------ flips */

static void test_flip(void **state) {
  (void)state;
  static const struct {
    const char *aug;
    bool h, v;
  } cases[] = {
      {"random_flip(x, horizontal)", true, false},
      {"random_flip(x, vertical, seed=3)", false, true},
      {"random_flip(x)", true, true},
      {"random_flip(x, mode=horizontal_and_vertical)", true, true},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    gradc_model *m = ready(cases[k].aug, 1);
    train(m);
    const float *y = out(m, "a");
    int seen[4] = {0};
    for (int b = 0; b < B; b++) {
      int kind = -1;
      for (int f = 0; f < 4 && kind < 0; f++) {
        bool fh = f & 1, fv = f & 2;
        if ((fh && !cases[k].h) || (fv && !cases[k].v)) continue;
        if (is_transform(y, b, 0, 0, fh, fv, CONSTANT, 0)) kind = f;
      }
      if (kind < 0) {
        print_error("%s: image %d is neither x nor an allowed mirror of it\n", cases[k].aug, b);
        fail();
      }
      seen[kind]++;
    }
    /* each allowed outcome with probability 1/2 or 1/4: B = 200 draws
     * leave each far from 0 */
    int outcomes = (1 + cases[k].h) * (1 + cases[k].v);
    for (int f = 0; f < 4; f++) {
      bool allowed = !((f & 1) && !cases[k].h) && !((f & 2) && !cases[k].v);
      if (allowed) assert_in_range(seen[f], B / outcomes / 2, B);
      else assert_int_equal(seen[f], 0);
    }
    gradc_free(m);
  }
}

/* ------------------------------------------------------------ translations */

/* Forced shifts (a factor range of one value): every image moves the
 * same, to the hand-computed image, in each fill mode. */
static void test_forced_translation(void **state) {
  (void)state;
  static const struct {
    const char *aug;
    int dy, dx;
    Mode mode;
    float fill;
  } cases[] = {
      /* 0.4 * 5 = 2 down, -0.25 * 4 = 1 left */
      {"random_translation(x, [0.4, 0.4], [-0.25, -0.25], fill_mode=constant, fill_value=7)", 2, -1, CONSTANT, 7},
      {"random_translation(x, [0.4, 0.4], [-0.25, -0.25], fill_mode=constant)", 2, -1, CONSTANT, 0},
      {"random_translation(x, [-0.6, -0.6], [0.5, 0.5])", -3, 2, REFLECT, 0},
      {"random_translation(x, [0.6, 0.6], [-0.75, -0.75], fill_mode=reflect)", 3, -3, REFLECT, 0},
      {"random_translation(x, [-0.4, -0.4], [0.75, 0.75], fill_mode=nearest)", -2, 3, NEAREST, 0},
      /* the whole height: nothing of x is left on that axis */
      {"random_translation(x, [1, 1], [0, 0], fill_mode=reflect)", 5, 0, REFLECT, 0},
      {"random_translation(x, [-1, -1], [0, 0], fill_mode=nearest)", -5, 0, NEAREST, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    gradc_model *m = ready(cases[k].aug, 1);
    train(m);
    const float *y = out(m, "a");
    for (int b = 0; b < B; b++)
      if (!is_transform(y, b, cases[k].dy, cases[k].dx, false, false, cases[k].mode, cases[k].fill)) {
        print_error("%s: image %d is not x shifted by (%d, %d)\n", cases[k].aug, b, cases[k].dy, cases[k].dx);
        fail();
      }
    gradc_free(m);
  }
}

/* Random shifts: each image a shift within the range, every shift of the
 * range drawn; the range [lower, upper) of a pair is respected. */
static void test_random_translation_and_crop(void **state) {
  (void)state;
  static const struct {
    const char *aug;
    int K, ylo, yhi, xlo, xhi;
    Mode mode;
  } cases[] = {
      /* u * 5 in [-2, 2), u * 4 in [-2, 2): rounded (half to even) */
      {"random_translation(x, 0.4, 0.5, fill_mode=constant)", 2, -2, 2, -2, 2, CONSTANT},
      {"random_translation(x, 0.4, 0.5)", 2, -2, 2, -2, 2, REFLECT},
      {"random_translation(x, 0.4, 0.5, fill_mode=nearest, seed=9)", 2, -2, 2, -2, 2, NEAREST},
      /* u * 5 in [0, 2): 0, 1, 2; u * 4 in [-2, -1): -2, -1 */
      {"random_translation(x, [0, 0.4], [-0.5, -0.25], fill_mode=constant)", 2, 0, 2, -2, -1, CONSTANT},
      /* pad 2, crop back: every shift in [-2, 2], zero fill */
      {"random_crop(x, 2)", 2, -2, 2, -2, 2, CONSTANT},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    gradc_model *m = ready(cases[k].aug, 1);
    train(m);
    const float *y = out(m, "a");
    int seen_y[5] = {0}, seen_x[5] = {0};
    for (int b = 0; b < B; b++) {
      int s = find_shift(y, b, cases[k].K, cases[k].mode, 0);
      int dy = (int)lround(s / 100.0), dx = s - dy * 100;
      seen_y[dy + 2]++, seen_x[dx + 2]++;
    }
    for (int d = -2; d <= 2; d++) {
      bool iny = d >= cases[k].ylo && d <= cases[k].yhi, inx = d >= cases[k].xlo && d <= cases[k].xhi;
      if (!iny) assert_int_equal(seen_y[d + 2], 0);
      else assert_true(seen_y[d + 2] > 0);
      if (!inx) assert_int_equal(seen_x[d + 2], 0);
      else assert_true(seen_x[d + 2] > 0);
    }
    gradc_free(m);
  }
}

/* ------------------------------------------------------------ modes, seeds */

static int64_t differ(const float *a, const float *b, int64_t n) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) k += memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return k;
}

/* The number of images of y that differ from x. */
static int changed_images(const float *y) {
  int k = 0;
  for (int b = 0; b < B; b++) k += !is_transform(y, b, 0, 0, false, false, CONSTANT, 0);
  return k;
}

static const char *const all_three =
    "random_crop(random_translation(random_flip(x), 0.4, 0.5, fill_mode=nearest), 1, seed=7)";

/* Forward passes x through, before and after train steps that change it. */
static void test_forward_is_identity(void **state) {
  (void)state;
  gradc_model *m = ready(all_three, 1);
  const float *x = gradc_data(m, "x", NULL);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  assert_int_equal(differ(out(m, "a"), x, N), 0);
  train(m);
  assert_true(changed_images(out(m, "a")) > B / 2);
  train(m);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  assert_int_equal(differ(out(m, "a"), x, N), 0);
  gradc_free(m);
}

/* Same seed and step: the same bits on 1 and 4 threads and in the
 * evaluator; the next step and another seed draw otherwise. */
static void test_reproducible(void **state) {
  (void)state;
  gradc_model *a = ready(all_three, 1), *b = ready(all_three, 4), *o0 = ready_at(all_three, 1, 0);
  gradc_model *other = ready("random_crop(random_translation(random_flip(x, seed=1), 0.4, 0.5, "
                             "fill_mode=nearest, seed=2), 1, seed=8)", 1);
  const Graph *g = jitmodel_graph(a);
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "batch", B));
  eval_init(e, 1);
  double *xe = eval_data(e, must_name(g, "x"));
  const float *x = gradc_data(a, "x", NULL);
  for (int i = 0; i < N; i++) xe[i] = x[i];
  float *prev = NULL;
  for (int s = 0; s < 3; s++) {
    train(a), train(b), train(o0), train(other);
    eval_step(e, 0);
    const float *ya = out(a, "a");
    assert_int_equal(differ(ya, out(b, "a"), N), 0);
    assert_int_equal(differ(ya, out(o0, "a"), N), 0);
    const double *ye = eval_data(e, must_name(g, "a"));
    for (int i = 0; i < N; i++)
      if ((float)ye[i] != ya[i]) {
        print_error("step %d a[%d]: jit %.9g, evaluator %.17g\n", s, i, (double)ya[i], ye[i]);
        fail();
      }
    /* most images come out otherwise under another seed or at another step */
    assert_true(differ(ya, out(other, "a"), N) > N / 2);
    if (prev) assert_true(differ(ya, prev, N) > N / 2);
    free(prev);
    prev = copy(ya, N);
  }
  free(prev);
  eval_free(e);
  gradc_free(a);
  gradc_free(b);
  gradc_free(o0);
  gradc_free(other);
}

/* ------------------------------------------------------------ gradients */

/* On an activation: the train step's gradient through the permutation and
 * the fill against central finite differences (gradc check), as
 * test_autodiff.c's table. */
static void test_gradients(void **state) {
  (void)state;
  static const char *const src =
      "input x : f32[batch, 5, 4, 2]\n"
      "input k : f32[batch, 5, 4, 3]\n"
      "param w : f32[2, 3] = uniform(-1, 1)\n"
      "h = tanh(x @ w)\n"
      "a = random_flip(h, horizontal_and_vertical)\n"
      "b = random_translation(a, 0.4, [-0.5, 0.3], fill_mode=constant, fill_value=0.5)\n"
      "c = random_translation(h, 0.4, 0.5)\n"
      "d = random_translation(h, 1, 1, fill_mode=nearest)\n"
      "e = random_crop(h, 2)\n"
      "loss = sum((b + c * d + e * e) * k)\n"
      "train loss with sgd\n";
  Compilation *c = compile_model("grad.nn", src, strlen(src), STAGE_GRAD);
  assert_non_null(c);
  if (!c->graph) diag_print(stderr, &c->diags);
  assert_non_null(c->graph);
  for (uint64_t seed = 1; seed <= 3; seed++) {
    char *text = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&text, &len);
    assert_non_null(o);
    int rc = check_gradients(c->graph, seed, 6, 1e-5, o);
    fclose(o);
    if (rc) fprintf(stderr, "%s", text);
    free(text);
    assert_int_equal(rc, 0);
  }
  compilation_free(c);
}

/* ------------------------------------------------------------ errors */

static void expect_error(const char *aug, const char *text) {
  gradc_model *m = NULL;
  assert_int_not_equal(gradc_compile_string("bad.nn", model_src(aug), NULL, &m), GRADC_OK);
  assert_null(m);
  if (!strstr(gradc_last_error(NULL), text)) {
    print_error("expected '%s' in:\n%s\n", text, gradc_last_error(NULL));
    fail();
  }
}

static void test_errors(void **state) {
  (void)state;
  expect_error("random_flip(reshape(x, [-1, 5, 8]))",
               "bad.nn:3:5: error: random_flip needs NHWC images [batch, height, width, channels] with a static "
               "height, width and channel count, got f32[batch,5,8]");
  expect_error("random_flip(x, sideways)",
               "bad.nn:3:20: error: random_flip: mode must be horizontal, vertical or horizontal_and_vertical");
  expect_error("random_translation(x, 1.5, 0.1)",
               "bad.nn:3:27: error: random_translation: a factor is f in [0, 1] or [lower, upper] with "
               "-1 <= lower <= upper <= 1, got [-1.5, 1.5]");
  expect_error("random_translation(x, 0.1, [0.3, 0.2])", "bad.nn:3:32: error: random_translation: a factor is");
  expect_error("random_translation(x, 0.1)",
               "bad.nn:3:5: error: random_translation: expected random_translation(x, height_factor, width_factor)");
  expect_error("random_translation(x, 0.1, 0.1, fill_mode=wrap)",
               "bad.nn:3:47: error: random_translation: fill_mode must be constant, reflect or nearest");
  expect_error("random_translation(x, 0.1, 0.1, fill_mode=nearest, fill_value=1)",
               "bad.nn:3:67: error: random_translation: fill_value is only used with fill_mode=constant");
  expect_error("random_crop(x, 5)",
               "bad.nn:3:20: error: random_crop: pad must lie in [1, 4] (the image's smaller side), got 5");
  expect_error("random_crop(x)", "bad.nn:3:5: error: random_crop: missing pad");
  expect_error("random_flip(x, seed=-1)", "bad.nn:3:25: error: random_flip: seed must be a non-negative integer");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flip),
      cmocka_unit_test(test_forced_translation),
      cmocka_unit_test(test_random_translation_and_crop),
      cmocka_unit_test(test_forward_is_identity),
      cmocka_unit_test(test_reproducible),
      cmocka_unit_test(test_gradients),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
