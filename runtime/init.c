/*
 * init.c - parameter and optimizer-state initial values, Keras definitions.
 *
 * A counter-based generator: value i of a tensor is a pure function of (seed,
 * the tensor's name, i), so the same seed gives the same numbers in any order,
 * in the reference evaluator and in compiled code alike, and adding a
 * parameter leaves the others' values unchanged.
 *
 * Keras (keras/initializers/initializers_v2.py): glorot_uniform U(-l, l) with
 * l = sqrt(6 / (fan_in + fan_out)); he_uniform l = sqrt(6 / fan_in);
 * lecun_uniform l = sqrt(3 / fan_in); the *_normal variants draw a normal
 * truncated at 2 standard deviations with std = sqrt(scale / n) /
 * 0.87962566103423978 (the std of a unit normal truncated there), scale and n
 * as for the uniform ones (2/(fi+fo), 2/fi, 1/fi).  orthogonal is Keras 2's
 * Orthogonal(gain=1): the tensor as a matrix of prod(shape[:-1]) rows (the
 * fan-in) and shape[-1] columns, from a normal matrix of max x min, the Q
 * of its QR decomposition with each column times the sign of R's diagonal
 * (LAPACK, through blas.c), transposed back when rows < columns.  Values are
 * rounded to the tensor's dtype.
 *
 * The runtime's file, not the compiler's: every model instance (instance.c)
 * initialises its parameters with init_fill from its descriptor - the JIT's
 * and a shared object's alike, the .so's support library linking this file
 * (it needs libm only) - and the compiler's reference evaluator calls the
 * same function (compiler/descriptor.c, init_values), so one seed gives the
 * same numbers everywhere.  Declared in abi.h, which both sides include.
 */
#include <math.h>
#include <stdlib.h>

#include "abi.h"

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t rng_stream(uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull;           /* FNV-1a of the name */
  for (const char *c = name ? name : ""; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
  return splitmix64(seed ^ splitmix64(h));
}

/* Uniform in [0, 1) from counter i of a stream. */
double rng_uniform(uint64_t stream, uint64_t i) {
  return (double)(splitmix64(stream + splitmix64(i)) >> 11) * 0x1.0p-53;
}

uint64_t rng_step_stream(uint64_t stream, uint64_t step) {
  return splitmix64(stream ^ splitmix64(step));
}

uint64_t rng_keep_threshold(double rate) { return (uint64_t)ceil(rate * 0x1.0p53); }

bool rng_keep(uint64_t step_stream, uint64_t i, uint64_t threshold) {
  return (splitmix64(step_stream + splitmix64(i)) >> 11) >= threshold;
}

/* Standard normal by Box-Muller from counters 2i and 2i+1. */
double rng_normal(uint64_t stream, uint64_t i) {
  double u1 = 1.0 - rng_uniform(stream, 2 * i), u2 = rng_uniform(stream, 2 * i + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Normal redrawn until within 2 std: try k = 0, 1, ... on counter i*64+k.
 * 64 misses in a row have probability 0.0455^64; then 0 is returned. */
double rng_truncated(uint64_t stream, uint64_t i) {
  for (uint64_t k = 0; k < 64; k++) {
    double z = rng_normal(stream, i * 64 + k);
    if (fabs(z) <= 2.0) return z;
  }
  return 0.0;
}

static const double TRUNC_STD = 0.87962566103423978;

static double to_dtype(double v, DType dtype) {
  if (dtype == DT_F32) return (double)(float)v;
  if (dtype == DT_I32) return trunc(v);
  return v;
}

/* Keras 2 Orthogonal: see the top of the file.  The normal matrix is drawn
 * row-major, max x min, from counters 0, 1, ... of the stream. */
static bool orthogonal(double gain, DType dtype, double fan_in, uint64_t st, double *out, int64_t count) {
  int64_t rows = (int64_t)fan_in, cols = rows > 0 ? count / rows : 0;
  if (rows < 1 || cols < 1 || rows * cols != count || rows > INT32_MAX || cols > INT32_MAX) return false;
  int64_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
  double *q = malloc(sizeof(double) * (size_t)(m * n));
  if (!q) return false;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) q[i + j * m] = rng_normal(st, (uint64_t)(i * n + j));
  bool ok = rt_orthonormal_columns(q, (int)m, (int)n);
  for (int64_t r = 0; ok && r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      out[r * cols + c] = to_dtype(gain * (rows >= cols ? q[r + c * m] : q[c + r * m]), dtype);
  free(q);
  return ok;
}

bool init_fill(InitKind kind, double a, double b, DType dtype, double fi, double fo, const char *name,
               const double *values, uint64_t seed, double *out, int64_t count) {
  /* The kind comes from a descriptor: one we do not know is refused before
   * anything is written (the instance reports it). */
  if ((unsigned)kind >= INIT_COUNT) return false;
  uint64_t st = rng_stream(seed, name);
  if (kind == INIT_ORTHOGONAL) return orthogonal(a, dtype, fi, st, out, count);
  double lim = 0, std = 0, mean = 0;
  switch (kind) {
  case INIT_GLOROT_UNIFORM: lim = sqrt(6.0 / (fi + fo)); break;
  case INIT_HE_UNIFORM: lim = sqrt(6.0 / fi); break;
  case INIT_LECUN_UNIFORM: lim = sqrt(3.0 / fi); break;
  case INIT_GLOROT_NORMAL: std = sqrt(2.0 / (fi + fo)) / TRUNC_STD; break;
  case INIT_HE_NORMAL: std = sqrt(2.0 / fi) / TRUNC_STD; break;
  case INIT_LECUN_NORMAL: std = sqrt(1.0 / fi) / TRUNC_STD; break;
  case INIT_TRUNCATED_NORMAL:
  case INIT_NORMAL: mean = a, std = b; break;
  default: break;
  }
  for (int64_t i = 0; i < count; i++) {
    double v = 0;
    switch (kind) {
    case INIT_ZEROS: v = 0; break;
    case INIT_ONES: v = 1; break;
    case INIT_CONSTANT: v = a; break;
    case INIT_VALUES: v = values[i]; break;
    case INIT_UNIFORM: v = a + (b - a) * rng_uniform(st, (uint64_t)i); break;
    case INIT_GLOROT_UNIFORM:
    case INIT_HE_UNIFORM:
    case INIT_LECUN_UNIFORM: v = lim * (2 * rng_uniform(st, (uint64_t)i) - 1); break;
    case INIT_NORMAL: v = mean + std * rng_normal(st, (uint64_t)i); break;
    case INIT_TRUNCATED_NORMAL:
    case INIT_GLOROT_NORMAL:
    case INIT_HE_NORMAL:
    case INIT_LECUN_NORMAL: v = mean + std * rng_truncated(st, (uint64_t)i); break;
    case INIT_ORTHOGONAL:
    case INIT_COUNT: break;
    }
    out[i] = to_dtype(v, dtype);
  }
  return true;
}
