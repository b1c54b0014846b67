/*
 * test_tensor_ops.c - the tensor toolkit of issue 24 (compiler/tensor.c).
 *
 * 1. Every example of SEEDS.md section 2 in tests/seeds/tensor: the JIT at
 *    -O0 (no folding: every op in compiled code) and at -O3, and the
 *    reference evaluator, agree on every output (exactly for integers and
 *    booleans, to f32 rounding for floats).  run_seed_tensor_tests.sh
 *    checks the printed values against the seeds' own.
 * 2. Shape and argument mistakes are diagnostics at the call, with the
 *    offending sizes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"
#include "util_tensor.h"

/* ------------------------------------------------ 1. JIT vs evaluator */

static void test_seeds_jit_vs_evaluator(void **state) {
  (void)state;
  glob_t gl;
  assert_int_equal(glob("tests/seeds/tensor/*.nn", 0, NULL, &gl), 0);
  assert_true(gl.gl_pathc >= 6);
  int compared = 0;
  for (size_t f = 0; f < gl.gl_pathc; f++) {
    gradc_model *m[2];
    for (int k = 0; k < 2; k++) {
      gradc_options o;
      gradc_options_default(&o);
      o.threads = 1;
      o.opt_level = k ? 3 : 0;
      gradc_status st = gradc_compile_file(gl.gl_pathv[f], &o, &m[k]);
      if (st) print_error("%s\n", gradc_last_error(NULL));
      assert_int_equal(st, GRADC_OK);
      assert_int_equal(gradc_bind(m[k], 1), GRADC_OK);
      assert_int_equal(gradc_forward(m[k]), GRADC_OK);
    }
    const Graph *g = jitmodel_graph(m[0]);
    Eval *e = eval_new(g);
    assert_non_null(e);
    assert_true(eval_bind(e, "", 1));
    eval_init(e, 1);
    eval_forward(e);
    for (int i = 0; i < gradc_tensor_count(m[0]); i++) {
      gradc_tensor t;
      assert_int_equal(gradc_tensor_info(m[0], i, &t), GRADC_OK);
      if (t.kind != GRADC_OUTPUT) continue;
      const Node *n = named(g, t.name);
      assert_non_null(n);
      int64_t c0, c3;
      const void *o0 = gradc_data(m[0], t.name, &c0), *o3 = gradc_data(m[1], t.name, &c3);
      const double *ref = eval_data(e, n);
      assert_int_equal(c0, c3);
      assert_int_equal(c0, eval_count(e, n));
      for (int64_t k = 0; k < c0; k++) {
        double a = as_double(o0, t.dtype, k), b = as_double(o3, t.dtype, k), r = ref[k];
        bool fl = t.dtype == GRADC_F32 || t.dtype == GRADC_F64;
        double tol = fl ? 2e-7 * fabs(r) + 1e-6 : 0;   /* f32 rounding; sin(pi/2) + cos(pi) */
        if (fabs(a - r) > tol || fabs(b - r) > tol) {
          print_error("%s '%s'[%lld]: -O0 %.9g, -O3 %.9g, evaluator %.9g\n", gl.gl_pathv[f], t.name, (long long)k,
                      a, b, r);
          fail();
        }
      }
      compared++;
    }
    eval_free(e);
    gradc_free(m[0]);
    gradc_free(m[1]);
  }
  globfree(&gl);
  assert_true(compared >= 60);
}

/* ------------------------------------------------ 2. diagnostics */

static const ErrCase errors[] = {
    {"input x : f32[batch, 3]\noutput y = tile(x, [2, 1])\n",
     "e.nn:2:12: error: tile needs a tensor of static shape: axis 0 is the symbolic dimension 'batch'"},
    {"const a = [[1, 2], [3, 4]]\noutput y = tile(a, [2])\n",
     "e.nn:2:20: error: tile: multiples must have one entry per axis of the input (2)"},
    {"const a = [1, 2, 3]\nv, i = top_k(a, 4)\noutput v\n",
     "e.nn:2:17: error: top_k: k = 4 must lie in [1, 3], the last axis' size"},
    {"const a = [[1, 2], [3, 4]]\noutput y = gather(a, [0.5])\n",
     "e.nn:2:12: error: gather needs i32 indices, got f32"},
    {"const a = [[1, 2], [3, 4]]\noutput y = gather_nd(a, [[0, 1, 0]])\n",
     "e.nn:2:12: error: gather_nd: index rows of length 3 address a tensor of rank 2"},
    {"output y = scatter_nd([[1], [2]], [1, 2, 3], [4])\n",
     "e.nn:1:12: error: scatter_nd: the updates [3] must have shape indices.shape[:-1] + shape[m:] = [2]"},
    {"const a = [1, 2, 3, 4, 5]\nb, c = split(a, 2)\noutput b\n",
     "e.nn:2:17: error: split: 2 equal parts do not divide axis 0 of size 5"},
    {"const a = [1, 2, 3]\nb, c = unstack(a)\noutput b\n",
     "e.nn:2:8: error: unstack gives 3 results here, but 2 names are assigned"},
    {"const a = [1, 2, 3]\noutput b = unstack(a)\n",
     "e.nn:2:12: error: unstack gives 3 results here; assign them with a tuple: a, b = unstack(...)"},
    {"const a = [1, 2]\nconst b = [1, 2, 3]\noutput s = stack(a, b)\n",
     "e.nn:3:21: error: stack: operand 2 has shape [3], the first [2]"},
    {"const a = [1, 2]\noutput s = sort(a, direction=UP)\n",
     "e.nn:2:30: error: sort: direction must be ASCENDING or DESCENDING"},
    {"output r = range(3, 1)\n", "e.nn:1:12: error: range: [3, 1) in steps of 1 is empty or too long"},
};

static void test_diagnostics(void **state) {
  (void)state;
  assert_int_equal(failed_diagnostics(errors, sizeof errors / sizeof *errors), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seeds_jit_vs_evaluator),
      cmocka_unit_test(test_diagnostics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
