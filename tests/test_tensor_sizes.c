/*
 * test_tensor_sizes.c - the rest of issue 24's toolkit (compiler/tensor.c):
 * results of data-dependent sizes and the sorting they rest on.
 *
 * 1. argsort and sort on a long axis (10,000, and 2,000 down axis 0) with
 *    many duplicates and a few NaNs, fed as inputs so that the compiled
 *    code runs, against a reference written here (qsort of (value, index)
 *    pairs: the stable order, NaN last) - in the JIT at -O0 and -O3 and
 *    in the evaluator.  The quadratic count they replace took minutes
 *    on axes this long.
 * 2. boolean_mask, unique and where(cond) on fed data: the padded
 *    results, their zeros past the valid block and the valid extents
 *    (NAME#valid), against references written here, JIT and evaluator.
 * 3. Their mistakes are diagnostics at the call.
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
#include "runtime.h"
#include "util_tensor.h"

/* A model at -O0 and -O3 and its evaluator, the same input fed to all. */
typedef struct Runs {
  gradc_model *m[2];
  Eval *e;
} Runs;

static void run_all(Runs *r, const char *src, const char *input, const double *x, int64_t n) {
  for (int k = 0; k < 2; k++) {
    gradc_options o;
    gradc_options_default(&o);
    o.threads = 1;
    o.opt_level = k ? 3 : 0;
    gradc_status st = gradc_compile_string("t.nn", src, &o, &r->m[k]);
    if (st) print_error("%s\n", gradc_last_error(NULL));
    assert_int_equal(st, GRADC_OK);
    assert_int_equal(gradc_bind(r->m[k], 1), GRADC_OK);
    gradc_tensor t;
    int i;
    for (i = 0; i < gradc_tensor_count(r->m[k]); i++) {
      assert_int_equal(gradc_tensor_info(r->m[k], i, &t), GRADC_OK);
      if (t.kind == GRADC_INPUT && !strcmp(t.name, input)) break;
    }
    assert_int_equal(t.count, n);
    void *d = gradc_data(r->m[k], input, NULL);
    for (int64_t j = 0; j < n; j++) {
      if (t.dtype == GRADC_F32) ((float *)d)[j] = (float)x[j];
      else if (t.dtype == GRADC_I32) ((int32_t *)d)[j] = (int32_t)x[j];
      else ((uint8_t *)d)[j] = x[j] != 0;
    }
    assert_int_equal(gradc_forward(r->m[k]), GRADC_OK);
  }
  const Graph *g = jitmodel_graph(r->m[0]);
  r->e = eval_new(g);
  assert_non_null(r->e);
  assert_true(eval_bind(r->e, "", 1));
  eval_init(r->e, 1);
  double *in = eval_data(r->e, named(g, input));
  for (int64_t j = 0; j < n; j++) in[j] = x[j];
  eval_forward(r->e);
}

static void free_runs(Runs *r) {
  eval_free(r->e);
  gradc_free(r->m[0]);
  gradc_free(r->m[1]);
}

static bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Output name of every run equals want (n values). */
static void expect(Runs *r, const char *name, const double *want, int64_t n) {
  for (int k = 0; k < 2; k++) {
    int64_t c;
    const void *d = gradc_data(r->m[k], name, &c);
    assert_non_null(d);
    assert_int_equal(c, n);
    gradc_tensor t;
    for (int i = 0; i < gradc_tensor_count(r->m[k]); i++)
      if (gradc_tensor_info(r->m[k], i, &t) == GRADC_OK && !strcmp(t.name, name)) break;
    for (int64_t j = 0; j < n; j++)
      if (!same(as_double(d, t.dtype, j), want[j])) {
        print_error("%s[%lld] at -O%d: %.9g, expected %.9g\n", name, (long long)j, k ? 3 : 0,
                    as_double(d, t.dtype, j), want[j]);
        fail();
      }
  }
  const Node *nd = named(jitmodel_graph(r->m[0]), name);
  assert_non_null(nd);
  assert_int_equal(eval_count(r->e, nd), n);
  const double *ev = eval_data(r->e, nd);
  for (int64_t j = 0; j < n; j++)
    if (!same(ev[j], want[j])) {
      print_error("%s[%lld] in the evaluator: %.9g, expected %.9g\n", name, (long long)j, ev[j], want[j]);
      fail();
    }
}

/* ------------------------------------------------ 1. long sorts */

typedef struct Pair {
  double v;
  int64_t i;
} Pair;

/* the stable ascending order, NaN last */
static int by_value_then_index(const void *a, const void *b) {
  const Pair *p = a, *q = b;
  bool np = isnan(p->v), nq = isnan(q->v);
  if (np != nq) return np ? 1 : -1;
  if (!np && p->v != q->v) return p->v < q->v ? -1 : 1;
  return p->i < q->i ? -1 : p->i > q->i;
}

/* want[k] = the position at rank k of each row along an axis of len with
 * inner elements after it; sorted the values there. */
static void reference_argsort(const double *x, int64_t outer, int64_t len, int64_t inner, bool desc, double *want,
                              double *sorted) {
  Pair *p = malloc(sizeof(Pair) * (size_t)len);
  assert_non_null(p);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      for (int64_t k = 0; k < len; k++) {
        double v = x[(o * len + k) * inner + in];
        p[k] = (Pair){desc ? -v : v, k};
      }
      qsort(p, (size_t)len, sizeof *p, by_value_then_index);
      for (int64_t k = 0; k < len; k++) {
        want[(o * len + k) * inner + in] = (double)p[k].i;
        sorted[(o * len + k) * inner + in] = x[(o * len + p[k].i) * inner + in];
      }
    }
  free(p);
}

static void test_long_argsort(void **state) {
  (void)state;
  enum { N = 10000, ROWS = 2000, COLS = 3 };
  static double x[N], want[N], sorted[N];
  srand(7);
  for (int i = 0; i < N; i++) x[i] = (double)(rand() % 97) - 48 + (rand() % 4) * 0.25;
  for (int i = 0; i < N; i += 997) x[i] = NAN;
  const char *src = "input x : f32[10000]\n"
                    "output a = argsort(x)\noutput d = argsort(x, direction=DESCENDING)\n"
                    "output s = sort(x)\n";
  Runs r;
  run_all(&r, src, "x", x, N);
  reference_argsort(x, 1, N, 1, false, want, sorted);
  expect(&r, "a", want, N);
  for (int i = 0; i < N; i++) sorted[i] = (float)sorted[i];
  expect(&r, "s", sorted, N);
  reference_argsort(x, 1, N, 1, true, want, sorted);
  expect(&r, "d", want, N);
  free_runs(&r);

  /* integers, along the first axis of a matrix (rows strided by inner) */
  for (int i = 0; i < ROWS * COLS; i++) x[i] = rand() % 50;
  run_all(&r, "input x : i32[2000, 3]\noutput a = argsort(x, axis=0)\noutput s = sort(x, axis=0, "
          "direction=DESCENDING)\n", "x", x, ROWS * COLS);
  reference_argsort(x, 1, ROWS, COLS, false, want, sorted);
  expect(&r, "a", want, ROWS * COLS);
  reference_argsort(x, 1, ROWS, COLS, true, want, sorted);
  expect(&r, "s", sorted, ROWS * COLS);
  free_runs(&r);
}

/* ------------------------------------------------ 2. padded results */

static void test_boolean_mask_where(void **state) {
  (void)state;
  enum { R = 6, C = 4 };
  double m[R * C];
  srand(3);
  for (int i = 0; i < R * C; i++) m[i] = rand() % 3 == 0;
  const char *src = "input m : bool[6, 4]\n"
                    "x = reshape(range(24), [6, 4])\n"
                    "output b = boolean_mask(x, m)\n"
                    "output c = boolean_mask(x * 2, m[:, 1], axis=0)\n"
                    "output w = where(m)\n"
                    "output g = gather_nd(x, where(m))\n"
                    "output v = valid_shape(where(m))\n"
                    "output h = b * 2 + 1\n"
                    "output k = b + boolean_mask(x, m)\n";
  Runs r;
  run_all(&r, src, "m", m, R * C);
  double b[R * C] = {0}, w[R * C * 2] = {0}, cv[R * C] = {0};
  int nb = 0, nc = 0;
  for (int i = 0; i < R * C; i++)
    if (m[i]) w[2 * nb] = i / C, w[2 * nb + 1] = i % C, b[nb++] = i;
  for (int i = 0; i < R; i++)
    if (m[i * C + 1]) {
      for (int j = 0; j < C; j++) cv[nc * C + j] = 2 * (i * C + j);
      nc++;
    }
  assert_true(nb > 2 && nb < R * C && nc > 0 && nc < R);
  expect(&r, "b", b, R * C);
  expect(&r, "g", b, R * C);   /* padding rows address x[0, 0], which is 0 */
  expect(&r, "w", w, R * C * 2);
  expect(&r, "c", cv, R * C);
  expect(&r, "b#valid", (double[]){nb}, 1);
  expect(&r, "g#valid", (double[]){nb}, 1);
  expect(&r, "w#valid", (double[]){nb, 2}, 2);
  expect(&r, "c#valid", (double[]){nc, C}, 2);
  expect(&r, "v", (double[]){nb, 2}, 2);
  /* elementwise ops keep the valid block; two padded operands of
   * different counts give an unpadded result */
  double h[R * C];
  for (int i = 0; i < R * C; i++) h[i] = b[i] * 2 + 1;
  expect(&r, "h", h, R * C);
  expect(&r, "h#valid", (double[]){nb}, 1);
  assert_null(named(jitmodel_graph(r.m[0]), "k#valid"));
  free_runs(&r);
}

static void test_unique(void **state) {
  (void)state;
  enum { N = 3000 };
  static double x[N], y[N], idx[N];
  srand(5);
  for (int i = 0; i < N; i++) x[i] = rand() % 400 - 200;
  /* first occurrences in index order: the reference is quadratic */
  int n = 0;
  for (int i = 0; i < N; i++) {
    int j = 0;
    while (j < n && y[j] != x[i]) j++;
    if (j == n) y[n++] = x[i];
    idx[i] = j;
  }
  Runs r;
  run_all(&r, "input x : i32[3000]\ny, i = unique(x)\noutput y\noutput i\n", "x", x, N);
  expect(&r, "y", y, N);   /* zeros past the n distinct values */
  expect(&r, "i", idx, N);
  expect(&r, "y#valid", (double[]){n}, 1);
  free_runs(&r);
}

/* ------------------------------------------------ 3. diagnostics */

static const ErrCase errors[] = {
    {"const a = [[1, 2], [3, 4]]\noutput y = boolean_mask(a, [1, 0])\n",
     "e.nn:2:28: error: boolean_mask needs a bool mask, got i32; compare it, e.g. m > 0"},
    {"const a = [[1, 2], [3, 4]]\noutput y = boolean_mask(a, [1, 0, 1] > 0)\n",
     "e.nn:2:28: error: boolean_mask: the mask [3] must match the tensor [2,2] on axes 0..0"},
    {"const a = [[1, 2], [3, 4]]\noutput y = unique(a)\n", "e.nn:2:12: error: unique needs a vector, got rank 2"},
    {"const a = [1, 2]\noutput y = valid_shape(a)\n",
     "e.nn:2:24: error: valid_shape: this value is not padded"},
    {"const a = [1, 2]\noutput y = where(a > 1, a)\n", "e.nn:2:12: error: where takes 1 or 3 arguments, got 2"},
    {"output y = where(1 > 0)\n", "e.nn:1:12: error: where needs a condition of rank >= 1, got a scalar"},
    /* builtins give up to MAX_CALL_RESULTS results (unstack over 80 steps) */
    {"a, b = unstack(range(5000))\n", "e.nn:1:8: error: unstack would give 5000 results; at most 4096 are assigned"},
};

static void test_diagnostics(void **state) {
  (void)state;
  assert_int_equal(failed_diagnostics(errors, sizeof errors / sizeof *errors), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_long_argsort),
      cmocka_unit_test(test_boolean_mask_where),
      cmocka_unit_test(test_unique),
      cmocka_unit_test(test_diagnostics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
