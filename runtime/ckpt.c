/*
 * ckpt.c - checkpoints: a model's parameters and optimizer state in one
 * file, saved atomically and loaded only when everything matches.  The one
 * codec of every model instance (instance.c): the JIT's, through
 * gradc_save/gradc_load, and a compiled shared object's, whose support
 * library links this file (get_state/set_state on memory, save/load on
 * files), so the two write the same bytes and read each other's.
 *
 * The file (all integers little-endian):
 *
 *   "GRADCKPT"       8 bytes
 *   u32 version      1
 *   u64 size         of the uncompressed payload
 *   u32 crc          CRC-32 (zlib's crc32) of the uncompressed payload
 *   u64 csize        of the compressed payload that follows
 *   csize bytes      the payload as a zlib stream: stored blocks when
 *                    gradc writes it (zstream.c says why); any level is
 *                    read, as older versions compressed it (level 1)
 *
 * and the payload:
 *
 *   u32 len, bytes   the model name
 *   u32 count        of tensors, then per tensor:
 *     u32 len, bytes   its name
 *     u32 dtype        gradc_dtype (f32 0, f64 1, i32 2, bool 3)
 *     u32 rank         at most 8
 *     u64 dims[rank]
 *     the elements     as in memory (4, 8, 4 and 1 bytes; little-endian)
 *
 * With stored blocks, a checkpoint's size is a function of its tensors
 * alone (ckpt_size), which a .so's header states as a constant and its
 * get_state fills without allocating.
 *
 * Saving never touches the previous checkpoint until the new one is safely
 * on disk: it writes a temporary file in the same directory, checks every
 * write, fsyncs, renames over path - atomic within one file system - and
 * fsyncs the directory so the rename itself survives a crash.  Any failure
 * removes the temporary file and reports the OS's reason.  The temporary
 * is `<path>.tmp.<pid>.<space>.<random>` (write_atomically says why each
 * part), created with O_EXCL: two savers of one path never share a file,
 * and a file or symlink planted at the name is an obstacle, never a
 * target.  A saver killed mid-save leaves its temporary behind; the next
 * save to the same path removes it once its writer is known to be dead.
 *
 * Loading trusts nothing in the file: every length is checked against the
 * bytes that remain before it is used, sizes are multiplied with overflow
 * checks, and the CRC catches the corruption the stream's own Adler-32
 * might not.  All differences from the model are collected into one
 * message, and data is copied only when there are none, so a failed load
 * leaves the model as it was.  A tensor marked optional (a run-time
 * hyperparameter, which checkpoints of older versions lack) may be
 * missing; it then keeps its value.  Messages name the file, or say "the
 * checkpoint" for one in memory.
 *
 * Elements are written as they lie in memory; gradc targets little-endian
 * machines (x86-64, AArch64), where that is the documented byte order.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ckpt.c writes tensor data as in memory, which the format defines as little-endian"
#endif

enum { HEADER_BYTES = 32, FORMAT_VERSION = 1, CKPT_MAX_RANK = 8 };
/* The format's rank limit holds every model's tensors (CkptTensor.dims). */
_Static_assert((int)CKPT_MAX_RANK == (int)ABI_MAX_RANK, "a checkpoint holds tensors of any rank a model has");

/* Loading reads the whole file into memory; beyond this it refuses rather
 * than ask for the memory.  Saving refuses to write what loading refuses. */
#define MAX_FILE_BYTES (UINT64_C(4) << 30)

static const char *const dtype_name[] = {
#define X(id, name, ctype, bytes) [DT_##id] = name,
    GRADC_ABI_DTYPES(X)
#undef X
};

/* ------------------------------------------------------- sizes and shapes */

/* Bytes of a tensor of the given dtype and dims, or false on overflow. */
static bool tensor_bytes(gradc_dtype dtype, int rank, const uint64_t *dims, uint64_t *bytes) {
  uint64_t n = abi_dtype_bytes((DType)dtype);
  for (int k = 0; k < rank; k++)
    if (dims[k] == 0) n = 0;
  for (int k = 0; k < rank && n; k++) {
    if (dims[k] > UINT64_MAX / n) return false;
    n *= dims[k];
  }
  *bytes = n;
  return true;
}

static void shape_text(int rank, const uint64_t *dims, char *buf, size_t size) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int k = 0; k < rank && at < size; k++)
    at += (size_t)snprintf(buf + at, size - at, "%s%llu", k ? "," : "", (unsigned long long)dims[k]);
  if (at < size) snprintf(buf + at, size - at, "]");
}

/* The caller's tensors: NULLs, unknown dtypes, ranks and sizes are our
 * callers' bugs, but reported as GRADC_ERR_ARG rather than trusted. */
static gradc_status check_tensors(const char *who, const CkptTensor *t, int n, uint64_t *bytes, RtError *err) {
  for (int i = 0; i < n; i++) {
    if (!t[i].name) return rt_fail(err, GRADC_ERR_ARG, "%s: tensor %d has no name", who, i);
    if ((unsigned)t[i].dtype > GRADC_BOOL || t[i].rank < 0 || t[i].rank > CKPT_MAX_RANK)
      return rt_fail(err, GRADC_ERR_ARG, "%s: tensor '%s' has dtype %d and rank %d", who, t[i].name,
                     (int)t[i].dtype, t[i].rank);
    uint64_t dims[CKPT_MAX_RANK];
    for (int k = 0; k < t[i].rank; k++) {
      if (t[i].dims[k] < 0)
        return rt_fail(err, GRADC_ERR_ARG, "%s: tensor '%s' has dimension %lld", who, t[i].name,
                       (long long)t[i].dims[k]);
      dims[k] = (uint64_t)t[i].dims[k];
    }
    if (!tensor_bytes(t[i].dtype, t[i].rank, dims, &bytes[i]) || bytes[i] > MAX_FILE_BYTES)
      return rt_fail(err, GRADC_ERR_ARG, "%s: tensor '%s' is larger than a checkpoint can hold", who, t[i].name);
    if (bytes[i] && !t[i].data) return rt_fail(err, GRADC_ERR_ARG, "%s: tensor '%s' has no data", who, t[i].name);
    /* Names identify tensors in the file, so two alike could not be told
     * apart when loading. */
    for (int j = 0; j < i; j++)
      if (!strcmp(t[i].name, t[j].name))
        return rt_fail(err, GRADC_ERR_ARG, "%s: two tensors are named '%s'", who, t[i].name);
  }
  return GRADC_OK;
}

/* The payload's size; its terms are bounded (names by memory, tensors by
 * MAX_FILE_BYTES), so the sum is checked against the limit as it grows,
 * never overflowing. */
static uint64_t payload_size(const char *model_name, const CkptTensor *t, int n, const uint64_t *bytes) {
  uint64_t size = 4 + strlen(model_name) + 4;
  for (int i = 0; i < n && size <= MAX_FILE_BYTES; i++)
    size += 4 + strlen(t[i].name) + 4 + 4 + 8 * (uint64_t)t[i].rank + bytes[i];
  return size;
}

static uint64_t file_size(uint64_t payload) {
  return payload > MAX_FILE_BYTES ? UINT64_MAX : HEADER_BYTES + zs_stored_size((size_t)payload);
}

size_t ckpt_size(const char *model_name, const CkptTensor *t, int n) {
  uint64_t size = 4 + strlen(model_name) + 4;
  for (int i = 0; i < n; i++) {
    uint64_t bytes = abi_dtype_bytes((DType)t[i].dtype);
    for (int k = 0; k < t[i].rank; k++) bytes *= (uint64_t)t[i].dims[k];
    size += 4 + strlen(t[i].name) + 4 + 4 + 8 * (uint64_t)t[i].rank + bytes;
  }
  return HEADER_BYTES + zs_stored_size((size_t)size);
}

/* ------------------------------------------------------------------ write */

static unsigned char *put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
  return p + bytes;
}

/* The payload as it is written: into the zlib stream, and into its CRC. */
typedef struct Out {
  ZsWriter z;
  uint32_t crc;
} Out;

static void out_bytes(Out *o, const void *p, size_t n) {
  zs_put(&o->z, p, n);
  o->crc = zs_crc32(o->crc, p, n);
}

static void out_le(Out *o, uint64_t v, int bytes) {
  unsigned char b[8];
  put_le(b, v, bytes);
  out_bytes(o, b, (size_t)bytes);
}

/* The whole file into out (file_size(psize) bytes): header, then the
 * payload streamed into stored blocks, then the CRC into the header. */
static void write_checkpoint(unsigned char *out, uint64_t psize, const char *model_name, const CkptTensor *t, int n,
                             const uint64_t *bytes) {
  unsigned char *h = out;
  memcpy(h, "GRADCKPT", 8), h += 8;
  h = put_le(h, FORMAT_VERSION, 4);
  h = put_le(h, psize, 8);
  unsigned char *crc_at = h;
  h += 4;
  put_le(h, zs_stored_size((size_t)psize), 8);
  Out o = {.crc = 0};
  zs_begin(&o.z, out + HEADER_BYTES, (size_t)psize);
  size_t len = strlen(model_name);
  out_le(&o, len, 4);
  out_bytes(&o, model_name, len);
  out_le(&o, (uint64_t)n, 4);
  for (int i = 0; i < n; i++) {
    len = strlen(t[i].name);
    out_le(&o, len, 4);
    out_bytes(&o, t[i].name, len);
    out_le(&o, (uint64_t)t[i].dtype, 4);
    out_le(&o, (uint64_t)t[i].rank, 4);
    for (int k = 0; k < t[i].rank; k++) out_le(&o, (uint64_t)t[i].dims[k], 8);
    if (bytes[i]) out_bytes(&o, t[i].data, (size_t)bytes[i]);
  }
  zs_end(&o.z);
  put_le(crc_at, o.crc, 4);
}

gradc_status ckpt_write(void *blob, size_t size, const char *model_name, const CkptTensor *t, int n, RtError *err) {
  if (!blob || !model_name || n < 0 || (n > 0 && !t)) return rt_fail(err, GRADC_ERR_ARG, "ckpt_write: bad argument");
  uint64_t *bytes = calloc((size_t)n + 1, sizeof *bytes);
  if (!bytes) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  gradc_status s = check_tensors("ckpt_write", t, n, bytes, err);
  uint64_t psize = s ? 0 : payload_size(model_name, t, n, bytes), need = file_size(psize);
  if (!s && need > size)
    s = need == UINT64_MAX ? rt_fail(err, GRADC_ERR_ARG, "the checkpoint would exceed the 4 GiB limit")
                           : rt_fail(err, GRADC_ERR_ARG, "the checkpoint needs %llu bytes, got %zu",
                                     (unsigned long long)need, size);
  if (!s) write_checkpoint(blob, psize, model_name, t, n, bytes);
  free(bytes);
  return s;
}

/* ------------------------------------------------------ temporary files
 *
 * A temporary is named <path>.tmp.<pid>.<space>.<random>:
 *   pid     the writer's process id, so that a later saver can ask whether
 *           the writer still lives;
 *   space   8 hex digits naming the pid space the pid belongs to (a hash
 *           of the host name and the pid namespace): a pid means nothing
 *           on another host sharing the directory (NFS) or in another
 *           container, and such files are never judged;
 *   random  8 hex digits from getrandom, so that nobody can plant a file
 *           at the name beforehand, or fill every name we would try.
 * A temporary whose writer is dead - same space, not us, and kill(pid, 0)
 * says ESRCH - is removed by the next save of the same path.  Only names
 * of exactly this form next to the path are considered, so the files of
 * other programs, and other paths' temporaries, are never touched. */

enum { TAG_HEX = 8 };

/* This process's pid space as 8 hex digits (FNV-1a of the host name and
 * /proc/self/ns/pid); false when the namespace cannot be read (no /proc),
 * and then nothing is ever judged stale. */
static bool pid_space(char tag[TAG_HEX + 1]) {
  char text[512] = {0};
  bool known = false;
  if (gethostname(text, 256) != 0) text[0] = '\0';
  text[255] = '\0';
  size_t at = strlen(text) + 1;   /* the NUL separates the two parts */
  ssize_t n = readlink("/proc/self/ns/pid", text + at, sizeof text - at - 1);
  if (n > 0) at += (size_t)n, known = true;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < at; i++) h = (h ^ (unsigned char)text[i]) * 16777619u;
  snprintf(tag, TAG_HEX + 1, "%08x", (unsigned)h);
  return known;
}

static unsigned random_u32(void) {
  uint32_t r;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
  /* No entropy yet (early boot) or no getrandom: the name is guessable,
   * which O_EXCL makes a nuisance (a failed save), never an overwrite. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)ts.tv_nsec * 2654435761u ^ (uint32_t)getpid() ^ (uint32_t)(uintptr_t)&r;
}

/* Whether name (a directory entry next to the checkpoint base) is a
 * temporary of base in pid space tag whose writer is dead. */
static bool is_stale_temp(const char *name, const char *base, const char *tag) {
  size_t blen = strlen(base);
  if (strncmp(name, base, blen) || strncmp(name + blen, ".tmp.", 5)) return false;
  const char *p = name + blen + 5, *digits = p;
  long pid = 0;
  while (*p >= '0' && *p <= '9' && p - digits < 10) pid = pid * 10 + (*p++ - '0');
  if (p == digits || *digits == '0' || *p != '.') return false;
  if (strncmp(p + 1, tag, TAG_HEX) || p[1 + TAG_HEX] != '.') return false;
  p += 2 + TAG_HEX;
  for (int k = 0; k < 8; k++, p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  if (*p || pid > INT32_MAX || pid == (long)getpid()) return false;
  /* EPERM: alive, someone else's; a zombie is alive until reaped. */
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes the temporaries of path (in dir, of pid space tag) whose
 * writers died mid-save.  Best effort: a directory that cannot be read
 * keeps its files. */
static void remove_stale_temps(const char *dir, const char *path, const char *tag) {
  const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
  if (!*base) return;
  DIR *dp = opendir(dir);
  if (!dp) return;
  for (struct dirent *e; (e = readdir(dp));)
    if (is_stale_temp(e->d_name, base, tag)) unlinkat(dirfd(dp), e->d_name, 0);
  closedir(dp);
}

/* The directory part of path, for the fsync that makes a rename durable. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* Writes len bytes of buf to path through a temporary file and a rename. */
static gradc_status write_atomically(const char *path, const unsigned char *buf, size_t len, RtError *err) {
  /* Renaming over a device or a directory would replace it (run as root,
   * saving to /dev/null would delete the device node); refused up front. */
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return rt_fail(err, GRADC_ERR_IO, "cannot save the checkpoint to '%s': it exists and is not a regular file",
                   path);
  char *dir = dir_of(path);
  size_t tmp_size = strlen(path) + 48;
  char *tmp = dir ? malloc(tmp_size) : NULL;
  if (!tmp) {
    free(dir);
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory saving '%s'", path);
  }
  char tag[TAG_HEX + 1];
  if (pid_space(tag)) remove_stale_temps(dir, path, tag);
  /* O_EXCL (which also refuses a symlink at the name): a name taken by
   * anyone - chance, or a planted file - is passed over for another. */
  int fd = -1;
  for (int k = 0; k < 16 && fd < 0; k++) {
    snprintf(tmp, tmp_size, "%s.tmp.%ld.%s.%08x", path, (long)getpid(), tag, random_u32());
    fd = open(tmp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    gradc_status s = rt_fail(err, GRADC_ERR_IO, "cannot save the checkpoint '%s': cannot create '%s': %s", path,
                             tmp, strerror(errno));
    free(tmp);
    free(dir);
    return s;
  }
  const char *step = "write";
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, buf + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;  /* no progress and no reason: a full disk is the one known cause */
      goto fail;
    }
    done += (size_t)w;
  }
  step = "flush";
  if (fsync(fd) != 0) goto fail;
  /* close can report a delayed write error (NFS); fd is gone either way. */
  int c = close(fd);
  fd = -1;
  if (c != 0) goto fail;
  step = "rename";
  if (rename(tmp, path) != 0) goto fail;
  free(tmp);

  /* The new file is in place; the directory's fsync makes the rename
   * survive a power cut.  File systems that cannot sync a directory say
   * EINVAL, and there is nothing more to do on them. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int e = dfd < 0 ? errno : fsync(dfd) != 0 ? errno : 0;
  if (dfd >= 0) close(dfd);
  gradc_status synced = GRADC_OK;
  if (e && e != EINVAL)
    synced = rt_fail(err, GRADC_ERR_IO, "saved '%s', but could not sync its directory '%s': %s", path, dir,
                     strerror(e));
  free(dir);
  return synced;

fail:;
  int saved = errno;
  if (fd >= 0) close(fd);
  unlink(tmp);
  gradc_status s = rt_fail(err, GRADC_ERR_IO, "cannot save the checkpoint '%s' (%s of '%s' failed): %s", path, step,
                           tmp, strerror(saved));
  free(tmp);
  free(dir);
  return s;
}

gradc_status ckpt_save(const char *path, const char *model_name, const CkptTensor *t, int n, RtError *err) {
  if (!path || !model_name || n < 0 || (n > 0 && !t)) return rt_fail(err, GRADC_ERR_ARG, "ckpt_save: bad argument");
  uint64_t *bytes = calloc((size_t)n + 1, sizeof *bytes);
  if (!bytes) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory saving '%s'", path);
  unsigned char *file = NULL;
  gradc_status s = check_tensors("ckpt_save", t, n, bytes, err);
  uint64_t psize = s ? 0 : payload_size(model_name, t, n, bytes), size = file_size(psize);
  if (!s && size > MAX_FILE_BYTES)
    s = rt_fail(err, GRADC_ERR_ARG, "cannot save '%s': the checkpoint would exceed the 4 GiB limit", path);
  if (!s && !(file = malloc((size_t)size))) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory saving '%s'", path);
  if (!s) {
    write_checkpoint(file, psize, model_name, t, n, bytes);
    s = write_atomically(path, file, (size_t)size, err);
  }
  free(file);
  free(bytes);
  return s;
}

/* ------------------------------------------------------------------ load */

/* What the messages call the checkpoint: the file ('path', "checkpoint
 * 'path'", the file) or one in memory (the checkpoint). */
typedef struct Src {
  char name[320], title[340];
  const char *noun;
} Src;

static Src src_file(const char *path) {
  Src s = {.noun = "the file"};
  snprintf(s.name, sizeof s.name, "'%.300s'", path);
  snprintf(s.title, sizeof s.title, "checkpoint '%.300s'", path);
  return s;
}

static const Src src_memory = {"the checkpoint", "the checkpoint", "the checkpoint"};

/* Reads all of path into *buf (malloc'd). */
static gradc_status read_file(const char *path, unsigned char **buf, size_t *len, RtError *err) {
  *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return rt_fail(err, GRADC_ERR_IO, "cannot open the checkpoint '%s': %s", path, strerror(errno));
  struct stat st;
  gradc_status s = GRADC_OK;
  if (fstat(fd, &st) != 0) {
    s = rt_fail(err, GRADC_ERR_IO, "cannot read the checkpoint '%s': %s", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = rt_fail(err, GRADC_ERR_IO, "cannot read the checkpoint '%s': not a regular file", path);
  } else if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
    s = rt_fail(err, GRADC_ERR_CHECKPOINT, "'%s' is %lld bytes; gradc reads checkpoints of at most 4 GiB", path,
                (long long)st.st_size);
  } else if (!(*buf = malloc((size_t)st.st_size + 1))) {
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s' (%lld bytes)", path, (long long)st.st_size);
  } else {
    size_t want = (size_t)st.st_size;
    *len = 0;
    while (*len < want) {
      ssize_t r = read(fd, *buf + *len, want - *len);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        s = rt_fail(err, GRADC_ERR_IO, "cannot read the checkpoint '%s': %s", path, strerror(errno));
        break;
      }
      if (r == 0) break;   /* shrank while we read: what is there is checked below */
      *len += (size_t)r;
    }
  }
  close(fd);
  if (s) {
    free(*buf);
    *buf = NULL;
  }
  return s;
}

/* A cursor over the payload: every read checks the bytes that remain. */
typedef struct Reader {
  const unsigned char *p;
  size_t left;
} Reader;

static bool get_le(Reader *r, int bytes, uint64_t *v) {
  if (r->left < (size_t)bytes) return false;
  *v = 0;
  for (int k = 0; k < bytes; k++) *v |= (uint64_t)r->p[k] << (8 * k);
  r->p += bytes, r->left -= (size_t)bytes;
  return true;
}

static bool get_bytes(Reader *r, uint64_t n, const unsigned char **at) {
  if (r->left < n) return false;
  *at = r->p;
  r->p += n, r->left -= (size_t)n;
  return true;
}

/* A tensor as the file describes it; data points into the payload. */
typedef struct FileTensor {
  const char *name;
  size_t name_len;
  gradc_dtype dtype;
  int rank;
  uint64_t dims[CKPT_MAX_RANK];
  const unsigned char *data;
  uint64_t bytes;
  bool matched;
} FileTensor;

/* Parses tensor i of the payload; on failure *why says what was wrong. */
static bool get_tensor(Reader *r, FileTensor *ft, const char **why) {
  uint64_t v;
  const unsigned char *name;
  *why = "a name runs past the end of the data";
  if (!get_le(r, 4, &v) || !get_bytes(r, v, &name)) return false;
  ft->name = (const char *)name, ft->name_len = (size_t)v;
  *why = "a dtype is unknown";
  if (!get_le(r, 4, &v) || v > GRADC_BOOL) return false;
  ft->dtype = (gradc_dtype)v;
  *why = "a rank is over 8";
  if (!get_le(r, 4, &v) || v > CKPT_MAX_RANK) return false;
  ft->rank = (int)v;
  *why = "a shape runs past the end of the data";
  for (int k = 0; k < ft->rank; k++)
    if (!get_le(r, 8, &ft->dims[k])) return false;
  *why = "a tensor's data runs past the end of the file";
  if (!tensor_bytes(ft->dtype, ft->rank, ft->dims, &ft->bytes) || !get_bytes(r, ft->bytes, &ft->data))
    return false;
  return true;
}

/* The differences between the file and the model, as one message: what
 * fits in an RtError after its opening words is listed, the rest counted. */
typedef struct Diff {
  char text[sizeof ((RtError *)0)->msg];
  size_t len, room;
  int count, omitted;
} Diff;

static void add_diff(Diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_diff(Diff *d, const char *fmt, ...) {
  char one[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(one, sizeof one, fmt, ap);
  va_end(ap);
  size_t n = strlen(one) + 2;
  if (d->omitted || d->len + n > d->room) {
    d->omitted++;      /* once one is left out, so are the rest: the list stays in order */
  } else {
    d->len += (size_t)snprintf(d->text + d->len, sizeof d->text - d->len, "%s%s", d->count ? "; " : "", one);
    d->count++;
  }
}

static FileTensor *find_tensor(FileTensor *ft, uint32_t count, const char *name, bool *twice) {
  FileTensor *found = NULL;
  size_t len = strlen(name);
  *twice = false;
  for (uint32_t j = 0; j < count; j++)
    if (ft[j].name_len == len && !memcmp(ft[j].name, name, len)) {
      if (found) *twice = true;
      found = &ft[j];
    }
  return found;
}

/* Checks the file's tensors against t; copies nothing. */
static gradc_status match_tensors(const Src *src, FileTensor *ft, uint32_t count, const CkptTensor *t, int n,
                                  RtError *err) {
  static const char opening[] = "%s does not match the model: %s%s";
  /* Room for the opening words, the title and "; and 1234567 more". */
  size_t used = sizeof opening + strlen(src->title) + 24;
  Diff d = {.room = used < sizeof d.text ? sizeof d.text - used : 0};
  char a[200], b[200];
  for (int i = 0; i < n; i++) {
    bool twice;
    FileTensor *f = find_tensor(ft, count, t[i].name, &twice);
    if (twice) return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: it holds '%s' twice", src->name, t[i].name);
    if (!f) {
      if (!t[i].optional) add_diff(&d, "'%s' is missing from %s", t[i].name, src->noun);
      continue;
    }
    f->matched = true;
    uint64_t dims[CKPT_MAX_RANK];
    for (int k = 0; k < t[i].rank; k++) dims[k] = (uint64_t)t[i].dims[k];
    bool same_shape = f->rank == t[i].rank && !memcmp(f->dims, dims, sizeof(uint64_t) * (size_t)f->rank);
    if (f->dtype != t[i].dtype) {
      shape_text(f->rank, f->dims, a, sizeof a);
      shape_text(t[i].rank, dims, b, sizeof b);
      add_diff(&d, "'%s' is %s%s in %s but %s%s in the model", t[i].name, dtype_name[f->dtype], a, src->noun,
               dtype_name[t[i].dtype], b);
    } else if (!same_shape) {
      shape_text(f->rank, f->dims, a, sizeof a);
      shape_text(t[i].rank, dims, b, sizeof b);
      add_diff(&d, "'%s' has shape %s in %s but %s in the model", t[i].name, a, src->noun, b);
    }
  }
  for (uint32_t j = 0; j < count; j++)
    if (!ft[j].matched)
      add_diff(&d, "'%.*s' is in %s but not in the model", ft[j].name_len > 200 ? 200 : (int)ft[j].name_len,
               ft[j].name, src->noun);
  if (!d.count && !d.omitted) return GRADC_OK;
  char more[40] = "";
  if (d.omitted) snprintf(more, sizeof more, d.count ? "; and %d more" : "%d differences", d.omitted);
  return rt_fail(err, GRADC_ERR_CHECKPOINT, opening, src->title, d.text, more);
}

/* Checks the payload's structure and its tensors against t; on success
 * copies every tensor, and not one byte otherwise. */
static gradc_status load_payload(const Src *src, const unsigned char *payload, size_t size, const char *model_name,
                                 const CkptTensor *t, int n, const uint64_t *bytes, RtError *err) {
  Reader r = {payload, size};
  uint64_t v;
  const unsigned char *name;
  if (!get_le(&r, 4, &v) || !get_bytes(&r, v, &name))
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: the model name runs past the end of the data",
                   src->name);
  if (v != strlen(model_name) || memcmp(name, model_name, (size_t)v))
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is for model '%.*s', not '%s'", src->title, v > 200 ? 200 : (int)v,
                   (const char *)name, model_name);
  if (!get_le(&r, 4, &v))
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: the tensor count is missing", src->name);
  /* Each tensor takes at least 12 bytes (name length, dtype, rank), which
   * bounds the allocation below by the payload actually present. */
  uint32_t count = (uint32_t)v;
  if (count > r.left / 12)
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: it claims %u tensors in %zu bytes", src->name, count,
                   r.left);
  FileTensor *ft = calloc((size_t)count + 1, sizeof *ft);
  if (!ft) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory loading %s", src->name);
  gradc_status s = GRADC_OK;
  for (uint32_t j = 0; j < count && !s; j++) {
    const char *why;
    if (!get_tensor(&r, &ft[j], &why))
      s = rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: in tensor %u of %u, %s", src->name, j + 1, count, why);
  }
  if (!s && r.left)
    s = rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: %zu stray bytes after the last tensor", src->name, r.left);
  if (!s) s = match_tensors(src, ft, count, t, n, err);
  if (!s)
    for (int i = 0; i < n; i++) {
      bool twice;
      const FileTensor *f = find_tensor(ft, count, t[i].name, &twice);
      if (f && bytes[i]) memcpy(t[i].data, f->data, (size_t)bytes[i]);
    }
  free(ft);
  return s;
}

/* A whole checkpoint, from its header to its tensors. */
static gradc_status read_checkpoint(const Src *src, const unsigned char *file, size_t len, const char *model_name,
                                    const CkptTensor *t, int n, const uint64_t *bytes, RtError *err) {
  if (len < 8 || memcmp(file, "GRADCKPT", 8))
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is not a gradc checkpoint (it does not start with GRADCKPT)",
                   src->name);
  if (len < HEADER_BYTES)
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is truncated: %zu bytes, less than the %d-byte header", src->name,
                   len, HEADER_BYTES);
  Reader h = {file + 8, HEADER_BYTES - 8};
  uint64_t version, size, crc, csize;
  get_le(&h, 4, &version), get_le(&h, 8, &size), get_le(&h, 4, &crc), get_le(&h, 8, &csize);
  if (version != FORMAT_VERSION)
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s: checkpoint format version %llu; this gradc reads %d", src->name,
                   (unsigned long long)version, FORMAT_VERSION);
  if (csize != len - HEADER_BYTES)
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is %s: its header says %llu compressed bytes follow, but %zu do",
                   src->name, csize > len - HEADER_BYTES ? "truncated" : "corrupted (trailing data)",
                   (unsigned long long)csize, len - HEADER_BYTES);
  /* deflate never expands more than 1032:1, so a larger claim is a damaged
   * header - refused before it becomes an allocation. */
  if (size > csize * 1032 + 1024)
    return rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: its header claims %llu bytes from %llu compressed",
                   src->name, (unsigned long long)size, (unsigned long long)csize);
  unsigned char *payload = malloc((size_t)size + 1);
  if (!payload)
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory loading %s (%llu bytes)", src->name, (unsigned long long)size);
  gradc_status s;
  const char *why = zs_inflate(file + HEADER_BYTES, (size_t)csize, payload, (size_t)size);
  if (why)
    s = rt_fail(err, GRADC_ERR_CHECKPOINT, "%s is corrupted: %s", src->name, why);
  else if (zs_crc32(0, payload, (size_t)size) != crc)
    s = rt_fail(err, GRADC_ERR_CHECKPOINT, "%s: checksum mismatch: %s is corrupted", src->name, src->noun);
  else
    s = load_payload(src, payload, (size_t)size, model_name, t, n, bytes, err);
  free(payload);
  return s;
}

gradc_status ckpt_read(const void *blob, size_t len, const char *model_name, const CkptTensor *t, int n,
                       RtError *err) {
  if (!model_name || n < 0 || (n > 0 && !t)) return rt_fail(err, GRADC_ERR_ARG, "ckpt_read: bad argument");
  if (!blob) len = 0;
  uint64_t *bytes = calloc((size_t)n + 1, sizeof *bytes);
  if (!bytes) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  gradc_status s = check_tensors("ckpt_read", t, n, bytes, err);
  if (!s) s = read_checkpoint(&src_memory, blob ? blob : "", len, model_name, t, n, bytes, err);
  free(bytes);
  return s;
}

gradc_status ckpt_load(const char *path, const char *model_name, const CkptTensor *t, int n, RtError *err) {
  if (!path || !model_name || n < 0 || (n > 0 && !t)) return rt_fail(err, GRADC_ERR_ARG, "ckpt_load: bad argument");
  uint64_t *bytes = calloc((size_t)n + 1, sizeof *bytes);
  if (!bytes) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory loading '%s'", path);
  unsigned char *file = NULL;
  size_t len = 0;
  gradc_status s = check_tensors("ckpt_load", t, n, bytes, err);
  if (!s) s = read_file(path, &file, &len, err);
  if (!s) {
    Src src = src_file(path);
    s = read_checkpoint(&src, file, len, model_name, t, n, bytes, err);
  }
  free(file);
  free(bytes);
  return s;
}
