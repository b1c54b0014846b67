/*
 * layout.c - where buffers with known live ranges and sizes go in one
 * block: the arithmetic half of the static memory plan.
 *
 * Input: per buffer its live range [begin, end] (inclusive schedule
 * positions) and its size in bytes (a multiple of 64).  Output: an offset
 * per buffer and the block's size.  Buffers are placed in order of begin
 * (ties by their index in the input), each at the lowest offset that no
 * still-live buffer occupies, so two buffers share bytes only when their
 * ranges do not meet.  Without reuse they are placed end to end.
 *
 * The compiler's planner (compiler/plan.c) computes the ranges from a graph
 * for `gradc dump --stage memory` and the .so header; every model instance
 * (instance.c) calls this same function with the ranges its descriptor
 * recorded at compile time, so the JIT and a .so lay out one binding byte
 * for byte alike.  Hence no dependency here beyond the C library, and a
 * declaration in abi.h, which both sides include.
 */
#include <stdlib.h>

#include "abi.h"

typedef struct Live {
  size_t off, bytes;
  int end;
} Live;

typedef struct Order {
  int begin, index;
} Order;

static int by_offset(const void *a, const void *b) {
  const Live *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

static int by_begin(const void *a, const void *b) {
  const Order *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

size_t layout_assign(const LayoutBuffer *buf, int n, bool reuse, size_t *offset) {
  Order *order = malloc(sizeof(Order) * (size_t)(n ? n : 1));
  Live *live = malloc(sizeof(Live) * (size_t)(n ? n : 1));
  if (!order || !live) {
    free(order), free(live);
    return SIZE_MAX;
  }
  for (int i = 0; i < n; i++) order[i] = (Order){buf[i].begin, i};
  qsort(order, (size_t)n, sizeof *order, by_begin);
  size_t top = 0;
  int nlive = 0;
  for (int o = 0; o < n; o++) {
    int i = order[o].index;
    size_t bytes = buf[i].bytes;
    /* Blocks whose range ended before this one begins are free again. */
    int k = 0;
    for (int j = 0; j < nlive; j++)
      if (!reuse || live[j].end >= buf[i].begin) live[k++] = live[j];
    nlive = k;
    qsort(live, (size_t)nlive, sizeof *live, by_offset);
    size_t at = 0;
    if (reuse) {
      for (int j = 0; j < nlive && live[j].off < at + bytes; j++)
        if (live[j].off + live[j].bytes > at) at = live[j].off + live[j].bytes;
    } else {
      at = top;
    }
    offset[i] = at;
    live[nlive++] = (Live){at, bytes, buf[i].end};
    if (at + bytes > top) top = at + bytes;
  }
  free(order), free(live);
  return top;
}

/* Elements under the symbol values sym, times esize, rounded up to 64
 * bytes; SIZE_MAX past 2^62 elements. */
size_t layout_bytes(int rank, const int64_t *n, const int64_t *dim_sym, const int64_t *sym, size_t esize) {
  int64_t c = 1;
  for (int k = 0; k < rank; k++) {
    int64_t x = n[k] * sym[dim_sym[k]];
    if (x != 0 && c > ((int64_t)1 << 62) / x) return SIZE_MAX;
    c *= x;
  }
  return ((size_t)c * esize + 63) & ~(size_t)63;
}
