/*
 * blas.c - the outside functions compiled code calls, by name.
 *
 * OpenBLAS is used from this file only (STYLE: each library behind one
 * file).  The JIT resolves the module's calls to these addresses first, so
 * the code never depends on what the dynamic linker happened to load.
 *
 * With profiling on (before a model is compiled), cblas_sgemm resolves to a
 * wrapper that adds up the time spent inside it: the benchmark's "share of
 * step time in sgemm".
 */
#include <cblas.h>
#include <math.h>
#include <time.h>

#include "compiler.h"
#include "runtime.h"

static bool profiling;
static double sgemm_seconds;
static long sgemm_calls;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void timed_sgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint m, const blasint n,
                        const blasint k, const float alpha, const float *a, const blasint lda,
                        const float *b, const blasint ldb, const float beta, float *c,
                        const blasint ldc) {
  double t0 = now_s();
  cblas_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  sgemm_seconds += now_s() - t0;
  sgemm_calls++;
}

const JitSymbol *rt_symbols(int *n) {
  static JitSymbol table[] = {
      {"cblas_sgemm", (uintptr_t)cblas_sgemm}, {"cblas_dgemm", (uintptr_t)cblas_dgemm},
      {"tanhf", (uintptr_t)tanhf}, {"tanh", (uintptr_t)tanh},
      {"expf", (uintptr_t)expf},   {"exp", (uintptr_t)exp},
      {"logf", (uintptr_t)logf},   {"log", (uintptr_t)log},
      {"powf", (uintptr_t)powf},   {"pow", (uintptr_t)pow},
  };
  table[0].addr = profiling ? (uintptr_t)timed_sgemm : (uintptr_t)cblas_sgemm;
  *n = (int)(sizeof table / sizeof *table);
  return table;
}

void rt_profile(bool on) { profiling = on; }

double rt_sgemm_seconds(long *calls) {
  if (calls) *calls = sgemm_calls;
  return sgemm_seconds;
}

void rt_profile_reset(void) {
  sgemm_seconds = 0;
  sgemm_calls = 0;
}

/* 0 = every core OpenBLAS sees. */
void rt_set_threads(int n) {
  if (n > 0) openblas_set_num_threads(n);
}

int rt_threads(void) { return openblas_get_num_threads(); }

/* The kernel set OpenBLAS chose when it loaded (from the CPU, or from
 * OPENBLAS_CORETYPE): the benchmarks' numbers depend on it. */
const char *rt_blas_kernels(void) { return openblas_get_corename(); }
