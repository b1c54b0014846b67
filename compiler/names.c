/*
 * names.c - a hash table from names to pointers, in the compilation's arena:
 * what the front end looks names up in (tensors in scope, functions,
 * instance parameters, outputs and metrics), so that a model of n
 * statements parses in time linear in n.  (A list walked at every lookup
 * made 80,000 statements take 36 s, and a 16 MiB model file never end.)
 *
 * Open addressing with linear probing, FNV-1a hashes, grown to twice the
 * size at half load, so a probe sequence stays short.  Keys are not copied:
 * they point into the arena or the source text, which live as long as the
 * table.  Nothing is removed; a scope that ends puts back the value a name
 * had before it (parse.c keeps the shadowed symbol for that).
 */
#include <string.h>

#include "compiler.h"

typedef struct NameSlot {
  const char *key;       /* NULL: empty */
  uint32_t len, hash;
  void *value;
} NameSlot;

struct NameMap {
  Arena *arena;
  NameSlot *slots;
  size_t cap, count;     /* cap: a power of two */
};

static uint32_t hash_of(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

NameMap *names_new(Arena *a) {
  NameMap *m = arena_alloc(a, sizeof *m);
  m->arena = a;
  m->cap = 64;
  m->slots = arena_alloc(a, sizeof(NameSlot) * m->cap);
  return m;
}

static NameSlot *find(const NameMap *m, const char *key, size_t len, uint32_t h) {
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    NameSlot *s = &m->slots[i];
    if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)) return s;
  }
}

void *names_get(const NameMap *m, const char *key, size_t len) {
  NameSlot *s = find(m, key, len, hash_of(key, len));
  return s->key ? s->value : NULL;
}

void names_put(NameMap *m, const char *key, size_t len, void *value) {
  GRADC_ASSERT(len <= UINT32_MAX);
  uint32_t h = hash_of(key, len);
  NameSlot *s = find(m, key, len, h);
  if (s->key) {
    s->value = value;
    return;
  }
  if (2 * (m->count + 1) > m->cap) {
    NameSlot *old = m->slots;
    size_t n = m->cap;
    m->cap *= 2;
    m->slots = arena_alloc(m->arena, sizeof(NameSlot) * m->cap);
    for (size_t i = 0; i < n; i++)
      if (old[i].key) *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
    s = find(m, key, len, h);
  }
  *s = (NameSlot){key, (uint32_t)len, h, value};
  m->count++;
}
