/*
 * blas.c - the outside functions compiled code calls, by name.
 *
 * OpenBLAS is used from here and from gemm.c, which hands it the products
 * its own kernels do not take.  The JIT resolves the module's calls to
 * these addresses first, so the code never depends on what the dynamic
 * linker happened to load.  The functions are abi.h's list
 * (GRADC_ABI_FUNCTIONS), the one the code generator emits calls from, so a
 * function compiled code may call cannot be missing from the table.
 *
 * With profile (rt_symbols), gradc_sgemm and the convolution products
 * (gradc_sgemm_col2im, _im2col) resolve to wrappers that add up the time
 * spent inside them: the benchmark's "share of step time in sgemm"; and
 * the code calls gradc_profile_mark(node id) as each kernel starts (-1 at
 * the end of a step), so the time between two marks is charged to the
 * kernel of the first.  Times go to the calling instance's RtProfile
 * (context.c): two profiled models do not mix their tables.
 *
 * LAPACK's QR (dgeqrf, dorgqr, which OpenBLAS exports) gives the
 * orthogonal initializer its matrices (init.c): a support library of a .so
 * links this file for it, and still needs nothing but OpenBLAS and libm.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "runtime.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void timed_gradc_sgemm(RtContext *rt, int o, int ta, int tb, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  double t0 = now_s();
  gradc_sgemm(rt, o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  rt->profile.sgemm_seconds += now_s() - t0;
  rt->profile.sgemm_calls++;
}

/* Counted as product time: nearly all of its work is the product's FMAs. */
static void timed_gradc_sgemm_col2im(RtContext *rt, int ta, int tb, int m, int n, int k, const float *a, int lda,
                               const float *b, int ldb, float *dx, const int32_t *geo) {
  double t0 = now_s();
  gradc_sgemm_col2im(rt, ta, tb, m, n, k, a, lda, b, ldb, dx, geo);
  rt->profile.sgemm_seconds += now_s() - t0;
  rt->profile.sgemm_calls++;
}

static void timed_gradc_sgemm_im2col(RtContext *rt, int ta, int tb, int m, int n, int k, const float *x,
                               const int32_t *geo, const float *b, int ldb, float *c, int ldc) {
  double t0 = now_s();
  gradc_sgemm_im2col(rt, ta, tb, m, n, k, x, geo, b, ldb, c, ldc);
  rt->profile.sgemm_seconds += now_s() - t0;
  rt->profile.sgemm_calls++;
}

void gradc_profile_mark(RtContext *rt, int64_t id) {
  RtProfile *p = &rt->profile;
  double t = now_s();
  if (p->current >= 0 && p->current < p->nkernels) {
    p->kernel_seconds[p->current] += t - p->mark_time;
    p->kernel_calls[p->current]++;
  }
  if (id >= p->nkernels) {   /* grows once per model, in its first step */
    int64_t n = id + 64;
    double *s = realloc(p->kernel_seconds, sizeof(double) * (size_t)n);
    if (s) p->kernel_seconds = s;
    long *c = s ? realloc(p->kernel_calls, sizeof(long) * (size_t)n) : NULL;
    if (c) p->kernel_calls = c;
    if (s && c) {
      for (int64_t i = p->nkernels; i < n; i++) p->kernel_seconds[i] = 0, p->kernel_calls[i] = 0;
      p->nkernels = n;
    }
  }
  p->current = id;
  p->mark_time = now_s();   /* the bookkeeping is not the next kernel's time */
}

/* Two constant tables from abi.h's one list of outside functions, so that
 * a function codegen may call cannot be missing here, and models compiled
 * at once in two threads never write a shared table.  With --profile, the
 * functions the list marks TIMED resolve to timed_<symbol> above. */
#define ADDRESS_UNTIMED(sym) (uintptr_t)sym
#define ADDRESS_TIMED(sym) (uintptr_t)timed_##sym
#define PLAIN(id, sym, call, profile) [ABI_FN_##id] = {#sym, (uintptr_t)sym},
#define TIMED(id, sym, call, profile) [ABI_FN_##id] = {#sym, ADDRESS_##profile(sym)},
const AbiSymbol *rt_symbols(bool profile, int *n) {
  static const AbiSymbol plain[ABI_FN_COUNT] = {GRADC_ABI_FUNCTIONS(PLAIN)};
  static const AbiSymbol timed[ABI_FN_COUNT] = {GRADC_ABI_FUNCTIONS(TIMED)};
  *n = ABI_FN_COUNT;
  return profile ? timed : plain;
}
#undef PLAIN
#undef TIMED

double rt_kernel_seconds(const RtContext *rt, int64_t id, long *calls) {
  const RtProfile *p = &rt->profile;
  bool known = id >= 0 && id < p->nkernels;
  if (calls) *calls = known ? p->kernel_calls[id] : 0;
  return known ? p->kernel_seconds[id] : 0;
}

double rt_sgemm_seconds(const RtContext *rt, long *calls) {
  if (calls) *calls = rt->profile.sgemm_calls;
  return rt->profile.sgemm_seconds;
}

void rt_profile_reset(RtContext *rt) {
  RtProfile *p = &rt->profile;
  p->sgemm_seconds = 0;
  p->sgemm_calls = 0;
  for (int64_t i = 0; i < p->nkernels; i++) p->kernel_seconds[i] = 0, p->kernel_calls[i] = 0;
  p->current = -1;
}

/* LAPACK as OpenBLAS exports it (Fortran calling convention; Debian's
 * OpenBLAS has 32-bit integers and no lapack.h of its own). */
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
             double *work, const int *lwork, int *info);

bool rt_orthonormal_columns(double *a, int m, int n) {
  if (m < n || n < 1) return false;
  double *tau = malloc(sizeof(double) * (size_t)n), query = 0;
  int info = 0, lwork = -1;
  if (!tau) return false;
  dgeqrf_(&m, &n, a, &m, tau, &query, &lwork, &info);   /* asks for the workspace size */
  lwork = info == 0 && query >= n ? (int)query : n * 64;
  double *work = malloc(sizeof(double) * (size_t)lwork), *signs = malloc(sizeof(double) * (size_t)n);
  bool ok = work && signs;
  if (ok) dgeqrf_(&m, &n, a, &m, tau, work, &lwork, &info);
  ok = ok && info == 0;
  for (int j = 0; ok && j < n; j++) signs[j] = a[j + (size_t)j * (size_t)m] < 0 ? -1 : 1;
  if (ok) dorgqr_(&m, &n, &n, a, &m, tau, work, &lwork, &info);
  ok = ok && info == 0;
  for (int j = 0; ok && j < n; j++)
    for (int i = 0; i < m; i++) a[i + (size_t)j * (size_t)m] *= signs[j];
  free(tau);
  free(work);
  free(signs);
  return ok;
}

static pthread_once_t single_once = PTHREAD_ONCE_INIT;

static void blas_single_thread(void) { openblas_set_num_threads(1); }

void rt_blas_threads(int n) {
  rt_default_threads();   /* read before it is lowered */
  if (gemm_own_kernels()) pthread_once(&single_once, blas_single_thread);
  else openblas_set_num_threads(n);
}

void rt_dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m * n; i++) c[i] = 0;
    return;
  }
  /* The same policy as a model's (rt_blas_threads): where gemm.c's own
   * kernels take the compiled products, OpenBLAS runs on one thread - a
   * `gradc check` alone would otherwise start its spinning workers, which
   * on a busy machine cost more than they gain on these small products. */
  rt_default_threads();
  if (gemm_own_kernels()) pthread_once(&single_once, blas_single_thread);
  /* cblas takes int sizes; the evaluator's products are far below 2^31 */
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              1.0, a, ta ? (int)m : (int)k, b, tb ? (int)k : (int)n, 0.0, c, (int)n);
}

/* The kernel set OpenBLAS chose when it loaded (from the CPU, or from
 * OPENBLAS_CORETYPE): the benchmarks' numbers depend on it. */
const char *rt_blas_kernels(void) { return openblas_get_corename(); }
