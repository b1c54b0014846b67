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
 * job at a time per pool: a pool belongs to one model instance (its
 * RtContext, context.c), whose steps run one at a time; two instances
 * stepping in two threads each drive their own workers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

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
 * it woke has stored done: no job is read while it is written.  A job
 * posted with stop set ends the worker (pool_free). */
typedef struct Worker {
  atomic_uint_fast64_t go, done;
  RtPool *pool;
  pthread_t thread;
} Worker;

struct RtPool {
  pthread_mutex_t mu;
  pthread_cond_t wake, finished;
  int threads;    /* including the caller */
  int started;    /* workers running: w[1 .. started] */
  uint64_t job;
  PoolTask *task;
  void *arg;
  int nparts;
  bool stop;
  Worker w[MAX_POOL];
};

static void *worker(void *self) {
  Worker *me = self;
  RtPool *P = me->pool;
  int part = (int)(me - P->w);
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < SPINS && atomic_load(&me->go) == seen; i++) relax();
    if (atomic_load(&me->go) == seen) {
      pthread_mutex_lock(&P->mu);
      while (atomic_load(&me->go) == seen) pthread_cond_wait(&P->wake, &P->mu);
      pthread_mutex_unlock(&P->mu);
    }
    seen = atomic_load(&me->go);
    if (P->stop) return NULL;
    P->task(P->arg, part, P->nparts);
    pthread_mutex_lock(&P->mu);
    atomic_store(&me->done, seen);
    pthread_cond_signal(&P->finished);
    pthread_mutex_unlock(&P->mu);
  }
}

RtPool *pool_new(int threads) {
  RtPool *P = calloc(1, sizeof *P);
  if (!P) return NULL;
  pthread_mutex_init(&P->mu, NULL);
  pthread_cond_init(&P->wake, NULL);
  pthread_cond_init(&P->finished, NULL);
  P->threads = threads < 1 ? 1 : threads > MAX_POOL ? MAX_POOL : threads;
  for (int i = 0; i < MAX_POOL; i++) P->w[i].pool = P;
  return P;
}

void pool_free(RtPool *P) {
  if (!P) return;
  uint64_t job = ++P->job;
  P->stop = true;
  pthread_mutex_lock(&P->mu);
  for (int i = 1; i <= P->started; i++) atomic_store(&P->w[i].go, job);
  pthread_cond_broadcast(&P->wake);
  pthread_mutex_unlock(&P->mu);
  for (int i = 1; i <= P->started; i++) pthread_join(P->w[i].thread, NULL);
  pthread_cond_destroy(&P->finished);
  pthread_cond_destroy(&P->wake);
  pthread_mutex_destroy(&P->mu);
  free(P);
}

int pool_threads(const RtPool *P) { return P->threads; }

int pool_run(RtPool *P, PoolTask *task, void *arg, int nparts) {
  if (nparts > P->threads) nparts = P->threads;
  while (nparts > 1 && P->started < nparts - 1) {
    Worker *w = &P->w[P->started + 1];
    if (pthread_create(&w->thread, NULL, worker, w) != 0) nparts = P->started + 1;   /* fewer parts, same results */
    else P->started++;
  }
  if (nparts <= 1) {
    task(arg, 0, 1);
    return 1;
  }
  uint64_t job = ++P->job;
  P->task = task, P->arg = arg, P->nparts = nparts;
  pthread_mutex_lock(&P->mu);
  for (int i = 1; i < nparts; i++) atomic_store(&P->w[i].go, job);
  pthread_cond_broadcast(&P->wake);
  pthread_mutex_unlock(&P->mu);
  task(arg, 0, nparts);
  for (int i = 1; i < nparts; i++) {
    for (int s = 0; s < SPINS && atomic_load(&P->w[i].done) != job; s++) relax();
    if (atomic_load(&P->w[i].done) != job) {
      pthread_mutex_lock(&P->mu);
      while (atomic_load(&P->w[i].done) != job) pthread_cond_wait(&P->finished, &P->mu);
      pthread_mutex_unlock(&P->mu);
    }
  }
  return nparts;
}

/* Slices smaller than this many elements cost more to hand over than they
 * take to compute. */
enum { GRAIN = 16384 };

typedef struct Outlined {
  gradc_task *task;
  RtContext *rt;
  void **buf;
  const int64_t *sym;
} Outlined;

static void run_outlined(void *arg, int part, int nparts) {
  const Outlined *o = arg;
  o->task(o->rt, o->buf, o->sym, part, nparts);
}

void gradc_parallel(RtContext *rt, gradc_task *task, void **buf, const int64_t *sym, int64_t work) {
  int64_t parts = rt->serial ? 1 : work / GRAIN;
  Outlined o = {task, rt, buf, sym};
  pool_run(rt->pool, run_outlined, &o, parts < 1 ? 1 : parts > MAX_POOL ? MAX_POOL : (int)parts);
}

/* Partial results of compiled code's parallel reductions (codegen.c: row
 * chunks of a column reduction), in the instance's context; its size
 * bounds what codegen splits (abi.h ABI_SCRATCH_BYTES: 16 rows of f64 partials of
 * up to 1024 columns). */
void *gradc_scratch(RtContext *rt) { return rt->scratch; }

void gradc_serial(RtContext *rt, int64_t on) { rt->serial = on != 0; }

typedef struct LoopRun {
  gradc_task *task;
  RtContext *rt;
  void **buf;
  const int64_t *sym;
} LoopRun;

static void run_loop_part(void *arg, int part, int nparts) {
  const LoopRun *o = arg;
  o->task(part ? o->rt->rows[part] : o->rt, o->buf, o->sym, part, nparts);
}

void gradc_loop(RtContext *rt, gradc_task *task, void **buf, const int64_t *sym, int64_t rows) {
  int64_t want = rows / ABI_LOOP_ROWS;
  int parts = pool_threads(rt->pool);
  if (parts > want) parts = (int)want;
  if (parts > ABI_MAX_LOOP_PARTS) parts = ABI_MAX_LOOP_PARTS;
  for (int p = 1; p < parts; p++) {
    if (!rt->rows[p] && (rt->rows[p] = rt_context_new(1))) rt->rows[p]->serial = true;
    if (!rt->rows[p]) parts = p;   /* out of memory: fewer parts, same results */
    else rt->rows[p]->row_offset = rt->row_offset;
  }
  LoopRun o = {task, rt, buf, sym};
  bool serial = rt->serial;
  rt->serial = true;
  pool_run(rt->pool, run_loop_part, &o, parts < 1 ? 1 : parts);
  rt->serial = serial;
}
