/*
 * blas.c - the outside functions compiled code calls, by name.
 *
 * OpenBLAS is used from here and from gemm.c, which hands it the products
 * its own kernels do not take.  The JIT resolves the module's calls to
 * these addresses first, so the code never depends on what the dynamic
 * linker happened to load.
 *
 * With profiling on (before a model is compiled), gradc_sgemm and the
 * convolution products (gradc_sgemm_col2im, _im2col) resolve to wrappers
 * that add up the time spent inside them: the benchmark's "share of step
 * time in sgemm"; and the code calls gradc_profile_mark(node id) as each
 * kernel starts (-1 at the end of a step), so the time between two marks
 * is charged to the kernel of the first.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
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

static void timed_sgemm(int o, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                        int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  double t0 = now_s();
  gradc_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  sgemm_seconds += now_s() - t0;
  sgemm_calls++;
}

/* Counted as product time: nearly all of its work is the product's FMAs. */
static void timed_sgemm_col2im(int ta, int tb, int m, int n, int k, const float *a, int lda,
                               const float *b, int ldb, float *dx, const int32_t *geo) {
  double t0 = now_s();
  gradc_sgemm_col2im(ta, tb, m, n, k, a, lda, b, ldb, dx, geo);
  sgemm_seconds += now_s() - t0;
  sgemm_calls++;
}

static void timed_sgemm_im2col(int ta, int tb, int m, int n, int k, const float *x, const int32_t *geo,
                               const float *b, int ldb, float *c, int ldc) {
  double t0 = now_s();
  gradc_sgemm_im2col(ta, tb, m, n, k, x, geo, b, ldb, c, ldc);
  sgemm_seconds += now_s() - t0;
  sgemm_calls++;
}

static double *kernel_seconds;
static long *kernel_calls;
static int64_t nkernels, current = -1;
static double mark_time;

static void profile_mark(int64_t id) {
  double t = now_s();
  if (current >= 0 && current < nkernels) {
    kernel_seconds[current] += t - mark_time;
    kernel_calls[current]++;
  }
  if (id >= nkernels) {   /* grows once per model, in its first step */
    int64_t n = id + 64;
    double *s = realloc(kernel_seconds, sizeof(double) * (size_t)n);
    if (s) kernel_seconds = s;
    long *c = s ? realloc(kernel_calls, sizeof(long) * (size_t)n) : NULL;
    if (c) kernel_calls = c;
    if (s && c) {
      for (int64_t i = nkernels; i < n; i++) kernel_seconds[i] = 0, kernel_calls[i] = 0;
      nkernels = n;
    }
  }
  current = id;
  mark_time = now_s();   /* the bookkeeping is not the next kernel's time */
}

const JitSymbol *rt_symbols(int *n) {
  static JitSymbol table[] = {
      {"gradc_sgemm", (uintptr_t)gradc_sgemm}, {"cblas_dgemm", (uintptr_t)cblas_dgemm},
      {"tanhf", (uintptr_t)tanhf}, {"tanh", (uintptr_t)tanh},
      {"expf", (uintptr_t)expf},   {"exp", (uintptr_t)exp},
      {"logf", (uintptr_t)logf},   {"log", (uintptr_t)log},
      {"powf", (uintptr_t)powf},   {"pow", (uintptr_t)pow},
      {"gradc_profile_mark", (uintptr_t)profile_mark},
      {"gradc_parallel", (uintptr_t)gradc_parallel},
      {"gradc_sgemm_col2im", (uintptr_t)gradc_sgemm_col2im},
      {"gradc_scratch", (uintptr_t)gradc_scratch},
      {"gradc_sgemm_im2col", (uintptr_t)gradc_sgemm_im2col},
  };
  /* the products, timed while profiling */
  static const uintptr_t timed[][2] = {
      {(uintptr_t)gradc_sgemm, (uintptr_t)timed_sgemm},
      {(uintptr_t)gradc_sgemm_col2im, (uintptr_t)timed_sgemm_col2im},
      {(uintptr_t)gradc_sgemm_im2col, (uintptr_t)timed_sgemm_im2col},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    for (size_t k = 0; k < sizeof timed / sizeof *timed; k++)
      if (table[i].addr == timed[k][0] || table[i].addr == timed[k][1]) table[i].addr = timed[k][profiling];
  *n = (int)(sizeof table / sizeof *table);
  return table;
}

void rt_profile(bool on) { profiling = on; }

bool rt_profiling(void) { return profiling; }

double rt_kernel_seconds(int64_t id, long *calls) {
  bool known = id >= 0 && id < nkernels;
  if (calls) *calls = known ? kernel_calls[id] : 0;
  return known ? kernel_seconds[id] : 0;
}

double rt_sgemm_seconds(long *calls) {
  if (calls) *calls = sgemm_calls;
  return sgemm_seconds;
}

void rt_profile_reset(void) {
  sgemm_seconds = 0;
  sgemm_calls = 0;
  for (int64_t i = 0; i < nkernels; i++) kernel_seconds[i] = 0, kernel_calls[i] = 0;
  current = -1;
}

/* Our pool's count once chosen, else OpenBLAS's default. */
int rt_threads(void) { return pool_threads() > 0 ? pool_threads() : openblas_get_num_threads(); }

/* 0 = every core OpenBLAS sees.  When gemm.c's own kernels take the
 * products, they get the threads and OpenBLAS (left with the narrow
 * products, a few microseconds each) runs on the caller's: its workers
 * spin after every call and would take the cores from ours. */
void rt_set_threads(int n) {
  if (n <= 0) n = rt_threads();
  pool_set_threads(n);
  openblas_set_num_threads(gemm_own_kernels() ? 1 : n);
}

/* The kernel set OpenBLAS chose when it loaded (from the CPU, or from
 * OPENBLAS_CORETYPE): the benchmarks' numbers depend on it. */
const char *rt_blas_kernels(void) { return openblas_get_corename(); }
