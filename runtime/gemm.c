/*
 * gemm.c - the single-precision products of compiled code: gradc_sgemm.
 *
 * Compiled code calls gradc_sgemm with cblas_sgemm's arguments.  On a CPU
 * with AVX-512 the products a model spends its time in are computed here;
 * everything else (no AVX-512, fewer than 16 columns, alpha != 1 or
 * beta != 0, column-major) goes to OpenBLAS.  GRADC_GEMM=blas in the
 * environment sends every product to OpenBLAS, for comparisons.
 *
 * Why our own: OpenBLAS picks one kernel set per process, from the CPU or
 * from OPENBLAS_CORETYPE, and a machine that pins it to the AVX2 set
 * (Haswell) halves what a core with 512-bit FMA units does.  And the
 * shapes of training steps are not the square ones BLAS kernels are tuned
 * for: an im2col product is 73,728 x 288 by 288 x 64, where packing A
 * (the whole 85 MB patch matrix) costs as much memory traffic as the
 * product; our kernel reads A where it lies.
 *
 * The kernel keeps a 12 x 32 tile of C in 24 zmm registers and for each k
 * loads one row of B (two registers) and broadcasts 12 elements of A from
 * memory into the FMAs.  A is never packed: its elements are read through
 * (row stride, k stride), which covers A and A^T alike; only a last partial
 * tile of rows is copied, zero-padded, so the kernel needs no row cases.
 * B is read in place when it is not transposed (a row of 32 consecutive
 * floats per k); a transposed B is packed in 16 x 16 blocks through
 * registers.  Loops block k by KC (a tile's B rows stay in L1) and rows by
 * MC (A's rows stay in L2).
 *
 * Parts: a product is split over threads (pool.c) by whole tiles, along M
 * or N, whichever has more, or by whole k blocks when B is the larger
 * operand (below).  Each C element is computed by the same sequence of
 * FMAs and additions whatever the split, so results do not depend on the
 * thread count.
 *
 * Every buffer a product uses between calls (per-part scratch, split-k
 * partial sums, col2im tiles, im2col chunks) belongs to the calling model
 * instance's context (GemmBuffers in RtContext, context.c), as does the
 * pool its parts run on: two instances multiply concurrently without
 * sharing either.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GRADC_AVX512 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))
#endif

enum {
  MR = 12, NR = 32,        /* the register tile */
  KC = 384,                /* k block: a tile's B rows, 48 KB, in L1 */
  KC_MAX = KC + KC / 8,    /* a last block this short joins the one before */
  MC = 10 * MR,            /* row block: A's rows in L2 */
  NC = 256,                /* column block of a packed (transposed) B */
  MAX_PARTS = 64,
  MIN_N = 16,              /* narrower products waste most of a tile */
};

/* Work below this many flops per part is not worth a hand-over. */
static const double PART_FLOPS = 4e6;

/* A convolution's geometry, as compiled code passes it: abi.h's ABI_GEO_*
 * array of int32 (input h, w, c; output oh, ow; kernel kh, kw; strides,
 * dilations; padding top, left).  Its patch matrix (im2col) has a row per
 * output pixel (batch, oh, ow) and a column per (ki, kj, channel). */
_Static_assert(ABI_ROW_MAJOR == (int)CblasRowMajor && ABI_NO_TRANS == (int)CblasNoTrans && ABI_TRANS == (int)CblasTrans,
               "compiled code passes CBLAS's own numbers (abi.h)");

typedef struct Gemm {
  bool ta, tb;
  int m, n, k;
  const float *a, *b;
  int lda, ldb;
  float *c;
  int ldc;
  bool split_n;            /* parts split N (else M), in whole tiles */
  bool split_k;            /* parts split k, in whole k blocks (kc_at) */
  int tiles;
  float *kpart;            /* split_k: C's partial sum of k block b > 0 at (b - 1) m n */
  GemmBuffers *buffers;    /* the calling instance's (run_parts) */
  const float *x;          /* with geo: A is x's patch matrix (or its transpose) */
  const int32_t *geo;
  const float *zeros;      /* with geo, not ta: a row of zeros, for taps in the padding */
} Gemm;

/* Per-part scratch: a packed transposed B block, the last partial column
 * panel of B, the last partial row tile of A, and a block of patches. */
typedef struct Scratch {
  float *bpack, *bedge, *aedge, *apack;
} Scratch;

/* A buffer whose size depends on the layer: grown on first need, kept. */
typedef struct Growing {
  float *mem;
  size_t cap;   /* floats */
} Growing;

/* One instance's buffers (RtContext.gemm), made on its first product. */
struct GemmBuffers {
  Scratch scratch[MAX_PARTS];
  Growing kpart;                 /* the partial sums of split_k products */
  Growing c2i[MAX_PARTS];        /* gradc_sgemm_col2im's per-part scratch */
  Growing im2col_chunk;          /* im2col_blas's rows of patches */
  Growing zeros;                 /* a row of x's channels, all zero (Gemm.zeros) */
};

static GemmBuffers *buffers(RtContext *rt) {
  if (!rt->gemm) rt->gemm = calloc(1, sizeof *rt->gemm);
  return rt->gemm;
}

void gemm_buffers_free(GemmBuffers *g) {
  if (!g) return;
  for (int p = 0; p < MAX_PARTS; p++) {
    Scratch *s = &g->scratch[p];
    free(s->bpack), free(s->bedge), free(s->aedge), free(s->apack);
    free(g->c2i[p].mem);
  }
  free(g->kpart.mem);
  free(g->im2col_chunk.mem);
  free(g->zeros.mem);
  free(g);
}

static float *grow(Growing *g, size_t floats) {
  if (g->cap < floats) {
    free(g->mem);
    g->mem = aligned_alloc(64, (floats * sizeof(float) + 63) & ~(size_t)63);
    g->cap = g->mem ? floats : 0;
  }
  return g->mem;
}

/* The k block starting at pc of a sum ending at k1: KC, or all that is
 * left when that is at most KC_MAX.  A short last block would cost a
 * whole pass over C for a few FMAs per element (the MLP's 784 inputs made
 * blocks of 384, 384 and 16). */
static int kc_at(int pc, int k1) { return k1 - pc <= KC_MAX ? k1 - pc : KC; }

static int kblocks(int k) {
  int n = 0;
  for (int pc = 0; pc < k; pc += kc_at(pc, k)) n++;
  return n;
}

static int mode;   /* 0 OpenBLAS only, 1 our kernels: decided once */
static pthread_once_t mode_once = PTHREAD_ONCE_INIT;

static bool alloc_scratch(Scratch *s) {
  if (s->bpack) return true;
  s->bpack = aligned_alloc(64, sizeof(float) * KC_MAX * NC);
  s->bedge = aligned_alloc(64, sizeof(float) * KC_MAX * NR);
  s->aedge = aligned_alloc(64, sizeof(float) * KC_MAX * MR);
  s->apack = aligned_alloc(64, sizeof(float) * KC_MAX * MC);
  if (s->bpack && s->bedge && s->aedge && s->apack) return true;
  free(s->bpack), free(s->bedge), free(s->aedge), free(s->apack);
  *s = (Scratch){0};
  return false;
}

/* Where tap `tap` (ki * kw + kj) of output pixel `pixel` (oh * ow_count +
 * ow, within its image) reads: the offset of its channel 0 within the
 * image, or -1 where it falls in the padding. */
static ptrdiff_t tap_at(const int32_t *q, int pixel, int tap) {
  int ih = pixel / q[ABI_GEO_OW] * q[ABI_GEO_SH] + tap / q[ABI_GEO_KW] * q[ABI_GEO_DH] - q[ABI_GEO_PT];
  int iw = pixel % q[ABI_GEO_OW] * q[ABI_GEO_SW] + tap % q[ABI_GEO_KW] * q[ABI_GEO_DW] - q[ABI_GEO_PL];
  if (ih < 0 || ih >= q[ABI_GEO_H] || iw < 0 || iw >= q[ABI_GEO_W]) return -1;
  return ((ptrdiff_t)ih * q[ABI_GEO_W] + iw) * q[ABI_GEO_C];
}

/* The patch matrix of x (geometry q), rows [r0, r0 + nr) by columns
 * [k0, k0 + nk), into out row-major (nk floats a row): each pixel's patch
 * is runs of channels copied from x, zeros where a tap falls in the
 * padding. */
static void pack_patches(const int32_t *q, const float *x, int r0, int nr, int k0, int nk, float *out) {
  int c = q[ABI_GEO_C], per = q[ABI_GEO_OH] * q[ABI_GEO_OW];
  for (int r = r0; r < r0 + nr; r++, out += nk) {
    const float *image = x + (size_t)(r / per) * q[ABI_GEO_H] * q[ABI_GEO_W] * c;
    for (int k = k0; k < k0 + nk;) {
      int ch = k % c, run = c - ch < k0 + nk - k ? c - ch : k0 + nk - k;
      ptrdiff_t at = tap_at(q, r % per, k / c);
      float *o = out + (k - k0);
      if (at < 0) memset(o, 0, sizeof(float) * (size_t)run);
      else memcpy(o, image + at + ch, sizeof(float) * (size_t)run);
      k += run;
    }
  }
}

/* How many parts a product of `flops` in `pieces` indivisible pieces is
 * worth: one per thread, none smaller than PART_FLOPS. */
static int parts_for(const RtContext *rt, int pieces, double flops) {
  int parts = rt->serial ? 1 : pool_threads(rt->pool);
  if (parts > pieces) parts = pieces;
  if (parts > flops / PART_FLOPS) parts = (int)(flops / PART_FLOPS);
  if (parts > MAX_PARTS) parts = MAX_PARTS;
  return parts < 1 ? 1 : parts;
}

#ifdef GRADC_AVX512

/* r[i] = column i of the 16 x 16 block whose rows r held. */
AVX512 static inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

/* Masked moves where the mask is partial, plain ones where it is full
 * (nearly always): on Zen 4 a masked store of a zmm register is several
 * times slower than a plain one even with every lane set. */
AVX512 static inline __m512 load16(const float *p, __mmask16 m) {
  return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

AVX512 static inline void store16(float *p, __mmask16 m, __m512 v) {
  if (m == 0xffff) _mm512_storeu_ps(p, v);
  else if (m) _mm512_mask_storeu_ps(p, m, v);
}

/* pack_patches for our kernels (the kernel gradient's patches, and the
 * forward ones of fewer than 16 channels): the taps are walked, not
 * divided out of each column (four integer divisions per tap), and a run
 * of channels is moved through registers instead of by memcpy, whose call
 * cost as much as copying the 16 floats of a 16-channel layer. */
AVX512 static void pack_patches16(const int32_t *q, const float *x, int r0, int nr, int k0, int nk, float *out) {
  int c = q[ABI_GEO_C], per = q[ABI_GEO_OH] * q[ABI_GEO_OW], kw = q[ABI_GEO_KW];
  int ch0 = k0 % c, ki0 = k0 / c / kw, kj0 = k0 / c % kw;
  size_t image_size = (size_t)q[ABI_GEO_H] * q[ABI_GEO_W] * c;
  const float *image = x + (size_t)(r0 / per) * image_size;
  int oh = r0 % per / q[ABI_GEO_OW], ow = r0 % per % q[ABI_GEO_OW];   /* row r's pixel, stepped */
  for (int r = r0; r < r0 + nr; r++, out += nk) {
    int ih0 = oh * q[ABI_GEO_SH] - q[ABI_GEO_PT], iw0 = ow * q[ABI_GEO_SW] - q[ABI_GEO_PL];
    int ch = ch0, ki = ki0, kj = kj0;
    for (int k = k0; k < k0 + nk;) {
      int run = c - ch < k0 + nk - k ? c - ch : k0 + nk - k;
      int ih = ih0 + ki * q[ABI_GEO_DH], iw = iw0 + kj * q[ABI_GEO_DW];
      float *o = out + (k - k0);
      bool inside = ih >= 0 && ih < q[ABI_GEO_H] && iw >= 0 && iw < q[ABI_GEO_W];
      const float *src = image + ((ptrdiff_t)ih * q[ABI_GEO_W] + iw) * c + ch;
      for (int i = 0; i < run; i += 16) {
        __mmask16 m = run - i >= 16 ? 0xffff : (__mmask16)((1u << (run - i)) - 1);
        store16(o + i, m, inside ? load16(src + i, m) : _mm512_setzero_ps());
      }
      k += run;
      ch = 0;
      if (++kj == kw) kj = 0, ki++;
    }
    if (++ow == q[ABI_GEO_OW] && (ow = 0, ++oh == q[ABI_GEO_OH])) oh = 0, image += image_size;
  }
}

/* Packs op(B)[0:kc, 0:nc] (b points at its first element) as panels of NR
 * columns, kc rows of NR floats each, zero beyond nc. */
AVX512 static void pack_b(int kc, int nc, const float *b, int ldb, bool tb, float *out) {
  for (int j0 = 0; j0 < nc; j0 += NR, out += (size_t)kc * NR) {
    int nr = nc - j0 < NR ? nc - j0 : NR, k = 0;
    if (tb && nr == NR)
      for (; k + 16 <= kc; k += 16)
        for (int h = 0; h < NR; h += 16) {
          __m512 r[16];
          for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(b + (size_t)(j0 + h + j) * ldb + k);
          transpose16(r);
          for (int q = 0; q < 16; q++) _mm512_storeu_ps(out + (size_t)(k + q) * NR + h, r[q]);
        }
    for (; k < kc; k++)
      for (int j = 0; j < NR; j++)
        out[(size_t)k * NR + j] = j >= nr ? 0.f : tb ? b[(size_t)(j0 + j) * ldb + k] : b[(size_t)k * ldb + j0 + j];
  }
}

/* Packs the mr < MR rows of op(A)[0:mr, 0:kc] k-major, zero-padded to MR. */
static void pack_a_edge(int mr, int kc, const float *a, size_t rs, size_t cs, float *out) {
  for (int k = 0; k < kc; k++)
    for (int i = 0; i < MR; i++) out[(size_t)k * MR + i] = i < mr ? a[i * rs + k * cs] : 0.f;
}

/* Lanes of the tile's two halves a panel of nr columns fills. */
static inline __mmask16 mask_lo(int nr) { return nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1); }
static inline __mmask16 mask_hi(int nr) {
  return nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
}

/* C[0:mr, 0:nr] = (first) or += the tile's sums. */
AVX512 static inline void put_tile(__m512 acc[MR][2], float *c, int ldc, bool first, int mr, int nr) {
  __mmask16 m0 = mask_lo(nr), m1 = mask_hi(nr);
  for (int i = 0; i < mr; i++, c += ldc) {
    if (!first) {
      acc[i][0] = _mm512_add_ps(acc[i][0], load16(c, m0));
      acc[i][1] = _mm512_add_ps(acc[i][1], load16(c + 16, m1));
    }
    store16(c, m0, acc[i][0]);
    store16(c + 16, m1, acc[i][1]);
  }
}

/* C[0:mr, 0:nr] (=|+=) sum over kc of A(i,k) B(k,j), A(i,k) at a[i*rs + k*cs],
 * B row k at b + k*bs.  With rows (2 MR pointers), columns 0-15 of row i
 * of the sum are added to rows[i] and columns 16-31 to rows[MR + i]
 * instead (each skipped where NULL), and c, ldc, first and mr are unused. */
AVX512 static void kernel(int kc, const float *a, size_t rs, size_t cs, const float *b, size_t bs,
                          float *c, int ldc, bool first, int mr, int nr, float *const *rows) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  if (nr <= 16) {
    /* A panel of at most 16 columns (a layer of 16 channels): the upper
     * half of the tile would be FMAs on zero padding, half the time. */
    for (int k = 0; k < kc; k++, a += cs, b += bs) {
      __m512 b0 = _mm512_loadu_ps(b);
#pragma GCC unroll 12
      for (int i = 0; i < MR; i++) acc[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * rs]), b0, acc[i][0]);
    }
  } else {
    for (int k = 0; k < kc; k++, a += cs, b += bs) {
      __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; i++) {
        __m512 ai = _mm512_set1_ps(a[i * rs]);
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      }
    }
  }
  __mmask16 m0 = mask_lo(nr), m1 = mask_hi(nr);
  if (rows) {
    /* rows[i]: where row i's columns 0-15 go, rows[MR + i] its 16-31 */
    for (int i = 0; i < MR; i++) {
      if (rows[i]) store16(rows[i], m0, _mm512_add_ps(load16(rows[i], m0), acc[i][0]));
      if (rows[MR + i]) store16(rows[MR + i], m1, _mm512_add_ps(load16(rows[MR + i], m1), acc[i][1]));
    }
    return;
  }
  put_tile(acc, c, ldc, first, mr, nr);
}

/* A convolution's forward product reads x through a table instead of
 * packing its patches (pack_patches16 wrote, and the kernel read back,
 * nine floats for every float of x: as long as the product itself in a
 * 16-channel layer).  The k block is cut where taps change (Segs); for a
 * tile of MR output pixels the table holds, per segment, where each
 * pixel's channels of that tap start in x, or a row of zeros where the tap
 * falls in the padding and for rows past the last. */
enum { MAX_SEGS = KC_MAX / 16 + 2 };   /* taps a k block spans, channels >= 16 */

/* Segment s: channels [ch0, ch0 + len) of the tap at (dh, dw) rows and
 * columns from a pixel's window origin. */
typedef struct Segs {
  int n, dh[MAX_SEGS], dw[MAX_SEGS], ch0[MAX_SEGS], len[MAX_SEGS];
} Segs;

/* The tables live in the part's patch buffer, which they never outgrow. */
_Static_assert((size_t)MC / MR * MAX_SEGS * MR * sizeof(float *) <= (size_t)KC_MAX * MC * sizeof(float),
               "a k block's tables fit in Scratch.apack");

static void make_segs(const int32_t *q, int k0, int kc, Segs *sg) {
  int c = q[ABI_GEO_C];
  sg->n = 0;
  for (int k = k0; k < k0 + kc;) {
    int ch = k % c, len = c - ch < k0 + kc - k ? c - ch : k0 + kc - k, tap = k / c;
    sg->dh[sg->n] = tap / q[ABI_GEO_KW] * q[ABI_GEO_DH], sg->dw[sg->n] = tap % q[ABI_GEO_KW] * q[ABI_GEO_DW];
    sg->ch0[sg->n] = ch, sg->len[sg->n] = len;
    sg->n++;
    k += len;
  }
}

/* The tables of the tiles of rows [r0, r0 + nr), one after another:
 * tile t's segment s, row i at table[(t * sg->n + s) * MR + i]. */
static void make_table(const int32_t *q, const float *x, const float *zeros, int r0, int nr, const Segs *sg,
                       const float **table) {
  int c = q[ABI_GEO_C], per = q[ABI_GEO_OH] * q[ABI_GEO_OW];
  size_t image_size = (size_t)q[ABI_GEO_H] * q[ABI_GEO_W] * c;
  const float *image = x + (size_t)(r0 / per) * image_size;
  int oh = r0 % per / q[ABI_GEO_OW], ow = r0 % per % q[ABI_GEO_OW];
  for (int t = 0; t * MR < nr; t++, table += (size_t)sg->n * MR)
    for (int i = 0; i < MR; i++) {
      bool row = t * MR + i < nr;
      int ih0 = oh * q[ABI_GEO_SH] - q[ABI_GEO_PT], iw0 = ow * q[ABI_GEO_SW] - q[ABI_GEO_PL];
      for (int s = 0; s < sg->n; s++) {
        int ih = ih0 + sg->dh[s], iw = iw0 + sg->dw[s];
        bool inside = row && ih >= 0 && ih < q[ABI_GEO_H] && iw >= 0 && iw < q[ABI_GEO_W];
        table[s * MR + i] = inside ? image + ((ptrdiff_t)ih * q[ABI_GEO_W] + iw) * c : zeros;
      }
      if (row && ++ow == q[ABI_GEO_OW] && (ow = 0, ++oh == q[ABI_GEO_OH])) oh = 0, image += image_size;
    }
}

/* kernel's product for one tile, A read through its table; B row k at
 * b + k*bs as there. */
AVX512 static void kernel_table(const Segs *sg, const float *const *table, const float *b, size_t bs, float *c,
                                int ldc, bool first, int mr, int nr) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int s = 0; s < sg->n; s++, table += MR) {
    const float *a[MR];
    for (int i = 0; i < MR; i++) a[i] = table[i] + sg->ch0[s];
    int len = sg->len[s];
    if (nr <= 16) {
      for (int k = 0; k < len; k++, b += bs) {
        __m512 b0 = _mm512_loadu_ps(b);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) acc[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(a[i][k]), b0, acc[i][0]);
      }
      continue;
    }
    for (int k = 0; k < len; k++, b += bs) {
      __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
      for (int i = 0; i < MR; i++) {
        __m512 ai = _mm512_set1_ps(a[i][k]);
        acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      }
    }
  }
  put_tile(acc, c, ldc, first, mr, nr);
}

/* C[i0:i1, j0:j1] of the product, serially, summed over k in [k0, k1) (k0
 * a k block's start, kc_at) into out (C's layout, row stride ldc):
 * written by the first k block, added to by the others. */
AVX512 static void block(const Gemm *g, int i0, int i1, int j0, int j1, int k0, int k1, float *out, int ldc,
                         const Scratch *s) {
  size_t ars = g->ta ? 1 : (size_t)g->lda, acs = g->ta ? (size_t)g->lda : 1;
  for (int jc = j0; jc < j1; jc += NC) {
    int nc = j1 - jc < NC ? j1 - jc : NC;
    for (int pc = k0, kc; pc < k1; pc += kc) {
      kc = kc_at(pc, k1);
      const float *bs = g->tb ? g->b + (size_t)jc * g->ldb + pc : g->b + (size_t)pc * g->ldb + jc;
      int nfull = nc / NR * NR;
      /* a last panel of exactly 16 columns is read where it lies: the
       * kernel's 16-column path loads no more (see pb below) */
      if (g->tb) pack_b(kc, nc, bs, g->ldb, true, s->bpack);
      else if (nfull < nc && nc - nfull != 16) pack_b(kc, nc - nfull, bs + nfull, g->ldb, false, s->bedge);
      Segs sg = {0};
      if (g->zeros) make_segs(g->geo, pc, kc, &sg);
      for (int ic = i0; ic < i1; ic += MC) {
        int mc = i1 - ic < MC ? i1 - ic : MC, mfull = mc / MR * MR;
        const float *as = s->apack, **table = (const float **)s->apack;
        size_t rs = ars, cs = acs;
        if (!g->geo) as = g->a + ic * rs + pc * cs;
        else if (g->zeros)   /* where this block's patches lie in x */
          make_table(g->geo, g->x, g->zeros, ic, mc, &sg, table);
        else if (g->ta)   /* this block of A, packed from the patches of x */
          pack_patches16(g->geo, g->x, pc, kc, ic, mc, s->apack), rs = 1, cs = (size_t)mc;
        else
          pack_patches16(g->geo, g->x, ic, mc, pc, kc, s->apack), rs = (size_t)kc, cs = 1;
        if (mfull < mc && !g->zeros) pack_a_edge(mc - mfull, kc, as + mfull * rs, rs, cs, s->aedge);
        for (int jr = 0; jr < nc; jr += NR) {
          int nr = nc - jr < NR ? nc - jr : NR;
          bool edge = !g->tb && nr < NR && nr != 16;
          const float *pb = g->tb ? s->bpack + (size_t)jr * kc : edge ? s->bedge : bs + jr;
          size_t pbs = g->tb || edge ? NR : (size_t)g->ldb;
          float *c = out + (size_t)ic * ldc + jc + jr;
          if (g->zeros) {
            for (int ir = 0; ir < mc; ir += MR)
              kernel_table(&sg, table + (size_t)(ir / MR) * sg.n * MR, pb, pbs, c + (size_t)ir * ldc, ldc, pc == k0,
                           mc - ir < MR ? mc - ir : MR, nr);
            continue;
          }
          for (int ir = 0; ir < mfull; ir += MR)
            kernel(kc, as + ir * rs, rs, cs, pb, pbs, c + (size_t)ir * ldc, ldc, pc == k0, MR, nr, NULL);
          if (mfull < mc)
            kernel(kc, s->aedge, 1, MR, pb, pbs, c + (size_t)mfull * ldc, ldc, pc == k0, mc - mfull, nr, NULL);
        }
      }
    }
  }
}

static void part(void *arg, int p, int nparts) {
  const Gemm *g = arg;
  Scratch *scratch = g->buffers->scratch;
  if (g->split_k) {
    /* k block b goes to the part its middle falls in, so the parts get
     * equal shares of k as nearly as whole blocks allow */
    for (int k0 = 0, k1, b = 0; k0 < g->k; k0 = k1, b++) {
      k1 = k0 + kc_at(k0, g->k);
      if ((int)((int64_t)(k0 + k1) / 2 * nparts / g->k) != p) continue;
      float *out = b ? g->kpart + (size_t)(b - 1) * g->m * g->n : g->c;
      block(g, 0, g->m, 0, g->n, k0, k1, out, b ? g->n : g->ldc, &scratch[p]);
    }
    return;
  }
  int t0 = (int)((int64_t)g->tiles * p / nparts), t1 = (int)((int64_t)g->tiles * (p + 1) / nparts);
  if (t0 == t1) return;
  if (g->split_n) {
    int j1 = t1 * NR < g->n ? t1 * NR : g->n;
    block(g, 0, g->m, t0 * NR, j1, 0, g->k, g->c, g->ldc, &scratch[p]);
  } else {
    int i1 = t1 * MR < g->m ? t1 * MR : g->m;
    block(g, t0 * MR, i1, 0, g->n, 0, g->k, g->c, g->ldc, &scratch[p]);
  }
}

/* split_k, after the parts: C += each later block's partial, in k order -
 * the additions a single part makes as it adds each k block into C. */
AVX512 static void combine(void *arg, int p, int nparts) {
  const Gemm *g = arg;
  int r0 = (int)((int64_t)g->m * p / nparts), r1 = (int)((int64_t)g->m * (p + 1) / nparts);
  int blocks = kblocks(g->k);
  for (int i = r0; i < r1; i++) {
    float *c = g->c + (size_t)i * g->ldc;
    for (int b = 1; b < blocks; b++) {
      const float *q = g->kpart + ((size_t)(b - 1) * g->m + i) * g->n;
      for (int j = 0; j < g->n; j++) c[j] += q[j];
    }
  }
}

/* Runs g in parts over the pool; false when not even one part's scratch
 * could be had.
 *
 * When B is larger than C (x W with a weight of more inputs than the
 * batch has rows), the parts split k: each reads only its own rows of B.
 * Split along N instead, each would read a slice of every row of the
 * weight, which the other core has just written in its row slice of the
 * optimizer's update: on the 2-core machines the MLP's first-layer update
 * then took 0.123 ms a step, against 0.050 with k split (0.125 against
 * 0.035 in a C benchmark of that layer alone).  The price
 * is writing and adding the partial sums of the later k blocks. */
static bool run_parts(RtContext *rt, Gemm *g) {
  if (!(g->buffers = buffers(rt))) return false;
  Scratch *scratch = g->buffers->scratch;
  int tm = (g->m + MR - 1) / MR, tn = (g->n + NR - 1) / NR, nblocks = kblocks(g->k);
  g->split_n = tn >= tm;
  g->tiles = g->split_n ? tn : tm;
  int parts = parts_for(rt, g->tiles, 2.0 * g->m * g->n * g->k);
  g->split_k = false;
  if (parts > 1 && nblocks > 1 && g->k > g->m && !g->geo &&
      (g->kpart = grow(&g->buffers->kpart, (size_t)(nblocks - 1) * g->m * g->n))) {
    g->split_k = true;
    parts = parts_for(rt, nblocks, 2.0 * g->m * g->n * g->k);
  }
  for (int p = 1; p < parts; p++)
    if (!alloc_scratch(&scratch[p])) parts = p;   /* fewer parts, same results */
  if (!alloc_scratch(&scratch[0])) return false;
  int ran = pool_run(rt->pool, part, g, parts);
  if (g->split_k) pool_run(rt->pool, combine, g, ran);
  return true;
}
#endif

static void decide_mode(void) {
#ifdef GRADC_AVX512
  const char *env = getenv("GRADC_GEMM");
  __builtin_cpu_init();
  if (!(env && !strcmp(env, "blas")) && __builtin_cpu_supports("avx512f")) mode = 1;
#endif
}

bool gemm_own_kernels(void) {
  pthread_once(&mode_once, decide_mode);
  return mode == 1;
}

const char *gemm_kernels(void) { return gemm_own_kernels() ? "gradc avx512" : "OpenBLAS"; }

void gradc_sgemm(RtContext *rt, int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  bool mine = gemm_own_kernels() && order == CblasRowMajor && alpha == 1.f && beta == 0.f && m > 0 &&
              n >= MIN_N && k > 0;
#ifdef GRADC_AVX512
  if (mine) {
    Gemm g = {.ta = ta == CblasTrans, .tb = tb == CblasTrans, .m = m, .n = n, .k = k, .a = a, .b = b,
              .lda = lda, .ldb = ldb, .c = c, .ldc = ldc};
    if (run_parts(rt, &g)) return;
  }
#else
  (void)mine, (void)rt;
#endif
  cblas_sgemm((enum CBLAS_ORDER)order, (enum CBLAS_TRANSPOSE)ta, (enum CBLAS_TRANSPOSE)tb, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

/* ------------------------------------------------ products folded into col2im */

/* gradc_sgemm_col2im: the input gradient of a convolution without its
 * patch matrix.  Unfused, dcols = dY W^T is written out (85 MB for the
 * seeds' second convolution at batch 128) only for col2im to read it back
 * and add each patch into dx.  Here each 12-row tile of dcols is computed
 * into a scratch tile and added into dx at once, so dcols never reaches
 * memory.
 *
 * Order: dx is zeroed and built image by image, so a part is whole images
 * and every dx element receives its terms in the same order whatever the
 * thread count: tile by tile, and within a tile row by row and tap by tap
 * (as col2im, eval.c) or, where channels come in whole 16s, by panels of
 * 32 columns (one or two taps), row by row within each.  Each element of a
 * tile is one pass of FMAs over all of k.
 */
typedef struct Col2im {
  bool ta, tb, own;
  int m, n, k, lda, ldb, images, rows;   /* rows per image: oh * ow */
  const float *a, *b;
  float *dx;
  const int32_t *geo;
  Growing *scratch;        /* per part: the calling instance's */
} Col2im;

/* Per-part scratch (GemmBuffers.c2i), grown on first use (the sizes
 * depend on the layer): own kernels: op(B) packed whole, one tile of dcols
 * and a zero-padded last tile of rows; OpenBLAS: one image's rows of
 * dcols. */

/* dx += the rows [q0, q0 + mr) of one image's dcols, row i at t + i * ldt. */
static void c2i_scatter(const Col2im *g, float *dx, int q0, int mr, const float *t, size_t ldt) {
  int c = g->geo[ABI_GEO_C], taps = g->geo[ABI_GEO_KH] * g->geo[ABI_GEO_KW];
  for (int i = 0; i < mr; i++, t += ldt)
    for (int tap = 0; tap < taps; tap++) {
      ptrdiff_t at = tap_at(g->geo, q0 + i, tap);
      if (at < 0) continue;
      const float *s = t + (size_t)tap * c;
      for (int ch = 0; ch < c; ch++) dx[at + ch] += s[ch];
    }
}

/* A(r, kk) of the product, for the slow path below. */
static float c2i_a(const Col2im *g, size_t r, int kk) {
  return g->ta ? g->a[(size_t)kk * g->lda + r] : g->a[r * g->lda + kk];
}

static float c2i_b(const Col2im *g, int kk, int j) {
  return g->tb ? g->b[(size_t)j * g->ldb + kk] : g->b[(size_t)kk * g->ldb + j];
}

#ifdef GRADC_AVX512
AVX512 static void c2i_own(const Col2im *g, int img, float *mem) {
  int n = g->n, k = g->k, npad = (n + NR - 1) / NR * NR;
  float *bfull = mem, *tile = bfull + (size_t)k * npad, *aedge = tile + (size_t)MR * npad;
  const int32_t *q = g->geo;
  int c = q[ABI_GEO_C];
  float *dx = g->dx + (size_t)img * q[ABI_GEO_H] * q[ABI_GEO_W] * c;
  size_t rs = g->ta ? 1 : (size_t)g->lda, cs = g->ta ? (size_t)g->lda : 1;
  for (int q0 = 0; q0 < g->rows; q0 += MR) {
    int mr = g->rows - q0 < MR ? g->rows - q0 : MR;
    const float *a = g->a + ((size_t)img * g->rows + q0) * rs, *pa = a;
    size_t prs = rs, pcs = cs;
    if (mr < MR) pack_a_edge(mr, k, a, rs, cs, aedge), pa = aedge, prs = 1, pcs = MR;
    if (c % 16) {
      for (int jr = 0; jr < n; jr += NR)
        kernel(k, pa, prs, pcs, bfull + (size_t)(jr / NR) * k * NR, NR, tile + jr, npad, true, mr,
               n - jr < NR ? n - jr : NR, NULL);
      c2i_scatter(g, dx, q0, mr, tile, (size_t)npad);
      continue;
    }
    /* Channels in whole 16s: each half of a panel is 16 channels of one
     * tap, and each row of it is added straight into dx from the
     * registers (the scatter through the tile cost as much as the
     * product in a 16-channel layer). */
    int ih0[MR], iw0[MR];   /* tap_at's arithmetic, its divisions once per tile */
    for (int i = 0; i < mr; i++) {
      ih0[i] = (q0 + i) / q[ABI_GEO_OW] * q[ABI_GEO_SH] - q[ABI_GEO_PT];
      iw0[i] = (q0 + i) % q[ABI_GEO_OW] * q[ABI_GEO_SW] - q[ABI_GEO_PL];
    }
    for (int jr = 0; jr < n; jr += NR) {
      float *rows[2 * MR];
      for (int h = 0; h < 2; h++) {
        int col = jr + 16 * h, tap = col / c;
        int dh = tap / q[ABI_GEO_KW] * q[ABI_GEO_DH], dw = tap % q[ABI_GEO_KW] * q[ABI_GEO_DW];
        for (int i = 0; i < MR; i++) {
          int ih = i < mr ? ih0[i] + dh : -1, iw = i < mr ? iw0[i] + dw : -1;
          bool inside = col < n && ih >= 0 && ih < q[ABI_GEO_H] && iw >= 0 && iw < q[ABI_GEO_W];
          rows[h * MR + i] = inside ? dx + ((ptrdiff_t)ih * q[ABI_GEO_W] + iw) * c + col % c : NULL;
        }
      }
      kernel(k, pa, prs, pcs, bfull + (size_t)(jr / NR) * k * NR, NR, NULL, 0, true, MR, n - jr < NR ? n - jr : NR,
             rows);
    }
  }
}
#endif

static void c2i_part(void *arg, int p, int nparts) {
  const Col2im *g = arg;
  int i0 = (int)((int64_t)g->images * p / nparts), i1 = (int)((int64_t)g->images * (p + 1) / nparts);
  size_t image = (size_t)g->geo[ABI_GEO_H] * g->geo[ABI_GEO_W] * g->geo[ABI_GEO_C];
  int npad = (g->n + NR - 1) / NR * NR;
  size_t need = g->own ? (size_t)g->k * npad + (size_t)MR * npad + (size_t)g->k * MR
                       : (size_t)g->rows * g->n;
  float *mem = i0 < i1 && g->scratch ? grow(&g->scratch[p], need) : NULL;
#ifdef GRADC_AVX512
  if (g->own && mem) pack_b(g->k, g->n, g->b, g->ldb, g->tb, mem);
#endif
  for (int img = i0; img < i1; img++) {
    float *dx = g->dx + (size_t)img * image;
    memset(dx, 0, image * sizeof(float));
    size_t r0 = (size_t)img * g->rows;
    if (!mem) {
      /* No scratch: the tile is one element, in the same order. */
      for (int q = 0; q < g->rows; q++)
        for (int j = 0; j < g->n; j++) {
          float s = 0;
          for (int kk = 0; kk < g->k; kk++) s += c2i_a(g, r0 + q, kk) * c2i_b(g, kk, j);
          ptrdiff_t at = tap_at(g->geo, q, j / g->geo[ABI_GEO_C]);
          if (at >= 0) dx[at + j % g->geo[ABI_GEO_C]] += s;
        }
      continue;
    }
#ifdef GRADC_AVX512
    if (g->own) {
      c2i_own(g, img, mem);
      continue;
    }
#endif
    const float *a = g->ta ? g->a + r0 : g->a + r0 * g->lda;
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->rows,
                g->n, g->k, 1.f, a, g->lda, g->b, g->ldb, 0.f, mem, g->n);
    c2i_scatter(g, dx, 0, g->rows, mem, (size_t)g->n);
  }
}

void gradc_sgemm_col2im(RtContext *rt, int ta, int tb, int m, int n, int k, const float *a, int lda,
                        const float *b, int ldb, float *dx, const int32_t *geo) {
  GemmBuffers *gb = buffers(rt);
  Col2im g = {.ta = ta == CblasTrans, .tb = tb == CblasTrans, .own = gemm_own_kernels() && n >= MIN_N,
              .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .rows = geo[ABI_GEO_OH] * geo[ABI_GEO_OW],
              .a = a, .b = b, .dx = dx, .geo = geo, .scratch = gb ? gb->c2i : NULL};
  g.images = g.rows ? m / g.rows : 0;
  /* OpenBLAS threads each product itself; our kernels split whole images. */
  pool_run(rt->pool, c2i_part, &g, g.own ? parts_for(rt, g.images, 2.0 * m * n * k) : 1);
}

/* ------------------------------------------------ products over patches */

/* gradc_sgemm_im2col: a product whose A is the patch matrix of x (ta:
 * its transpose), which is never stored.  A convolution's forward product
 * (patches times kernel) and its kernel gradient (patches^T times dY) read
 * the same 85 MB matrix for the seeds' second convolution at batch 128;
 * here each block of it is packed from x into a per-part buffer that
 * stays in L2, as the kernel gets to it. */

/* Without our kernels: OpenBLAS on chunks of rows of the patch matrix. */
static void im2col_blas(RtContext *rt, int ta, int tb, int m, int n, int k, const float *x,
                        const int32_t *geo, const float *b, int ldb, float *c, int ldc) {
  int width = ta ? m : k, pixels = ta ? k : m;
  if (pixels == 0) {   /* an empty sum */
    for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)n);
    return;
  }
  int rows = (1 << 20) / (width ? width : 1);
  if (rows < 1) rows = 1;
  if (rows > pixels) rows = pixels;
  GemmBuffers *gb = buffers(rt);
  float *buf = gb ? grow(&gb->im2col_chunk, (size_t)rows * width) : NULL;
  if (!buf) {   /* out of memory: element by element, slowly but right */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        float sum = 0;
        for (int p = 0; p < k; p++) {
          float v;
          int r = ta ? p : i, kk = ta ? i : p;
          pack_patches(geo, x, r, 1, kk, 1, &v);
          sum += v * (tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
        }
        c[(size_t)i * ldc + j] = sum;
      }
    return;
  }
  for (int r0 = 0; r0 < pixels; r0 += rows) {
    int nr = pixels - r0 < rows ? pixels - r0 : rows;
    pack_patches(geo, x, r0, nr, 0, width, buf);
    if (!ta)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, nr, n, k, 1.f, buf, k, b, ldb,
                  0.f, c + (size_t)r0 * ldc, ldc);
    else
      cblas_sgemm(CblasRowMajor, CblasTrans, tb ? CblasTrans : CblasNoTrans, m, n, nr, 1.f, buf, m,
                  tb ? b + r0 : b + (size_t)r0 * ldb, ldb, r0 ? 1.f : 0.f, c, ldc);
  }
}

void gradc_sgemm_im2col(RtContext *rt, int ta, int tb, int m, int n, int k, const float *x,
                        const int32_t *geo, const float *b, int ldb, float *c, int ldc) {
#ifdef GRADC_AVX512
  if (gemm_own_kernels() && n >= MIN_N && m > 0 && k > 0) {
    Gemm g = {.ta = ta == CblasTrans, .tb = tb == CblasTrans, .m = m, .n = n, .k = k, .b = b, .ldb = ldb,
              .c = c, .ldc = ldc, .x = x, .geo = geo};
    /* the forward product of 16 channels or more reads x through tables
     * (kernel_table); fewer channels make too many taps a k block */
    GemmBuffers *gb = buffers(rt);
    int ch = geo[ABI_GEO_C];
    float *zeros = !g.ta && ch >= 16 && gb ? grow(&gb->zeros, (size_t)ch) : NULL;
    if (zeros) memset(zeros, 0, sizeof(float) * (size_t)ch), g.zeros = zeros;
    if (run_parts(rt, &g)) return;
  }
#endif
  im2col_blas(rt, ta == CblasTrans, tb == CblasTrans, m, n, k, x, geo, b, ldb, c, ldc);
}
