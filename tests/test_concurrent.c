/*
 * test_concurrent.c - model instances in threads of one program.
 *
 * Each model instance owns its run-time context (runtime/context.c: thread
 * pool, scratch, split-k partials, profile tables), so two instances
 * compiled and trained at once in two threads must end with exactly the
 * parameters, optimizer state and losses that each gets when the two run
 * one after the other.  With the process-wide pool and scratch of before,
 * two threads' jobs met in one pool (a deadlock, or one job's parts run
 * with the other's arguments) and the partial sums of one model's
 * reductions were overwritten by the other's.
 *
 * Each job compiles its model with 1, 2 or 3 threads, binds a batch, waits
 * for the other job to get that far, and takes STEPS training steps on
 * synthetic inputs drawn from its own seed;
 * products, outlined loops and chunked reductions are large enough to be
 * split over the pool.  Run it under ThreadSanitizer with
 * scripts/tsan.sh.  The same for instances of compiled .so files - one
 * model's twice, two models', on 1 and 2 pool threads - is
 * tests/aot/threads.c, in run_aot_tests.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "gradc.h"
#include "runtime.h"

enum { STEPS = 20 };

/* A CNN whose products, elementwise loops and bias-gradient reductions all
 * split over 2 threads at batch 32. */
static const char *cnn_src =
    "input  x : f32[batch, 16, 16, 1]\n"
    "input  y : i32[batch]\n"
    "c1     = conv2d(x, filters=16, kernel=3, padding=same, use_bias=false)\n"
    "b1     = batch_norm(c1)\n"
    "c2     = conv2d(relu(b1), filters=32, kernel=3, padding=same, activation=relu)\n"
    "p2     = maxpool2d(c2, pool=2)\n"
    "drop   = dropout(flatten(p2), 0.25)\n"
    "logits = dense(drop, 10, name=fc)\n"
    "loss   = mean(softmax_cross_entropy(logits, y))\n"
    "train  loss with adam(lr=0.01)\n";

typedef struct Job {
  const char *path;            /* a model file, or NULL for cnn_src */
  int threads;
  int64_t batch;
  uint64_t seed;               /* parameters and inputs */
  int steps;
  bool profile;
  pthread_barrier_t *start;    /* concurrent jobs step together, compiled */
  /* results */
  gradc_status status;
  char error[256];
  unsigned char *state;        /* every parameter and optimizer slot, in order */
  size_t state_bytes;
  double loss[STEPS];
  long sgemm_calls;            /* with profile: this instance's count */
} Job;

static uint64_t next(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

/* Inputs of step `step`: floats in [0, 1), labels 0..9. */
static void fill_inputs(gradc_model *m, uint64_t seed, int step) {
  uint64_t s = seed * 1000 + (uint64_t)step;
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    gradc_tensor_info(m, i, &t);
    if (t.kind != GRADC_INPUT) continue;
    int64_t n;
    void *p = gradc_data(m, t.name, &n);
    for (int64_t k = 0; k < n; k++) {
      if (t.dtype == GRADC_F32) ((float *)p)[k] = (float)(next(&s) % 1000) / 1000.f;
      else ((int32_t *)p)[k] = (int32_t)(next(&s) % 10);
    }
  }
}

static void *run_job(void *arg) {
  Job *j = arg;
  gradc_options o;
  gradc_options_default(&o);
  o.threads = j->threads;
  o.seed = j->seed;
  gradc_model *m = NULL;
  j->status = j->path ? jitmodel_compile_file(j->path, &o, j->profile, NULL, &m)
                      : gradc_compile_string("cnn.nn", cnn_src, &o, &m);
  if (!j->status) j->status = gradc_bind(m, j->batch);
  if (j->start) pthread_barrier_wait(j->start);   /* after a failure too */
  for (int s = 0; s < j->steps && !j->status; s++) {
    fill_inputs(m, j->seed, s);
    j->status = gradc_train_step(m, &j->loss[s]);
  }
  if (j->status) {
    snprintf(j->error, sizeof j->error, "%s", gradc_last_error(m));
    gradc_free(m);
    return NULL;
  }
  j->state_bytes = 0;
  for (int pass = 0; pass < 2; pass++) {   /* sizes, then bytes */
    if (pass && !(j->state = malloc(j->state_bytes))) break;
    size_t at = 0;
    for (int i = 0; i < gradc_tensor_count(m); i++) {
      gradc_tensor t;
      gradc_tensor_info(m, i, &t);
      if (t.kind != GRADC_PARAM && t.kind != GRADC_STATE) continue;
      size_t bytes = (size_t)t.count * (t.dtype == GRADC_F64 ? 8 : t.dtype == GRADC_BOOL ? 1 : 4);
      if (pass) memcpy(j->state + at, gradc_data(m, t.name, NULL), bytes);
      at += bytes;
    }
    j->state_bytes = at;
  }
  if (j->profile) rt_sgemm_seconds(rt_context(m), &j->sgemm_calls);
  gradc_free(m);
  return NULL;
}

static void assert_ok(const Job *j) {
  if (j->status) fail_msg("%s: %s", j->path ? j->path : "cnn", j->error);
  assert_non_null(j->state);
  assert_true(j->state_bytes > 0);
}

/* Runs the two jobs one after the other, then a copy of each at once in
 * two threads, and compares every byte of state and every loss. */
static void check_pair(Job a, Job b) {
  Job seq[2] = {a, b}, par[2] = {a, b};
  for (int i = 0; i < 2; i++) run_job(&seq[i]), assert_ok(&seq[i]);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 2);
  par[0].start = par[1].start = &start;
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, run_job, &par[i]), 0);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&start);
  for (int i = 0; i < 2; i++) {
    assert_ok(&par[i]);
    assert_int_equal(par[i].state_bytes, seq[i].state_bytes);
    for (int s = 0; s < a.steps; s++)
      if (memcmp(&par[i].loss[s], &seq[i].loss[s], sizeof(double)))
        fail_msg("job %d step %d: loss %.17g concurrently, %.17g alone", i, s, par[i].loss[s], seq[i].loss[s]);
    if (memcmp(par[i].state, seq[i].state, seq[i].state_bytes)) fail_msg("job %d: parameters differ", i);
    assert_int_equal(par[i].sgemm_calls, seq[i].sgemm_calls);
  }
  /* training moved the parameters: the comparison above compared work */
  Job none = a;
  none.steps = 0;
  run_job(&none);
  assert_ok(&none);
  assert_int_equal(none.state_bytes, seq[0].state_bytes);
  assert_true(memcmp(none.state, seq[0].state, none.state_bytes) != 0);
  for (int i = 0; i < 2; i++) free(seq[i].state), free(par[i].state);
  free(none.state);
}

static void test_mlp_and_cnn(void **state) {
  (void)state;
  check_pair((Job){.path = "models/mnist_mlp.nn", .threads = 2, .batch = 64, .seed = 1, .steps = STEPS},
             (Job){.path = NULL, .threads = 2, .batch = 32, .seed = 2, .steps = STEPS});
}

/* Two instances of one model (different seeds), one of them on 3 threads. */
static void test_two_instances(void **state) {
  (void)state;
  check_pair((Job){.path = "models/mnist_mlp.nn", .threads = 2, .batch = 64, .seed = 3, .steps = STEPS},
             (Job){.path = "models/mnist_mlp.nn", .threads = 3, .batch = 48, .seed = 4, .steps = STEPS});
}

/* One pool thread each (the steps run on the calling threads): with the
 * process-wide scratch and split-k buffers of before, two models at once
 * did not deadlock here but silently computed wrong weights (issue 23,
 * item 5).  Two different models, then one model twice. */
static void test_one_pool_thread(void **state) {
  (void)state;
  check_pair((Job){.path = "models/mnist_mlp.nn", .threads = 1, .batch = 64, .seed = 8, .steps = STEPS},
             (Job){.path = NULL, .threads = 1, .batch = 32, .seed = 9, .steps = STEPS});
  check_pair((Job){.path = "models/mnist_mlp.nn", .threads = 1, .batch = 64, .seed = 10, .steps = STEPS},
             (Job){.path = "models/mnist_mlp.nn", .threads = 1, .batch = 48, .seed = 11, .steps = STEPS});
}

/* One model on 1 thread beside another on 2: a pool of one and a pool of
 * two at once. */
static void test_one_and_two_pool_threads(void **state) {
  (void)state;
  check_pair((Job){.path = NULL, .threads = 1, .batch = 32, .seed = 12, .steps = STEPS},
             (Job){.path = "models/mnist_mlp.nn", .threads = 2, .batch = 64, .seed = 13, .steps = STEPS});
}

/* A GRU's loops run in slices of the batch's rows, one per pool thread
 * (codegen.c: gen_loop_rows, each slice with a context of its own); two
 * such models at once, on 2 and 3 threads. */
static void test_recurrent_in_slices(void **state) {
  (void)state;
  check_pair((Job){.path = "models/fmnist_gru.nn", .threads = 2, .batch = 40, .seed = 6, .steps = 5},
             (Job){.path = "models/fmnist_gru.nn", .threads = 3, .batch = 50, .seed = 7, .steps = 5});
}

/* --profile's tables are per instance: each counts its own products, 5 per
 * step of the MLP (x W1 and h W2 forward; backward h^T dlogits, dlogits
 * W2^T and x^T dh - no gradient of the input x). */
static void test_profile_per_instance(void **state) {
  (void)state;
  Job a = {.path = "models/mnist_mlp.nn", .threads = 2, .batch = 64, .seed = 5, .steps = STEPS, .profile = true};
  Job b = a;
  b.seed = 6, b.steps = 2;
  check_pair(a, b);
  Job one = a;
  run_job(&one);
  assert_ok(&one);
  assert_int_equal(one.sgemm_calls, 5 * STEPS);
  free(one.state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mlp_and_cnn),
      cmocka_unit_test(test_two_instances),
      cmocka_unit_test(test_one_pool_thread),
      cmocka_unit_test(test_one_and_two_pool_threads),
      cmocka_unit_test(test_recurrent_in_slices),
      cmocka_unit_test(test_profile_per_instance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
