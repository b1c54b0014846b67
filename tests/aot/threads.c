/*
 * threads.c - two instances of one compiled .so stepping at once in two
 * threads, for tests/run_aot_tests.sh.
 *
 *   cc -DMODEL=mnist_mlp -include mnist_mlp.h threads.c -L. -lmnist_mlp -pthread
 *   ./threads STEPS BATCH
 *
 * Trains an instance from seed 7 and one from seed 8, STEPS steps each on
 * the batches of data.h, first one after the other, then at once in two
 * threads (both bound before either steps); every loss and every byte of
 * parameters and optimizer state must be the same both ways.  Each
 * instance has its own thread pool and scratch (runtime/context.c), so
 * the products of one never run on, or write into, the other's.  Exit 0
 * and "threads: ok" when all is well.
 */
#include <pthread.h>

#define DRIVER "threads"
#include "driver.h"

enum { MAX_STEPS = 64 };

typedef struct Run {
  uint64_t seed;
  int steps;
  int64_t batch;
  pthread_barrier_t *start;    /* NULL when run alone */
  int failed;
  double loss[MAX_STEPS];
  char *state;
  size_t len;
} Run;

static void *run(void *arg) {
  Run *r = arg;
  gradc_aot_model *m = F(new)();
  r->failed = !m || F(init)(m, r->seed) || F(bind)(m, r->batch, NULL);
  if (r->start) pthread_barrier_wait(r->start);
  for (int s = 0; s < r->steps && !r->failed; s++) {
    feed(m, s);
    r->failed |= F(train_step)(m, &r->loss[s]) != 0;
  }
  r->state = state_bytes(m, &r->len);
  r->failed |= !r->state;
  F(free)(m);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3 || atoi(argv[1]) > MAX_STEPS) {
    fprintf(stderr, "usage: threads STEPS BATCH (STEPS <= %d)\n", MAX_STEPS);
    return 2;
  }
  int steps = atoi(argv[1]);
  int64_t batch = atoll(argv[2]);
  Run alone[2], both[2];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 2);
  for (int i = 0; i < 2; i++) {
    alone[i] = (Run){.seed = 7 + (uint64_t)i, .steps = steps, .batch = batch};
    both[i] = alone[i], both[i].start = &start;
    run(&alone[i]);
  }
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&th[i], NULL, run, &both[i])) return fprintf(stderr, "threads: no thread\n"), 1;
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++) {
    if (!expect(!alone[i].failed && !both[i].failed, "instance %d could not train", i)) continue;
    expect(!memcmp(alone[i].loss, both[i].loss, sizeof(double) * (size_t)steps),
           "instance %d: losses differ in threads", i);
    expect(alone[i].len == both[i].len && !memcmp(alone[i].state, both[i].state, alone[i].len),
           "instance %d: parameters differ in threads", i);
    printf("instance %d: loss %.6f after %d steps\n", i, both[i].loss[steps - 1], steps);
    free(alone[i].state), free(both[i].state);
  }
  pthread_barrier_destroy(&start);
  return finish();
}
