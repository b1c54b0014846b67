/*
 * mem.c - the runtime's large, long-lived blocks: datasets, workspaces,
 * parameters.
 *
 * Blocks of 2 MiB and more are aligned to 2 MiB and asked for transparent
 * huge pages.  A training step sweeps the whole workspace and a shuffled
 * epoch touches every page of the dataset, so with 4 KiB pages each step
 * pays a TLB miss every 4 KiB.  On virtual machines that shadow the guest's
 * page tables it is far worse: an munmap anywhere in the process (LLVM's
 * JIT does many) drops the shadow entries, and the first epoch after it
 * paid about 1.8 us for each 4 KiB page of the dataset, 0.08 s in all for
 * Fashion-MNIST (2 ms with huge pages).  madvise is a hint: where THP is
 * off, the block is an ordinary one.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "runtime.h"

enum { HUGE_PAGE = 2 << 20 };

void *rt_alloc_big(size_t bytes) {
  if (bytes < HUGE_PAGE) return aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
  void *p = NULL;
  if (posix_memalign(&p, HUGE_PAGE, bytes)) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

void *rt_calloc_big(size_t bytes) {
  void *p = rt_alloc_big(bytes);
  if (p) memset(p, 0, bytes ? bytes : 1);
  return p;
}
