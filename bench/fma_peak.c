/*
 * fma_peak.c - the machine's measured peak of single-precision fused
 * multiply-adds per core: the yardstick the bench/ comparisons report speed
 * against, since the project's machines differ (Zen 4 runs AVX-512 on
 * 256-bit units, Zen 5 on 512-bit ones) and a ratio to PyTorch alone does
 * not say how far from the hardware both are.
 *
 * Each thread runs 12 independent chains of vector FMAs on registers only
 * (no memory traffic): enough chains to cover the FMA latency (4 cycles)
 * on every FMA port (2 on Zen 4 and Zen 5), few enough that AVX2's 16
 * registers hold them with the two operands.  FLOP/s = 2 x lanes x chains x
 * iterations / seconds; the best of 5 runs.  With T threads all run at
 * once, so a shared frequency limit shows; per core is the total over T.
 *
 *   cc -O2 -o fma_peak bench/fma_peak.c -lpthread && ./fma_peak 2
 *
 * prints, for AVX-512 (where the CPU has it) and AVX2:
 *   avx512 threads=1 gflops_per_core=117.9
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { ITERS = 20000000, CHAINS = 12 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static volatile float sink;

#define CHAIN12(FMA, a, b, c)                                                                      \
  a[0] = FMA(a[0], b, c), a[1] = FMA(a[1], b, c), a[2] = FMA(a[2], b, c), a[3] = FMA(a[3], b, c),     \
  a[4] = FMA(a[4], b, c), a[5] = FMA(a[5], b, c), a[6] = FMA(a[6], b, c), a[7] = FMA(a[7], b, c),     \
  a[8] = FMA(a[8], b, c), a[9] = FMA(a[9], b, c), a[10] = FMA(a[10], b, c), a[11] = FMA(a[11], b, c)

__attribute__((target("avx512f"))) static void *run512(void *arg) {
  (void)arg;
  __m512 a[CHAINS], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int k = 0; k < CHAINS; k++) a[k] = _mm512_set1_ps((float)k);
  for (long i = 0; i < ITERS; i++) CHAIN12(_mm512_fmadd_ps, a, b, c);
  __m512 s = a[0];
  for (int k = 1; k < CHAINS; k++) s = _mm512_add_ps(s, a[k]);
  sink = _mm512_reduce_add_ps(s);
  return NULL;
}

__attribute__((target("avx2,fma"))) static void *run256(void *arg) {
  (void)arg;
  __m256 a[CHAINS], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int k = 0; k < CHAINS; k++) a[k] = _mm256_set1_ps((float)k);
  for (long i = 0; i < ITERS; i++) CHAIN12(_mm256_fmadd_ps, a, b, c);
  __m256 s = a[0];
  for (int k = 1; k < CHAINS; k++) s = _mm256_add_ps(s, a[k]);
  float v[8];
  _mm256_storeu_ps(v, s);
  sink = v[0] + v[7];
  return NULL;
}

/* GFLOP/s of fn run on nthreads threads at once, all of them, best of 5. */
static double measure(void *(*fn)(void *), int lanes, int nthreads) {
  pthread_t t[64];
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    for (int k = 0; k < nthreads; k++)
      if (pthread_create(&t[k], NULL, fn, NULL)) {
        fprintf(stderr, "fma_peak: cannot start a thread\n");
        exit(1);
      }
    for (int k = 0; k < nthreads; k++) pthread_join(t[k], NULL);
    double gf = 2.0 * lanes * CHAINS * (double)ITERS * nthreads / (now() - t0) / 1e9;
    if (gf > best) best = gf;
  }
  return best;
}

int main(int argc, char **argv) {
  int nthreads = argc > 1 ? atoi(argv[1]) : 1;
  if (nthreads < 1 || nthreads > 64) {
    fprintf(stderr, "usage: fma_peak [THREADS 1..64]\n");
    return 2;
  }
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    printf("avx512 threads=%d gflops_per_core=%.1f\n", nthreads, measure(run512, 16, nthreads) / nthreads);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    printf("avx2 threads=%d gflops_per_core=%.1f\n", nthreads, measure(run256, 8, nthreads) / nthreads);
  return 0;
}
