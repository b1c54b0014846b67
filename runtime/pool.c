/*
 * pool.c - worker threads that run the parts of one job at a time.
 *
 * The products of gemm.c are split into a few parts of a few hundred
 * microseconds each, one after another within a step, so a worker spins
 * briefly for the next job before it sleeps on a condition variable: a
 * sleeping worker costs a wake-up (tens of microseconds) per product, a
 * spinning one a core that something else may want.
 *
 * The caller runs part 0 and waits for the rest.  Every part is a fixed
 * piece of the job, so results never depend on which thread ran it.  One
 * job at a time: callers are the compiled steps, which run one at a time
 * per process (the API documents it).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

/* SPINS pauses are some tens of microseconds: longer than the gap between
 * two products of a step, far shorter than the gap between steps. */
enum { MAX_POOL = 64, SPINS = 20000 };

#if defined(__x86_64__) || defined(__i386__)
#define relax() __builtin_ia32_pause()
#else
#define relax() ((void)0)
#endif

/* Worker i runs part i of job `go`; it reads the job only after its go
 * counter moves, and the caller posts the next job only after every worker
 * it woke has stored done: no job is read while it is written. */
typedef struct Worker {
  atomic_uint_fast64_t go, done;
} Worker;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake, finished;
  int threads;    /* including the caller; 0 = not chosen yet */
  int started;    /* workers running */
  uint64_t job;
  PoolTask *task;
  void *arg;
  int nparts;
  Worker w[MAX_POOL];
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
       .finished = PTHREAD_COND_INITIALIZER};

static void *worker(void *self) {
  Worker *me = self;
  int part = (int)(me - P.w);
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < SPINS && atomic_load(&me->go) == seen; i++) relax();
    if (atomic_load(&me->go) == seen) {
      pthread_mutex_lock(&P.mu);
      while (atomic_load(&me->go) == seen) pthread_cond_wait(&P.wake, &P.mu);
      pthread_mutex_unlock(&P.mu);
    }
    seen = atomic_load(&me->go);
    P.task(P.arg, part, P.nparts);
    pthread_mutex_lock(&P.mu);
    atomic_store(&me->done, seen);
    pthread_cond_signal(&P.finished);
    pthread_mutex_unlock(&P.mu);
  }
  return NULL;
}

void pool_set_threads(int n) { P.threads = n < 1 ? 1 : n > MAX_POOL ? MAX_POOL : n; }

int pool_threads(void) { return P.threads; }

int pool_run(PoolTask *task, void *arg, int nparts) {
  if (nparts > P.threads) nparts = P.threads;
  while (nparts > 1 && P.started < nparts - 1) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&t, &a, worker, &P.w[P.started + 1]) == 0;
    pthread_attr_destroy(&a);
    if (!ok) nparts = P.started + 1;   /* fewer parts, same results */
    else P.started++;
  }
  if (nparts <= 1) {
    task(arg, 0, 1);
    return 1;
  }
  uint64_t job = ++P.job;
  P.task = task, P.arg = arg, P.nparts = nparts;
  pthread_mutex_lock(&P.mu);
  for (int i = 1; i < nparts; i++) atomic_store(&P.w[i].go, job);
  pthread_cond_broadcast(&P.wake);
  pthread_mutex_unlock(&P.mu);
  task(arg, 0, nparts);
  for (int i = 1; i < nparts; i++) {
    for (int s = 0; s < SPINS && atomic_load(&P.w[i].done) != job; s++) relax();
    if (atomic_load(&P.w[i].done) != job) {
      pthread_mutex_lock(&P.mu);
      while (atomic_load(&P.w[i].done) != job) pthread_cond_wait(&P.finished, &P.mu);
      pthread_mutex_unlock(&P.mu);
    }
  }
  return nparts;
}

/* Slices smaller than this many elements cost more to hand over than they
 * take to compute. */
enum { GRAIN = 16384 };

typedef struct Outlined {
  gradc_task *task;
  void **buf;
  const int64_t *sym;
} Outlined;

static void run_outlined(void *arg, int part, int nparts) {
  const Outlined *o = arg;
  o->task(o->buf, o->sym, part, nparts);
}

void gradc_parallel(gradc_task *task, void **buf, const int64_t *sym, int64_t work) {
  int64_t parts = work / GRAIN;
  Outlined o = {task, buf, sym};
  pool_run(run_outlined, &o, parts < 1 ? 1 : parts > MAX_POOL ? MAX_POOL : (int)parts);
}

/* Partial results of compiled code's parallel reductions (codegen.c: row
 * chunks of a column reduction).  One step runs at a time, so one block
 * serves every model; its size bounds what codegen splits (SCRATCH_BYTES:
 * 16 rows of f64 partials of up to 1024 columns). */
void *gradc_scratch(void) {
  static _Alignas(64) unsigned char block[128 << 10];
  return block;
}
