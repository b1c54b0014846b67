/*
 * threads.c - two instances of compiled .so files stepping at once in two
 * threads, for tests/run_aot_tests.sh.
 *
 *   cc -DMODEL=mnist_mlp -include mnist_mlp.h threads.c -L. -lmnist_mlp -pthread
 *   cc -DMODEL=mnist_mlp -DMODEL_B=cnn_small -include mnist_mlp.h -include cnn_small.h
 *      threads.c -L. -lmnist_mlp -lcnn_small -pthread
 *   ./threads STEPS BATCH
 *
 * Trains an instance from seed 7 and one from seed 8 - of the one model,
 * or with MODEL_B, the first of MODEL and the second of MODEL_B - STEPS
 * steps each on the batches of data.h, first one after the other, then at
 * once in two threads (both bound before either steps); every loss and
 * every byte of parameters and optimizer state must be the same both
 * ways.  Each instance has its own thread pool and scratch
 * (runtime/context.c), so the products of one never run on, or write
 * into, the other's; each .so has its own copy of the support library.
 * The pool's size is OpenBLAS's thread count (OPENBLAS_NUM_THREADS).
 * Exit 0 and "threads: ok" when all is well.
 */
#include <pthread.h>

#define DRIVER "threads"
#include "driver.h"

enum { MAX_STEPS = 64 };

/* One model's entry points. */
typedef struct Api {
  const char *name;
  gradc_aot_model *(*new_model)(void);
  int (*init)(gradc_aot_model *, uint64_t);
  int (*bind)(gradc_aot_model *, int64_t, void *);
  int (*train_step)(gradc_aot_model *, double *);
  int (*tensor_count)(void);
  int (*tensor_info)(const gradc_aot_model *, int, gradc_aot_tensor *);
  void (*free_model)(gradc_aot_model *);
} Api;

#define STR2(x) #x
#define STR(x) STR2(x)
#define API(P) {STR(P), CAT(P, new), CAT(P, init), CAT(P, bind), CAT(P, train_step), CAT(P, tensor_count), \
                CAT(P, tensor_info), CAT(P, free)}
#ifndef MODEL_B
#define MODEL_B MODEL
#endif
static const Api apis[2] = {API(MODEL), API(MODEL_B)};

typedef struct Run {
  const Api *api;
  uint64_t seed;
  int steps;
  int64_t batch;
  pthread_barrier_t *start;    /* NULL when run alone */
  int failed;
  double loss[MAX_STEPS];
  char *state;
  size_t len;
} Run;

/* driver.h's feed and state_bytes, through an Api. */
static void feed_api(const Api *a, gradc_aot_model *m, int64_t step) {
  gradc_aot_tensor t;
  for (int i = 0, input = 0; i < a->tensor_count(); i++)
    if (!a->tensor_info(m, i, &t) && t.kind == GRADC_AOT_INPUT) fill_input(t.data, t.dtype, t.count, input++, step);
}

static char *state_api(const Api *a, gradc_aot_model *m, size_t *len) {
  size_t n = 0;
  gradc_aot_tensor t;
  for (int pass = 0; pass < 2; pass++) {
    char *b = pass ? malloc(n + 1) : NULL, *p = b;
    if (pass && !b) return NULL;
    for (int i = 0; m && i < a->tensor_count(); i++)
      if (!a->tensor_info(m, i, &t) && (t.kind == GRADC_AOT_PARAM || t.kind == GRADC_AOT_STATE)) {
        if (pass) memcpy(p, t.data, t.bytes), p += t.bytes;
        else n += t.bytes;
      }
    if (pass) return *len = n, b;
  }
  return NULL;
}

static void *run(void *arg) {
  Run *r = arg;
  const Api *a = r->api;
  gradc_aot_model *m = a->new_model();
  r->failed = !m || a->init(m, r->seed) || a->bind(m, r->batch, NULL);
  if (r->start) pthread_barrier_wait(r->start);
  for (int s = 0; s < r->steps && !r->failed; s++) {
    feed_api(a, m, s);
    r->failed |= a->train_step(m, &r->loss[s]) != 0;
  }
  r->state = state_api(a, m, &r->len);
  r->failed |= !r->state;
  a->free_model(m);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3 || atoi(argv[1]) < 1 || atoi(argv[1]) > MAX_STEPS) {
    fprintf(stderr, "usage: threads STEPS BATCH (STEPS <= %d)\n", MAX_STEPS);
    return 2;
  }
  int steps = atoi(argv[1]);
  int64_t batch = atoll(argv[2]);
  Run alone[2], both[2];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 2);
  for (int i = 0; i < 2; i++) {
    alone[i] = (Run){.api = &apis[i], .seed = 7 + (uint64_t)i, .steps = steps, .batch = batch};
    both[i] = alone[i], both[i].start = &start;
    run(&alone[i]);
  }
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, run, &both[i])) return fprintf(stderr, "threads: no thread\n"), 1;
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  /* Training moved the state, so the comparisons below compare work. */
  Run none = alone[0];
  none.steps = 0;
  run(&none);
  expect(!none.failed && !alone[0].failed && (none.len != alone[0].len || memcmp(none.state, alone[0].state, none.len)),
         "instance 0: %d steps left the state as it was", steps);
  free(none.state);
  for (int i = 0; i < 2; i++) {
    if (!expect(!alone[i].failed && !both[i].failed, "instance %d could not train", i)) continue;
    expect(!memcmp(alone[i].loss, both[i].loss, sizeof(double) * (size_t)steps),
           "instance %d: losses differ in threads", i);
    expect(alone[i].len == both[i].len && !memcmp(alone[i].state, both[i].state, alone[i].len),
           "instance %d: parameters differ in threads", i);
    printf("instance %d (%s): loss %.6f after %d steps\n", i, apis[i].name, both[i].loss[steps - 1], steps);
    free(alone[i].state), free(both[i].state);
  }
  pthread_barrier_destroy(&start);
  return finish();
}
