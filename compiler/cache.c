/*
 * cache.c - the object cache: a model compiled once is never compiled
 * again.  The JIT (jit.c) asks for the object file made from the same IR
 * with the same LLVM, pipeline, target and CPU; on a hit it loads that
 * object into ORC instead of running LLVM.
 *
 * Layout: one file per entry in $XDG_CACHE_HOME/gradc (default
 * ~/.cache/gradc), named by its key, KEY.gco.  Content-addressed: the key is
 * a 128-bit hash of everything that changes the code (jit.c: object_key),
 * so an entry is never updated, only written whole or not at all.
 *
 * An entry is a header - magic, format, the key again, the payload's
 * length and a 64-bit hash of it - then the object file.  Whatever does not
 * match on load (a truncated file, a flipped byte, a file of another
 * version or another key) is a miss: the entry is removed and the caller
 * compiles and stores it again; the user sees nothing.  Writes go to a
 * temporary file opened with O_EXCL, fsync'd and renamed over the name, so
 * a reader sees the old entry, the new one or none, and two processes
 * storing the same key both succeed (the last rename wins, with the same
 * bytes).  The cache is best effort: a directory that cannot be made or
 * written only means no caching.
 *
 * Size: after a store, entries are evicted oldest first (by mtime, which a
 * hit touches: least recently used) until the total is under the cap,
 * GRADC_CACHE_MAX bytes (default 512 MiB).  GRADC_CACHE=off, or
 * gradc --no-cache, turns the cache off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"

#define MAGIC "gradc-object-cache"
#define DEFAULT_MAX_BYTES (512LL << 20)

typedef struct EntryHeader {
  char magic[24];
  uint32_t format;
  char key[CACHE_KEY_LEN + 1];
  uint64_t len;             /* of the payload */
  uint64_t check;           /* hash64 of the payload */
} EntryHeader;

/* FNV-1a over 64-bit words (then the tail bytes) with a final avalanche
 * (splitmix64's); two seeds make the key's 128 bits.  Not cryptographic:
 * the cache is a user's own directory.  Words, not bytes: a hit hashes the
 * whole IR, and byte at a time was most of a hit's time. */
static uint64_t hash64(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void cache_key(const void *const *parts, const size_t *lens, int n, char *key) {
  uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
  for (int i = 0; i < n; i++) {
    /* The length first, so that parts cannot run into each other. */
    a = hash64(a, &lens[i], sizeof lens[i]), b = hash64(b ^ 0x5bd1e995, &lens[i], sizeof lens[i]);
    a = hash64(a, parts[i], lens[i]), b = hash64(mix(b), parts[i], lens[i]);
  }
  snprintf(key, CACHE_KEY_LEN + 1, "%016llx%016llx", (unsigned long long)mix(a), (unsigned long long)mix(b));
}

static uint64_t payload_check(const void *p, size_t n) { return mix(hash64(0xcbf29ce484222325ULL, p, n)); }

bool cache_enabled(void) {
  const char *e = getenv("GRADC_CACHE");
  return !(e && (!strcmp(e, "off") || !strcmp(e, "0")));
}

bool cache_open(Cache *c) {
  memset(c, 0, sizeof *c);
  if (!cache_enabled()) return false;
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int n;
  if (xdg && xdg[0] == '/') n = snprintf(c->dir, sizeof c->dir, "%s/gradc", xdg);
  else if (home && *home) n = snprintf(c->dir, sizeof c->dir, "%s/.cache/gradc", home);
  else return false;
  if (n < 0 || (size_t)n >= sizeof c->dir - CACHE_KEY_LEN - 32) return false;
  c->max_bytes = DEFAULT_MAX_BYTES;
  const char *max = getenv("GRADC_CACHE_MAX");
  if (max && *max) {
    char *end;
    long long v = strtoll(max, &end, 10);
    if (!*end && v >= 0) c->max_bytes = v;
  }
  return true;
}

/* The directory and its parents (~/.cache may not exist yet). */
static bool make_dirs(const char *dir) {
  char p[sizeof ((Cache *)0)->dir];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0700) && errno != EEXIST) return false;
    *s = '/';
  }
  return !mkdir(p, 0700) || errno == EEXIST;
}

static void entry_path(const Cache *c, const char *key, char *out, size_t n) {
  snprintf(out, n, "%s/%s.gco", c->dir, key);
}

static bool read_all(int fd, void *p, size_t n) {
  char *b = p;
  while (n) {
    ssize_t r = read(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r, n -= (size_t)r;
  }
  return true;
}

static bool write_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n) {
    ssize_t r = write(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    b += r, n -= (size_t)r;
  }
  return true;
}

void *cache_load(const Cache *c, const char *key, size_t *len) {
  char path[sizeof c->dir + 64];
  entry_path(c, key, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  EntryHeader h;
  char *data = NULL;
  bool ok = !fstat(fd, &st) && (size_t)st.st_size >= sizeof h && read_all(fd, &h, sizeof h) &&
            !memcmp(h.magic, MAGIC, sizeof MAGIC) && h.format == CACHE_FORMAT &&
            !memcmp(h.key, key, CACHE_KEY_LEN + 1) && h.len == (uint64_t)st.st_size - sizeof h;
  if (ok) {
    data = malloc(h.len ? h.len : 1);
    ok = data && read_all(fd, data, h.len) && payload_check(data, h.len) == h.check;
  }
  close(fd);
  if (!ok) {
    /* Corrupt, truncated or foreign: gone, so that the caller's store makes
     * it again.  A concurrent writer's rename may already have replaced
     * it; removing a good entry costs one compilation, nothing more. */
    free(data);
    unlink(path);
    return NULL;
  }
  /* A hit is a use: LRU eviction goes by mtime. */
  utimensat(AT_FDCWD, path, NULL, 0);
  *len = h.len;
  return data;
}

/* Every entry's path, size and mtime; the count, or -1. */
typedef struct Entry {
  char name[CACHE_KEY_LEN + 48];
  long long size;
  struct timespec mtime;
} Entry;

static int list_entries(const Cache *c, Entry **out) {
  *out = NULL;
  DIR *d = opendir(c->dir);
  if (!d) return errno == ENOENT ? 0 : -1;
  int n = 0, cap = 0;
  Entry *e = NULL;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *dot = strrchr(de->d_name, '.');
    /* entries, and temporary files of writers that died */
    bool entry = dot && !strcmp(dot, ".gco"), temp = strstr(de->d_name, ".gco.tmp.") != NULL;
    if ((!entry && !temp) || strlen(de->d_name) >= sizeof e->name) continue;
    char path[sizeof c->dir + 300];
    snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name);
    struct stat st;
    if (stat(path, &st)) continue;
    if (temp) {
      /* an hour old: its writer is gone */
      if (time(NULL) - st.st_mtime > 3600) unlink(path);
      continue;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      Entry *m = realloc(e, sizeof *e * (size_t)cap);
      if (!m) break;
      e = m;
    }
    memcpy(e[n].name, de->d_name, strlen(de->d_name) + 1);   /* its length was checked above */
    e[n].size = st.st_size;
    e[n].mtime = st.st_mtim;
    n++;
  }
  closedir(d);
  *out = e;
  return n;
}

static int older(const void *x, const void *y) {
  const Entry *a = x, *b = y;
  if (a->mtime.tv_sec != b->mtime.tv_sec) return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
  if (a->mtime.tv_nsec != b->mtime.tv_nsec) return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Least recently used first, until the total fits the cap; keep (the
 * entry just stored) goes last. */
static void evict(const Cache *c, const char *keep) {
  Entry *e;
  int n = list_entries(c, &e);
  long long total = 0;
  for (int i = 0; i < n; i++) total += e[i].size;
  if (total > c->max_bytes) {
    qsort(e, (size_t)n, sizeof *e, older);
    for (int i = 0; i < n && total > c->max_bytes; i++) {
      if (!strncmp(e[i].name, keep, CACHE_KEY_LEN)) continue;
      char path[sizeof c->dir + 300];
      snprintf(path, sizeof path, "%s/%s", c->dir, e[i].name);
      if (!unlink(path)) total -= e[i].size;
    }
  }
  free(e);
}

bool cache_store(const Cache *c, const char *key, const void *data, size_t len) {
  if (!make_dirs(c->dir)) return false;
  EntryHeader h;
  memset(&h, 0, sizeof h);         /* the padding too: an entry's bytes are all defined */
  h.format = CACHE_FORMAT, h.len = len, h.check = payload_check(data, len);
  memcpy(h.magic, MAGIC, sizeof MAGIC);
  memcpy(h.key, key, CACHE_KEY_LEN + 1);
  char path[sizeof c->dir + 64], tmp[sizeof c->dir + 128];
  entry_path(c, key, path, sizeof path);
  int fd = -1;
  /* A name no other writer uses: O_EXCL says so, or we try another. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%ld.%d", path, (long)getpid(), (long)now.tv_nsec, attempt);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) return false;
  }
  if (fd < 0) return false;
  bool ok = write_all(fd, &h, sizeof h) && write_all(fd, data, len) && !fsync(fd);
  ok = !close(fd) && ok;
  if (ok) ok = !rename(tmp, path);
  if (!ok) {
    unlink(tmp);
    return false;
  }
  evict(c, key);
  return true;
}

bool cache_stats(FILE *out, const Cache *c) {
  Entry *e;
  int n = list_entries(c, &e);
  if (n < 0) return false;
  long long total = 0;
  for (int i = 0; i < n; i++) total += e[i].size;
  free(e);
  fprintf(out, "cache: %s\nentries: %d\nsize: %lld bytes (%.1f MiB)\ncap: %lld bytes (%.1f MiB)\n", c->dir, n,
          total, (double)total / (1 << 20), c->max_bytes, (double)c->max_bytes / (1 << 20));
  return true;
}

int cache_clear(const Cache *c) {
  Entry *e;
  int n = list_entries(c, &e), removed = 0;
  for (int i = 0; i < n; i++) {
    char path[sizeof c->dir + 300];
    snprintf(path, sizeof path, "%s/%s", c->dir, e[i].name);
    removed += !unlink(path);
  }
  free(e);
  return n < 0 ? -1 : removed;
}
