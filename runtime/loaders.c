/*
 * loaders.c - datasets in the formats Python users have: NumPy arrays
 * (.npy files, .npz archives, a directory of .npy files) and the CIFAR-10
 * and CIFAR-100 binary batches.  (IDX and CSV are data.c's; image folders,
 * which need libpng and libjpeg, are the command line's: cli/images.c.)
 *
 * A .npy file is the magic "\x93NUMPY", a version, a header length, a
 * header that is a Python dict literal ({'descr': '<f4', 'fortran_order':
 * False, 'shape': (60000, 28, 28), }) and the elements in C order.  One
 * reader, npy_parse, serves `gradc run --feed` and the datasets.  It reads
 * the header as the small grammar it is (never strstr over it), and checks
 * the shape's product against limits and against the bytes really there
 * before anything is allocated: "huge declared shape" is a message.
 * Accepted: <f4 <f8 <i4 <i8 |u1 (and |b1 for --feed), C order; anything
 * else says what it found and what would do.
 *
 * An .npz is a zip archive of NAME.npy members (np.savez: stored;
 * np.savez_compressed: deflated).  The central directory gives each
 * member's sizes (numpy writes zip64 local headers whose sizes are
 * 0xffffffff, so those are not trusted); deflate is zlib's inflate, never
 * our own.  A deflated member claiming more than zlib's best ratio
 * (1032:1) of its compressed size is refused before the allocation.
 *
 * Arrays become a Dataset as Keras' datasets hand them out: x [N, ...]
 * (uint8 is pixels and scaled to [0, 1] like IDX images; float and int
 * values are taken as they are) and integer labels y [N] or [N, 1].
 *
 * CIFAR binary: records of a label byte (CIFAR-100: a coarse and a fine
 * label byte) and 3072 bytes of a 32x32 image as three planes (R, G, B),
 * each row-major.  They become [N, 32, 32, 3] (NHWC, what a conv2d input
 * of gradc takes), scaled to [0, 1].
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "runtime.h"

/* As data.c's limits: counts and bytes that cannot overflow 64 bits, and
 * at most 8 GiB of values for one array. */
#define MAX_ELEMENTS (UINT64_C(1) << 40)
#define MAX_BYTES (UINT64_C(8) << 30)

/* ------------------------------------------------------------ .npy */

static const struct {
  const char *descr;
  NpyType type;
  int esize;
} npy_types[] = {
    {"<f4", NPY_F4, 4}, {"<f8", NPY_F8, 8}, {"<i4", NPY_I4, 4}, {"<i8", NPY_I8, 8}, {"|u1", NPY_U1, 1},
    {"|b1", NPY_B1, 1},
};

static void skip_space(const char **p, const char *end) {
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) ++*p;
}

/* 'text' into out (at most size - 1 characters); false if p is no string. */
static bool quoted(const char **p, const char *end, char *out, size_t size) {
  skip_space(p, end);
  if (*p >= end || (**p != '\'' && **p != '"')) return false;
  char q = *(*p)++;
  size_t n = 0;
  while (*p < end && **p != q) {
    if (n + 1 < size) out[n++] = **p;
    ++*p;
  }
  out[n] = '\0';
  if (*p >= end) return false;
  ++*p;
  return true;
}

/* The header dict: {'descr': STR, 'fortran_order': BOOL, 'shape': (INT, ...)}
 * in any order; why it is not one into why. */
static bool parse_header(const char *p, const char *end, char *descr, size_t dsize, bool *fortran,
                         NpyArray *a, const char **why) {
  bool have_descr = false, have_order = false, have_shape = false;
  skip_space(&p, end);
  if (p >= end || *p++ != '{') return *why = "it does not start with '{'", false;
  for (;;) {
    skip_space(&p, end);
    if (p < end && *p == '}') break;
    char key[32];
    if (!quoted(&p, end, key, sizeof key)) return *why = "a key is not a quoted name", false;
    skip_space(&p, end);
    if (p >= end || *p++ != ':') return *why = "a key is not followed by ':'", false;
    skip_space(&p, end);
    if (!strcmp(key, "descr")) {
      if (p < end && *p == '[') return *why = "its dtype is a structured (record) dtype", false;
      if (!quoted(&p, end, descr, dsize)) return *why = "'descr' is not a quoted dtype", false;
      have_descr = true;
    } else if (!strcmp(key, "fortran_order")) {
      if (end - p >= 4 && !memcmp(p, "True", 4)) *fortran = true, p += 4;
      else if (end - p >= 5 && !memcmp(p, "False", 5)) *fortran = false, p += 5;
      else return *why = "'fortran_order' is neither True nor False", false;
      have_order = true;
    } else if (!strcmp(key, "shape")) {
      if (p >= end || *p++ != '(') return *why = "'shape' is not a tuple", false;
      a->rank = 0;
      for (;;) {
        skip_space(&p, end);
        if (p < end && *p == ')') break;
        if (p >= end || *p < '0' || *p > '9') return *why = "'shape' holds something other than sizes", false;
        uint64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9') {
          v = v * 10 + (uint64_t)(*p++ - '0');
          if (v > MAX_ELEMENTS) return *why = "a dimension of 'shape' is larger than 2^40", false;
        }
        if (p < end && *p == 'L') p++;         /* Python 2's long */
        if (a->rank == NPY_MAX_RANK) return *why = "'shape' has more than 8 dimensions", false;
        a->dims[a->rank++] = (int64_t)v;
        skip_space(&p, end);
        if (p < end && *p == ',') p++;
      }
      p++;
      have_shape = true;
    } else {
      return *why = "it has a key other than 'descr', 'fortran_order' and 'shape'", false;
    }
    skip_space(&p, end);
    if (p < end && *p == ',') p++;
  }
  if (!have_descr || !have_order || !have_shape)
    return *why = "it lacks one of 'descr', 'fortran_order' and 'shape'", false;
  return true;
}

gradc_status npy_header(const char *path, const unsigned char *buf, size_t len, NpyArray *a, size_t *data_at,
                        RtError *err) {
  memset(a, 0, sizeof *a);
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is not a .npy file: expected the magic \\x93NUMPY, found %s", path,
                   len < 10 ? "fewer than 10 bytes" : "other bytes");
  size_t hlen, at;
  if (buf[6] == 1) hlen = buf[8] | (size_t)buf[9] << 8, at = 10;
  else if (buf[6] == 2 || buf[6] == 3) {
    if (len < 12) return rt_fail(err, GRADC_ERR_DATA, "'%s' is truncated: its .npy header is cut off", path);
    hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24, at = 12;
  } else {
    return rt_fail(err, GRADC_ERR_DATA, "'%s': expected .npy format version 1, 2 or 3, found %d", path, buf[6]);
  }
  if (hlen > len - at)
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is truncated: its .npy header promises %zu bytes, %zu are there",
                   path, hlen, len - at);
  char descr[16] = "";
  bool fortran = false;
  const char *why = NULL;
  const char *h = (const char *)buf + at;
  if (!parse_header(h, h + hlen, descr, sizeof descr, &fortran, a, &why)) {
    int show = hlen > 120 ? 120 : (int)hlen;
    while (show > 0 && (h[show - 1] == '\n' || h[show - 1] == ' ')) show--;
    return rt_fail(err, GRADC_ERR_DATA, "'%s': a .npy header is expected, but %s: '%.*s'", path, why, show, h);
  }
  /* a byte has no byte order: numpy writes '|u1', others '<u1' or '=u1' */
  if ((descr[1] == 'u' || descr[1] == 'b') && descr[2] == '1' && !descr[3] && strchr("<>=", descr[0])) descr[0] = '|';
  bool known = false;
  for (size_t k = 0; k < sizeof npy_types / sizeof *npy_types; k++)
    if (!strcmp(descr, npy_types[k].descr)) a->type = npy_types[k].type, a->esize = npy_types[k].esize, known = true;
  if (!known)
    return rt_fail(err, GRADC_ERR_DATA,
                   "'%s' holds dtype '%s'; expected float32, float64, int32, int64 or uint8 in little-endian "
                   "order ('<f4', '<f8', '<i4', '<i8', '|u1'): convert with a.astype(np.float32)",
                   path, descr);
  uint64_t count = 1;
  for (int k = 0; k < a->rank; k++) {
    /* checked before the product, which could wrap 64 bits to 0 */
    if (a->dims[k] && count > MAX_ELEMENTS / (uint64_t)a->dims[k])
      return rt_fail(err, GRADC_ERR_DATA, "'%s': its shape promises more than 2^40 elements; gradc refuses it",
                     path);
    count *= (uint64_t)a->dims[k];
  }
  /* A Fortran-order array's bytes are in another order than its shape
   * says: reading them as C order would silently transpose. */
  int nontrivial = 0;
  for (int k = 0; k < a->rank; k++) nontrivial += a->dims[k] > 1;
  if (fortran && nontrivial > 1)
    return rt_fail(err, GRADC_ERR_DATA,
                   "'%s' is in Fortran order; expected C order: save np.ascontiguousarray(a) instead", path);
  a->count = (int64_t)count;
  if (count * (uint64_t)a->esize > MAX_BYTES)
    return rt_fail(err, GRADC_ERR_DATA, "'%s': its shape promises %llu bytes, more than gradc's 8 GiB per array",
                   path, (unsigned long long)(count * (uint64_t)a->esize));
  *data_at = at + hlen;
  return GRADC_OK;
}

/* The size check shared by files and archive members. */
static gradc_status check_data_size(const char *path, const NpyArray *a, uint64_t have, RtError *err) {
  uint64_t want = (uint64_t)a->count * (uint64_t)a->esize;
  if (have < want)
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is truncated: its shape promises %llu bytes of data, %llu are there",
                   path, (unsigned long long)want, (unsigned long long)have);
  if (have > want)
    return rt_fail(err, GRADC_ERR_DATA,
                   "'%s' has %llu bytes of trailing data: its shape promises %llu bytes of data", path,
                   (unsigned long long)(have - want), (unsigned long long)want);
  return GRADC_OK;
}

gradc_status npy_parse(const char *path, unsigned char *buf, size_t len, NpyArray *a, RtError *err) {
  size_t at;
  gradc_status s = npy_header(path, buf, len, a, &at, err);
  if (!s) s = check_data_size(path, a, len - at, err);
  if (s) {
    free(buf);
    memset(a, 0, sizeof *a);
    return s;
  }
  a->block = buf;
  a->data = buf + at;
  return GRADC_OK;
}

gradc_status npy_read(const char *path, NpyArray *a, RtError *err) {
  memset(a, 0, sizeof *a);
  FILE *f = fopen(path, "rb");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  /* The header first (at most 64 KiB with its preamble in version 1; a
   * longer one is read whole only when the file holds it), then the data
   * straight into the array's memory once its size is known. */
  struct stat st;
  gradc_status s = GRADC_OK;
  unsigned char pre[12] = {0}, *head = NULL;
  size_t got = fstat(fileno(f), &st) == 0 ? fread(pre, 1, sizeof pre, f) : 0;
  uint64_t size = (uint64_t)st.st_size;
  size_t at = 0;
  if (got < 10 || memcmp(pre, "\x93NUMPY", 6)) {
    s = npy_header(path, pre, got, a, &at, err);
    goto done;
  }
  uint64_t hlen = pre[6] == 1 ? (uint64_t)(pre[8] | pre[9] << 8) + 10
                              : (uint64_t)(pre[8] | pre[9] << 8 | pre[10] << 16) + ((uint64_t)pre[11] << 24) + 12;
  if (hlen > size) hlen = size;
  head = malloc((size_t)hlen + 1);
  if (!head) {
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", path);
    goto done;
  }
  /* a header length of 0 makes hlen 10, fewer bytes than were read */
  size_t keep = got < hlen ? got : (size_t)hlen;
  memcpy(head, pre, keep);
  if (hlen > keep && fread(head + keep, 1, (size_t)hlen - keep, f) != (size_t)hlen - keep) {
    s = rt_fail(err, GRADC_ERR_IO, "cannot read '%s': %s", path, ferror(f) ? strerror(errno) : "end of file");
    goto done;
  }
  if ((s = npy_header(path, head, (size_t)hlen, a, &at, err))) goto done;
  if ((s = check_data_size(path, a, size - at, err))) goto done;
  size_t bytes = (size_t)a->count * (size_t)a->esize;
  a->block = malloc(bytes ? bytes : 1);
  if (!a->block) {
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the %zu bytes of '%s'", bytes, path);
    goto done;
  }
  a->data = a->block;
  if (fseek(f, (long)at, SEEK_SET) != 0 || fread(a->block, 1, bytes, f) != bytes)
    s = rt_fail(err, GRADC_ERR_IO, "cannot read '%s': %s", path, ferror(f) ? strerror(errno) : "end of file");

done:
  free(head);
  fclose(f);
  if (s) npy_free(a);
  return s;
}

double npy_value(const NpyArray *a, int64_t i) {
  const unsigned char *q = a->data + i * (int64_t)a->esize;
  switch (a->type) {
  case NPY_F4: { float x; memcpy(&x, q, 4); return x; }
  case NPY_F8: { double x; memcpy(&x, q, 8); return x; }
  case NPY_I4: { int32_t x; memcpy(&x, q, 4); return x; }
  case NPY_I8: { int64_t x; memcpy(&x, q, 8); return (double)x; }
  case NPY_U1: case NPY_B1: return *q;
  }
  return 0;
}

void npy_free(NpyArray *a) {
  if (!a) return;
  free(a->block);
  memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------ .npz */

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The central directory entry of member `name`, found in the archive. */
typedef struct ZipMember {
  uint32_t method;            /* 0 stored, 8 deflated */
  uint64_t csize, usize, offset;
  uint32_t crc;               /* CRC-32 of the uncompressed bytes */
} ZipMember;

/* Finds NAME in the zip at path (f); *found false when it has no such
 * member (not an error: the caller may try another name).  names, when
 * not NULL, gets the members' names, comma-separated, for a message. */
static gradc_status zip_find(const char *path, FILE *f, const char *name, ZipMember *m, bool *found, char *names,
                             size_t names_size, RtError *err) {
  *found = false;
  if (names && names_size) names[0] = '\0';
  if (fseek(f, 0, SEEK_END) != 0) return rt_fail(err, GRADC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
  long size = ftell(f);
  if (size < 0) return rt_fail(err, GRADC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
  /* The end-of-central-directory record: 22 bytes and a comment of at most
   * 65535, so within the last 65557 bytes. */
  long tail = size < 65557 ? size : 65557;
  unsigned char *buf = malloc((size_t)tail + 1);
  if (!buf) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", path);
  gradc_status s = GRADC_OK;
  unsigned char *dir = NULL;
  if (fseek(f, size - tail, SEEK_SET) != 0 || fread(buf, 1, (size_t)tail, f) != (size_t)tail) {
    s = rt_fail(err, GRADC_ERR_IO, "cannot read '%s'", path);
    goto done;
  }
  long eocd = -1;
  for (long k = tail - 22; k >= 0 && eocd < 0; k--)
    if (!memcmp(buf + k, "PK\5\6", 4)) eocd = k;
  if (eocd < 0) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' is not a .npz (zip) archive: no end-of-central-directory record", path);
    goto done;
  }
  uint64_t entries = le16(buf + eocd + 10), dir_size = le32(buf + eocd + 12), dir_at = le32(buf + eocd + 16);
  /* zip64: the locator just before points at the zip64 record */
  if ((dir_at == 0xffffffff || entries == 0xffff) && eocd >= 20 && !memcmp(buf + eocd - 20, "PK\6\7", 4)) {
    uint64_t rec = le64(buf + eocd - 20 + 8);
    unsigned char z[56];
    if (fseek(f, (long)rec, SEEK_SET) != 0 || fread(z, 1, 56, f) != 56 || memcmp(z, "PK\6\6", 4)) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is a damaged zip archive: its zip64 record is missing", path);
      goto done;
    }
    entries = le64(z + 32), dir_size = le64(z + 40), dir_at = le64(z + 48);
  }
  if (dir_at > (uint64_t)size || dir_size > (uint64_t)size - dir_at) {
    s = rt_fail(err, GRADC_ERR_DATA,
                "'%s' is a truncated or damaged zip archive: its central directory (%llu bytes at %llu) lies "
                "beyond its %ld bytes", path, (unsigned long long)dir_size, (unsigned long long)dir_at, size);
    goto done;
  }
  dir = malloc((size_t)dir_size + 1);
  if (!dir || fseek(f, (long)dir_at, SEEK_SET) != 0 || fread(dir, 1, (size_t)dir_size, f) != (size_t)dir_size) {
    s = rt_fail(err, dir ? GRADC_ERR_IO : GRADC_ERR_NOMEM, "cannot read the central directory of '%s'", path);
    goto done;
  }
  size_t at = 0, nlen_want = strlen(name);
  for (uint64_t e = 0; e < entries; e++) {
    if (dir_size - at < 46 || memcmp(dir + at, "PK\1\2", 4)) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is a damaged zip archive: entry %llu of its central directory is bad",
                  path, (unsigned long long)e);
      goto done;
    }
    const unsigned char *c = dir + at;
    size_t nlen = le16(c + 28), xlen = le16(c + 30), clen = le16(c + 32);
    if (dir_size - at - 46 < nlen + xlen + clen) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is a damaged zip archive: entry %llu runs past its directory", path,
                  (unsigned long long)e);
      goto done;
    }
    const char *n = (const char *)c + 46;
    if (names && strlen(names) + nlen + 3 < names_size)
      snprintf(names + strlen(names), names_size - strlen(names), "%s%.*s", *names ? ", " : "", (int)nlen, n);
    if (nlen == nlen_want && !memcmp(n, name, nlen)) {
      *m = (ZipMember){le16(c + 10), le32(c + 20), le32(c + 24), le32(c + 42), le32(c + 16)};
      /* the zip64 extra field holds, in order, whichever of these were 0xffffffff */
      for (size_t x = 0; x + 4 <= xlen;) {
        const unsigned char *xf = c + 46 + nlen + x;
        size_t id = le16(xf), sz = le16(xf + 2), k = 4;
        if (x + 4 + sz > xlen) break;
        if (id == 1) {
          if (m->usize == 0xffffffff && k + 8 <= sz + 4) m->usize = le64(xf + k), k += 8;
          if (m->csize == 0xffffffff && k + 8 <= sz + 4) m->csize = le64(xf + k), k += 8;
          if (m->offset == 0xffffffff && k + 8 <= sz + 4) m->offset = le64(xf + k), k += 8;
        }
        x += 4 + sz;
      }
      *found = true;
    }
    at += 46 + nlen + xlen + clen;
  }

done:
  free(buf);
  free(dir);
  return s;
}

/* Member m of the archive at path, whole and decompressed, into a buffer
 * of m->usize bytes (the caller's to free). */
static gradc_status zip_extract(const char *path, FILE *f, const char *name, const ZipMember *m,
                                unsigned char **out, RtError *err) {
  *out = NULL;
  if (m->method != 0 && m->method != 8)
    return rt_fail(err, GRADC_ERR_DATA, "'%s': member %s is compressed with method %u; expected stored (0) or "
                   "deflated (8), as np.savez and np.savez_compressed write", path, name, m->method);
  if (m->usize > MAX_BYTES)
    return rt_fail(err, GRADC_ERR_DATA, "'%s': member %s claims %llu bytes, more than gradc's 8 GiB per array",
                   path, name, (unsigned long long)m->usize);
  /* zlib's deflate compresses at most about 1032:1: a member claiming more
   * lies about its size, and is refused before the allocation. */
  if ((m->method == 0 && m->usize != m->csize) || (m->method == 8 && m->usize / 1032 > m->csize + 1))
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is damaged: member %s claims %llu bytes from %llu compressed", path,
                   name, (unsigned long long)m->usize, (unsigned long long)m->csize);
  unsigned char local[30];
  if (fseek(f, (long)m->offset, SEEK_SET) != 0 || fread(local, 1, 30, f) != 30 || memcmp(local, "PK\3\4", 4) ||
      fseek(f, (long)(le16(local + 26) + le16(local + 28)), SEEK_CUR) != 0)
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is damaged: member %s has no local header at offset %llu", path, name,
                   (unsigned long long)m->offset);
  /* The compressed bytes must be in the file: a directory entry that
   * claims more is cut off (or lies), found before any allocation. */
  long data_at = ftell(f);
  struct stat st;
  /* (fseek past the end succeeds: data_at itself may lie beyond it) */
  if (data_at < 0 || fstat(fileno(f), &st) != 0 || data_at > st.st_size ||
      m->csize > (uint64_t)st.st_size - (uint64_t)data_at)
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is truncated: member %s claims %llu bytes, and the archive has %llu "
                   "after its header", path, name, (unsigned long long)m->csize,
                   data_at < 0 || data_at > st.st_size ? 0ULL
                                                       : (unsigned long long)((uint64_t)st.st_size - (uint64_t)data_at));
  /* A deflated member's buffer grows with what really inflates (a few
   * bytes that claim a gigabyte cost what they produce), up to the claim
   * and one spare byte, which catches a stream longer than claimed. */
  uint64_t cap = m->method == 0 ? m->usize + 1 : m->csize * 4 + (1 << 20);
  if (cap > m->usize + 1) cap = m->usize + 1;
  unsigned char *dst = malloc((size_t)cap), *src = NULL;
  if (!dst) return rt_fail(err, GRADC_ERR_NOMEM, "out of memory for member %s of '%s'", name, path);
  gradc_status s = GRADC_OK;
  if (m->method == 0) {
    if (fread(dst, 1, (size_t)m->usize, f) != (size_t)m->usize)
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is truncated: member %s promises %llu bytes", path, name,
                  (unsigned long long)m->usize);
  } else {
    enum { CHUNK = 1 << 16 };
    src = malloc(CHUNK);
    z_stream z = {0};
    int zr = src ? inflateInit2(&z, -MAX_WBITS) : Z_MEM_ERROR;   /* raw deflate, no zlib header */
    if (zr != Z_OK) {
      free(dst), free(src);
      return rt_fail(err, GRADC_ERR_NOMEM, "out of memory for member %s of '%s'", name, path);
    }
    /* avail_out is 32 bits: the buffer is handed over a gigabyte at a time */
    z.next_out = dst;
    uint64_t left = m->csize;
    zr = Z_OK;
    while (zr == Z_OK) {
      if (!z.avail_in) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        size_t got = want ? fread(src, 1, want, f) : 0;
        if (!got) break;
        left -= got;
        z.next_in = src, z.avail_in = (uInt)got;
      }
      if (!z.avail_out) {
        uint64_t used = (uint64_t)(z.next_out - dst);
        if (used == cap) {
          if (cap == m->usize + 1) break;
          uint64_t grown = cap * 2 < m->usize + 1 ? cap * 2 : m->usize + 1;
          unsigned char *g = realloc(dst, (size_t)grown);
          if (!g) {
            zr = Z_MEM_ERROR;
            break;
          }
          dst = g, cap = grown, z.next_out = dst + used;
        }
        uint64_t room = cap - used;
        z.avail_out = (uInt)(room < (1u << 30) ? room : (1u << 30));
      }
      zr = inflate(&z, Z_NO_FLUSH);
    }
    if (zr == Z_MEM_ERROR) {
      s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for member %s of '%s' (%llu bytes)", name, path,
                  (unsigned long long)m->usize);
    } else
    if (zr != Z_STREAM_END || z.total_out != m->usize)
      s = rt_fail(err, GRADC_ERR_DATA,
                  "'%s': member %s is truncated or damaged (zlib: %s): %llu bytes expected, %llu decompressed", path,
                  name, zr == Z_DATA_ERROR && z.msg ? z.msg : zr == Z_STREAM_END ? "the sizes disagree" : "unexpected end",
                  (unsigned long long)m->usize, (unsigned long long)z.total_out);
    inflateEnd(&z);
    free(src);
  }
  /* a damaged stored member, or a deflated one that still inflates */
  if (!s) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t k = 0; k < m->usize; k += 1u << 30)
      crc = crc32(crc, dst + k, (uInt)(m->usize - k < (1u << 30) ? m->usize - k : (1u << 30)));
    if (crc != m->crc)
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' is damaged: member %s has CRC-32 %08lx, its directory says %08x", path,
                  name, (unsigned long)crc, m->crc);
  }
  if (s) {
    free(dst);
    return s;
  }
  *out = dst;
  return GRADC_OK;
}

gradc_status npz_read(const char *path, const char *name, NpyArray *a, bool *found, RtError *err) {
  memset(a, 0, sizeof *a);
  *found = false;
  FILE *f = fopen(path, "rb");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  char member[512], names[512], where[1200];
  snprintf(member, sizeof member, "%s.npy", name);
  ZipMember m;
  unsigned char *buf = NULL;
  gradc_status s = zip_find(path, f, member, &m, found, names, sizeof names, err);
  if (!s && !*found)
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' has no array '%s'; its members are: %s", path, name,
                *names ? names : "none");
  if (!s) s = zip_extract(path, f, member, &m, &buf, err);
  fclose(f);
  snprintf(where, sizeof where, "%s:%s", path, member);
  if (!s) s = npy_parse(where, buf, (size_t)m.usize, a, err);
  return s;
}

/* ------------------------------------------------------- arrays to data */

/* The array called name: in the .npz at path, or path/name.npy. */
static gradc_status read_named(const char *path, bool is_dir, const char *name, NpyArray *a, bool *found,
                               RtError *err) {
  if (!is_dir) return npz_read(path, name, a, found, err);
  char file[4200];
  snprintf(file, sizeof file, "%s/%s.npy", path, name);
  struct stat st;
  *found = stat(file, &st) == 0;
  if (!*found) return rt_fail(err, GRADC_ERR_IO, "'%s' has no %s.npy", path, name);
  return npy_read(file, a, err);
}

bool data_arrays_have(const char *path, const char *name) {
  struct stat st;
  if (stat(path, &st) != 0) return false;
  if (S_ISDIR(st.st_mode)) {
    char file[4200];
    snprintf(file, sizeof file, "%s/%s.npy", path, name);
    return stat(file, &st) == 0;
  }
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char member[512];
  snprintf(member, sizeof member, "%s.npy", name);
  ZipMember m;
  bool found = false;
  RtError ignored;
  zip_find(path, f, member, &m, &found, NULL, 0, &ignored);
  fclose(f);
  return found;
}

gradc_status data_load_arrays(const char *path, const char *x_name, const char *y_name, Dataset *out,
                              RtError *err) {
  if (!path || !x_name || !out) return rt_fail(err, GRADC_ERR_ARG, "data_load_arrays: NULL argument");
  memset(out, 0, sizeof *out);
  struct stat st;
  bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode), found;
  NpyArray x, y = {0};
  gradc_status s = read_named(path, is_dir, x_name, &x, &found, err);
  if (s) return s;
  if (y_name && (s = read_named(path, is_dir, y_name, &y, &found, err))) goto done;
  char where[4200];
  snprintf(where, sizeof where, is_dir ? "%s/%s.npy" : "%s:%s.npy", path, x_name);
  if (x.rank < 1 || x.rank > 5 || x.dims[0] == 0) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' has %d dimensions%s; expected samples: [N, ...] with N >= 1 and at "
                "most 4 dimensions per sample", where, x.rank, x.rank >= 1 ? " or no samples" : "");
    goto done;
  }
  Dataset d = {.n = x.dims[0], .rank = x.rank > 1 ? x.rank - 1 : 1, .dims = {1}, .sample_size = 1};
  for (int k = 1; k < x.rank; k++) d.dims[k - 1] = x.dims[k], d.sample_size *= x.dims[k];
  if (d.sample_size == 0) {
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds samples of 0 values", where);
    goto done;
  }
  if (y_name) {
    char ywhere[4200];
    snprintf(ywhere, sizeof ywhere, is_dir ? "%s/%s.npy" : "%s:%s.npy", path, y_name);
    int64_t per = 1;
    char shape[200] = "";
    for (int k = 0; k < y.rank; k++) {
      if (k) per *= y.dims[k];
      snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", k ? ", " : "", (long long)y.dims[k]);
    }
    if (y.rank < 1 || per != 1) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' has shape [%s]; expected class labels: [N] or [N, 1] (one-hot "
                  "labels: save y.argmax(axis=1))", ywhere, shape);
      goto done;
    }
    if (y.dims[0] != d.n) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds %lld samples but '%s' holds %lld labels", where, (long long)d.n,
                  ywhere, (long long)y.dims[0]);
      goto done;
    }
    d.y = malloc(sizeof(int32_t) * (size_t)d.n);
    if (!d.y) {
      s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the labels of '%s'", ywhere);
      goto done;
    }
    for (int64_t i = 0; i < d.n; i++) {
      double v = npy_value(&y, i);
      if (v != floor(v) || fabs(v) > INT32_MAX) {
        s = rt_fail(err, GRADC_ERR_DATA, "'%s': label %lld (from 0) is %g; expected an integer class", ywhere,
                    (long long)i, v);
        free(d.y);
        goto done;
      }
      d.y[i] = (int32_t)v;
    }
  }
  d.x = rt_alloc_big(sizeof(float) * (size_t)x.count);
  if (!d.x) {
    free(d.y);
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the %lld values of '%s'", (long long)x.count, where);
    goto done;
  }
  for (int64_t i = 0; i < x.count; i++) {
    double v = npy_value(&x, i);
    /* the CSV reader's rule: no NaN or infinity to train on, nothing
     * beyond f32 (which would become infinity) */
    if (!(fabs(v) < 0x1.ffffffp127)) {
      char text[32];
      snprintf(text, sizeof text, isnan(v) ? "NaN" : "%g", v);
      s = rt_fail(err, GRADC_ERR_DATA, "'%s': value %lld of sample %lld (from 0) is %s; expected a finite number "
                  "within f32", where, (long long)(i % d.sample_size), (long long)(i / d.sample_size), text);
      data_free(&d);
      goto done;
    }
    d.x[i] = x.type == NPY_U1 ? (float)v / 255.0f : (float)v;
  }
  *out = d;

done:
  npy_free(&x);
  npy_free(&y);
  return s;
}

/* ------------------------------------------------------------ CIFAR */

enum { CIFAR_SIDE = 32, CIFAR_PIXELS = 3 * 32 * 32 };

/* Appends the records of one CIFAR batch file to d (grown); labels are
 * byte `label` of each record of `label_bytes`, below `classes`. */
static gradc_status read_cifar_file(const char *path, int label_bytes, int label, int classes, Dataset *d,
                                    RtError *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  int64_t rec = label_bytes + CIFAR_PIXELS;
  int64_t size = fstat(fileno(f), &st) == 0 ? (int64_t)st.st_size : -1;
  gradc_status s = GRADC_OK;
  unsigned char *buf = NULL;
  if (size <= 0 || size % rec) {
    s = rt_fail(err, GRADC_ERR_DATA,
                "'%s' is truncated or not a CIFAR-%d batch: %lld bytes is not a whole number of %lld-byte records "
                "(record %lld (from 0) has %lld of its bytes)", path, classes == 10 ? 10 : 100, (long long)size,
                (long long)rec, size > 0 ? (long long)(size / rec) : 0LL, size > 0 ? (long long)(size % rec) : 0LL);
    goto done;
  }
  int64_t n = size / rec, first = d->n;
  float *x = realloc(d->x, sizeof(float) * (size_t)((first + n) * CIFAR_PIXELS));
  if (x) d->x = x;
  int32_t *y = realloc(d->y, sizeof(int32_t) * (size_t)(first + n));
  if (y) d->y = y;
  buf = malloc((size_t)rec);
  if (!x || !y || !buf) {
    s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the %lld images of '%s'", (long long)n, path);
    goto done;
  }
  for (int64_t i = 0; i < n; i++) {
    if (fread(buf, 1, (size_t)rec, f) != (size_t)rec) {
      s = rt_fail(err, GRADC_ERR_IO, "cannot read record %lld of '%s'", (long long)i, path);
      goto done;
    }
    if (buf[label] >= classes) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s': the %slabel of record %lld (from 0) is %d; expected 0..%d", path,
                  label_bytes == 1 ? "" : label ? "fine " : "coarse ", (long long)i, buf[label], classes - 1);
      goto done;
    }
    d->y[first + i] = buf[label];
    /* three planes R, G, B of 32x32 into height, width, channel */
    float *img = d->x + (first + i) * CIFAR_PIXELS;
    const unsigned char *px = buf + label_bytes;
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < CIFAR_SIDE * CIFAR_SIDE; p++) img[p * 3 + c] = px[c * CIFAR_SIDE * CIFAR_SIDE + p] / 255.0f;
  }
  d->n = first + n;

done:
  free(buf);
  fclose(f);
  return s;
}

static bool exists(const char *dir, const char *name, char *path, size_t size) {
  struct stat st;
  snprintf(path, size, "%s/%s", dir, name);
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool data_is_cifar_dir(const char *dir) {
  char path[4200];
  return exists(dir, "data_batch_1.bin", path, sizeof path) || exists(dir, "test_batch.bin", path, sizeof path) ||
         exists(dir, "train.bin", path, sizeof path) || exists(dir, "test.bin", path, sizeof path);
}

gradc_status data_load_cifar(const char *dir, bool train, bool coarse, Dataset *out, RtError *err) {
  if (!dir || !out) return rt_fail(err, GRADC_ERR_ARG, "data_load_cifar: NULL argument");
  memset(out, 0, sizeof *out);
  Dataset d = {.rank = 3, .dims = {CIFAR_SIDE, CIFAR_SIDE, 3}, .sample_size = CIFAR_PIXELS};
  char path[4200];
  gradc_status s = GRADC_OK;
  /* CIFAR-10: data_batch_1.bin .. data_batch_5.bin and test_batch.bin;
   * CIFAR-100: train.bin and test.bin, a coarse (20) and a fine (100)
   * label per record. */
  bool c100 = exists(dir, "train.bin", path, sizeof path) || exists(dir, "test.bin", path, sizeof path);
  if (c100) {
    if (!exists(dir, train ? "train.bin" : "test.bin", path, sizeof path))
      s = rt_fail(err, GRADC_ERR_IO, "the CIFAR-100 directory '%s' has no %s", dir, train ? "train.bin" : "test.bin");
    else
      s = read_cifar_file(path, 2, coarse ? 0 : 1, coarse ? 20 : 100, &d, err);
  } else if (!train) {
    if (!exists(dir, "test_batch.bin", path, sizeof path))
      s = rt_fail(err, GRADC_ERR_IO, "the CIFAR-10 directory '%s' has no test_batch.bin", dir);
    else
      s = read_cifar_file(path, 1, 0, 10, &d, err);
  } else {
    int files = 0;
    for (int k = 1; k <= 5 && !s; k++) {
      char name[32];
      snprintf(name, sizeof name, "data_batch_%d.bin", k);
      if (exists(dir, name, path, sizeof path)) s = read_cifar_file(path, 1, 0, 10, &d, err), files++;
    }
    if (!s && !files) s = rt_fail(err, GRADC_ERR_IO, "the CIFAR-10 directory '%s' has no data_batch_1.bin", dir);
  }
  if (!s && coarse && !c100)
    s = rt_fail(err, GRADC_ERR_ARG, "--cifar-labels coarse is for CIFAR-100 (train.bin, test.bin); '%s' is CIFAR-10",
                dir);
  if (s) {
    data_free(&d);
    return s;
  }
  *out = d;
  return GRADC_OK;
}
