/*
 * test_gemm.c - gradc_sgemm (runtime/gemm.c) against a double-precision
 * product: every transpose, sizes on both sides of the tile and block edges,
 * leading dimensions wider than the matrices, and the same bits whatever
 * the thread count; and the convolution products that never store their
 * patch matrix (gradc_sgemm_col2im, gradc_sgemm_im2col), in every geometry.  On a CPU without AVX-512 the
 * same checks run through OpenBLAS.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static float frand(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((*s >> 40) / (double)(1 << 24)) - 0.5f;
}

typedef struct Case {
  int m, n, k;
  bool ta, tb;
  int pad;   /* extra columns in every leading dimension */
} Case;

static float *fill(size_t count, uint64_t *seed) {
  float *x = malloc(sizeof(float) * count);
  assert_non_null(x);
  for (size_t i = 0; i < count; i++) x[i] = frand(seed);
  return x;
}

/* Runs one case on `threads` threads; checks it against the double
 * product within the worst-case float bound and returns C for comparisons. */
static float *check_case(const Case *t, int threads) {
  uint64_t seed = (uint64_t)(t->m * 7919 + t->n * 131 + t->k) | 1;
  int ar = t->ta ? t->k : t->m, ac = t->ta ? t->m : t->k;
  int br = t->tb ? t->n : t->k, bc = t->tb ? t->k : t->n;
  int lda = ac + t->pad, ldb = bc + t->pad, ldc = t->n + t->pad;
  float *a = fill((size_t)ar * lda, &seed), *b = fill((size_t)br * ldb, &seed);
  float *c = fill((size_t)t->m * ldc, &seed);   /* garbage beta = 0 must ignore */
  float *before = malloc(sizeof(float) * (size_t)t->m * ldc);
  assert_non_null(before);
  memcpy(before, c, sizeof(float) * (size_t)t->m * ldc);
  RtContext *rt = rt_context_new(threads);
  assert_non_null(rt);
  gradc_sgemm(rt, ROW_MAJOR, t->ta ? TRANS : NO_TRANS, t->tb ? TRANS : NO_TRANS, t->m, t->n, t->k, 1.f, a, lda,
              b, ldb, 0.f, c, ldc);
  rt_context_free(rt);
  for (int i = 0; i < t->m; i++) {
    for (int j = 0; j < t->n; j++) {
      double exact = 0, scale = 0;
      for (int p = 0; p < t->k; p++) {
        double x = t->ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
        double y = t->tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
        exact += x * y;
        scale += fabs(x * y);
      }
      double err = fabs(c[(size_t)i * ldc + j] - exact), bound = t->k * 6e-8 * scale + 1e-30;
      if (err > bound)
        fail_msg("m=%d n=%d k=%d ta=%d tb=%d pad=%d threads=%d: C[%d,%d] = %.9g, expected %.9g (bound %.3g)",
                 t->m, t->n, t->k, t->ta, t->tb, t->pad, threads, i, j, c[(size_t)i * ldc + j], exact, bound);
    }
    /* columns past n belong to someone else */
    for (int j = t->n; j < ldc; j++) assert_true(c[(size_t)i * ldc + j] == before[(size_t)i * ldc + j]);
  }
  free(a), free(b), free(before);
  return c;
}

static void test_shapes(void **state) {
  (void)state;
  static const int ms[] = {1, 11, 12, 13, 121, 250}, ns[] = {16, 31, 32, 33, 100, 300},
                   ks[] = {1, 17, 384, 385, 432, 433, 800};
  int cases = 0;
  for (size_t im = 0; im < sizeof ms / sizeof *ms; im++)
    for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
      for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++)
        for (int tr = 0; tr < 4; tr++) {
          if (ms[im] * ns[in] * ks[ik] > 4000000 && tr != 3) continue;   /* keep it quick */
          Case t = {ms[im], ns[in], ks[ik], tr & 1, tr >> 1, (int)((im + in + ik) % 3)};
          free(check_case(&t, 1));
          cases++;
        }
  print_message("%d products checked (%s)\n", cases, gemm_kernels());
}

/* Narrow products and alpha/beta other than 1/0 go to OpenBLAS; same contract. */
static void test_fallbacks(void **state) {
  (void)state;
  Case narrow = {100, 10, 512, false, false, 0};
  free(check_case(&narrow, 2));
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {1, 1, 1, 1};
  RtContext *rt = rt_context_new(1);
  assert_non_null(rt);
  gradc_sgemm(rt, ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 2.f, a, 3, b, 2, 1.f, c, 2);
  rt_context_free(rt);
  float want[4] = {1 + 2 * 4, 1 + 2 * 5, 1 + 2 * 10, 1 + 2 * 11};
  for (int i = 0; i < 4; i++) assert_float_equal(c[i], want[i], 0);
}

/* The split over threads must not change a bit: products of the shapes
 * training steps use (MLP layer, im2col convolution and its gradients).
 * Where k > m and k spans several blocks the parts split k (the first,
 * third and fifth cases, and the last two: 5 blocks, the last partial, and
 * 3 blocks with a padded C). */
static void test_threads_same_bits(void **state) {
  (void)state;
  Case cases[] = {{128, 512, 784, false, false, 0}, {784, 512, 128, true, false, 0},
                  {128, 784, 512, false, true, 0},  {2000, 64, 288, false, false, 0},
                  {288, 64, 2000, true, false, 0},  {2000, 288, 64, false, true, 0},
                  {37, 700, 45, true, true, 1},     {50, 100, 1541, true, false, 0},
                  {20, 300, 800, false, true, 3}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    float *one = check_case(&cases[i], 1), *two = check_case(&cases[i], 2), *three = check_case(&cases[i], 3);
    size_t bytes = sizeof(float) * (size_t)cases[i].m * (size_t)(cases[i].n + cases[i].pad);
    assert_memory_equal(one, two, bytes);
    assert_memory_equal(one, three, bytes);
    free(one), free(two), free(three);
  }
}

/* gradc_sgemm_col2im: dx = col2im(op(A) op(B)) without the product in
 * memory.  One convolution geometry per case: input h x w x c, kernel
 * kh x kw, stride, dilation, padding (top, left), cout = the product's k. */
typedef struct ConvCase {
  int batch, h, w, c, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, cout;
  bool ta, tb;
} ConvCase;

/* The output size of a case, as window_out computes it. */
static int out_h(const ConvCase *t) { return (t->h + t->pt + t->pb - (t->kh - 1) * t->dh - 1) / t->sh + 1; }
static int out_w(const ConvCase *t) { return (t->w + t->pl + t->pr - (t->kw - 1) * t->dw - 1) / t->sw + 1; }

/* The geometry as compiled code passes it to runtime/gemm.c. */
static void geometry(const ConvCase *t, int32_t geo[13]) {
  int32_t g[13] = {t->h, t->w, t->c, out_h(t), out_w(t), t->kh, t->kw, t->sh, t->sw, t->dh, t->dw, t->pt, t->pl};
  memcpy(geo, g, sizeof g);
}

/* Runs one case on `threads` threads, checks every dx element against
 * col2im of the double product within the float bound, returns dx. */
static float *check_col2im(const ConvCase *t, int threads) {
  int oh = out_h(t), ow = out_w(t);
  int m = t->batch * oh * ow, n = t->kh * t->kw * t->c, k = t->cout;
  int lda = t->ta ? m : k, ldb = t->tb ? k : n;
  uint64_t seed = (uint64_t)(m * 31 + n * 7 + k) | 1;
  float *a = fill((size_t)m * k, &seed), *b = fill((size_t)n * k, &seed);
  size_t xs = (size_t)t->batch * t->h * t->w * t->c;
  float *dx = fill(xs, &seed);   /* garbage: the call zeroes dx */
  double *want = calloc(xs, sizeof(double)), *scale = calloc(xs, sizeof(double));
  assert_true(want && scale);
  int32_t geo[13];
  geometry(t, geo);
  RtContext *rt = rt_context_new(threads);
  assert_non_null(rt);
  gradc_sgemm_col2im(rt, t->ta ? TRANS : NO_TRANS, t->tb ? TRANS : NO_TRANS, m, n, k, a, lda, b, ldb, dx, geo);
  rt_context_free(rt);
  for (int r = 0; r < m; r++) {
    int img = r / (oh * ow), y = r % (oh * ow) / ow, x = r % ow;
    for (int j = 0; j < n; j++) {
      int tap = j / t->c, ch = j % t->c;
      int ih = y * t->sh + tap / t->kw * t->dh - t->pt, iw = x * t->sw + tap % t->kw * t->dw - t->pl;
      if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w) continue;
      size_t at = (((size_t)img * t->h + ih) * t->w + iw) * t->c + ch;
      for (int p = 0; p < k; p++) {
        double u = t->ta ? a[(size_t)p * lda + r] : a[(size_t)r * lda + p];
        double v = t->tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
        want[at] += u * v;
        scale[at] += fabs(u * v);
      }
    }
  }
  for (size_t i = 0; i < xs; i++) {
    double bound = (k + t->kh * t->kw) * 6e-8 * scale[i] + 1e-30;
    if (fabs(dx[i] - want[i]) > bound)
      fail_msg("col2im %dx%dx%d kernel %dx%d stride %d,%d dilation %d,%d cout %d threads %d: dx[%zu] = %.9g, "
               "expected %.9g (bound %.3g)", t->h, t->w, t->c, t->kh, t->kw, t->sh, t->sw, t->dh, t->dw,
               t->cout, threads, i, dx[i], want[i], bound);
  }
  free(a), free(b), free(want), free(scale);
  return dx;
}

static void test_col2im_product(void **state) {
  (void)state;
  static const ConvCase cases[] = {
      {3, 26, 26, 32, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 64, false, true},   /* the seeds' conv2 */
      {2, 9, 11, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 40, false, true},    /* same padding */
      {2, 10, 9, 32, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 33, false, true},    /* stride 2, as TF pads */
      {2, 12, 12, 32, 3, 2, 1, 1, 2, 3, 2, 2, 1, 2, 17, true, false},   /* dilation, A and B flipped */
      {2, 8, 7, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 400, false, true},    /* 16 channels: two taps a panel */
      {2, 8, 7, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 40, false, true},     /* channels not whole 16s */
      {2, 14, 14, 16, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 16, false, false},  /* k = 16, stride 2, B as is */
      {2, 6, 6, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 8, true, true},        /* 1x1, narrow: OpenBLAS */
      {1, 5, 5, 32, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 3, false, true},      /* one output pixel */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    float *one = check_col2im(&cases[i], 1), *two = check_col2im(&cases[i], 2),
          *three = check_col2im(&cases[i], 3);
    size_t bytes = sizeof(float) * (size_t)cases[i].batch * cases[i].h * cases[i].w * cases[i].c;
    assert_memory_equal(one, two, bytes);
    assert_memory_equal(one, three, bytes);
    free(one), free(two), free(three);
  }
}

/* gradc_sgemm_im2col: C = P op(B) or P^T op(B), P the patch matrix of x
 * (never stored), against the double product with P written out. */
static float *check_im2col(const ConvCase *t, bool ta, int threads) {
  int oh = out_h(t), ow = out_w(t);
  int rows = t->batch * oh * ow, cols = t->kh * t->kw * t->c, n = t->cout;
  int m = ta ? cols : rows, k = ta ? rows : cols, ldb = t->tb ? k + 1 : n + 2, ldc = n + 1;
  uint64_t seed = (uint64_t)(rows * 17 + cols * 5 + n) | 1;
  size_t xs = (size_t)t->batch * t->h * t->w * t->c;
  float *x = fill(xs, &seed), *b = fill((size_t)(t->tb ? n : k) * ldb, &seed), *c = fill((size_t)m * ldc, &seed);
  float *p = calloc((size_t)rows * cols, sizeof(float));
  assert_non_null(p);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++) {
      int img = r / (oh * ow), y = r % (oh * ow) / ow, xx = r % ow, tap = j / t->c;
      int ih = y * t->sh + tap / t->kw * t->dh - t->pt, iw = xx * t->sw + tap % t->kw * t->dw - t->pl;
      if (ih >= 0 && ih < t->h && iw >= 0 && iw < t->w)
        p[(size_t)r * cols + j] = x[(((size_t)img * t->h + ih) * t->w + iw) * t->c + j % t->c];
    }
  int32_t geo[13];
  geometry(t, geo);
  RtContext *rt = rt_context_new(threads);
  assert_non_null(rt);
  gradc_sgemm_im2col(rt, ta ? TRANS : NO_TRANS, t->tb ? TRANS : NO_TRANS, m, n, k, x, geo, b, ldb, c, ldc);
  rt_context_free(rt);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double exact = 0, scale = 0;
      for (int q = 0; q < k; q++) {
        double u = ta ? p[(size_t)q * cols + i] : p[(size_t)i * cols + q];
        double v = t->tb ? b[(size_t)j * ldb + q] : b[(size_t)q * ldb + j];
        exact += u * v;
        scale += fabs(u * v);
      }
      double err = fabs(c[(size_t)i * ldc + j] - exact), bound = k * 6e-8 * scale + 1e-30;
      if (err > bound)
        fail_msg("im2col %dx%dx%d kernel %dx%d stride %d,%d dilation %d,%d n %d ta %d threads %d: C[%d,%d] = "
                 "%.9g, expected %.9g (bound %.3g)", t->h, t->w, t->c, t->kh, t->kw, t->sh, t->sw, t->dh,
                 t->dw, n, ta, threads, i, j, c[(size_t)i * ldc + j], exact, bound);
    }
  free(x), free(b), free(p);
  return c;
}

static void test_im2col_product(void **state) {
  (void)state;
  static const ConvCase cases[] = {
      {3, 26, 26, 32, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 64, false, false},  /* the seeds' conv2 */
      {2, 9, 11, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 40, false, true},    /* same padding, B^T */
      {2, 10, 9, 32, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 33, false, false},   /* stride 2 */
      {2, 12, 12, 24, 3, 2, 1, 1, 2, 3, 2, 2, 1, 2, 17, false, false},  /* dilation, runs cut by blocks */
      {2, 6, 6, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 8, false, true},       /* narrow: OpenBLAS in chunks */
      {1, 30, 30, 24, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 32, false, false},  /* k = 600: two k blocks */
      {2, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16, false, false},  /* 16 filters: 16-column panels, ta: kernel gradient */
      {2, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16, false, true},   /* the same, B^T */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    for (int ta = 0; ta < 2; ta++) {
      const ConvCase *t = &cases[i];
      float *one = check_im2col(t, ta, 1), *two = check_im2col(t, ta, 2), *three = check_im2col(t, ta, 3);
      int oh = out_h(t), ow = out_w(t);
      size_t m = ta ? (size_t)t->kh * t->kw * t->c : (size_t)t->batch * oh * ow;
      size_t bytes = sizeof(float) * m * (size_t)(t->cout + 1);
      assert_memory_equal(one, two, bytes);
      assert_memory_equal(one, three, bytes);
      free(one), free(two), free(three);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_fallbacks),
      cmocka_unit_test(test_threads_same_bits),
      cmocka_unit_test(test_col2im_product),
      cmocka_unit_test(test_im2col_product),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
