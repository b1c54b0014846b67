/*
 * test_allreduce.c - the gradient reduction of data-parallel train steps
 * (gradc_options.data_parallel, gradc_set_allreduce).
 *
 * Two replicas are simulated in one process: two instances of the same
 * model, each stepping on its half of a batch, whose callbacks meet
 * through callbacks that share one table (see pair_reduce).  Their
 * parameters must then equal, to rounding, those of one instance
 * stepping on the whole batch: the weights (each half's share of the
 * rows) make the sum of two mean losses' gradients the whole batch's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"

static const char model[] =
    "input x : f32[batch, 4]\n"
    "input y : i32[batch]\n"
    "param W : f32[4, 3] = glorot_uniform\n"
    "param b : f32[3] = uniform(-0.1, 0.1)\n"
    "logits = x @ W + b\n"
    "loss = mean(softmax_cross_entropy(logits, y)) + 0.01 * sum(W * W)\n"
    "train loss with adam(lr=0.05, clipnorm=0.5)\n";

static gradc_model *compile_dp(bool data_parallel) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  o.data_parallel = data_parallel;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("dp.nn", model, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

/* Rows [lo, lo + n) of a fixed batch of 6 into m's inputs. */
static void feed(gradc_model *m, int lo, int n) {
  assert_int_equal(gradc_bind(m, n), GRADC_OK);
  float *x = gradc_data(m, "x", NULL);
  int32_t *y = gradc_data(m, "y", NULL);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < 4; k++) x[i * 4 + k] = (float)sin(1.0 + (lo + i) * 4 + k);
    y[i] = (lo + i) % 3;
  }
}

/* ------------------------------------------------------------ the calls */

typedef struct Calls {
  int n, flushes;
  int64_t count[8];
  bool last_was_flush;      /* the step's last call had no data */
  int fail_at;              /* return 5 at this call (1-based), 0: never */
} Calls;

static int record(void *user, void *data, int64_t count, gradc_dtype dtype) {
  Calls *c = user;
  if (!data) {              /* the step's wait for the sums */
    assert_int_equal(count, 0);
    c->flushes++;
    c->last_was_flush = true;
    return 0;
  }
  assert_int_equal(dtype, GRADC_F32);
  c->last_was_flush = false;
  if (c->n < 8) c->count[c->n] = count;
  c->n++;
  return c->fail_at && c->n == c->fail_at ? 5 : 0;
}

/* One call per trained parameter with its element count, as the backward
 * pass completes them, and calls without data before updates read the
 * sums (the last call of the step); without a callback the step is the
 * plain model's, bit for bit. */
static void test_calls_and_identity(void **state) {
  (void)state;
  gradc_model *plain = compile_dp(false), *dp = compile_dp(true);
  Calls c = {0};
  assert_int_equal(gradc_set_allreduce(dp, record, &c), GRADC_OK);
  feed(dp, 0, 6);
  feed(plain, 0, 6);
  double l1, l2;
  assert_int_equal(gradc_train_step(dp, &l1), GRADC_OK);
  assert_int_equal(c.n, 2);
  assert_int_equal(c.count[0] * c.count[1], 12 * 3);
  assert_int_equal(c.count[0] + c.count[1], 12 + 3);
  assert_true(c.flushes >= 1 && c.flushes <= 2);
  assert_true(c.last_was_flush);
  assert_int_equal(gradc_train_step(plain, &l2), GRADC_OK);
  assert_true(l1 == l2);
  assert_int_equal(gradc_set_allreduce(dp, NULL, NULL), GRADC_OK);
  assert_int_equal(gradc_train_step(dp, &l1), GRADC_OK);
  assert_int_equal(gradc_train_step(plain, &l2), GRADC_OK);
  assert_int_equal(c.n, 2);
  int64_t n1, n2;
  float *w1 = gradc_data(dp, "W", &n1), *w2 = gradc_data(plain, "W", &n2);
  assert_int_equal(n1, 12);
  assert_memory_equal(w1, w2, sizeof(float) * 12);
  gradc_free(plain);
  gradc_free(dp);
}

/* A model compiled without data_parallel never calls a callback: refused,
 * with the option to use in the message. */
static void test_refused_without_data_parallel(void **state) {
  (void)state;
  gradc_model *m = compile_dp(false);
  Calls c = {0};
  assert_int_equal(gradc_set_allreduce(m, record, &c), GRADC_ERR_ARG);
  assert_non_null(strstr(gradc_last_error(m), "compiled without data parallelism"));
  assert_int_equal(gradc_set_allreduce(NULL, record, &c), GRADC_ERR_ARG);
  gradc_free(m);
}

/* A failing callback fails the step, naming its return value; the step's
 * other gradients are not handed to it. */
static void test_callback_failure(void **state) {
  (void)state;
  gradc_model *m = compile_dp(true);
  Calls c = {.fail_at = 1};
  assert_int_equal(gradc_set_allreduce(m, record, &c), GRADC_OK);
  feed(m, 0, 6);
  double loss;
  assert_int_equal(gradc_train_step(m, &loss), GRADC_ERR_ARG);
  assert_non_null(strstr(gradc_last_error(m), "failed with 5"));
  assert_int_equal(c.n, 1);
  c.fail_at = 0;
  assert_int_equal(gradc_train_step(m, &loss), GRADC_OK);   /* a new step starts clean */
  gradc_free(m);
  (void)loss;
}

/* An asynchronous callback: each gradient is only noted when handed
 * over, and changed (scaled by 0.5, as two replicas' weighted sum of
 * equal gradients with the wrong weights would) at the next call without
 * data.  The updates must read the changed values, bit for bit what a
 * synchronous callback that scales at once gives: a call without data
 * missing before some reader would leave that update the unscaled
 * gradient. */
typedef struct Deferred {
  bool defer;
  float *pending[8];
  int64_t count[8];
  int n;
} Deferred;

static void halve(float *g, int64_t count) {
  for (int64_t i = 0; i < count; i++) g[i] *= 0.5f;
}

static int deferred(void *user, void *data, int64_t count, gradc_dtype dtype) {
  Deferred *d = user;
  (void)dtype;
  if (data && !d->defer) halve(data, count);
  else if (data) d->pending[d->n] = data, d->count[d->n++] = count;
  else {
    for (int k = 0; k < d->n; k++) halve(d->pending[k], d->count[k]);
    d->n = 0;
  }
  return 0;
}

static void test_deferred_equals_immediate(void **state) {
  (void)state;
  gradc_model *m[2] = {compile_dp(true), compile_dp(true)};
  Deferred d[2] = {{.defer = false}, {.defer = true}};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(gradc_set_allreduce(m[k], deferred, &d[k]), GRADC_OK);
    feed(m[k], 0, 6);
    for (int s = 0; s < 3; s++) assert_int_equal(gradc_train_step(m[k], NULL), GRADC_OK);
  }
  assert_int_equal(d[1].n, 0);
  static const char *const names[] = {"W", "b"};
  for (int t = 0; t < 2; t++) {
    int64_t n;
    const float *a = gradc_data(m[0], names[t], &n), *b = gradc_data(m[1], names[t], NULL);
    assert_memory_equal(a, b, sizeof(float) * (size_t)n);
  }
  gradc_free(m[0]);
  gradc_free(m[1]);
}

/* ------------------------------------------------------------ two replicas */

/* Replica 0 steps first: its callback keeps a copy of each gradient and
 * leaves its own data for later; replica 1's callback computes
 * w0 g0 + w1 g1 in rank order (double, rounded once) and stores it in both.
 * Replica 0's update must read the sum, which exists only after replica 1
 * has stepped - impossible in one thread - so replica 0 steps twice per
 * step: once to give its gradients (its results thrown away by restoring
 * its state), then again taking the sums. */
typedef struct Pair {
  double w[2];
  float *g0[4], *sum[4];
  int64_t count[4];
  int call, phase;          /* phase 0: replica 0 gives; 1: replica 1 sums; 2: replica 0 takes */
} Pair;

static int pair_reduce(void *user, void *data, int64_t count, gradc_dtype dtype) {
  Pair *p = user;
  float *g = data;
  (void)dtype;
  if (!data) return 0;      /* synchronous: the sums are already in place */
  int k = p->call++;
  if (p->phase == 0) {
    p->count[k] = count;
    p->g0[k] = realloc(p->g0[k], sizeof(float) * (size_t)count);
    memcpy(p->g0[k], g, sizeof(float) * (size_t)count);
  } else if (p->phase == 1) {
    p->sum[k] = realloc(p->sum[k], sizeof(float) * (size_t)count);
    for (int64_t i = 0; i < count; i++)
      p->sum[k][i] = g[i] = (float)(p->w[0] * p->g0[k][i] + p->w[1] * g[i]);
  } else {
    memcpy(g, p->sum[k], sizeof(float) * (size_t)count);
  }
  return 0;
}

/* Every parameter and state tensor of m into (restore: from) blob. */
static size_t copy_state(gradc_model *m, unsigned char *blob, bool restore) {
  size_t at = 0;
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    assert_int_equal(gradc_tensor_info(m, i, &t), GRADC_OK);
    if (t.kind != GRADC_PARAM && t.kind != GRADC_STATE) continue;
    int64_t n;
    unsigned char *p = gradc_data(m, t.name, &n);
    size_t bytes = (size_t)n * (t.dtype == GRADC_F64 ? 8 : t.dtype == GRADC_BOOL ? 1 : 4);
    if (blob && restore) memcpy(p, blob + at, bytes);
    else if (blob) memcpy(blob + at, p, bytes);
    at += bytes;
  }
  return at;
}

static void test_two_replicas_equal_one(void **state) {
  (void)state;
  gradc_model *one = compile_dp(false), *r[2] = {compile_dp(true), compile_dp(true)};
  Pair p = {.w = {4.0 / 6, 2.0 / 6}};
  for (int k = 0; k < 2; k++) assert_int_equal(gradc_set_allreduce(r[k], pair_reduce, &p), GRADC_OK);
  assert_int_equal(gradc_bind(r[0], 4), GRADC_OK);
  unsigned char *saved = malloc(copy_state(r[0], NULL, false));
  for (int step = 0; step < 5; step++) {
    double loss;
    feed(one, 0, 6);
    assert_int_equal(gradc_train_step(one, &loss), GRADC_OK);
    feed(r[0], 0, 4);
    copy_state(r[0], saved, false);
    p.phase = 0, p.call = 0;
    assert_int_equal(gradc_train_step(r[0], &loss), GRADC_OK);
    copy_state(r[0], saved, true);
    feed(r[1], 4, 2);
    p.phase = 1, p.call = 0;
    assert_int_equal(gradc_train_step(r[1], &loss), GRADC_OK);
    p.phase = 2, p.call = 0;
    assert_int_equal(gradc_train_step(r[0], &loss), GRADC_OK);
  }
  static const char *const names[] = {"W", "b"};
  for (int t = 0; t < 2; t++) {
    int64_t n;
    const float *a = gradc_data(one, names[t], &n), *b0 = gradc_data(r[0], names[t], NULL),
                *b1 = gradc_data(r[1], names[t], NULL);
    assert_memory_equal(b0, b1, sizeof(float) * (size_t)n);   /* the replicas stay identical */
    for (int64_t i = 0; i < n; i++)
      if (fabsf(a[i] - b0[i]) > 1e-5f + 1e-4f * fabsf(a[i])) {
        print_error("%s[%lld]: one instance %.9g, two replicas %.9g\n", names[t], (long long)i, a[i], b0[i]);
        fail();
      }
  }
  /* and not trivially: the weights moved */
  int64_t n;
  const float *w = gradc_data(one, "W", &n);
  gradc_model *fresh = compile_dp(false);
  assert_int_equal(gradc_bind(fresh, 1), GRADC_OK);
  assert_memory_not_equal(w, gradc_data(fresh, "W", NULL), sizeof(float) * (size_t)n);
  for (int k = 0; k < 4; k++) free(p.g0[k]), free(p.sum[k]);
  free(saved);
  gradc_free(fresh);
  gradc_free(one);
  gradc_free(r[0]);
  gradc_free(r[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_calls_and_identity),
      cmocka_unit_test(test_refused_without_data_parallel),
      cmocka_unit_test(test_callback_failure),
      cmocka_unit_test(test_deferred_equals_immediate),
      cmocka_unit_test(test_two_replicas_equal_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
