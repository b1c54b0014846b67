/*
 * arena.c - bump allocation for one compilation.
 *
 * Every object of a compilation (tokens, nodes, strings, diagnostics) comes
 * from one Arena and dies with it, so no stage frees anything.  Allocation
 * failure is not a NULL to check at hundreds of call sites: it longjmps to
 * the handler the entry point installed (Lua's luaD_throw), which reports
 * "out of memory" as an ordinary error.  With no handler we abort, since a
 * NULL would only crash later in a less obvious place.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

typedef struct Chunk {
  struct Chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
  Chunk *head;
  size_t total;
  jmp_buf *oom;
  long fail_after;           /* test hook, 0 = off */
};

_Noreturn void gradc_die(const char *file, int line, const char *what) {
  fprintf(stderr, "gradc: internal error at %s:%d: %s\n", file, line, what);
  abort();
}

Arena *arena_new(void) { return calloc(1, sizeof(Arena)); }

void arena_free(Arena *a) {
  if (!a) return;
  for (Chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void arena_on_oom(Arena *a, jmp_buf *jb) { a->oom = jb; }
void arena_fail_after(Arena *a, long n) { a->fail_after = n; }
size_t arena_bytes(const Arena *a) { return a->total; }

static _Noreturn void out_of_memory(Arena *a) {
  if (a->oom) longjmp(*a->oom, 1);
  fprintf(stderr, "gradc: out of memory\n");
  abort();
}

void *arena_alloc(Arena *a, size_t size) {
  if (a->fail_after > 0 && --a->fail_after == 0) out_of_memory(a);
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  Chunk *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t cap = size > 60000 ? size : 64 * 1024 - sizeof(Chunk);
    if (size > ((size_t)1 << 40)) out_of_memory(a);
    c = malloc(sizeof(Chunk) + cap);
    if (!c) out_of_memory(a);
    c->size = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
    a->total += cap;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}
