/*
 * context.c - the run-time state of one model instance.
 *
 * A compiled step needs, besides its buffers, a thread pool (pool.c),
 * scratch blocks for the products (gemm.c) and for parallel reductions,
 * and with --profile the tables its timings go to.  None of it is process
 * state: each model instance (instance.c: the JIT's and a .so's) owns
 * one RtContext and passes it to its steps, which pass it on to every
 * runtime function they call.  Two instances therefore never share a worker or a byte of
 * scratch, and step concurrently in two threads with the results each
 * gets alone.
 *
 * What stays process-wide is what is one per process by nature: OpenBLAS's
 * own thread count (blas.c, rt_blas_threads), the choice of product
 * kernels from the CPU (gemm.c) and the default thread count below, each
 * decided once.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>

#include "runtime.h"

RtContext *rt_context_new(int threads) {
  RtContext *rt = aligned_alloc(64, sizeof *rt);
  if (!rt) return NULL;
  *rt = (RtContext){.profile.current = -1};
  rt->pool = pool_new(threads);
  if (!rt->pool) {
    free(rt);
    return NULL;
  }
  return rt;
}

void rt_context_free(RtContext *rt) {
  if (!rt) return;
  for (int p = 0; p < ABI_MAX_LOOP_PARTS; p++) rt_context_free(rt->rows[p]);
  pool_free(rt->pool);
  gemm_buffers_free(rt->gemm);
  free(rt->profile.kernel_seconds);
  free(rt->profile.kernel_calls);
  free(rt);
}

int rt_context_threads(const RtContext *rt) { return pool_threads(rt->pool); }

static int default_threads;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* Before anything lowers it (rt_blas_threads), OpenBLAS's count is the
 * cores it found or OPENBLAS_NUM_THREADS. */
static void read_default_threads(void) { default_threads = openblas_get_num_threads(); }

int rt_default_threads(void) {
  pthread_once(&default_once, read_default_threads);
  return default_threads < 1 ? 1 : default_threads;
}

int64_t gradc_row_offset(RtContext *rt) { return rt->row_offset; }

void gradc_allreduce(RtContext *rt, void *data, int64_t count, int64_t dtype) {
  /* One failure ends the reduction for this step: the caller's callback
   * has reported its peers gone, and the step's result is discarded. */
  if (!rt->allreduce || rt->allreduce_failed) return;
  rt->allreduce_failed = rt->allreduce(rt->allreduce_user, data, count, (gradc_dtype)dtype);
}
