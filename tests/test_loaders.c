/*
 * test_loaders.c - the data formats beyond IDX and CSV (issue 22): NumPy
 * .npy and .npz (stored and deflated members), CIFAR-10/100 binary
 * batches and folders of PNG and JPEG images.  Every file is written here,
 * byte by byte where the format is simple (a .npy, a zip, a CIFAR record)
 * and through libpng/libjpeg for images, so each test knows exactly what
 * the loader must find; hostile files (wrong dtype, Fortran order,
 * truncated, a shape that promises exabytes, a damaged member) must give
 * the message that names the file and what was expected and found.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include <math.h>
#include <jpeglib.h>   /* after stdio.h: it uses FILE */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli.h"
#include "runtime.h"

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-loaders-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void assert_near(double a, double b, double tol) {
  if (!(a - b <= tol && b - a <= tol)) fail_msg("%.9g is not %.9g (tolerance %g)", a, b, tol);
}

static void assert_has(const char *text, const char *part) {
  if (!strstr(text, part)) fail_msg("'%s'\n  does not contain '%s'", text, part);
}

/* ---------------------------------------------------------------- .npy */

/* A version 1.0 .npy image in buf: header dict `dict`, padded as numpy
 * pads it (to 64 bytes with the preamble), then n bytes of data. */
static size_t make_npy(unsigned char *buf, const char *dict, const void *data, size_t n) {
  size_t dlen = strlen(dict), hlen = (10 + dlen + 1 + 63) / 64 * 64 - 10;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hlen & 0xff), buf[9] = (unsigned char)(hlen >> 8);
  memset(buf + 10, ' ', hlen);
  memcpy(buf + 10, dict, dlen);
  buf[10 + hlen - 1] = '\n';
  memcpy(buf + 10 + hlen, data, n);
  return 10 + hlen + n;
}

static void write_npy(const char *path, const char *dict, const void *data, size_t n) {
  unsigned char *buf = malloc(256 + n);
  write_file(path, buf, make_npy(buf, dict, data, n));
  free(buf);
}

static void test_npy_dtypes_and_shape(void **state) {
  (void)state;
  float f[6] = {1.5f, -2, 3, 4, 5, 6.25f};
  write_npy(at("f.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
  NpyArray a;
  RtError err = {{0}};
  assert_int_equal(npy_read(at("f.npy"), &a, &err), GRADC_OK);
  assert_int_equal(a.type, NPY_F4);
  assert_int_equal(a.rank, 2);
  assert_int_equal(a.dims[0], 2);
  assert_int_equal(a.dims[1], 3);
  assert_int_equal(a.count, 6);
  assert_near(npy_value(&a, 0), 1.5, 0);
  assert_near(npy_value(&a, 5), 6.25, 0);
  npy_free(&a);
  /* keys in another order, a 1-tuple, int64 */
  int64_t l[3] = {7, -1, 1LL << 40};
  write_npy(at("l.npy"), "{'shape': (3,), 'fortran_order': False, 'descr': '<i8'}", l, sizeof l);
  assert_int_equal(npy_read(at("l.npy"), &a, &err), GRADC_OK);
  assert_int_equal(a.rank, 1);
  assert_near(npy_value(&a, 2), 1099511627776.0, 0);
  npy_free(&a);
  /* a scalar: shape () */
  double d = 0.125;
  write_npy(at("s.npy"), "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &d, sizeof d);
  assert_int_equal(npy_read(at("s.npy"), &a, &err), GRADC_OK);
  assert_int_equal(a.rank, 0);
  assert_int_equal(a.count, 1);
  assert_near(npy_value(&a, 0), 0.125, 0);
  npy_free(&a);
}

/* Each hostile file, and the words its message must hold. */
static void test_npy_hostile(void **state) {
  (void)state;
  static const struct {
    const char *dict;
    size_t bytes;
    const char *says;
  } cases[] = {
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", 8, "holds dtype '<f2'; expected float32"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "holds dtype '>f4'"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, "holds dtype '|O'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured (record) dtype"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "is in Fortran order; expected C order"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 12, "is truncated: its shape promises 16 bytes of data, 12 are there"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12, "has 4 bytes of trailing data"},
      {"{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 4, "more than 2^40 elements"},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", 4, "more than gradc's 8 GiB"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 4, "larger than 2^40"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 4, "more than 8 dimensions"},
      {"{'descr': '<f4', 'shape': (1,), }", 4, "lacks one of 'descr', 'fortran_order' and 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4, "'shape' holds something other than sizes"},
      {"[1, 2]", 4, "it does not start with '{'"},
  };
  unsigned char zeros[64] = {0};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    write_npy(at("h.npy"), cases[k].dict, zeros, cases[k].bytes);
    NpyArray a;
    RtError err = {{0}};
    assert_int_equal(npy_read(at("h.npy"), &a, &err), GRADC_ERR_DATA);
    assert_has(err.msg, at("h.npy"));
    assert_has(err.msg, cases[k].says);
    assert_null(a.block);
  }
  /* not a .npy at all; a header length past the end */
  write_file(at("t.npy"), "hello,world\n", 12);
  NpyArray a;
  RtError err = {{0}};
  assert_int_equal(npy_read(at("t.npy"), &a, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "is not a .npy file: expected the magic \\x93NUMPY");
  write_file(at("t.npy"), "\x93NUMPY\x01\x00\xff\x7f{'descr'", 18);
  assert_int_equal(npy_read(at("t.npy"), &a, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "is truncated: its .npy header promises 32767 bytes, 8 are there");
  /* a header of length 0 (fewer bytes than the reader's first read: found
   * by fuzz_npy, a heap overflow) */
  write_file(at("t.npy"), "\x93NUMPY\x01\x00\x00\x00{'descr': '<f4'}", 27);
  assert_int_equal(npy_read(at("t.npy"), &a, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "it does not start with '{'");
}

/* ---------------------------------------------------------------- .npz */

typedef struct Member {
  const char *name;
  const unsigned char *data;
  size_t n;
  bool deflate;
} Member;

static void put16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }

/* A zip archive of the members, as Python's zipfile writes one (local
 * headers, data, central directory, end record); deflated members are
 * raw deflate streams from zlib. */
static void write_zip(const char *path, const Member *m, int n) {
  unsigned char *out = malloc(1 << 20), *cd = malloc(1 << 16);
  size_t len = 0, cdlen = 0;
  for (int i = 0; i < n; i++) {
    size_t nlen = strlen(m[i].name), csize = m[i].n;
    unsigned char *data = (unsigned char *)m[i].data, *packed = NULL;
    if (m[i].deflate) {
      packed = malloc(m[i].n + 1024);
      z_stream z = {0};
      assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
      z.next_in = data, z.avail_in = (uInt)m[i].n, z.next_out = packed, z.avail_out = (uInt)(m[i].n + 1024);
      assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
      csize = z.total_out;
      deflateEnd(&z);
      data = packed;
    }
    uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].n);
    unsigned char *h = out + len, *c = cd + cdlen;
    memset(h, 0, 30), memset(c, 0, 46);
    put32(h, 0x04034b50), put16(h + 8, m[i].deflate ? 8 : 0), put32(h + 14, crc);
    put32(h + 18, (uint32_t)csize), put32(h + 22, (uint32_t)m[i].n), put16(h + 26, (uint32_t)nlen);
    memcpy(h + 30, m[i].name, nlen);
    put32(c, 0x02014b50), put16(c + 10, m[i].deflate ? 8 : 0), put32(c + 16, crc);
    put32(c + 20, (uint32_t)csize), put32(c + 24, (uint32_t)m[i].n), put16(c + 28, (uint32_t)nlen);
    put32(c + 42, (uint32_t)len);
    memcpy(c + 46, m[i].name, nlen);
    cdlen += 46 + nlen;
    len += 30 + nlen;
    memcpy(out + len, data, csize);
    len += csize;
    free(packed);
  }
  memcpy(out + len, cd, cdlen);
  unsigned char *e = out + len + cdlen;
  memset(e, 0, 22);
  put32(e, 0x06054b50), put16(e + 8, (uint32_t)n), put16(e + 10, (uint32_t)n), put32(e + 12, (uint32_t)cdlen);
  put32(e + 16, (uint32_t)len);
  write_file(path, out, len + cdlen + 22);
  free(out), free(cd);
}

enum { NS = 5 };

/* x_train: 5 samples of 2x3 uint8 pixels; y_train int64 labels; the test
 * split float64 x and int32 [N, 1] labels; members stored or deflated. */
static void write_keras_npz(const char *path, bool deflate) {
  static unsigned char x[4][256], y[4][256];
  uint8_t px[NS * 6];
  for (int i = 0; i < NS * 6; i++) px[i] = (uint8_t)(i * 8);
  int64_t labels[NS] = {0, 2, 1, 2, 0};
  double tx[2 * 6];
  for (int i = 0; i < 12; i++) tx[i] = i * 0.5 - 1;
  int32_t tl[2] = {1, 0};
  size_t nx = make_npy(x[0], "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 2, 3), }", px, sizeof px);
  size_t ny = make_npy(y[0], "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", labels, sizeof labels);
  size_t ntx = make_npy(x[1], "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 3), }", tx, sizeof tx);
  size_t nty = make_npy(y[1], "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }", tl, sizeof tl);
  Member m[] = {{"x_train.npy", x[0], nx, deflate}, {"y_train.npy", y[0], ny, deflate},
                {"x_test.npy", x[1], ntx, deflate}, {"y_test.npy", y[1], nty, false}};
  write_zip(path, m, 4);
}

static void check_keras_npz(const char *path) {
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_arrays(path, "x_train", "y_train", &d, &err), GRADC_OK);
  assert_int_equal(d.n, NS);
  assert_int_equal(d.rank, 2);
  assert_int_equal(d.dims[0], 2);
  assert_int_equal(d.dims[1], 3);
  assert_int_equal(d.sample_size, 6);
  /* uint8 is pixels: scaled to [0, 1] as IDX images are */
  assert_near(d.x[7], 7 * 8 / 255.0, 1e-7);
  assert_int_equal(d.y[1], 2);
  assert_int_equal(d.y[4], 0);
  data_free(&d);
  assert_int_equal(data_load_arrays(path, "x_test", "y_test", &d, &err), GRADC_OK);
  assert_int_equal(d.n, 2);
  assert_near(d.x[11], 4.5, 0);       /* float values as they are */
  assert_int_equal(d.y[0], 1);
  data_free(&d);
  assert_true(data_arrays_have(path, "x_test"));
  assert_false(data_arrays_have(path, "x"));
}

static void test_npz_stored_and_deflated(void **state) {
  (void)state;
  write_keras_npz(at("stored.npz"), false);
  check_keras_npz(at("stored.npz"));
  write_keras_npz(at("deflated.npz"), true);
  check_keras_npz(at("deflated.npz"));
  /* an array that is not there lists what is */
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_arrays(at("stored.npz"), "images", NULL, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "has no array 'images'; its members are: x_train.npy, y_train.npy, x_test.npy, y_test.npy");
  /* a directory of NAME.npy files is the same */
  mkdir(at("arrays"), 0755);
  float x[4] = {1, 2, 3, 4};
  uint8_t y[2] = {1, 0};
  write_npy(at("arrays/x.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", x, sizeof x);
  write_npy(at("arrays/y.npy"), "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", y, sizeof y);
  assert_int_equal(data_load_arrays(at("arrays"), "x", "y", &d, &err), GRADC_OK);
  assert_int_equal(d.n, 2);
  assert_near(d.x[3], 4, 0);
  assert_int_equal(d.y[0], 1);
  data_free(&d);
}

static void test_npz_hostile(void **state) {
  (void)state;
  write_keras_npz(at("k.npz"), true);
  FILE *f = fopen(at("k.npz"), "rb");
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  Dataset d;
  RtError err = {{0}};
  /* cut short: no end record */
  write_file(at("cut.npz"), buf, n / 2);
  assert_int_equal(data_load_arrays(at("cut.npz"), "x_train", NULL, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "is not a .npz (zip) archive: no end-of-central-directory record");
  /* a flipped byte inside the first member's deflate stream */
  buf[30 + 11 + 40] ^= 0x55;
  write_file(at("bad.npz"), buf, n);
  assert_int_equal(data_load_arrays(at("bad.npz"), "x_train", NULL, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "x_train.npy");
  assert_true(strstr(err.msg, "damaged") || strstr(err.msg, "truncated"));
  /* a member whose directory entry claims 4 GiB from a few bytes */
  unsigned char npy[256];
  float one = 1;
  size_t nn = make_npy(npy, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", &one, 4);
  Member m[] = {{"x.npy", npy, nn, true}};
  write_zip(at("bomb.npz"), m, 1);
  f = fopen(at("bomb.npz"), "rb");
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  for (size_t k = 0; k + 4 < n; k++)       /* the central entry's uncompressed size */
    if (!memcmp(buf + k, "PK\1\2", 4)) put32(buf + k + 24, 0xfffffff0);
  write_file(at("bomb.npz"), buf, n);
  assert_int_equal(data_load_arrays(at("bomb.npz"), "x", NULL, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "is damaged: member x.npy claims 4294967280 bytes from");
  /* a member whose local header's extra field runs past the end of the
   * archive, with a directory entry claiming 256 MiB compressed (found by
   * fuzz_npy: the bytes left after the header underflowed, and 1 GiB was
   * allocated before anything was read) */
  Member single[] = {{"x.npy", npy, nn, true}};
  write_zip(at("past.npz"), single, 1);
  f = fopen(at("past.npz"), "rb");
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  put16(buf + 28, 0xffff);
  for (size_t k = 0; k + 4 < n; k++)
    if (!memcmp(buf + k, "PK\1\2", 4)) put32(buf + k + 20, 0x10000000), put32(buf + k + 24, 0xf0000000);
  write_file(at("past.npz"), buf, n);
  assert_int_equal(data_load_arrays(at("past.npz"), "x", NULL, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "is truncated: member x.npy claims 268435456 bytes, and the archive has 0 after its header");
  /* labels that are no integers, labels of another count, one-hot labels */
  float x[4] = {1, 2, 3, 4}, yf[2] = {0.5f, 1};
  float hot[4] = {1, 0, 0, 1};
  int32_t y3[3] = {0, 1, 1};
  mkdir(at("bad"), 0755);
  write_npy(at("bad/x.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", x, sizeof x);
  write_npy(at("bad/yf.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", yf, sizeof yf);
  write_npy(at("bad/y3.npy"), "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", y3, sizeof y3);
  write_npy(at("bad/hot.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", hot, sizeof hot);
  assert_int_equal(data_load_arrays(at("bad"), "x", "yf", &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "yf.npy': label 0 (from 0) is 0.5; expected an integer class");
  assert_int_equal(data_load_arrays(at("bad"), "x", "y3", &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "holds 2 samples but");
  assert_has(err.msg, "y3.npy' holds 3 labels");
  assert_int_equal(data_load_arrays(at("bad"), "x", "hot", &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "expected class labels: [N] or [N, 1]");
  /* NaN in the samples */
  float nan[4] = {1, 2, NAN, 4};
  write_npy(at("bad/nan.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", nan, sizeof nan);
  assert_int_equal(data_load_arrays(at("bad"), "nan", NULL, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "nan.npy': value 0 of sample 1 (from 0) is NaN; expected a finite number");
}

/* ---------------------------------------------------------------- CIFAR */

/* n records; record i: label bytes (label_bytes of them, i % 10 and
 * 50 + i % 10), pixel (c, y, x) = (i + 3 * c + 5 * y + 7 * x) % 256. */
static void write_cifar(const char *path, int n, int label_bytes, int cut) {
  size_t rec = (size_t)label_bytes + 3072;
  unsigned char *buf = malloc(rec * (size_t)n);
  for (int i = 0; i < n; i++) {
    unsigned char *r = buf + rec * (size_t)i;
    r[0] = (unsigned char)(i % 10);
    if (label_bytes == 2) r[1] = (unsigned char)(50 + i % 10);
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) r[label_bytes + c * 1024 + y * 32 + x] = (unsigned char)((i + 3 * c + 5 * y + 7 * x) % 256);
  }
  write_file(path, buf, rec * (size_t)n - (size_t)cut);
  free(buf);
}

static void test_cifar(void **state) {
  (void)state;
  mkdir(at("c10"), 0755);
  write_cifar(at("c10/data_batch_1.bin"), 4, 1, 0);
  write_cifar(at("c10/data_batch_2.bin"), 3, 1, 0);
  write_cifar(at("c10/test_batch.bin"), 2, 1, 0);
  assert_true(data_is_cifar_dir(at("c10")));
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_cifar(at("c10"), true, false, &d, &err), GRADC_OK);
  assert_int_equal(d.n, 7);
  assert_int_equal(d.rank, 3);
  assert_int_equal(d.dims[0], 32);
  assert_int_equal(d.dims[2], 3);
  /* sample 5 is record 1 of batch 2; NHWC: (y, x, c) = (2, 3, 1) */
  assert_int_equal(d.y[5], 1);
  assert_near(d.x[5 * 3072 + (2 * 32 + 3) * 3 + 1], ((1 + 3 + 10 + 21) % 256) / 255.0, 1e-7);
  data_free(&d);
  assert_int_equal(data_load_cifar(at("c10"), false, false, &d, &err), GRADC_OK);
  assert_int_equal(d.n, 2);
  data_free(&d);
  /* CIFAR-100: fine labels by default, coarse on request */
  mkdir(at("c100"), 0755);
  write_cifar(at("c100/train.bin"), 3, 2, 0);
  write_cifar(at("c100/test.bin"), 1, 2, 0);
  assert_int_equal(data_load_cifar(at("c100"), true, false, &d, &err), GRADC_OK);
  assert_int_equal(d.y[2], 52);
  assert_near(d.x[2 * 3072 + 2], ((2 + 6) % 256) / 255.0, 1e-7);
  data_free(&d);
  assert_int_equal(data_load_cifar(at("c100"), true, true, &d, &err), GRADC_OK);
  assert_int_equal(d.y[2], 2);
  data_free(&d);
  /* a fine label past 99 */
  FILE *f = fopen(at("c100/test.bin"), "r+b");
  fseek(f, 1, SEEK_SET);
  fputc(100, f);
  fclose(f);
  assert_int_equal(data_load_cifar(at("c100"), false, false, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "test.bin': the fine label of record 0 (from 0) is 100; expected 0..99");
}

static void test_cifar_hostile(void **state) {
  (void)state;
  mkdir(at("t10"), 0755);
  write_cifar(at("t10/data_batch_1.bin"), 3, 1, 100);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_cifar(at("t10"), true, false, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "data_batch_1.bin' is truncated or not a CIFAR-10 batch: 9119 bytes is not a whole number of "
             "3073-byte records (record 2 (from 0) has 2973 of its bytes)");
  /* a label past the classes */
  write_cifar(at("t10/data_batch_1.bin"), 1, 1, 0);
  FILE *f = fopen(at("t10/data_batch_1.bin"), "r+b");
  fputc(10, f);
  fclose(f);
  assert_int_equal(data_load_cifar(at("t10"), true, false, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "the label of record 0 (from 0) is 10; expected 0..9");
  /* no test batch */
  assert_int_equal(data_load_cifar(at("t10"), false, false, &d, &err), GRADC_ERR_IO);
  assert_has(err.msg, "has no test_batch.bin");
  /* an empty file */
  write_file(at("t10/data_batch_1.bin"), "", 0);
  assert_int_equal(data_load_cifar(at("t10"), true, false, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "0 bytes is not a whole number");
}

/* ------------------------------------------------------------- images */

static void write_png(const char *path, int h, int w, int channels, const unsigned char *px) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)w, img.height = (png_uint_32)h;
  img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  assert_true(png_image_write_to_file(&img, path, 0, px, 0, NULL));
}

static void write_jpeg(const char *path, int h, int w, const unsigned char *rgb) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  FILE *f = fopen(path, "wb");
  jpeg_stdio_dest(&c, f);
  c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 3, c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)rgb + c.next_scanline * (size_t)w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
}

static void test_image_folders(void **state) {
  (void)state;
  /* train/cat: a 2x2 gray PNG (0, 255 / 255, 0) and a 4x4 constant one;
   * train/dog: an 8x8 RGB JPEG of one color; test/dog alone */
  const char *dirs[] = {"img", "img/train", "img/train/dog", "img/train/cat", "img/test", "img/test/dog"};
  for (int k = 0; k < 6; k++) mkdir(at(dirs[k]), 0755);
  unsigned char checker[4] = {0, 255, 255, 0}, flat[16], rgb[8 * 8 * 3];
  memset(flat, 100, sizeof flat);
  for (int i = 0; i < 64; i++) rgb[3 * i] = 200, rgb[3 * i + 1] = 100, rgb[3 * i + 2] = 50;
  write_png(at("img/train/cat/a.png"), 2, 2, 1, checker);
  write_png(at("img/train/cat/b.PNG"), 4, 4, 1, flat);
  write_jpeg(at("img/train/dog/c.jpg"), 8, 8, rgb);
  write_file(at("img/train/dog/notes.txt"), "not an image", 12);     /* skipped */
  write_jpeg(at("img/test/dog/d.jpeg"), 8, 8, rgb);
  assert_true(cli_is_image_dir(at("img")));
  assert_true(cli_image_dir_has_test(at("img")));
  char root[512];
  snprintf(root, sizeof root, "%s", at("img"));
  TrainOptions o = {.data_dir = root, .seed = 1, .image_size = {4, 4, 1}};
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(cli_load_image_dir(NULL, &o, true, &d, &err), GRADC_OK);
  assert_int_equal(d.n, 3);
  assert_int_equal(d.sample_size, 16);
  int seen[3] = {0};
  for (int64_t i = 0; i < d.n; i++) {
    const float *x = d.x + i * 16;
    if (d.y[i] == 1) {                 /* dog: the JPEG's luma, 0.299 R + 0.587 G + 0.114 B */
      assert_near(x[5], (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, 2.5 / 255);
      seen[2]++;
    } else if (x[0] > 0.35 && x[0] < 0.45) {   /* cat, the constant: unchanged */
      for (int k = 0; k < 16; k++) assert_near(x[k], 100 / 255.0, 1e-6);
      seen[1]++;
    } else {
      /* the checker doubled by bilinear with half-pixel centers: row 0 is
       * 0, 1/4, 3/4, 1 of the way from 0 to 255; (0,0) = 0, (0,1) = 0.25 * 255 ... */
      assert_near(x[0], 0, 1e-6);
      assert_near(x[1], 0.25, 1e-6);
      assert_near(x[2], 0.75, 1e-6);
      assert_near(x[3], 1, 1e-6);
      assert_near(x[5], 0.25 * 0.75 + 0.75 * 0.25, 1e-6);   /* (1,1): between the four */
      seen[0]++;
    }
  }
  assert_int_equal(seen[0], 1);
  assert_int_equal(seen[1], 1);
  assert_int_equal(seen[2], 1);
  data_free(&d);
  /* the test split keeps the training folders' labels: dog is 1 */
  o.image_size[2] = 3;
  assert_int_equal(cli_load_image_dir(NULL, &o, false, &d, &err), GRADC_OK);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.y[0], 1);
  assert_int_equal(d.dims[2], 3);
  assert_near(d.x[0], 200 / 255.0, 3 / 255.0);
  assert_near(d.x[2], 50 / 255.0, 3 / 255.0);
  data_free(&d);
}

static void test_image_folders_hostile(void **state) {
  (void)state;
  const char *dirs[] = {"bad", "bad/a", "bad/b"};
  for (int k = 0; k < 3; k++) mkdir(at(dirs[k]), 0755);
  unsigned char flat[16];
  memset(flat, 9, sizeof flat);
  write_png(at("bad/a/ok.png"), 4, 4, 1, flat);
  /* a PNG cut short, a JPEG cut short, a .png that is text */
  FILE *f = fopen(at("bad/a/ok.png"), "rb");
  unsigned char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  write_file(at("bad/b/cut.png"), buf, n - 20);
  char root[512];
  snprintf(root, sizeof root, "%s", at("bad"));
  TrainOptions o = {.data_dir = root, .seed = 1, .image_size = {4, 4, 1}};
  Dataset d;
  RtError err = {{0}};
  assert_false(cli_image_dir_has_test(at("bad")));
  assert_int_equal(cli_load_image_dir(NULL, &o, true, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "bad/b/cut.png' is a damaged PNG image");
  remove(at("bad/b/cut.png"));
  unsigned char rgb[8 * 8 * 3] = {0};
  write_jpeg(at("bad/b/whole.jpg"), 8, 8, rgb);
  f = fopen(at("bad/b/whole.jpg"), "rb");
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  write_file(at("bad/b/cut.jpg"), buf, n / 2);
  assert_int_equal(cli_load_image_dir(NULL, &o, true, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "bad/b/cut.jpg' is not a readable JPEG image (libjpeg: ");
  remove(at("bad/b/cut.jpg"));
  write_file(at("bad/b/text.png"), "hello", 5);
  assert_int_equal(cli_load_image_dir(NULL, &o, true, &d, &err), GRADC_ERR_DATA);
  assert_has(err.msg, "bad/b/text.png' is neither a PNG nor a JPEG image");
  remove(at("bad/b/text.png"));
  /* well-formed now: the flat folder trains, and has no test split */
  if (cli_load_image_dir(NULL, &o, true, &d, &err)) fail_msg("%s", err.msg);
  assert_int_equal(d.n, 2);
  data_free(&d);
  assert_int_equal(cli_load_image_dir(NULL, &o, false, &d, &err), GRADC_ERR_IO);
  assert_has(err.msg, "has no test split");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_npy_dtypes_and_shape), cmocka_unit_test(test_npy_hostile),
      cmocka_unit_test(test_npz_stored_and_deflated), cmocka_unit_test(test_npz_hostile),
      cmocka_unit_test(test_cifar), cmocka_unit_test(test_cifar_hostile),
      cmocka_unit_test(test_image_folders), cmocka_unit_test(test_image_folders_hostile),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
