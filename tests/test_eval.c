/*
 * test_eval.c - the reference evaluator: forward values, initializers and
 * training.
 *
 * 1. Forward values printed in the seeds (SEEDS 2.1-2.5, 2.9, M4): every
 *    activation vector, softmax and cross-entropy, the S3 integer matmul,
 *    reductions, argmax, one_hot and slicing, to 1e-6 relative.
 * 2. Initializers: determinism per seed and per name, the Keras ranges and
 *    variances, exact constants, f32 rounding.
 * 3. Training by eval_step: linear regression (M1), Himmelblau (M2),
 *    and a small MLP on three Gaussian blobs with a final partial batch.
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

/* ------------------------------------------------------------ helpers */

static bool near(double a, double b, double rtol, double atol) {
  if (isnan(a) || isnan(b)) return false;
  double d = fabs(a - b);
  return d <= atol || d <= rtol * fmax(fabs(a), fabs(b));
}

static void assert_near(double actual, double expected, double rtol, double atol,
                        const char *what) {
  if (!near(actual, expected, rtol, atol)) {
    print_error("%s: got %.17g, expected %.17g (rel tol %g, abs tol %g)\n", what, actual,
                expected, rtol, atol);
    fail();
  }
}

static Compilation *compile_ok(const char *name, const char *src) {
  Compilation *c = compile_model(name, src, strlen(src), STAGE_GRAD);
  assert_non_null(c);
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    print_error("%s: did not compile\n", name);
    compilation_free(c);
    fail();
  }
  return c;
}

static Compilation *compile_rel(const char *rel) {
  const char *root = getenv("GRADC_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
  Compilation *c = compile_model_file(path, STAGE_GRAD);
  assert_non_null(c);
  if (!c->graph) {
    diag_print(stderr, &c->diags);
    fail();
  }
  return c;
}

static Node *named(const Graph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
  print_error("no node named '%s'\n", name);
  fail();
  return NULL;
}

/* A compiled model without symbolic dims, evaluated forward. */
typedef struct Run {
  Compilation *c;
  Eval *e;
} Run;

static Run forward(const char *src) {
  Run r = {compile_ok("fwd.nn", src), NULL};
  r.e = eval_new(r.c->graph);
  assert_non_null(r.e);
  assert_true(eval_bind(r.e, "", 1));
  eval_init(r.e, 1);
  eval_forward(r.e);
  return r;
}

static void run_free(Run *r) {
  eval_free(r->e);
  compilation_free(r->c);
}

/* The values of output `name` against want[n] (and its element count). */
static void expect_vec(Run *r, const char *name, const double *want, int64_t n, double rtol,
                       double atol) {
  Node *node = named(r->c->graph, name);
  assert_int_equal(eval_count(r->e, node), n);
  const double *v = eval_data(r->e, node);
  for (int64_t i = 0; i < n; i++) {
    char what[96];
    snprintf(what, sizeof what, "%s[%lld]", name, (long long)i);
    assert_near(v[i], want[i], rtol, atol, what);
  }
}

/* "[v0, v1, ...]" of linspace(a, b, n) rounded to float32, as the seeds'
 * tf.linspace made them. */
static char *linspace(char *buf, size_t size, double a, double b, int n) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < n; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%.17g", i ? ", " : "",
                             (double)(float)(a + (b - a) * i / (n - 1)));
  snprintf(buf + used, size - used, "]");
  return buf;
}

/* A 64-bit LCG (Knuth's MMIX constants) for the test data. */
static uint64_t lcg_state;
static double lcg_uniform(void) {
  lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcg_state >> 11) * 0x1.0p-53;
}
static double lcg_normal(void) {
  double u1 = 1.0 - lcg_uniform(), u2 = lcg_uniform();
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ------------------------------------------------------------ 1. forward */

/* SEEDS 2.2: relu, sigmoid, tanh on the seed's test vectors. */
static void test_activations(void **state) {
  (void)state;
  char l1[512], l6[512], l5[512], src[4096];
  snprintf(src, sizeof src,
           "const a : f32[10] = %s\n"
           "const b : f32[10] = %s\n"
           "const c : f32[10] = %s\n"
           "const d : f32[5] = [-2, -1, 0, 1, 2]\n"
           "const s : f32[2] = [-18.78872, 15.466431]\n"
           "const n : i32[10] = [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]\n"
           "output r = relu(a)\n"
           "output ri = relu(n)\n"
           "output s6 = sigmoid(b)\n"
           "output s2 = sigmoid(d)\n"
           "output ss = sigmoid(s)\n"
           "output t2 = tanh(d)\n"
           "output t5 = tanh(c)\n",
           linspace(l1, sizeof l1, -1, 1, 10), linspace(l6, sizeof l6, -6, 6, 10),
           linspace(l5, sizeof l5, -5, 5, 10));
  Run r = forward(src);
  static const double relu[10] = {0, 0, 0, 0, 0, 0.11111116, 0.33333337, 0.55555556,
                                  0.77777778, 1.};
  expect_vec(&r, "r", relu, 10, 1e-6, 0);
  static const double relu_int[10] = {0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  expect_vec(&r, "ri", relu_int, 10, 0, 0);
  assert_int_equal(named(r.c->graph, "ri")->dtype, DT_I32);
  /* The seed's sigmoid(-6) = 0.00247264 is TF's float32 value, 6.8e-6 off
   * the exact 0.0024726232; the other nine agree to 1e-6. */
  static const double sig6[10] = {0.00247264, 0.00931597, 0.03444517, 0.11920291,
                                  0.33924365, 0.6607564,  0.8807971,  0.96555483,
                                  0.99068403, 0.9975274};
  Node *s6 = named(r.c->graph, "s6");
  assert_int_equal(eval_count(r.e, s6), 10);
  for (int i = 0; i < 10; i++)
    assert_near(eval_data(r.e, s6)[i], sig6[i], i == 0 ? 1e-5 : 1e-6, 0, "s6");
  static const double sig2[5] = {0.11920291, 0.26894143, 0.5, 0.7310586, 0.880797};
  expect_vec(&r, "s2", sig2, 5, 1e-6, 0);
  /* Saturation: sigmoid(-18.79) = 6.9e-9 prints as 0.0 in float32. */
  static const double sat[2] = {0.0, 0.99999976};
  expect_vec(&r, "ss", sat, 2, 1e-6, 1e-8);
  static const double tanh2[5] = {-0.9640276, -0.7615942, 0., 0.7615942, 0.9640276};
  expect_vec(&r, "t2", tanh2, 5, 1e-6, 0);
  static const double tanh5[10] = {-0.9999092, -0.9991625, -0.99229795, -0.9311096,
                                   -0.50467217, 0.5046725, 0.93110967, 0.99229795,
                                   0.9991625,  0.9999092};
  expect_vec(&r, "t5", tanh5, 10, 1e-6, 0);
  run_free(&r);
}

/* SEEDS 2.2 softmax; 2.9 and 5.2 cross-entropy. */
static void test_softmax_and_cross_entropy(void **state) {
  (void)state;
  Run r = forward(
      "const d : f32[5] = [-2, -1, 0, 1, 2]\n"
      "const z : f32[1, 2] = [[-26.27812, 28.63038]]\n"
      "const lab : i32[1] = [1]\n"
      "const onehot : f32[1, 2] = [[0, 1]]\n"
      "output p = softmax(d)\n"
      "output pz = softmax(z, axis=1)\n"
      "output ce = softmax_cross_entropy(z, lab)\n"
      "output ced = softmax_cross_entropy(z, onehot)\n"
      /* categorical CE on probabilities, Keras: p normalised per row first */
      "const t : f32[4, 4] = [[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]\n"
      "const q : f32[4, 4] = [[0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.8, 0.1], "
      "[0.1, 0.7, 0.1, 0.1], [0.01, 0.97, 0.01, 0.01]]\n"
      "output cep = -sum(t * log(q / sum(q, axis=-1, keepdims=true)), axis=-1)\n"
      "const t2 : f32[2] = [0, 1]\n"
      "const q2 : f32[2] = [0.9, 0.1]\n"
      "output ce2 = -sum(t2 * log(q2))\n"
      /* entropy in bits */
      "const e : f32[3, 4] = [[0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.1, 0.7], "
      "[0.01, 0.01, 0.01, 0.97]]\n"
      "output h = -sum(e * log(e), axis=1) / log(2.0)\n"
      /* softmax over the batch axis and log_softmax */
      "const m : f32[2, 3] = [[1, 2, 3], [3, 2, 1]]\n"
      "output p0 = softmax(m, axis=0)\n"
      "output lp = log_softmax(m)\n");
  static const double p[5] = {0.01165623, 0.03168492, 0.08612854, 0.23412167, 0.6364086};
  expect_vec(&r, "p", p, 5, 1e-6, 0);
  static const double pz[2] = {1.4241021e-24, 1.0};
  expect_vec(&r, "pz", pz, 2, 1e-6, 0);
  /* from_logits: "[0.]" - the exact value is 1.4e-24 */
  assert_true(eval_data(r.e, named(r.c->graph, "ce"))[0] <= 1e-12);
  assert_true(eval_data(r.e, named(r.c->graph, "ced"))[0] <= 1e-12);
  static const double cep[4] = {1.3862944, 2.3978953, 0.35667497, 0.030459179};
  expect_vec(&r, "cep", cep, 4, 1e-6, 0);
  static const double ce2[1] = {2.3025851};
  expect_vec(&r, "ce2", ce2, 1, 1e-6, 0);
  static const double h[3] = {2.0, 1.3567796, 0.24194068};
  expect_vec(&r, "h", h, 3, 1e-6, 0);
  double e = exp(2.0), col[3] = {1 / (1 + e), 1 / (1 + 1.0), e / (1 + e)};
  double p0[6] = {col[0], col[1], col[2], col[2], col[1], col[0]};
  expect_vec(&r, "p0", p0, 6, 1e-14, 0);
  double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
  double lp[6] = {1 - lse, 2 - lse, 3 - lse, 3 - lse, 2 - lse, 1 - lse};
  expect_vec(&r, "lp", lp, 6, 1e-14, 0);
  run_free(&r);
}

/* SEEDS M4 (S3 L25-66) and 2.1: integer arithmetic, matmul, elementwise. */
static void test_s3_arithmetic(void **state) {
  (void)state;
  Run r = forward(
      "const a : i32[2, 2] = [[1, 2], [3, 4]]\n"
      "b = a + 1\n"
      "output b\n"
      "output ab = a * b\n"
      "output mm = a @ b\n"
      "const x : f32[1, 1] = [[2.0]]\n"
      "output xx = matmul(x, x)\n"
      "const v : i32[10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
      "output mx = maximum(v, 2)\n"
      "output mn = minimum(v, 8)\n"
      "output cl = clip(v, 2, 8)\n"
      "const two : f32[2, 2] = [[2, 2], [2, 2]]\n"
      "output cube = pow(two, 3)\n"
      "output misc = concat(sqrt(two[0, 0:1]), exp(two[0, 0:1] - 1), "
      "log(two[0, 0:1] * 4) / log(2.0), log(two[0, 0:1] * 50) / log(10.0), axis=0)\n"
      "const ones : f32[4, 2] = [[1, 1], [1, 1], [1, 1], [1, 1]]\n"
      "const w : f32[2, 1] = [[1], [1]]\n"
      "output lin = ones @ w + 0.1\n"
      "output half = cast(3, f32) / 6\n");
  const Graph *g = r.c->graph;
  static const double b[4] = {2, 3, 4, 5}, ab[4] = {2, 6, 12, 20}, mm[4] = {10, 13, 22, 29};
  expect_vec(&r, "b", b, 4, 0, 0);
  expect_vec(&r, "ab", ab, 4, 0, 0);
  expect_vec(&r, "mm", mm, 4, 0, 0);
  assert_int_equal(named(g, "mm")->dtype, DT_I32);
  static const double xx[1] = {4};
  expect_vec(&r, "xx", xx, 1, 0, 0);
  static const double mx[10] = {2, 2, 2, 3, 4, 5, 6, 7, 8, 9};
  static const double mn[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 8};
  static const double cl[10] = {2, 2, 2, 3, 4, 5, 6, 7, 8, 8};
  expect_vec(&r, "mx", mx, 10, 0, 0);
  expect_vec(&r, "mn", mn, 10, 0, 0);
  expect_vec(&r, "cl", cl, 10, 0, 0);
  static const double cube[4] = {8, 8, 8, 8};
  expect_vec(&r, "cube", cube, 4, 0, 0);
  static const double misc[4] = {1.4142135, 2.7182817, 3.0, 2.0};
  expect_vec(&r, "misc", misc, 4, 1e-6, 0);
  static const double lin[4] = {2.1, 2.1, 2.1, 2.1};
  expect_vec(&r, "lin", lin, 4, 1e-15, 0);
  static const double half[1] = {0.5};
  expect_vec(&r, "half", half, 1, 0, 0);
  run_free(&r);
}

/* SEEDS 2.4, 2.6: reductions, argmax/argmin (TF's default axis 0 and first
 * index on ties), one_hot, where. */
static void test_reductions_and_indices(void **state) {
  (void)state;
  Run r = forward(
      "const m : f32[3, 4] = [[1, 9, 2, 3], [4, 0, 8, 1], [7, 5, 6, 9]]\n"
      "output s0 = sum(m, axis=0)\n"
      "output m1 = mean(m, axis=1)\n"
      "output mall = mean(m, axis=[0, 1])\n"
      "output mx = max(m)\n"
      "output mnk = min(m, axis=-1, keepdims=true)\n"
      "output mx0 = max(m, axis=0)\n"
      "output cnt = sum(m > 4)\n"
      "output am = argmax(m)\n"
      "output am1 = argmax(m, axis=1)\n"
      "output an = argmin(m)\n"
      "const tie : f32[4] = [3, 7, 7, 1]\n"
      "output at = argmax(tie)\n"
      "const y : i32[5] = [1, 2, 3, 0, 2]\n"
      "output oh = one_hot(y, 4)\n"
      "const q : f32[3, 3] = [[1, -1, 0], [2, 0, -3], [5, 4, -1]]\n"
      "output wh = where(q > 0, 1.0, 0.0)\n"
      "output eq = cast(equal(y, [1, 2, 3, 2, 5]), i32)\n");
  const Graph *g = r.c->graph;
  static const double s0[4] = {12, 14, 16, 13};
  expect_vec(&r, "s0", s0, 4, 0, 0);
  static const double m1[3] = {15.0 / 4, 13.0 / 4, 27.0 / 4};
  expect_vec(&r, "m1", m1, 3, 1e-15, 0);
  static const double mall[1] = {55.0 / 12}, mx[1] = {9};
  expect_vec(&r, "mall", mall, 1, 1e-15, 0);
  expect_vec(&r, "mx", mx, 1, 0, 0);
  assert_int_equal(named(g, "mx")->shape.rank, 0);
  static const double mnk[3] = {1, 0, 5}, mx0[4] = {7, 9, 8, 9};
  expect_vec(&r, "mnk", mnk, 3, 0, 0);
  assert_int_equal(named(g, "mnk")->shape.rank, 2);
  expect_vec(&r, "mx0", mx0, 4, 0, 0);
  static const double cnt[1] = {6};
  expect_vec(&r, "cnt", cnt, 1, 0, 0);
  assert_int_equal(named(g, "cnt")->dtype, DT_I32);
  static const double am[4] = {2, 0, 1, 2}, am1[3] = {1, 2, 3}, an[4] = {0, 1, 0, 1};
  expect_vec(&r, "am", am, 4, 0, 0);
  assert_int_equal(named(g, "am")->dtype, DT_I32);
  expect_vec(&r, "am1", am1, 3, 0, 0);
  expect_vec(&r, "an", an, 4, 0, 0);
  static const double at[1] = {1};
  expect_vec(&r, "at", at, 1, 0, 0);
  static const double oh[20] = {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0};
  expect_vec(&r, "oh", oh, 20, 0, 0);
  static const double wh[9] = {1, 0, 0, 1, 0, 0, 1, 1, 0};
  expect_vec(&r, "wh", wh, 9, 0, 0);
  static const double eq[5] = {1, 1, 1, 0, 0};
  expect_vec(&r, "eq", eq, 5, 0, 0);
  run_free(&r);
}

/* SEEDS 2.5: slicing with Python semantics, reshape, transpose,
 * broadcast_to, concat. */
static void test_layout(void **state) {
  (void)state;
  char iota[4096];
  size_t used = (size_t)snprintf(iota, sizeof iota, "[");
  for (int i = 0; i < 96; i++)
    used += (size_t)snprintf(iota + used, sizeof iota - used, "%s%d", i ? ", " : "", i);
  snprintf(iota + used, sizeof iota - used, "]");
  char src[8192];
  snprintf(src, sizeof src,
           "const a : f32[10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
           "output s1 = a[2::-2]\n"
           "output s2 = a[::-1]\n"
           "output s3 = a[::-2]\n"
           "output s4 = a[-1:]\n"
           "output s5 = a[:2]\n"
           "output s6 = a[1:8:3]\n"
           "output s7 = a[0]\n"
           "m = reshape(a[0:8], [2, 4])\n"
           "output m1 = m[:, 1:3]\n"
           "output m2 = m[1]\n"
           "output m3 = m[-1, ::-1]\n"
           "output m4 = m[0:2, 0]\n"
           "output tr = transpose(m)\n"
           "output bc = broadcast_to(a[0:3], [2, 3])\n"
           "output cc = concat(m, m * 10, axis=1)\n"
           "const big = %s\n"
           "img = reshape(big, [2, 4, 4, 3])\n"
           "output sub = img[:, 0:4:2, 0:4:2, :]\n"
           "output chan = img[:, :, :, 0]\n",
           iota);
  Run r = forward(src);
  const Graph *g = r.c->graph;
  static const double s1[2] = {2, 0}, s2[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  static const double s3[5] = {9, 7, 5, 3, 1}, s4[1] = {9}, s5[2] = {0, 1}, s6[3] = {1, 4, 7};
  static const double s7[1] = {0};
  expect_vec(&r, "s1", s1, 2, 0, 0);
  expect_vec(&r, "s2", s2, 10, 0, 0);
  expect_vec(&r, "s3", s3, 5, 0, 0);
  expect_vec(&r, "s4", s4, 1, 0, 0);
  expect_vec(&r, "s5", s5, 2, 0, 0);
  expect_vec(&r, "s6", s6, 3, 0, 0);
  expect_vec(&r, "s7", s7, 1, 0, 0);
  assert_int_equal(named(g, "s7")->shape.rank, 0);
  static const double m1[4] = {1, 2, 5, 6}, m2[4] = {4, 5, 6, 7}, m3[4] = {7, 6, 5, 4};
  static const double m4[2] = {0, 4}, tr[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  static const double bc[6] = {0, 1, 2, 0, 1, 2};
  static const double cc[16] = {0, 1, 2, 3, 0, 10, 20, 30, 4, 5, 6, 7, 40, 50, 60, 70};
  expect_vec(&r, "m1", m1, 4, 0, 0);
  expect_vec(&r, "m2", m2, 4, 0, 0);
  expect_vec(&r, "m3", m3, 4, 0, 0);
  expect_vec(&r, "m4", m4, 2, 0, 0);
  expect_vec(&r, "tr", tr, 8, 0, 0);
  expect_vec(&r, "bc", bc, 6, 0, 0);
  expect_vec(&r, "cc", cc, 16, 0, 0);
  /* a[:, 0:28:2, 0:28:2, :] on a [2,4,4,3] iota: element (n,i,j,c) is
   * n*48 + (2i)*12 + (2j)*3 + c. */
  double sub[24];
  for (int n = 0, k = 0; n < 2; n++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++)
        for (int ch = 0; ch < 3; ch++) sub[k++] = n * 48 + 2 * i * 12 + 2 * j * 3 + ch;
  expect_vec(&r, "sub", sub, 24, 0, 0);
  double chan[32];
  for (int k = 0; k < 32; k++) chan[k] = 3 * k;
  expect_vec(&r, "chan", chan, 32, 0, 0);
  run_free(&r);
}

/* SEEDS 2.9, 5.3: Keras MSE is the mean over the last axis. */
static void test_mse(void **state) {
  (void)state;
  Run r = forward(
      "const y : f32[2, 3] = [[1, 0, 0], [0, 1, 0]]\n"
      "const o : f32[2, 3] = [[0.5, 0.5, 0], [0.25, 0.5, 1]]\n"
      "output per = mse(y, o)\n"
      "output all = mean(square(y - o))\n");
  static const double per[2] = {0.5 / 3, (0.0625 + 0.25 + 1) / 3};
  expect_vec(&r, "per", per, 2, 1e-15, 0);
  static const double all[1] = {(0.5 + 1.3125) / 6};
  expect_vec(&r, "all", all, 1, 1e-15, 0);
  run_free(&r);
}

/* ------------------------------------------------------------ 2. initializers */

static const char *const init_src =
    "param G : f32[784, 512] = glorot_uniform\n"
    "param T : f32[784, 256] = truncated_normal(0.1)\n"
    "param H : f32[300, 200] = he_normal\n"
    "param L : f32[300, 200] = lecun_normal\n"
    "param GN : f32[300, 200] = glorot_normal\n"
    "param HU : f32[300, 200] = he_uniform\n"
    "param LU : f32[300, 200] = lecun_uniform\n"
    "param U : f32[1000] = uniform(-0.5, 2)\n"
    "param N : f32[20000] = normal(1, 2)\n"
    "param Z : f32[3] = zeros\n"
    "param O : f32[3] = ones\n"
    "param K : f32[3] = constant(0.1)\n"
    "param S : f32 = 0.1\n"
    "param V : f32[2, 2] = [[0.1, 2], [-3.5, 1e-3]]\n"
    "param D : f64[2] = [0.1, 0.2]\n"
    "param B1 : f32[7]\n"
    "param W1 : f32[3, 5]\n"
    "param OA : f32[4, 3] = orthogonal\n"
    "param OB : f32[3, 4] = orthogonal\n"
    "param OC : f32[64, 64] = orthogonal\n"
    "param OD : f32[3, 3, 4, 8] = orthogonal\n"
    "param OE : f64[5, 2] = orthogonal(gain=2)\n"
    "out = sum(G) + sum(T) + sum(H) + sum(L) + sum(GN) + sum(HU) + sum(LU) + sum(U) + sum(N)\n"
    "out2 = sum(Z) + sum(O) + sum(K) + S + sum(V) + sum(cast(D, f32)) + sum(B1) + sum(W1)\n"
    "out3 = sum(OA) + sum(OB) + sum(OC) + sum(OD) + sum(cast(OE, f32))\n"
    "output total = out + out2 + out3\n";

typedef struct Stats {
  double mean, var, lo, hi;
} Stats;

static Stats stats(const double *v, int64_t n) {
  Stats s = {0, 0, INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; i++) {
    s.mean += v[i];
    s.lo = fmin(s.lo, v[i]);
    s.hi = fmax(s.hi, v[i]);
  }
  s.mean /= (double)n;
  for (int64_t i = 0; i < n; i++) s.var += (v[i] - s.mean) * (v[i] - s.mean);
  s.var /= (double)(n - 1);
  return s;
}

static void test_init_determinism(void **state) {
  (void)state;
  Compilation *c = compile_ok("init.nn", init_src);
  const Graph *g = c->graph;
  Eval *e1 = eval_new(g), *e2 = eval_new(g), *e3 = eval_new(g);
  assert_true(e1 && e2 && e3);
  eval_init(e1, 42);
  eval_init(e2, 42);
  eval_init(e3, 43);
  const char *random[] = {"G", "T", "H", "L", "GN", "HU", "LU", "U", "N", "OA", "OB", "OC", "OD", "OE"};
  for (size_t k = 0; k < sizeof random / sizeof *random; k++) {
    Node *p = named(g, random[k]);
    int64_t n = eval_count(e1, p);
    assert_memory_equal(eval_data(e1, p), eval_data(e2, p), sizeof(double) * (size_t)n);
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++) same += eval_data(e1, p)[i] == eval_data(e3, p)[i];
    if (same * 100 > n) {     /* a few equal values by chance; not most */
      print_error("%s: %lld of %lld values equal for seeds 42 and 43\n", random[k],
                  (long long)same, (long long)n);
      fail();
    }
  }
  /* The values of a parameter depend on its name and the seed only: adding
   * a parameter leaves the others alone. */
  const char *more = "param A : f32[5, 5] = glorot_uniform\n"
                     "param G : f32[784, 512] = glorot_uniform\n"
                     "output o = sum(G) + sum(A)\n";
  Compilation *c2 = compile_ok("init2.nn", more);
  Eval *e4 = eval_new(c2->graph);
  assert_non_null(e4);
  eval_init(e4, 42);
  assert_memory_equal(eval_data(e4, named(c2->graph, "G")), eval_data(e1, named(g, "G")),
                      sizeof(double) * 784 * 512);
  eval_free(e4);
  compilation_free(c2);
  eval_free(e1);
  eval_free(e2);
  eval_free(e3);
  compilation_free(c);
}

/* orthogonal (Keras 2): the tensor read as a matrix of prod(shape[:-1])
 * rows and shape[-1] columns has orthonormal columns (rows when there are
 * fewer rows), to f32 rounding, times the gain (test_init_determinism:
 * the same per seed, another for another seed); and it is the Q of the QR
 * decomposition of the normal matrix drawn from the parameter's stream,
 * R's diagonal made positive: Q^T A is upper triangular with a positive
 * diagonal. */
static void test_init_orthogonal(void **state) {
  (void)state;
  Compilation *c = compile_ok("init.nn", init_src);
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  eval_init(e, 42);
  static const struct {
    const char *name;
    int64_t rows, cols;
    double gain, tol;
  } cases[] = {{"OA", 4, 3, 1, 1e-6}, {"OB", 3, 4, 1, 1e-6}, {"OC", 64, 64, 1, 1e-5},
               {"OD", 36, 8, 1, 1e-6}, {"OE", 5, 2, 2, 1e-12}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    Node *p = named(g, cases[k].name);
    const double *q = eval_data(e, p);
    int64_t R = cases[k].rows, C = cases[k].cols, n = R < C ? R : C;
    assert_int_equal(eval_count(e, p), R * C);
    /* the Gram matrix of the n orthonormal columns (or rows) */
    double worst = 0;
    for (int64_t a = 0; a < n; a++)
      for (int64_t b = 0; b < n; b++) {
        double dot = 0;
        for (int64_t i = 0; i < (R < C ? C : R); i++)
          dot += R >= C ? q[i * C + a] * q[i * C + b] : q[a * C + i] * q[b * C + i];
        double want = a == b ? cases[k].gain * cases[k].gain : 0;
        worst = fmax(worst, fabs(dot - want));
      }
    if (worst > cases[k].tol) {
      print_error("%s: Q^T Q differs from I by %.3g\n", cases[k].name, worst);
      fail();
    }
  }
  /* OA = [4, 3]: Q^T A upper triangular, positive diagonal (A row-major
   * from counters i*3 + j of OA's stream) */
  const double *q = eval_data(e, named(g, "OA"));
  uint64_t st = rng_stream(42, "OA");
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      double r = 0;
      for (int i = 0; i < 4; i++) r += q[i * 3 + a] * rng_normal(st, (uint64_t)(i * 3 + b));
      if (a > b) assert_near(r, 0, 0, 1e-6, "Q^T A below the diagonal");
      if (a == b) assert_true(r > 0);
    }
  eval_free(e);
  compilation_free(c);
}

static void test_init_distributions(void **state) {
  (void)state;
  Compilation *c = compile_ok("init.nn", init_src);
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  eval_init(e, 7);
  const double trunc_std = 0.87962566103423978;   /* std of N(0,1) cut at +-2 */
  /* glorot_uniform [784,512]: U(-l, l), l = sqrt(6/(fi+fo)), var l^2/3 */
  Node *G = named(g, "G");
  double lim = sqrt(6.0 / (784 + 512));
  Stats s = stats(eval_data(e, G), eval_count(e, G));
  assert_true(s.lo >= -lim && s.hi <= lim);
  assert_true(s.lo < -0.99 * lim && s.hi > 0.99 * lim);   /* it fills the range */
  assert_near(s.var, lim * lim / 3, 0.02, 0, "glorot_uniform variance");
  assert_true(fabs(s.mean) < 0.01 * lim);
  /* truncated_normal(0.1): within 2 std, std 0.1 * 0.8796 */
  Node *T = named(g, "T");
  s = stats(eval_data(e, T), eval_count(e, T));
  assert_true(s.lo >= -0.2 && s.hi <= 0.2);
  assert_near(sqrt(s.var), 0.1 * trunc_std, 0.03, 0, "truncated_normal std");
  /* Keras variance scaling, truncated: the std after truncation is the
   * target sqrt(scale/n); values within 2 sigma / 0.8796. */
  struct {
    const char *name;
    double std;
  } normals[] = {{"H", sqrt(2.0 / 300)}, {"L", sqrt(1.0 / 300)}, {"GN", sqrt(2.0 / 500)}};
  for (int k = 0; k < 3; k++) {
    Node *p = named(g, normals[k].name);
    s = stats(eval_data(e, p), eval_count(e, p));
    assert_near(sqrt(s.var), normals[k].std, 0.03, 0, normals[k].name);
    double bound = 2 * normals[k].std / trunc_std;
    assert_true(s.lo >= -bound * (1 + 1e-7) && s.hi <= bound * (1 + 1e-7));
    assert_true(fabs(s.mean) < 0.02 * normals[k].std);
  }
  /* he_uniform l = sqrt(6/fi), lecun_uniform l = sqrt(3/fi) */
  struct {
    const char *name;
    double lim;
  } uniforms[] = {{"HU", sqrt(6.0 / 300)}, {"LU", sqrt(3.0 / 300)}};
  for (int k = 0; k < 2; k++) {
    Node *p = named(g, uniforms[k].name);
    s = stats(eval_data(e, p), eval_count(e, p));
    assert_true(s.lo >= -uniforms[k].lim && s.hi <= uniforms[k].lim);
    assert_near(s.var, uniforms[k].lim * uniforms[k].lim / 3, 0.03, 0, uniforms[k].name);
  }
  Node *U = named(g, "U");
  s = stats(eval_data(e, U), eval_count(e, U));
  assert_true(s.lo >= -0.5 && s.hi < 2 && s.lo < -0.45 && s.hi > 1.95);
  Node *N = named(g, "N");
  s = stats(eval_data(e, N), eval_count(e, N));
  assert_near(s.mean, 1, 0.05, 0, "normal mean");
  assert_near(sqrt(s.var), 2, 0.03, 0, "normal std");
  /* Exact initializers; f32 parameters hold f32 values, f64 keep doubles;
   * the Keras defaults: zeros for vectors, glorot_uniform for matrices. */
  static const double z[3] = {0, 0, 0}, o[3] = {1, 1, 1};
  const double k01 = (double)0.1f;
  assert_memory_equal(eval_data(e, named(g, "Z")), z, sizeof z);
  assert_memory_equal(eval_data(e, named(g, "O")), o, sizeof o);
  for (int i = 0; i < 3; i++) assert_true(eval_data(e, named(g, "K"))[i] == k01);
  assert_true(eval_data(e, named(g, "S"))[0] == k01);
  const double v[4] = {k01, 2, -3.5, (double)1e-3f};
  assert_memory_equal(eval_data(e, named(g, "V")), v, sizeof v);
  const double d[2] = {0.1, 0.2};
  assert_memory_equal(eval_data(e, named(g, "D")), d, sizeof d);
  for (int i = 0; i < 7; i++) assert_true(eval_data(e, named(g, "B1"))[i] == 0);
  double wl = sqrt(6.0 / 8);
  Node *W1 = named(g, "W1");
  s = stats(eval_data(e, W1), 15);
  assert_true(s.lo >= -wl && s.hi <= wl && s.hi > s.lo);
  for (int i = 0; i < g->nnodes; i++) {
    const Node *p = g->nodes[i];
    if (p->op != OP_PARAM || p->dtype != DT_F32) continue;
    const double *x = eval_data(e, p);
    for (int64_t k = 0, n = eval_count(e, p); k < n; k++)
      if ((double)(float)x[k] != x[k]) {
        print_error("%s[%lld] = %.17g is not an f32 value\n", p->name, (long long)k, x[k]);
        fail();
      }
  }
  eval_free(e);
  compilation_free(c);
}

/* ------------------------------------------------------------ 3. training */

/* SEEDS M1: y = 1.477x + 0.089 + N(0, 0.1^2) on 100 points, x in [0, 10),
 * w = b = 0, full-batch SGD at lr 1e-4.  The smallest curvature of the loss
 * is about 0.5, so the slow direction contracts by 5e-5 a step: after
 * 50000 steps the loss is within 1% of the least-squares minimum and w
 * within 0.01 of the least-squares slope; b, which first overshoots towards
 * 0.2, comes back down towards the intercept. */
static void test_linear_regression(void **state) {
  (void)state;
  enum { N = 100, STEPS = 50000 };
  double xs[N], ys[N];
  lcg_state = 12345;
  for (int i = 0; i < N; i++) {
    xs[i] = (double)(float)(10 * lcg_uniform());
    ys[i] = (double)(float)(1.477 * xs[i] + 0.089 + 0.1 * lcg_normal());
  }
  double mx = 0, my = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < N; i++) mx += xs[i] / N, my += ys[i] / N;
  for (int i = 0; i < N; i++) sxx += (xs[i] - mx) * (xs[i] - mx), sxy += (xs[i] - mx) * (ys[i] - my);
  double W = sxy / sxx, B = my - W * mx, lmin = 0;
  for (int i = 0; i < N; i++) lmin += (W * xs[i] + B - ys[i]) * (W * xs[i] + B - ys[i]) / N;

  Compilation *c = compile_rel("models/linear_regression.nn");
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "batch", N));
  eval_init(e, 1);
  memcpy(eval_data(e, named(g, "x")), xs, sizeof xs);
  memcpy(eval_data(e, named(g, "y")), ys, sizeof ys);
  const double *w = eval_data(e, named(g, "w")), *b = eval_data(e, named(g, "b"));
  const double *loss = eval_data(e, g->steps[0].loss);
  double prev = INFINITY, bmax = 0;
  for (int step = 0; step < STEPS; step++) {
    eval_step(e, 0);
    assert_true(loss[0] <= prev);        /* the loss before this step's update */
    prev = loss[0];
    if (b[0] > bmax) bmax = b[0];
    if (step == STEPS / 2) {
      assert_true(fabs(b[0] - B) < fabs(bmax - B));
    }
  }
  eval_forward(e);
  double final_loss = loss[0];
  assert_true(fabs(w[0] - W) < 0.01);
  assert_true(fabs(b[0] - B) < fabs(bmax - B) / 2);   /* moving back towards B */
  assert_true(final_loss <= lmin * 1.01);
  assert_true(final_loss >= lmin * (1 - 1e-12));
  eval_free(e);
  compilation_free(c);
}

/* SEEDS M2: Himmelblau from [4, 0], SGD lr 0.01, 200 steps. */
static void test_himmelblau(void **state) {
  (void)state;
  Compilation *c = compile_rel("models/himmelblau.nn");
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  const double *p = eval_data(e, named(g, "p")), *f = eval_data(e, g->steps[0].loss);
  assert_true(p[0] == 4 && p[1] == 0);
  eval_step(e, 0);
  /* step 0 prints f before the update and x after it: f = 34, x = [3.26, -0.1]
   * (df/dx = 4x(x^2+y-11) + 2(x+y^2-7) = 74, df/dy = 10 at [4, 0]). */
  assert_true(f[0] == 34);
  assert_near(p[0], 3.26, 0, 1e-5, "p[0] after one step");
  assert_near(p[1], -0.1, 0, 1e-5, "p[1] after one step");
  for (int step = 1; step < 200; step++) eval_step(e, 0);
  assert_near(p[0], 3.584428, 0, 1e-4, "p[0]");
  assert_near(p[1], -1.848126, 0, 1e-4, "p[1]");
  eval_forward(e);
  assert_true(f[0] < 1e-6);
  eval_free(e);
  compilation_free(c);
}

/* A 2-16-3 MLP, Adam lr 0.01, on three Gaussian blobs: 300 points, batches
 * of 32 and a last batch of 12 (re-binding batch), 30 epochs. */
static void fill_batch(Eval *e, const Graph *g, const double *px, const int *py, int from,
                       int n) {
  assert_true(eval_bind(e, "batch", n));
  double *x = eval_data(e, named(g, "x")), *y = eval_data(e, named(g, "y"));
  assert_int_equal(eval_count(e, named(g, "x")), 2 * n);
  for (int i = 0; i < n; i++) {
    x[2 * i] = px[2 * (from + i)];
    x[2 * i + 1] = px[2 * (from + i) + 1];
    y[i] = py[from + i];
  }
}

static void test_mlp_blobs(void **state) {
  (void)state;
  enum { N = 300, BATCH = 32, EPOCHS = 30 };
  static const double centre[3][2] = {{0, 2}, {-2, -1}, {2, -1}};
  double px[2 * N];
  int py[N];
  lcg_state = 2024;
  for (int i = 0; i < N; i++) {
    int k = i % 3;
    py[i] = k;
    px[2 * i] = (double)(float)(centre[k][0] + 0.5 * lcg_normal());
    px[2 * i + 1] = (double)(float)(centre[k][1] + 0.5 * lcg_normal());
  }
  const char *src =
      "input x : f32[batch, 2]\n"
      "input y : i32[batch]\n"
      "h = dense(x, 16, activation=relu)\n"
      "logits = dense(h, 3)\n"
      "loss = mean(softmax_cross_entropy(logits, y))\n"
      "metric accuracy = mean(argmax(logits, axis=-1) == y)\n"
      "train loss with adam(lr=0.01)\n";
  Compilation *c = compile_ok("blobs.nn", src);
  const Graph *g = c->graph;
  assert_int_equal(g->nmetrics, 1);
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "batch", N));
  eval_init(e, 3);
  fill_batch(e, g, px, py, 0, N);
  eval_forward(e);
  double first_loss = eval_data(e, g->steps[0].loss)[0];
  int steps = 0;
  for (int epoch = 0; epoch < EPOCHS; epoch++)
    for (int from = 0; from < N; from += BATCH) {
      int n = N - from < BATCH ? N - from : BATCH;
      fill_batch(e, g, px, py, from, n);
      eval_step(e, 0);
      steps++;
    }
  assert_int_equal(steps, EPOCHS * 10);
  assert_true(eval_data(e, named(g, "optimizer/iterations"))[0] == steps);
  fill_batch(e, g, px, py, 0, N);
  eval_forward(e);
  double acc = eval_data(e, g->metrics[0].node)[0];
  double loss = eval_data(e, g->steps[0].loss)[0];
  if (!(acc > 0.95)) {
    print_error("accuracy %.4f after %d epochs\n", acc, EPOCHS);
    fail();
  }
  assert_true(loss < first_loss / 4);
  eval_free(e);
  compilation_free(c);
}

/* ------------------------------------------------------------ dropout */

/* dropout: identity in forward; in train mode it keeps about 1 - rate of
 * the elements, scaled by 1/(1-rate); the mask depends on the step counter
 * and the seed, and is the same for the same (seed, step). */
static void test_dropout(void **state) {
  (void)state;
  const char *src =
      "input x : f32[4000]\n"
      "param w : f32 = 1\n"
      "output d = dropout(x * w, 0.25)\n"
      "output e = dropout(x * w, 0.25)\n"
      "loss = sum(d)\n"
      "train loss with sgd\n";
  Compilation *c = compile_ok("dropout.nn", src);
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  double *x = eval_data(e, named(g, "x"));
  for (int i = 0; i < 4000; i++) x[i] = 1 + i % 7;
  Node *d = named(g, "d"), *dd = named(g, "e"), *roots[2] = {d, dd};
  eval_forward(e);
  for (int i = 0; i < 4000; i++) assert_true(eval_data(e, d)[i] == x[i]);
  /* train mode, step 0 */
  eval_run(e, roots, 2);
  double *m0 = malloc(sizeof(double) * 4000);
  assert_non_null(m0);
  int zeros = 0, same_as_other = 0;
  for (int i = 0; i < 4000; i++) {
    double v = eval_data(e, d)[i];
    m0[i] = v;
    if (v == 0) zeros++;
    else assert_true(fabs(v - x[i] / 0.75) < 1e-12);
    same_as_other += (v == 0) == (eval_data(e, dd)[i] == 0);
  }
  assert_in_range(zeros, 900, 1100);               /* 1000 expected, sd 27 */
  assert_in_range(same_as_other, 2300, 2700);      /* independent masks: 2500 */
  eval_run(e, roots, 2);                           /* same step: same mask */
  for (int i = 0; i < 4000; i++) assert_true(eval_data(e, d)[i] == m0[i]);
  /* the next step (the counter after one train step) draws a new mask */
  eval_step(e, 0);
  eval_run(e, roots, 2);
  int changed = 0;
  for (int i = 0; i < 4000; i++) changed += (eval_data(e, d)[i] == 0) != (m0[i] == 0);
  assert_in_range(changed, 1300, 1700);            /* 2 * 0.25 * 0.75 * 4000 = 1500 */
  /* and the forward pass is still the identity (w has moved) */
  eval_forward(e);
  double w = eval_data(e, named(g, "w"))[0];
  assert_true(w != 1);
  for (int i = 0; i < 4000; i++) assert_true(fabs(eval_data(e, d)[i] - x[i] * w) < 1e-12);
  free(m0);
  eval_free(e);
  compilation_free(c);
}

/* batch_norm: forward uses the moving statistics (zeros, ones at first:
 * y = x / sqrt(1 + eps) * gamma + beta); one train step moves them by
 * (1 - momentum) toward the batch mean and biased variance; train mode
 * normalises each channel to mean 0, variance var/(var+eps). */
static void check_batch_norm(const char *loss) {
  char src[512];
  snprintf(src, sizeof src,
           "input x : f32[4, 2]\n"
           "input k : f32[4, 2]\n"
           "param w : f32 = 1\n"
           "output y = batch_norm(x * w, momentum=0.9, epsilon=0.001)\n"
           "loss = %s\n"
           "train loss with sgd(lr=1e-30)\n",   /* w stays 1 */
           loss);
  Compilation *c = compile_ok("bn.nn", src);
  const Graph *g = c->graph;
  Eval *e = eval_new(g);
  assert_non_null(e);
  assert_true(eval_bind(e, "", 1));
  eval_init(e, 1);
  double *x = eval_data(e, named(g, "x")), *k = eval_data(e, named(g, "k"));
  static const double xs[8] = {1, 10, 2, 20, 3, 30, 6, 60};
  for (int i = 0; i < 8; i++) x[i] = xs[i], k[i] = 1;
  Node *y = named(g, "y");
  eval_forward(e);
  for (int i = 0; i < 8; i++) assert_true(fabs(eval_data(e, y)[i] - xs[i] / sqrt(1.001)) < 1e-12);
  eval_run(e, &y, 1);                          /* train mode: batch statistics */
  for (int ch = 0; ch < 2; ch++) {
    double m = 0, v = 0, s = ch ? 10 : 1;
    for (int r = 0; r < 4; r++) m += eval_data(e, y)[2 * r + ch] / 4;
    for (int r = 0; r < 4; r++) v += pow(eval_data(e, y)[2 * r + ch] - m, 2) / 4;
    double bv = 3.5 * s * s;                   /* biased variance of 1, 2, 3, 6 is 3.5 */
    assert_true(fabs(m) < 1e-12);
    assert_true(fabs(v - bv / (bv + 0.001)) < 1e-12);
  }
  eval_step(e, 0);
  const double *mm = eval_data(e, named(g, "y.moving_mean"));
  const double *mv = eval_data(e, named(g, "y.moving_variance"));
  assert_true(fabs(mm[0] - 0.1 * 3) < 1e-12 && fabs(mm[1] - 0.1 * 30) < 1e-12);
  assert_true(fabs(mv[0] - (0.9 + 0.1 * 3.5)) < 1e-12 && fabs(mv[1] - (0.9 + 0.1 * 350)) < 1e-9);
  eval_forward(e);                             /* now with the moved statistics */
  for (int i = 0; i < 8; i++)
    assert_true(fabs(eval_data(e, y)[i] - (xs[i] - mm[i % 2]) / sqrt(mv[i % 2] + 0.001)) < 1e-12);
  eval_free(e);
  compilation_free(c);
}

/* The second loss is rewritten before autodiff (canon: -(-v) = v), which
 * drops dead nodes; the moving statistics' updates, which nothing else
 * reads until they become assigns, must survive it (a fuzzer's find). */
static void test_batch_norm(void **state) {
  (void)state;
  check_batch_norm("sum(y * k)");
  check_batch_norm("-(-sum(y * k))");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_activations),
      cmocka_unit_test(test_softmax_and_cross_entropy),
      cmocka_unit_test(test_s3_arithmetic),
      cmocka_unit_test(test_reductions_and_indices),
      cmocka_unit_test(test_layout),
      cmocka_unit_test(test_mse),
      cmocka_unit_test(test_init_determinism),
      cmocka_unit_test(test_init_distributions),
      cmocka_unit_test(test_init_orthogonal),
      cmocka_unit_test(test_linear_regression),
      cmocka_unit_test(test_himmelblau),
      cmocka_unit_test(test_mlp_blobs),
      cmocka_unit_test(test_dropout),
      cmocka_unit_test(test_batch_norm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
