/*
 * data.c - datasets from disk for the training loop: MNIST-format IDX
 * files, CSV tables of numbers, the validation split and the per-epoch
 * shuffle.
 *
 * IDX (the format of LeCun's MNIST files, which Fashion-MNIST copies) is a
 * big-endian header - a magic number whose third byte is the element type
 * (0x08, unsigned byte) and whose fourth is the number of dimensions, then
 * one u32 per dimension - followed by the elements.  Images are 0x00000803
 * (count, rows, cols), labels 0x00000801 (count).  The files usually come
 * gzip'd; zlib's gzread reads both forms, so the format is detected by
 * content and a renamed or uncompressed file still loads.
 *
 * Nothing in a file is trusted.  The header's sizes are checked against
 * limits before any arithmetic, and the memory its values will take
 * against a budget before anything is allocated: at most DATA_MAX_BYTES
 * (8 GiB) per file, and no more than the memory the process can have
 * (MemAvailable, ulimit -v and -d), so a 4 MB gzip of zeros whose header
 * promises 5,000,000 images is a message with the number, not a machine
 * swapping.  Within the budget the decompressed bytes are converted a
 * chunk at a time into the values (the raw bytes are never held whole),
 * which grow with what really arrives, so a 10-byte file that promises a
 * gigabyte costs a chunk; the header's promise is checked against the
 * bytes really there: fewer is "truncated", more is "trailing data".
 * Every error names the file and says what was expected and what was
 * found: a user looking at "truncated: 47040016 bytes expected, 23520000
 * found" knows to download again.
 *
 * zlib is used here, in loaders.c (.npz archives) and in ckpt.c only
 * (STYLE: the I/O files).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "runtime.h"

/* Far beyond any real dataset (MNIST has 60000 samples of 784 values) and
 * small enough that counts, sizes and their product fit in 64 bits. */
#define MAX_SAMPLES (UINT64_C(1) << 31)
#define MAX_SAMPLE_VALUES (UINT64_C(1) << 24)
/* The most bytes one data file's values may take in memory (as f32 or
 * i32): 45 times Fashion-MNIST's training images, and more than a machine
 * that trains on the CPU holds for data.  README, "Data formats". */
#define DATA_MAX_BYTES (UINT64_C(8) << 30)

/* Images and labels of unsigned bytes; sequences of ids are vectors
 * (count, length) of unsigned bytes or of big-endian i32 (type 0x0C). */
enum { IDX_IMAGES = 0x00000803, IDX_LABELS = 0x00000801, IDX_U8_VECTORS = 0x00000802,
       IDX_I32_VECTORS = 0x00000C02 };

static const char debian_dir[] = "/usr/share/datasets/fashion-mnist";

/* ------------------------------------------------------------ IDX files */

/* What an IDX file's elements become in memory. */
typedef enum IdxTo {
  TO_PIXELS,                 /* f32 scaled to [0, 1] (images) */
  TO_IDS,                    /* f32, unscaled (sequences of ids) */
  TO_LABELS,                 /* i32 */
} IdxTo;

/* One IDX file's contents: the header's dimensions and the values. */
typedef struct Idx {
  uint32_t dims[3];
  int ndims;
  uint64_t count;            /* elements: the product of dims */
  int esize;                 /* bytes per element in the file: 1, or 4 for i32 */
  void *values;              /* count floats (rt_alloc_big) or int32s (malloc) */
} Idx;

static uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_kind(uint32_t magic) {
  return magic == IDX_IMAGES ? " (an IDX image file)"
         : magic == IDX_LABELS ? " (an IDX label file)"
         : magic == IDX_U8_VECTORS || magic == IDX_I32_VECTORS ? " (an IDX sequence file)"
                               : "";
}

/* Reads up to n bytes into buf, *got of them before the end of the data.
 * A short read is an error here only when the OS or zlib reports one (an
 * I/O error, a damaged or cut-off gzip stream); what a clean short read
 * means is the caller's to say.  `already` counts the bytes read before,
 * and `expect` is the file's promised size (0 while the header is still
 * unknown), both for the message. */
static gradc_status read_some(gzFile f, const char *path, unsigned char *buf, size_t n, size_t *got,
                              uint64_t already, uint64_t expect, RtError *err) {
  *got = 0;
  int saved_errno = 0;
  while (*got < n) {
    /* gzread takes an unsigned and returns an int: at most 1 GiB a call. */
    size_t want = n - *got < (size_t)1 << 30 ? n - *got : (size_t)1 << 30;
    errno = 0;
    int r = gzread(f, buf + *got, (unsigned)want);
    saved_errno = errno;
    if (r <= 0) break;
    *got += (size_t)r;
  }
  /* A read that got everything it asked for leaves a pending error (zlib
   * can return the last good bytes and flag the cut-off in one call) to
   * the next read, which then knows how much was expected. */
  if (*got == n) return GRADC_OK;
  int code;
  const char *zmsg = gzerror(f, &code);
  /* gzerror's text starts with the path, which our message gives already. */
  size_t plen = strlen(path);
  if (!strncmp(zmsg, path, plen) && !strncmp(zmsg + plen, ": ", 2)) zmsg += plen + 2;
  if (code == Z_ERRNO)
    return rt_fail(err, GRADC_ERR_IO, "cannot read '%s': %s", path, strerror(saved_errno));
  if (code == Z_MEM_ERROR) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", path);
  /* Z_BUF_ERROR is zlib's "unexpected end of file": a gzip stream cut off
   * in the middle, as a broken download leaves it. */
  if (code != Z_OK) {
    char promise[80] = "";
    if (expect) snprintf(promise, sizeof promise, ", and its header promises %llu", (unsigned long long)expect);
    return rt_fail(err, GRADC_ERR_DATA,
                   "'%s' is a truncated or damaged gzip file (zlib: %s): it gave %llu bytes before the error%s",
                   path, zmsg, (unsigned long long)(already + *got), promise);
  }
  return GRADC_OK;
}

static const char *idx_what(uint32_t magic) {
  return magic == IDX_IMAGES ? "image" : magic == IDX_LABELS ? "label" : "sequence";
}

/* A "Key:   123 kB" line of /proc/meminfo in bytes; 0 when unknown. */
static uint64_t meminfo_bytes(const char *key) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, klen) && line[klen] == ':' && sscanf(line + klen + 1, "%llu", &kb) == 1) break;
  fclose(f);
  return (uint64_t)kb * 1024;
}

/* Refuses values of `bytes` bytes for the n samples of path before they
 * are allocated: past DATA_MAX_BYTES (GRADC_ERR_DATA: no machine would
 * do), or past what this process can get (GRADC_ERR_NOMEM): its
 * address-space and data limits, the memory the kernel says is available.
 * The message gives the number and the limit it exceeds. */
static gradc_status check_budget(const char *path, uint64_t n, uint32_t magic, uint64_t bytes, RtError *err) {
  uint64_t limit = DATA_MAX_BYTES;
  const char *why = "gradc's limit for one data file (8 GiB)";
  gradc_status s = GRADC_ERR_DATA;
  if (bytes <= limit) {
    s = GRADC_ERR_NOMEM;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < limit)
      limit = rl.rlim_cur, why = "the process's address-space limit (ulimit -v)";
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < limit)
      limit = rl.rlim_cur, why = "the process's data limit (ulimit -d)";
    uint64_t avail = meminfo_bytes("MemAvailable");
    if (avail && avail < limit) limit = avail, why = "the memory available (MemAvailable in /proc/meminfo)";
    if (bytes <= limit) return GRADC_OK;
  }
  return rt_fail(err, s,
                 "'%s': its header promises %llu %ss, %llu bytes of values in memory, more than %s: %llu "
                 "bytes; nothing was allocated",
                 path, (unsigned long long)n, idx_what(magic), (unsigned long long)bytes, why,
                 (unsigned long long)limit);
}

/* Elements first .. first + k - 1 of the file, raw in buf, into values. */
static void convert(const Idx *x, IdxTo to, const unsigned char *buf, uint64_t first, size_t k) {
  float *f = x->values;
  int32_t *i32 = x->values;
  for (size_t e = 0; e < k; e++) {
    int32_t v = x->esize == 1 ? buf[e] : (int32_t)get_be32(buf + 4 * e);
    if (to == TO_LABELS) i32[first + e] = v;
    else if (to == TO_PIXELS) f[first + e] = (float)v / 255.0f;
    else f[first + e] = (float)v;
  }
}

/* Reads the IDX file at path, whose magic number must be `magic`
 * (IDX_U8_VECTORS: either kind of vectors), its elements into values as
 * `to` says. */
static gradc_status read_idx(const char *path, uint32_t magic, IdxTo to, Idx *out, RtError *err) {
  memset(out, 0, sizeof *out);
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return errno ? rt_fail(err, GRADC_ERR_IO, "cannot open '%s': %s", path, strerror(errno))
                 : rt_fail(err, GRADC_ERR_NOMEM, "out of memory opening '%s'", path);
  gzbuffer(f, 1 << 17);      /* fewer read calls than zlib's default 8 KiB */

  gradc_status s;
  enum { CHUNK = 1 << 20 };  /* raw bytes converted at a time: whole elements */
  unsigned char head[16], *raw = NULL;
  size_t head_bytes = 4 + 4 * (magic & 0xff), got;
  if ((s = read_some(f, path, head, head_bytes, &got, 0, 0, err))) goto fail;
  bool vectors = got >= 4 && magic == IDX_U8_VECTORS && get_be32(head) == IDX_I32_VECTORS;
  if (got < 4 || (get_be32(head) != magic && !vectors)) {
    if (got < 4)
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is not an IDX file: it holds only %zu bytes", path, got);
    else
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is not an IDX %s file: its magic number is 0x%08x%s, expected 0x%08x (%u)",
                  path, idx_what(magic), get_be32(head), idx_kind(get_be32(head)), magic, magic);
    goto fail;
  }
  if (got < head_bytes) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' is truncated: %zu bytes, less than its %zu-byte header", path, got,
                head_bytes);
    goto fail;
  }
  out->ndims = (int)(head_bytes / 4 - 1);
  out->esize = vectors ? 4 : 1;
  for (int k = 0; k < out->ndims; k++) out->dims[k] = get_be32(head + 4 + 4 * k);
  bool gz = !gzdirect(f);

  /* Limits before arithmetic: with both in bounds, n * per_sample and the
   * byte counts below cannot overflow 64 bits. */
  uint64_t n = out->dims[0], per_sample = 1;
  for (int k = 1; k < out->ndims; k++) per_sample *= out->dims[k];
  if (n > MAX_SAMPLES) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s': the header claims %llu samples; gradc refuses more than 2^31", path,
                (unsigned long long)n);
    goto fail;
  }
  if (per_sample > MAX_SAMPLE_VALUES) {
    s = rt_fail(err, GRADC_ERR_DATA,
                "'%s': the header claims images of %ux%u = %llu pixels; gradc refuses more than 2^24", path,
                out->dims[1], out->dims[2], (unsigned long long)per_sample);
    goto fail;
  }
  if (n == 0 || per_sample == 0) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds no data: its header says %u samples%s", path, out->dims[0],
                per_sample ? "" : " of 0 values each");
    goto fail;
  }
  out->count = n * per_sample;
  uint64_t bytes = out->count * (uint64_t)out->esize, expect = head_bytes + bytes;
  uint64_t value_bytes = out->count * 4;     /* f32 or i32 */
  if ((s = check_budget(path, n, magic, value_bytes, err))) goto fail;

  /* The values grow with what really arrives, doubling up to the promise
   * (so a 16-byte file that promises a gigabyte costs a chunk, and no
   * malloc of the promise is made for a file that cannot hold it), and
   * the raw bytes pass through one chunk at a time. */
  raw = malloc(CHUNK);
  if (!raw) {
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", path);
    goto fail;
  }
  uint64_t have = 0, cap = 0;      /* bytes read; elements of values */
  while (have < bytes) {
    size_t want = bytes - have < CHUNK ? (size_t)(bytes - have) : CHUNK;
    if ((s = read_some(f, path, raw, want, &got, head_bytes + have, expect, err))) goto fail;
    uint64_t done = have / (uint64_t)out->esize, k = got / (size_t)out->esize;
    if (done + k > cap) {
      uint64_t next = cap ? cap * 2 : CHUNK;
      if (next < done + k) next = done + k;
      if (next > out->count) next = out->count;
      void *grown = to == TO_LABELS ? malloc((size_t)next * 4) : rt_alloc_big((size_t)next * 4);
      if (!grown) {
        s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the %llu %ss of '%s' (%llu bytes)",
                    (unsigned long long)n, idx_what(magic), path, (unsigned long long)value_bytes);
        goto fail;
      }
      if (done) memcpy(grown, out->values, (size_t)done * 4);
      free(out->values);
      out->values = grown, cap = next;
    }
    convert(out, to, raw, done, (size_t)k);
    have += got;
    if (got < want) break;
  }
  if (have < bytes) {
    s = rt_fail(err, GRADC_ERR_DATA,
                "'%s' is truncated: its header promises %llu %ss, %llu bytes%s in all, but it holds %llu", path,
                (unsigned long long)n, idx_what(magic), (unsigned long long)expect,
                gz ? " after decompression" : "", (unsigned long long)(head_bytes + have));
    goto fail;
  }
  /* Anything after the promised bytes means the header and the data
   * disagree; counted to the end so the message can say how much. */
  uint64_t extra = 0;
  do {
    if ((s = read_some(f, path, raw, CHUNK, &got, expect + extra, expect, err))) goto fail;
    extra += got;
  } while (got == CHUNK);
  if (extra) {
    s = rt_fail(err, GRADC_ERR_DATA,
                "'%s' has %llu bytes of trailing data: its header promises %llu %ss, %llu bytes%s in all", path,
                (unsigned long long)extra, (unsigned long long)n, idx_what(magic),
                (unsigned long long)expect, gz ? " after decompression" : "");
    goto fail;
  }
  free(raw);
  gzclose(f);
  return GRADC_OK;

fail:
  gzclose(f);
  free(raw);
  free(out->values);
  out->values = NULL;
  return s;
}

gradc_status data_load_idx(const char *images_path, const char *labels_path, Dataset *out, RtError *err) {
  if (!out || !images_path) return rt_fail(err, GRADC_ERR_ARG, "data_load_idx: NULL argument");
  memset(out, 0, sizeof *out);
  Idx img, lab = {0};
  gradc_status s = read_idx(images_path, IDX_IMAGES, TO_PIXELS, &img, err);
  if (s) return s;
  if (labels_path && (s = read_idx(labels_path, IDX_LABELS, TO_LABELS, &lab, err))) goto done;
  if (labels_path && lab.dims[0] != img.dims[0]) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds %u images but '%s' holds %u labels", images_path, img.dims[0],
                labels_path, lab.dims[0]);
    goto done;
  }
  *out = (Dataset){.n = img.dims[0], .rank = 2, .dims = {img.dims[1], img.dims[2]},
                   .sample_size = (int64_t)img.dims[1] * img.dims[2], .x = img.values, .y = lab.values};
  img.values = lab.values = NULL;

done:
  free(img.values);
  free(lab.values);
  return s;
}

/* Sequences from IDX vectors (count, length), unscaled, with labels. */
static gradc_status load_idx_sequences(const char *seq_path, const char *labels_path, Dataset *out,
                                       RtError *err) {
  memset(out, 0, sizeof *out);
  Idx v, lab = {0};
  gradc_status s = read_idx(seq_path, IDX_U8_VECTORS, TO_IDS, &v, err);
  if (s) return s;
  if ((s = read_idx(labels_path, IDX_LABELS, TO_LABELS, &lab, err))) goto done;
  if (lab.dims[0] != v.dims[0]) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds %u sequences but '%s' holds %u labels", seq_path, v.dims[0],
                labels_path, lab.dims[0]);
    goto done;
  }
  Dataset d = {.n = v.dims[0], .rank = 1, .dims = {v.dims[1]}, .sample_size = v.dims[1]};
  d.seq = malloc(sizeof(int64_t) * (size_t)(d.n + 1));
  if (!d.seq) {
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for %lld sequences of %lld", (long long)d.n,
                (long long)d.dims[0]);
    goto done;
  }
  for (int64_t i = 0; i <= d.n; i++) d.seq[i] = i * d.sample_size;
  d.x = v.values, d.y = lab.values;
  v.values = lab.values = NULL;
  *out = d;

done:
  free(v.values);
  free(lab.values);
  return s;
}

/* ----------------------------------------------------- MNIST directories */

/* dir is the Debian package's location (trailing slashes aside). */
static bool is_debian_dir(const char *dir) {
  size_t len = strlen(dir);
  while (len > 1 && dir[len - 1] == '/') len--;
  return len == sizeof debian_dir - 1 && !memcmp(dir, debian_dir, len);
}

/* Sets path to dir/name.gz, or dir/name when only that exists. */
static gradc_status find_file(const char *dir, const char *name, char *path, size_t size, RtError *err) {
  size_t len = strlen(dir);
  while (len > 1 && dir[len - 1] == '/') len--;
  struct stat st;
  for (int gz = 1; gz >= 0; gz--) {
    int w = snprintf(path, size, "%.*s/%s%s", (int)len, dir, name, gz ? ".gz" : "");
    if (w < 0 || (size_t)w >= size) return rt_fail(err, GRADC_ERR_ARG, "the dataset path '%s' is too long", dir);
    if (stat(path, &st) == 0) return GRADC_OK;
  }
  return rt_fail(err, GRADC_ERR_IO, "the dataset directory '%s' has neither %s.gz nor %s%s", dir, name, name,
                 is_debian_dir(dir) ? "; reinstall it with: apt-get install --reinstall dataset-fashion-mnist"
                                    : "");
}

gradc_status data_mnist_paths(const char *dir, bool train, char *samples, char *labels, size_t size,
                              bool *sequences, RtError *err) {
  if (!dir || !samples || !labels) return rt_fail(err, GRADC_ERR_ARG, "data_mnist_paths: NULL argument");
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno == ENOENT)
      return rt_fail(err, GRADC_ERR_IO, "the dataset directory '%s' does not exist%s", dir,
                     is_debian_dir(dir) ? "; install it with: apt-get install dataset-fashion-mnist" : "");
    return rt_fail(err, GRADC_ERR_IO, "cannot open the dataset directory '%s': %s", dir, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return rt_fail(err, GRADC_ERR_IO, "the dataset path '%s' is not a directory", dir);
  const char *split = train ? "train" : "t10k";
  char name[64];
  /* sequences of ids instead of images: SPLIT-sequences-idx2-int (i32)
   * or -ubyte */
  static const char *const seq_kinds[] = {"int", "ubyte"};
  RtError ignored;
  *sequences = false;
  for (int k = 0; k < 2 && !*sequences; k++) {
    snprintf(name, sizeof name, "%s-sequences-idx2-%s", split, seq_kinds[k]);
    *sequences = !find_file(dir, name, samples, size, &ignored);
  }
  gradc_status s = GRADC_OK;
  if (!*sequences) {
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    s = find_file(dir, name, samples, size, err);
  }
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
  return s ? s : find_file(dir, name, labels, size, err);
}

gradc_status data_load_mnist_dir(const char *dir, bool train, Dataset *out, RtError *err) {
  if (!dir || !out) return rt_fail(err, GRADC_ERR_ARG, "data_load_mnist_dir: NULL argument");
  memset(out, 0, sizeof *out);
  char samples[4096], labels[4096];
  bool sequences;
  gradc_status s = data_mnist_paths(dir, train, samples, labels, sizeof samples, &sequences, err);
  if (s) return s;
  return sequences ? load_idx_sequences(samples, labels, out, err) : data_load_idx(samples, labels, out, err);
}

/* ------------------------------------------------------------- CSV files */

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* A field (already trimmed, NUL-terminated by the caller) as a number.
 * Only decimal notation is a number here - an optional sign, digits with
 * an optional point, an optional exponent - because strtod also takes
 * "nan", "inf", "Infinity" and hex ("0x10"), which no spreadsheet writes
 * for a measurement and which would train on NaN, infinity or a value the
 * user did not mean.  The value must fit f32, the dataset's storage (1e39
 * would become infinity); underflow to 0 or a subnormal is accepted.
 * Returns NULL for a number, else why the field is not one; *word is set
 * when the field is no number at all (which line 1 may be: a header). */
static const char *csv_number(const char *s, double *v, bool *word) {
  const char *p = s;
  *word = false;
  if (*p == '+' || *p == '-') p++;
  size_t digits = strspn(p, "0123456789");
  p += digits;
  if (*p == '.') {
    size_t frac = strspn(p + 1, "0123456789");
    digits += frac;
    p += 1 + frac;
  }
  if (digits && (*p == 'e' || *p == 'E')) {
    const char *e = p + 1 + (p[1] == '+' || p[1] == '-');
    size_t exp = strspn(e, "0123456789");
    if (exp) p = e + exp;
  }
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  if (!digits || *p) {
    /* strtod reads more than decimals; what it reads whole is a number we
     * refuse, anything else a word */
    *word = !*s || end == s || *end;
    if (*word) return "";
    return isnan(*v) ? ": NaN is not a value to train on"
           : isinf(*v) ? ": infinity is not a value to train on"
                       : ": only decimal numbers are read (no hex)";
  }
  /* 0x1.ffffffp127 is FLT_MAX plus half its last place: what rounds to
   * infinity as a float (a float cast out of range is undefined in C) */
  if (!(fabs(*v) < 0x1.ffffffp127)) return ": beyond the range of f32 (magnitude at most 3.4e38)";
  return NULL;
}

/* Appends one row's fields to *vals (growing it), or reports the first
 * field that is not a number: *bad_col is its 1-based column, and bad gets
 * the message ("bad number 'x'" and why); *word when the field is no
 * number at all (a line that may be the header). */
static bool parse_row(char *line, double **vals, int64_t *nvals, int64_t *cap, int64_t *nfields,
                      int64_t *bad_col, char *bad, size_t bad_size, bool *word, bool *oom) {
  *nfields = 0;
  char *p = line;
  for (;;) {
    char *start = p;
    while (*p && *p != ',') p++;
    char *end = p, saved = *p;
    while (start < end && is_blank(*start)) start++;
    while (end > start && is_blank(end[-1])) end--;
    char keep = *end;
    *end = '\0';
    double v;
    const char *why = csv_number(start, &v, word);
    if (why) {
      *bad_col = start - line + 1;
      snprintf(bad, bad_size, "bad number '%.40s'%s", start, why);
    }
    *end = keep;
    if (why) return false;
    if (*nvals == *cap) {
      int64_t grown = *cap ? *cap * 2 : 1024;
      double *g = realloc(*vals, sizeof(double) * (size_t)grown);
      if (!g) {
        *oom = true;
        return false;
      }
      *vals = g;
      *cap = grown;
    }
    (*vals)[(*nvals)++] = v;
    ++*nfields;
    if (saved != ',') return true;
    p++;
  }
}

/* What a reader of CSV rows checks and records of each row: the row's
 * fields are vals[first .. first + nfields), read from line lineno. */
typedef struct CsvRows {
  const char *path;
  double *vals;
  int64_t nvals, cap, nrows;
  int64_t header_cols;             /* fields of a header line 1, or -1 */
  gradc_status (*row)(struct CsvRows *c, long long lineno, int64_t first, int64_t nfields, RtError *err);
  int64_t ncols, first_row_line;   /* tables: every row's width */
  int64_t *seq, seq_cap, longest;  /* sequences: where each row's fields begin */
} CsvRows;

/* Reads the rows of numbers of c->path into c->vals, skipping blank lines,
 * '#' comments and a header on line 1, and hands each row to c->row. */
static gradc_status csv_read(CsvRows *c, RtError *err) {
  c->header_cols = -1;
  FILE *f = fopen(c->path, "r");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot open '%s': %s", c->path, strerror(errno));
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t len;
  long long lineno = 0;
  gradc_status s = GRADC_OK;
  while ((errno = 0, len = getline(&line, &line_cap, f)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    char *text = line;
    /* A UTF-8 byte-order mark, as spreadsheet exports write it. */
    if (lineno == 1 && !strncmp(text, "\xEF\xBB\xBF", 3)) text += 3;
    /* A NUL byte would end the line early as C reads it (a row starting
     * with one would vanish): a binary or damaged file, said where. */
    const char *nul = memchr(line, '\0', (size_t)len);
    if (nul) {
      s = rt_fail(err, GRADC_ERR_DATA, "%s:%lld:%lld: a NUL byte: the file is not text (binary or damaged)",
                  c->path, lineno, (long long)(nul - line + 1));
      break;
    }
    const char *first = text;
    while (is_blank(*first)) first++;
    if (!*first || *first == '#') continue;
    int64_t nfields, bad_col, before = c->nvals;
    char bad[160];
    bool oom = false, word = false;
    if (!parse_row(text, &c->vals, &c->nvals, &c->cap, &nfields, &bad_col, bad, sizeof bad, &word, &oom)) {
      if (oom) {
        s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", c->path);
        break;
      }
      /* Only the very first line may be a header, and only of words: a
       * word further down is a broken row, and skipping it would shift
       * every row after it; a refused number is refused on line 1 too. */
      if (lineno == 1 && word) {
        c->nvals = before;
        c->header_cols = 1;
        for (const char *t = text; *t; t++) c->header_cols += *t == ',';
        continue;
      }
      s = rt_fail(err, GRADC_ERR_DATA, "%s:%lld:%lld: %s", c->path, lineno, (long long)bad_col, bad);
      break;
    }
    if ((s = c->row(c, lineno, before, nfields, err))) break;
    c->nrows++;
  }
  /* getline's -1 is the end of the file or an error (ENOMEM among them);
   * only feof tells which. */
  if (!s && (ferror(f) || !feof(f)))
    s = rt_fail(err, errno == ENOMEM ? GRADC_ERR_NOMEM : GRADC_ERR_IO, "cannot read '%s': %s", c->path,
                strerror(errno));
  free(line);
  fclose(f);
  return s;
}

/* A table's row: as many fields as the header and the first row. */
static gradc_status table_row(CsvRows *c, long long lineno, int64_t first, int64_t nfields, RtError *err) {
  (void)first;
  if (c->ncols < 0 && c->header_cols >= 0 && nfields != c->header_cols)
    return rt_fail(err, GRADC_ERR_DATA, "%s:%lld: %lld fields, but the header on line 1 has %lld", c->path,
                   lineno, (long long)nfields, (long long)c->header_cols);
  if (c->ncols < 0) {
    c->ncols = nfields;
    c->first_row_line = lineno;
  } else if (nfields != c->ncols) {
    return rt_fail(err, GRADC_ERR_DATA, "%s:%lld: %lld fields, but line %lld has %lld", c->path, lineno,
                   (long long)nfields, (long long)c->first_row_line, (long long)c->ncols);
  }
  return GRADC_OK;
}

gradc_status data_load_csv(const char *path, double **out, int64_t *rows, int64_t *cols, RtError *err) {
  if (!path || !out || !rows || !cols) return rt_fail(err, GRADC_ERR_ARG, "data_load_csv: NULL argument");
  *out = NULL;
  *rows = *cols = 0;
  CsvRows c = {.path = path, .row = table_row, .ncols = -1};
  gradc_status s = csv_read(&c, err);
  if (!s && c.nrows == 0)
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds no rows of numbers%s", path,
                c.header_cols >= 0 ? ", only a header" : "");
  if (s) {
    free(c.vals);
    return s;
  }
  *out = c.vals;
  *rows = c.nrows;
  *cols = c.ncols;
  return GRADC_OK;
}

/* A row of a sequence CSV: a label and any number of ids, each an
 * integer (labels within i32, ids below 2^24, which floats hold exactly). */
static gradc_status sequence_row(CsvRows *c, long long lineno, int64_t first, int64_t nfields, RtError *err) {
  for (int64_t k = 0; k < nfields; k++) {
    double v = c->vals[first + k], limit = k ? 1 << 24 : INT32_MAX;
    if (v != floor(v) || fabs(v) > limit)
      return rt_fail(err, GRADC_ERR_DATA, "%s:%lld: field %lld is %g, not an integer %s", c->path, lineno,
                     (long long)(k + 1), v, k ? "id below 2^24" : "label");
  }
  if (c->nrows + 2 > c->seq_cap) {
    int64_t grown = c->seq_cap ? c->seq_cap * 2 : 1024;
    int64_t *g = realloc(c->seq, sizeof(int64_t) * (size_t)grown);
    if (!g) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", c->path);
    c->seq = g, c->seq_cap = grown;
  }
  c->seq[c->nrows] = first;
  if (nfields - 1 > c->longest) c->longest = nfields - 1;
  return GRADC_OK;
}

gradc_status data_load_csv_sequences(const char *path, Dataset *out, RtError *err) {
  if (!path || !out) return rt_fail(err, GRADC_ERR_ARG, "data_load_csv_sequences: NULL argument");
  memset(out, 0, sizeof *out);
  CsvRows c = {.path = path, .row = sequence_row};
  gradc_status s = csv_read(&c, err);
  if (!s && c.nrows == 0) s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds no sequences", path);
  int64_t n = c.nrows, ids = c.nvals - n;
  Dataset d = {.n = n, .rank = 1, .dims = {c.longest}, .sample_size = c.longest, .seq = c.seq};
  if (!s) {
    d.x = rt_alloc_big(sizeof(float) * (size_t)(ids > 0 ? ids : 1));
    d.y = malloc(sizeof(int32_t) * (size_t)n);
    if (!d.x || !d.y) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for '%s'", path);
  }
  /* each row, label first, into the label and its ids */
  for (int64_t i = 0, at = 0; !s && i < n; i++) {
    int64_t from = c.seq[i], to = i + 1 < n ? c.seq[i + 1] : c.nvals;
    d.y[i] = (int32_t)c.vals[from];
    d.seq[i] = at;
    for (int64_t k = from + 1; k < to; k++) d.x[at++] = (float)c.vals[k];
    d.seq[n] = at;
  }
  free(c.vals);
  if (s) {
    data_free(&d);
    return s;
  }
  *out = d;
  return GRADC_OK;
}

/* Stops the reader at the row c->nrows == c->ncols (the one sought),
 * recording its line in first_row_line. */
static gradc_status find_row(CsvRows *c, long long lineno, int64_t first, int64_t nfields, RtError *err) {
  (void)first, (void)nfields, (void)err;
  if (c->nrows < c->ncols) return GRADC_OK;
  c->first_row_line = lineno;
  return GRADC_ERR_DATA;     /* not an error: the reader stops here */
}

long long data_csv_line(const char *path, int64_t row) {
  if (!path || row < 0) return 0;
  RtError ignored;
  CsvRows c = {.path = path, .row = find_row, .ncols = row};
  csv_read(&c, &ignored);
  free(c.vals);
  return c.first_row_line;
}

/* ------------------------------------------------------ split and shuffle */

void data_free(Dataset *d) {
  if (!d) return;
  free(d->x);
  free(d->y);
  free(d->seq);
  memset(d, 0, sizeof *d);
}

gradc_status data_split(Dataset *d, double frac, Dataset *val, RtError *err) {
  if (!d || !val || val == d) return rt_fail(err, GRADC_ERR_ARG, "data_split: NULL or aliased argument");
  /* Written as a negation so that NaN is refused too. */
  if (!(frac >= 0 && frac < 1))
    return rt_fail(err, GRADC_ERR_ARG, "the validation split must be at least 0 and less than 1, got %g", frac);
  /* floor(n * frac), forgiving the rounding of a decimal fraction: 0.29 is
   * stored as 0.28999999999999998, and 100 * 0.29 must still give 29.  The
   * product is within a few ulps of the exact one, hence the 2^-50. */
  Dataset v = *d;
  v.n = (int64_t)floor((double)d->n * frac * (1 + 0x1p-50));
  v.x = NULL;
  v.y = NULL;
  v.seq = NULL;
  if (v.n > 0 && d->seq) {       /* sequences: the ids of the last v.n */
    int64_t keep = d->n - v.n, first = d->seq[keep], ids = d->seq[d->n] - first;
    v.x = malloc(sizeof(float) * (size_t)(ids > 0 ? ids : 1));
    v.y = malloc(sizeof(int32_t) * (size_t)v.n);
    v.seq = malloc(sizeof(int64_t) * (size_t)(v.n + 1));
    if (!v.x || !v.y || !v.seq) {
      data_free(&v);
      return rt_fail(err, GRADC_ERR_NOMEM, "out of memory splitting off %lld validation samples",
                     (long long)v.n);
    }
    memcpy(v.x, d->x + first, sizeof(float) * (size_t)ids);
    memcpy(v.y, d->y + keep, sizeof(int32_t) * (size_t)v.n);
    for (int64_t i = 0; i <= v.n; i++) v.seq[i] = d->seq[keep + i] - first;
    d->n = keep;
  } else if (v.n > 0) {
    int64_t keep = d->n - v.n;
    size_t xbytes = sizeof(float) * (size_t)(v.n * d->sample_size);
    v.x = malloc(xbytes);
    v.y = d->y ? malloc(sizeof(int32_t) * (size_t)v.n) : NULL;
    if (!v.x || (d->y && !v.y)) {
      data_free(&v);
      return rt_fail(err, GRADC_ERR_NOMEM, "out of memory splitting off %lld validation samples",
                     (long long)v.n);
    }
    memcpy(v.x, d->x + keep * d->sample_size, xbytes);
    if (d->y) memcpy(v.y, d->y + keep, sizeof(int32_t) * (size_t)v.n);
    d->n = keep;
    /* Giving the tail back is a nicety: when realloc cannot shrink in
     * place and fails, the larger block still holds the first part. */
    if (keep > 0) {
      float *x = realloc(d->x, sizeof(float) * (size_t)(keep * d->sample_size));
      if (x) d->x = x;
      int32_t *y = d->y ? realloc(d->y, sizeof(int32_t) * (size_t)keep) : NULL;
      if (y) d->y = y;
    }
  }
  *val = v;
  return GRADC_OK;
}

/* splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", 2014): one add and a bijective mix per output, so nearby
 * seeds and epochs still give unrelated streams. */
static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias: values below 2^64 mod bound
 * would make the small results likelier, so they are drawn again. */
static uint64_t uniform_below(uint64_t *state, uint64_t bound) {
  for (;;) {
    uint64_t r = splitmix64(state);
    /* threshold < bound: any r >= bound is kept without the division
     * that finds the threshold (the same picks, half the divisions) */
    if (r >= bound || r >= (0 - bound) % bound) return r % bound;
  }
}

void data_permutation(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch) {
  if (!idx || n <= 0) return;
  uint64_t e = (uint64_t)epoch, state = seed;
  state ^= splitmix64(&e);
  for (int64_t i = 0; i < n; i++) idx[i] = i;
  /* Fisher-Yates: position i takes a uniform pick of the i+1 not yet placed. */
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)uniform_below(&state, (uint64_t)i + 1);
    int64_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}
