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
#include <pthread.h>
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

/* ------------------------------------------------------------ sync batch norm */

/* cnn_bn's shape in small: two convolution blocks and a dense layer, each
 * with batch_norm(sync=true), and dropout (its masks drawn per global row,
 * gradc_set_row_offset).  In f64, so that two replicas must match one
 * instance to 1e-9: in f32 the batch-norm gradients' cancellations leave
 * rounding differences of 1e-3 relative on a few elements after a few
 * steps, which would hide a wrong rule (the MPI tests check f32 models). */
static const char bn_model[] =
    "input x : f64[batch, 6, 6, 1]\n"
    "input y : i32[batch]\n"
    "c1 = conv2d(x, filters=4, kernel=3, padding=same, use_bias=false)\n"
    "p1 = maxpool2d(relu(batch_norm(c1, sync=true)), pool=2)\n"
    "c2 = conv2d(p1, filters=4, kernel=3, padding=same, use_bias=false)\n"
    "f = dense(flatten(relu(batch_norm(c2, sync=true))), 8, use_bias=false)\n"
    "d = dropout(relu(batch_norm(f, sync=SYNC)), 0.3)\n"
    "logits = dense(d, 3)\n"
    "loss = mean(softmax_cross_entropy(logits, y))\n"
    "train loss with sgd(lr=0.1)\n";

/* bn_model with the last batch_norm's sync=SYNC replaced by sync. */
static gradc_model *compile_bn(bool data_parallel, bool sync) {
  char src[sizeof bn_model + 8], *at;
  snprintf(src, sizeof src, "%s", bn_model);
  at = strstr(src, "SYNC");
  memmove(at + (sync ? 4 : 5), at + 4, strlen(at + 4) + 1);
  memcpy(at, sync ? "true" : "false", sync ? 4 : 5);
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  o.data_parallel = data_parallel;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("bn.nn", src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

/* Rows [lo, lo + n) of a stream of samples into m's inputs. */
static void feed_bn(gradc_model *m, int lo, int n) {
  assert_int_equal(gradc_bind(m, n), GRADC_OK);
  double *x = gradc_data(m, "x", NULL);
  int32_t *y = gradc_data(m, "y", NULL);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < 36; k++) x[i * 36 + k] = sin(1.0 + (lo + i) * 36 + k);
    y[i] = (lo + i) % 3;
  }
}

/* Every f64 parameter and state tensor of a and b within rtol; false (and
 * the first that is not, printed) otherwise.  *n counts the tensors. */
static bool models_close(gradc_model *a, gradc_model *b, double rtol, int *n) {
  *n = 0;
  for (int i = 0; i < gradc_tensor_count(a); i++) {
    gradc_tensor t;
    assert_int_equal(gradc_tensor_info(a, i, &t), GRADC_OK);
    if ((t.kind != GRADC_PARAM && t.kind != GRADC_STATE) || t.dtype != GRADC_F64) continue;
    int64_t count;
    const double *x = gradc_data(a, t.name, &count), *y = gradc_data(b, t.name, NULL);
    for (int64_t j = 0; j < count; j++)
      if (fabs(x[j] - y[j]) > 1e-12 + rtol * fabs(x[j])) {
        print_message("%s[%lld]: %.17g vs %.17g\n", t.name, (long long)j, x[j], y[j]);
        return false;
      }
    (*n)++;
  }
  return true;
}

static int pass_through(void *user, void *data, int64_t count, gradc_dtype dtype) {
  (void)user, (void)data, (void)count, (void)dtype;
  return 0;
}

/* One replica whose callback leaves every sum as it is: the plain
 * model's bits, replica_mean nodes and all. */
static void test_sync_bn_one_replica(void **state) {
  (void)state;
  gradc_model *plain = compile_bn(false, true), *dp = compile_bn(true, true);
  assert_int_equal(gradc_set_allreduce(dp, pass_through, NULL), GRADC_OK);
  for (int s = 0; s < 3; s++) {
    double l1, l2;
    feed_bn(plain, 6 * s, 6);
    feed_bn(dp, 6 * s, 6);
    assert_int_equal(gradc_train_step(plain, &l1), GRADC_OK);
    assert_int_equal(gradc_train_step(dp, &l2), GRADC_OK);
    assert_true(l1 == l2);
  }
  int n;
  assert_true(models_close(plain, dp, 0, &n));
  assert_true(n >= 10);
  gradc_free(plain);
  gradc_free(dp);
}

/* Two replicas on two threads, each stepping on its rows of the batch,
 * whose callbacks meet at a barrier: each deposits its buffer, and after
 * the barrier each computes w0 v0 + w1 v1 in rank order into its own; a
 * second barrier keeps a buffer from changing before the other has read
 * it.  Calls without data return at once (the sums are complete).  The
 * forward pass's statistics meet this way too, so only threads (or
 * processes) can run the replicas. */
typedef struct Meet {
  pthread_barrier_t bar;
  double w[2];
  double *data[2];
} Meet;

typedef struct Replica {
  Meet *meet;
  int rank, first, rows, steps;
  gradc_model *m;
  gradc_status status;
} Replica;

static int meet_reduce(void *user, void *data, int64_t count, gradc_dtype dtype) {
  Replica *r = user;
  Meet *x = r->meet;
  if (!data) return 0;
  if (dtype != GRADC_F64) return 7;
  x->data[r->rank] = data;
  pthread_barrier_wait(&x->bar);
  double *sum = malloc(sizeof(double) * (size_t)count);
  for (int64_t i = 0; i < count; i++) sum[i] = x->w[0] * x->data[0][i] + x->w[1] * x->data[1][i];
  pthread_barrier_wait(&x->bar);
  memcpy(data, sum, sizeof(double) * (size_t)count);
  free(sum);
  return 0;
}

/* Global batches of 6 rows, 6 s + [0, 6) at step s: replica 0 takes the
 * first 4 of each, replica 1 the last 2. */
static void *replica_run(void *arg) {
  Replica *r = arg;
  for (int s = 0; s < r->steps && !r->status; s++) {
    r->status = gradc_set_row_offset(r->m, r->first);
    feed_bn(r->m, 6 * s + r->first, r->rows);
    if (!r->status) r->status = gradc_train_step(r->m, NULL);
  }
  return NULL;
}

/* Runs one instance on whole batches and two replicas on 4 + 2 rows of
 * them for steps steps; are the results close? */
static bool two_equal_one(bool sync, int steps) {
  gradc_model *one = compile_bn(false, sync);
  for (int s = 0; s < steps; s++) {
    feed_bn(one, 6 * s, 6);
    assert_int_equal(gradc_train_step(one, NULL), GRADC_OK);
  }
  Meet meet = {.w = {4.0 / 6, 2.0 / 6}};
  pthread_barrier_init(&meet.bar, NULL, 2);
  Replica r[2] = {{&meet, 0, 0, 4, steps, compile_bn(true, sync), 0},
                  {&meet, 1, 4, 2, steps, compile_bn(true, sync), 0}};
  pthread_t t[2];
  for (int k = 0; k < 2; k++) {
    assert_int_equal(gradc_set_allreduce(r[k].m, meet_reduce, &r[k]), GRADC_OK);
    assert_int_equal(pthread_create(&t[k], NULL, replica_run, &r[k]), 0);
  }
  for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
  pthread_barrier_destroy(&meet.bar);
  assert_int_equal(r[0].status, GRADC_OK);
  assert_int_equal(r[1].status, GRADC_OK);
  /* with sync the replicas stay identical, moving statistics too (without,
   * each has its own, which gradc train replaces by rank 0's) */
  int n;
  if (sync) assert_true(models_close(r[0].m, r[1].m, 0, &n) && n >= 10);
  bool close = models_close(one, r[0].m, 1e-9, &n);
  gradc_free(one);
  gradc_free(r[0].m);
  gradc_free(r[1].m);
  return close;
}

/* Two replicas end with one instance's parameters and moving statistics
 * (1e-9 in f64) after 8 steps on changing data: sync batch norm's
 * statistics, and the gradients through them, are the whole batch's, and
 * dropout's masks one instance's rows.  With the last batch_norm not
 * synchronised they are not (each replica normalises with its own rows). */
static void test_sync_bn_two_replicas(void **state) {
  (void)state;
  assert_true(two_equal_one(true, 8));
  assert_false(two_equal_one(false, 8));
}

/* gradc_set_row_offset refuses what it cannot mean. */
static void test_row_offset_refused(void **state) {
  (void)state;
  gradc_model *m = compile_bn(false, true);
  assert_int_equal(gradc_set_row_offset(m, -1), GRADC_ERR_ARG);
  assert_non_null(strstr(gradc_last_error(m), "must be >= 0, got -1"));
  assert_int_equal(gradc_set_row_offset(NULL, 0), GRADC_ERR_ARG);
  gradc_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_calls_and_identity),
      cmocka_unit_test(test_refused_without_data_parallel),
      cmocka_unit_test(test_callback_failure),
      cmocka_unit_test(test_deferred_equals_immediate),
      cmocka_unit_test(test_two_replicas_equal_one),
      cmocka_unit_test(test_sync_bn_one_replica),
      cmocka_unit_test(test_sync_bn_two_replicas),
      cmocka_unit_test(test_row_offset_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
