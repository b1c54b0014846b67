/*
 * test_data.c - datasets from disk (runtime/data.c): IDX files written to a
 * temporary directory, plain and gzip'd, loaded exactly and refused when
 * broken (wrong magic, cut short, trailing bytes, counts that disagree,
 * headers that claim the impossible); MNIST directories, missing ones
 * with and without the Debian hint, and the installed Fashion-MNIST when
 * present; CSV files; the validation split and the per-epoch shuffle.
 *
 * Messages are checked for what they must tell the user - the file, the
 * expected and the found sizes, the line and column - not word for word.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gradc.h"
#include "runtime.h"

#include "util_files.h"

/* ------------------------------------------------------------ helpers */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void write_file(const char *path, const void *data, size_t len, bool gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
  }
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text), false); }

/* n images of rows x cols whose pixel k of image i is (i*7 + k*13) % 256,
 * so every byte value occurs; *len receives the file size. */
static unsigned char *images(uint32_t n, uint32_t rows, uint32_t cols, size_t *len) {
  *len = 16 + (size_t)n * rows * cols;
  unsigned char *b = malloc(*len);
  put_be32(b, 0x803), put_be32(b + 4, n), put_be32(b + 8, rows), put_be32(b + 12, cols);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < (size_t)rows * cols; k++)
      b[16 + i * rows * cols + k] = (unsigned char)((i * 7 + k * 13) % 256);
  return b;
}

static unsigned char *labels(uint32_t n, size_t *len) {
  *len = 8 + n;
  unsigned char *b = malloc(*len);
  put_be32(b, 0x801), put_be32(b + 4, n);
  for (uint32_t i = 0; i < n; i++) b[8 + i] = (unsigned char)(i * 37 % 256);   /* > 9 on purpose */
  return b;
}

static void write_images(const char *name, uint32_t n, uint32_t rows, uint32_t cols, bool gz) {
  size_t len;
  unsigned char *b = images(n, rows, cols, &len);
  write_file(path_of(name), b, len, gz);
  free(b);
}

static void write_labels(const char *name, uint32_t n, bool gz) {
  size_t len;
  unsigned char *b = labels(n, &len);
  write_file(path_of(name), b, len, gz);
  free(b);
}

static void check_dataset(const Dataset *d, uint32_t n, uint32_t rows, uint32_t cols, bool has_labels) {
  assert_int_equal(d->n, n);
  assert_int_equal(d->rank, 2);
  assert_int_equal(d->dims[0], rows);
  assert_int_equal(d->dims[1], cols);
  assert_int_equal(d->sample_size, rows * cols);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < (size_t)rows * cols; k++) {
      float want = (float)((i * 7 + k * 13) % 256) / 255.0f;
      assert_true(d->x[i * rows * cols + k] == want);
    }
  assert_true(d->x[0] == 0.0f);
  if (!has_labels) {
    assert_null(d->y);
    return;
  }
  for (uint32_t i = 0; i < n; i++) assert_int_equal(d->y[i], (int32_t)(i * 37 % 256));
}

/* Loads images (and labels) expecting failure with status want and a
 * message containing each of the NULL-terminated strings. */
static void expect_idx_error(const char *img, const char *lab, gradc_status want, ...) {
  Dataset d;
  RtError err = {{0}};
  gradc_status s = data_load_idx(img, lab, &d, &err);
  if (s != want) print_error("status %d: %s\n", s, err.msg);
  assert_int_equal(s, want);
  assert_null(d.x);
  assert_null(d.y);
  assert_int_equal(d.n, 0);
  va_list ap;
  va_start(ap, want);
  for (const char *w; (w = va_arg(ap, const char *));) {
    if (!strstr(err.msg, w)) print_error("'%s' not in: %s\n", w, err.msg);
    assert_non_null(strstr(err.msg, w));
  }
  va_end(ap);
}

/* ------------------------------------------------------------ IDX files */

static void test_idx_plain(void **state) {
  (void)state;
  write_images("plain-img", 5, 3, 4, false);
  write_labels("plain-lab", 5, false);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_idx(path_of("plain-img"), path_of("plain-lab"), &d, &err), GRADC_OK);
  check_dataset(&d, 5, 3, 4, true);
  assert_true(d.x[1 * 12 + 3] == 46.0f / 255.0f);      /* (7 + 39) % 256 */
  data_free(&d);
  assert_null(d.x);
  data_free(&d);                                        /* twice is fine */
  data_free(NULL);

  /* Without labels. */
  assert_int_equal(data_load_idx(path_of("plain-img"), NULL, &d, &err), GRADC_OK);
  check_dataset(&d, 5, 3, 4, false);
  data_free(&d);
}

static void test_idx_gzip(void **state) {
  (void)state;
  /* 300 images of 28x28: more than one 128 KiB read buffer. */
  write_images("gz-img", 300, 28, 28, true);
  write_labels("gz-lab", 300, true);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_idx(path_of("gz-img"), path_of("gz-lab"), &d, &err), GRADC_OK);
  check_dataset(&d, 300, 28, 28, true);
  data_free(&d);
  /* Mixed: gzip'd images, plain labels; detected by content, not name. */
  write_labels("plain-lab.gz", 300, false);
  assert_int_equal(data_load_idx(path_of("gz-img"), path_of("plain-lab.gz"), &d, &err), GRADC_OK);
  check_dataset(&d, 300, 28, 28, true);
  data_free(&d);
}

static void test_idx_wrong_magic(void **state) {
  (void)state;
  write_images("m-img", 2, 2, 2, false);
  write_labels("m-lab", 2, false);
  /* The two files swapped: each message says what the file looks like. */
  expect_idx_error(path_of("m-lab"), NULL, GRADC_ERR_DATA, "m-lab", "0x00000801", "label file", "0x00000803",
                   NULL);
  expect_idx_error(path_of("m-img"), path_of("m-img"), GRADC_ERR_DATA, "not an IDX label file", "0x00000803",
                   "0x00000801", NULL);
  /* A text file, and an empty one. */
  write_text(path_of("m-text"), "hello world, not idx\n");
  expect_idx_error(path_of("m-text"), NULL, GRADC_ERR_DATA, "m-text", "magic number is 0x68656c6c", NULL);
  write_text(path_of("m-empty"), "");
  expect_idx_error(path_of("m-empty"), NULL, GRADC_ERR_DATA, "m-empty", "only 0 bytes", NULL);
  /* A missing file is an I/O error with the OS's reason. */
  expect_idx_error(path_of("m-none"), NULL, GRADC_ERR_IO, "m-none", "No such file or directory", NULL);
}

static void test_idx_truncated(void **state) {
  (void)state;
  size_t len;
  unsigned char *b = images(10, 4, 4, &len);      /* 16 + 160 = 176 bytes */
  write_file(path_of("t-img"), b, len - 5, false);
  expect_idx_error(path_of("t-img"), NULL, GRADC_ERR_DATA, "t-img", "truncated", "176 bytes", "holds 171", NULL);
  write_file(path_of("t-head"), b, 10, false);
  expect_idx_error(path_of("t-head"), NULL, GRADC_ERR_DATA, "t-head", "truncated", "10 bytes", "16-byte header",
                   NULL);
  /* Truncated inside the gzip'd data, but as a complete gzip stream. */
  write_file(path_of("t-short.gz"), b, len - 5, true);
  expect_idx_error(path_of("t-short.gz"), NULL, GRADC_ERR_DATA, "truncated", "176 bytes after decompression",
                   "holds 171", NULL);
  /* Trailing garbage, plain and gzip'd. */
  unsigned char *longer = malloc(len + 3);
  memcpy(longer, b, len);
  memcpy(longer + len, "xyz", 3);
  write_file(path_of("t-long"), longer, len + 3, false);
  expect_idx_error(path_of("t-long"), NULL, GRADC_ERR_DATA, "t-long", "3 bytes of trailing data", "176 bytes",
                   NULL);
  write_file(path_of("t-long.gz"), longer, len + 3, true);
  expect_idx_error(path_of("t-long.gz"), NULL, GRADC_ERR_DATA, "3 bytes of trailing data", NULL);
  free(longer);
  free(b);
}

/* A valid .gz cut in half: zlib's "unexpected end of file", not a crash. */
static void test_idx_truncated_gzip(void **state) {
  (void)state;
  /* Noise, so that half of the .gz holds about half of the pixels. */
  enum { N = 200, BYTES = 16 + N * 784 };
  static unsigned char img[BYTES], buf[BYTES + 1024];
  put_be32(img, 0x803), put_be32(img + 4, N), put_be32(img + 8, 28), put_be32(img + 12, 28);
  uint32_t seed = 1;
  for (int i = 16; i < BYTES; i++) img[i] = (unsigned char)((seed = seed * 1664525u + 1013904223u) >> 24);
  write_file(path_of("cut-full.gz"), img, BYTES, true);
  FILE *f = fopen(path_of("cut-full.gz"), "rb");
  assert_non_null(f);
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(len > BYTES / 2 && len < sizeof buf);
  write_file(path_of("cut-half.gz"), buf, len / 2, false);
  expect_idx_error(path_of("cut-half.gz"), NULL, GRADC_ERR_DATA, "cut-half.gz' is a truncated or damaged gzip",
                   "(zlib: unexpected end of file)", "its header promises 156816", NULL);
  /* Cut inside the gzip header itself, and just before the 8-byte gzip
   * trailer (every pixel there, the stream unfinished). */
  write_file(path_of("cut-head.gz"), buf, 12, false);
  expect_idx_error(path_of("cut-head.gz"), NULL, GRADC_ERR_DATA, "cut-head.gz' is a truncated or damaged gzip",
                   NULL);
  write_file(path_of("cut-tail.gz"), buf, len - 8, false);
  expect_idx_error(path_of("cut-tail.gz"), NULL, GRADC_ERR_DATA, "cut-tail.gz' is a truncated or damaged gzip",
                   NULL);
  /* A damaged byte in the middle of the deflate stream. */
  buf[len / 2] ^= 0xFF;
  write_file(path_of("cut-bad.gz"), buf, len, false);
  expect_idx_error(path_of("cut-bad.gz"), NULL, GRADC_ERR_DATA, "cut-bad.gz", NULL);
}

static void test_idx_count_mismatch(void **state) {
  (void)state;
  write_images("c-img", 7, 2, 2, false);
  write_labels("c-lab", 6, true);
  expect_idx_error(path_of("c-img"), path_of("c-lab"), GRADC_ERR_DATA, "c-img' holds 7 images", "c-lab' holds 6 labels",
                   NULL);
}

/* Headers that claim the impossible are refused before any allocation. */
static void test_idx_huge_header(void **state) {
  (void)state;
  unsigned char h[16];
  put_be32(h, 0x803), put_be32(h + 4, 0xFFFFFFFFu), put_be32(h + 8, 28), put_be32(h + 12, 28);
  write_file(path_of("h-count"), h, 16, false);
  expect_idx_error(path_of("h-count"), NULL, GRADC_ERR_DATA, "4294967295 samples", "2^31", NULL);
  put_be32(h + 4, 10), put_be32(h + 8, 65536), put_be32(h + 12, 65536);
  write_file(path_of("h-size"), h, 16, false);
  expect_idx_error(path_of("h-size"), NULL, GRADC_ERR_DATA, "65536x65536", "2^24", NULL);
  put_be32(h + 8, 0xFFFFFFFFu), put_be32(h + 12, 0xFFFFFFFFu);     /* product near 2^64 */
  write_file(path_of("h-wrap"), h, 16, false);
  expect_idx_error(path_of("h-wrap"), NULL, GRADC_ERR_DATA, "2^24", NULL);
  /* At the limits (2^31 images of 2^24 pixels) the header passes its
   * checks, but its values would take 2^57 bytes: refused before anything
   * is allocated (issue 23), with the number and the limit. */
  put_be32(h + 4, 0x80000000u), put_be32(h + 8, 4096), put_be32(h + 12, 4096);
  write_file(path_of("h-limit"), h, 16, false);
  expect_idx_error(path_of("h-limit"), NULL, GRADC_ERR_DATA, "promises 2147483648 images",
                   "144115188075855872 bytes", "8 GiB", "nothing was allocated", NULL);
  put_be32(h + 4, 0);
  write_file(path_of("h-zero"), h, 16, false);
  expect_idx_error(path_of("h-zero"), NULL, GRADC_ERR_DATA, "no data", NULL);
  unsigned char l[8];
  put_be32(l, 0x801), put_be32(l + 4, 0x80000001u);
  write_file(path_of("h-labels"), l, 8, false);
  write_images("h-img", 1, 1, 1, false);
  expect_idx_error(path_of("h-img"), path_of("h-labels"), GRADC_ERR_DATA, "2147483649 samples", NULL);
}

/* ----------------------------------------------------- MNIST directories */

static void test_mnist_dir(void **state) {
  (void)state;
  char sub[300];
  snprintf(sub, sizeof sub, "%s/mnist", dir);
  assert_int_equal(mkdir(sub, 0755), 0);
  write_images("mnist/train-images-idx3-ubyte", 12, 2, 3, false);
  write_labels("mnist/train-labels-idx1-ubyte.gz", 12, true);
  write_images("mnist/t10k-images-idx3-ubyte.gz", 4, 2, 3, true);
  write_labels("mnist/t10k-labels-idx1-ubyte.gz", 4, true);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_mnist_dir(sub, true, &d, &err), GRADC_OK);
  check_dataset(&d, 12, 2, 3, true);
  data_free(&d);
  strcat(sub, "/");                                   /* a trailing slash is fine */
  assert_int_equal(data_load_mnist_dir(sub, false, &d, &err), GRADC_OK);
  check_dataset(&d, 4, 2, 3, true);
  data_free(&d);

  /* A missing file is named. */
  unlink(path_of("mnist/t10k-labels-idx1-ubyte.gz"));
  assert_int_equal(data_load_mnist_dir(sub, false, &d, &err), GRADC_ERR_IO);
  assert_non_null(strstr(err.msg, "neither t10k-labels-idx1-ubyte.gz nor t10k-labels-idx1-ubyte"));
  assert_null(strstr(err.msg, "apt-get"));
  assert_null(d.x);
  /* A file where the directory should be. */
  assert_int_equal(data_load_mnist_dir(path_of("mnist/train-images-idx3-ubyte"), true, &d, &err), GRADC_ERR_IO);
  assert_non_null(strstr(err.msg, "is not a directory"));
}

static void test_mnist_dir_missing(void **state) {
  (void)state;
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_mnist_dir("/nonexistent/gradc-data", true, &d, &err), GRADC_ERR_IO);
  assert_string_equal(err.msg, "the dataset directory '/nonexistent/gradc-data' does not exist");
  assert_null(d.x);
}

/* The Debian package's location, when it is not installed, says how. */
static void test_mnist_dir_hint(void **state) {
  (void)state;
  struct stat st;
  if (stat("/usr/share/datasets/fashion-mnist", &st) == 0) skip();   /* installed: no hint to see */
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_mnist_dir("/usr/share/datasets/fashion-mnist", true, &d, &err), GRADC_ERR_IO);
  assert_string_equal(err.msg, "the dataset directory '/usr/share/datasets/fashion-mnist' does not exist; "
                               "install it with: apt-get install dataset-fashion-mnist");
}

/* The real Fashion-MNIST test split, when the Debian package is installed
 * (the 10000-sample split: the 60000 would triple this suite's time). */
static void test_fashion_mnist(void **state) {
  (void)state;
  struct stat st;
  if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) skip();
  Dataset d;
  RtError err = {{0}};
  gradc_status s = data_load_mnist_dir("/usr/share/datasets/fashion-mnist", false, &d, &err);
  if (s) print_error("%s\n", err.msg);
  assert_int_equal(s, GRADC_OK);
  assert_int_equal(d.n, 10000);
  assert_int_equal(d.dims[0], 28);
  assert_int_equal(d.dims[1], 28);
  assert_int_equal(d.sample_size, 784);
  int per_class[10] = {0};
  for (int64_t i = 0; i < d.n; i++) {
    assert_in_range(d.y[i], 0, 9);
    per_class[d.y[i]]++;
  }
  for (int c = 0; c < 10; c++) assert_int_equal(per_class[c], 1000);
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < d.n * d.sample_size; i++) {
    lo = d.x[i] < lo ? d.x[i] : lo;
    hi = d.x[i] > hi ? d.x[i] : hi;
  }
  assert_true(lo == 0.0f && hi == 1.0f);
  data_free(&d);
}

/* ------------------------------------------------------------- CSV files */

static void load_csv_ok(const char *text, int64_t rows, int64_t cols, const double *want) {
  write_text(path_of("csv"), text);
  double *v = NULL;
  int64_t r, c;
  RtError err = {{0}};
  gradc_status s = data_load_csv(path_of("csv"), &v, &r, &c, &err);
  if (s) print_error("%s\n", err.msg);
  assert_int_equal(s, GRADC_OK);
  assert_int_equal(r, rows);
  assert_int_equal(c, cols);
  for (int64_t i = 0; i < rows * cols; i++) assert_true(v[i] == want[i]);
  free(v);
}

/* Expects failure with a message that names the file and ends with
 * suffix: "FILE:LINE:COL: ..." or "'FILE' ...". */
static void load_csv_error(const char *text, gradc_status want, const char *suffix) {
  write_text(path_of("csv"), text);
  double *v = (double *)&v;
  int64_t r = -1, c = -1;
  RtError err = {{0}};
  assert_int_equal(data_load_csv(path_of("csv"), &v, &r, &c, &err), want);
  assert_null(v);
  assert_int_equal(r, 0);
  assert_int_equal(c, 0);
  size_t len = strlen(err.msg), slen = strlen(suffix), plen = strlen(path_of("csv"));
  bool quoted = err.msg[0] == '\'';
  if (len < slen || strcmp(err.msg + len - slen, suffix) || strncmp(err.msg + quoted, path_of("csv"), plen) ||
      len != quoted + plen + slen)
    fail_msg("expected FILE%s, got: %s", suffix, err.msg);
}

static void test_csv_good(void **state) {
  (void)state;
  const double two_by_three[] = {1, 2.5, -3, 4e2, 0.125, 6};
  load_csv_ok("1,2.5,-3\n4e2,0.125,6\n", 2, 3, two_by_three);
  load_csv_ok("1,2.5,-3\n4e2,0.125,6", 2, 3, two_by_three);            /* no final newline */
  load_csv_ok("a, b ,c\n1,2.5,-3\n4e2,0.125,6\n", 2, 3, two_by_three);   /* header */
  load_csv_ok("a,b,c\r\n1,2.5,-3\r\n4e2,0.125,6\r\n", 2, 3, two_by_three);  /* CRLF */
  load_csv_ok("\xEF\xBB\xBFx,y,z\n1,2.5,-3\n4e2,0.125,6\n", 2, 3, two_by_three); /* BOM */
  load_csv_ok("# a comment\n\n  1 ,\t2.5,  -3\t\n   \n  # indented comment\n4e2,0.125,6\n\n", 2, 3, two_by_three);
  const double one[] = {42};
  load_csv_ok("42\n", 1, 1, one);
}

static void test_csv_errors(void **state) {
  (void)state;
  load_csv_error("1,2\n3,abc\n", GRADC_ERR_DATA, ":2:3: bad number 'abc'");
  load_csv_error("1,2\n# c\n\n3,  4x  ,5\n", GRADC_ERR_DATA, ":4:5: bad number '4x'");
  load_csv_error("1,2\n3,\n", GRADC_ERR_DATA, ":2:3: bad number ''");                  /* empty field */
  load_csv_error("1,2\n3,1e999\n", GRADC_ERR_DATA,                                    /* overflow */
                 ":2:3: bad number '1e999': beyond the range of f32 (magnitude at most 3.4e38)");
  /* A header only on line 1: a word further down is an error. */
  load_csv_error("# comment\nx,y\n1,2\n", GRADC_ERR_DATA, ":2:1: bad number 'x'");
  /* Ragged rows: the line and both counts. */
  load_csv_error("1,2,3\n4,5,6\n7,8\n", GRADC_ERR_DATA, ":3: 2 fields, but line 1 has 3");
  load_csv_error("# c\n1,2\n3,4,5\n", GRADC_ERR_DATA, ":3: 3 fields, but line 2 has 2");
  load_csv_error("a,b,c\n1,2\n", GRADC_ERR_DATA, ":2: 2 fields, but the header on line 1 has 3");
  /* Nothing to load. */
  load_csv_error("", GRADC_ERR_DATA, "' holds no rows of numbers");
  load_csv_error("# only\n\n", GRADC_ERR_DATA, "' holds no rows of numbers");
  load_csv_error("a,b\n", GRADC_ERR_DATA, "' holds no rows of numbers, only a header");
  double *v;
  int64_t r, c;
  RtError err = {{0}};
  assert_int_equal(data_load_csv(path_of("no-such.csv"), &v, &r, &c, &err), GRADC_ERR_IO);
  assert_non_null(strstr(err.msg, "No such file or directory"));
  assert_int_equal(data_load_csv(NULL, &v, &r, &c, &err), GRADC_ERR_ARG);
}

/* ------------------------------------------------------ split and shuffle */

static Dataset numbered(int64_t n, bool with_labels) {
  Dataset d = {.n = n, .rank = 2, .dims = {1, 2}, .sample_size = 2};
  d.x = malloc(sizeof(float) * (size_t)(n * 2));
  d.y = with_labels ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
  for (int64_t i = 0; i < n; i++) {
    d.x[2 * i] = (float)i, d.x[2 * i + 1] = (float)-i;
    if (d.y) d.y[i] = (int32_t)(100 + i);
  }
  return d;
}

static void test_split(void **state) {
  (void)state;
  Dataset d = numbered(10, true), val;
  RtError err = {{0}};
  assert_int_equal(data_split(&d, 0.25, &val, &err), GRADC_OK);      /* floor(2.5) = 2 */
  assert_int_equal(d.n, 8);
  assert_int_equal(val.n, 2);
  assert_int_equal(val.rank, 2);
  assert_int_equal(val.dims[1], 2);
  assert_int_equal(val.sample_size, 2);
  for (int64_t i = 0; i < 8; i++) assert_true(d.x[2 * i + 1] == (float)-i && d.y[i] == 100 + i);
  for (int64_t i = 0; i < 2; i++) assert_true(val.x[2 * i] == (float)(8 + i) && val.y[i] == 108 + i);
  data_free(&val);
  /* 0 takes nothing; the rest is untouched. */
  assert_int_equal(data_split(&d, 0, &val, &err), GRADC_OK);
  assert_int_equal(d.n, 8);
  assert_int_equal(val.n, 0);
  assert_null(val.x);
  data_free(&val);
  /* Unlabelled data gives unlabelled validation data. */
  Dataset u = numbered(7, false);
  assert_int_equal(data_split(&u, 0.5, &val, &err), GRADC_OK);
  assert_int_equal(u.n, 4);
  assert_int_equal(val.n, 3);
  assert_null(val.y);
  assert_true(val.x[0] == 4.0f);
  data_free(&val);
  data_free(&u);
  /* Decimal fractions that doubles cannot hold exactly still split as
   * written: 100 * 0.29 is 28.999999999999996 in doubles. */
  Dataset h = numbered(100, true);
  assert_int_equal(data_split(&h, 0.29, &val, &err), GRADC_OK);
  assert_int_equal(val.n, 29);
  assert_int_equal(h.n, 71);
  data_free(&val);
  data_free(&h);
  /* Out of range, NaN included. */
  const double bad[] = {1, -0.1, 1.5, NAN};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(data_split(&d, bad[i], &val, &err), GRADC_ERR_ARG);
    assert_non_null(strstr(err.msg, "less than 1"));
  }
  assert_int_equal(d.n, 8);
  assert_int_equal(data_split(&d, 0.5, NULL, &err), GRADC_ERR_ARG);
  data_free(&d);
}

/* The runtime's large blocks (runtime/mem.c): aligned for the kernels'
 * vector loads, on 2 MiB boundaries from 2 MiB up (where huge pages can
 * back them), zeroed by rt_calloc_big, and released by plain free(). */
static void test_big_blocks(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 100, (2u << 20) - 4, 2u << 20, (5u << 20) + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    unsigned char *p = rt_alloc_big(sizes[i]), *z = rt_calloc_big(sizes[i]);
    assert_non_null(p);
    assert_non_null(z);
    size_t align = sizes[i] >= 2u << 20 ? 2u << 20 : 64;
    assert_int_equal((uintptr_t)p % align, 0);
    assert_int_equal((uintptr_t)z % align, 0);
    if (sizes[i]) {
      p[0] = 1, p[sizes[i] - 1] = 2;
      assert_true(z[0] == 0 && z[sizes[i] / 2] == 0 && z[sizes[i] - 1] == 0);
    }
    free(p);
    free(z);
  }
}

static void test_permutation(void **state) {
  (void)state;
  enum { N = 1000 };
  static int64_t a[N], b[N], c[N];
  static bool seen[N];
  data_permutation(a, N, 42, 0);
  for (int i = 0; i < N; i++) {
    assert_in_range(a[i], 0, N - 1);
    assert_false(seen[a[i]]);
    seen[a[i]] = true;
  }
  data_permutation(b, N, 42, 0);
  assert_memory_equal(a, b, sizeof a);                 /* deterministic */
  data_permutation(c, N, 42, 1);
  assert_memory_not_equal(a, c, sizeof a);             /* another epoch, another order */
  data_permutation(c, N, 43, 0);
  assert_memory_not_equal(a, c, sizeof a);             /* another seed too */
  int fixed = 0;
  for (int i = 0; i < N; i++) fixed += a[i] == i;
  assert_true(fixed < 10);                             /* shuffled: about 1 expected */
  /* Every position sees every value about equally: 2000 shuffles of 4. */
  int count[4][4] = {{0}};
  for (int e = 0; e < 2000; e++) {
    int64_t p[4];
    data_permutation(p, 4, 7, e);
    for (int i = 0; i < 4; i++) count[i][p[i]]++;
  }
  for (int i = 0; i < 4; i++)
    for (int v = 0; v < 4; v++) assert_in_range(count[i][v], 400, 600);
  int64_t one = -1;
  data_permutation(&one, 1, 1, 0);
  assert_int_equal(one, 0);
  data_permutation(NULL, 0, 1, 0);                     /* nothing to do */
}

/* ------------------------------------------------------------ sequences */

/* A CSV of sequences: a label and any number of ids per row; header,
 * comments and blank lines as for tables; non-integers refused. */
static void test_sequences_csv(void **state) {
  (void)state;
  write_text(path_of("seq.csv"), "label,ids\n# comment\n1, 5, 6, 7\n0\n\n2,9\n1,1,2,3,4,5\n");
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_csv_sequences(path_of("seq.csv"), &d, &err), GRADC_OK);
  assert_int_equal(d.n, 4);
  assert_int_equal(d.sample_size, 5);
  static const int32_t y[] = {1, 0, 2, 1};
  static const int64_t off[] = {0, 3, 3, 4, 9};
  static const float ids[] = {5, 6, 7, 9, 1, 2, 3, 4, 5};
  for (int i = 0; i < 4; i++) assert_int_equal(d.y[i], y[i]);
  for (int i = 0; i < 5; i++) assert_int_equal(d.seq[i], off[i]);
  assert_memory_equal(d.x, ids, sizeof ids);
  /* the last sequence split off for validation keeps its ids */
  Dataset v;
  assert_int_equal(data_split(&d, 0.25, &v, &err), GRADC_OK);
  assert_int_equal(d.n, 3);
  assert_int_equal(v.n, 1);
  assert_int_equal(v.y[0], 1);
  assert_int_equal(v.seq[0], 0);
  assert_int_equal(v.seq[1], 5);
  assert_memory_equal(v.x, ids + 4, 5 * sizeof(float));
  data_free(&v);
  data_free(&d);
  write_text(path_of("bad.csv"), "1,2,3\n0,4.5\n");
  assert_int_equal(data_load_csv_sequences(path_of("bad.csv"), &d, &err), GRADC_ERR_DATA);
  assert_non_null(strstr(err.msg, ":2: field 2 is 4.5, not an integer id"));
  assert_null(d.x);
  write_text(path_of("empty.csv"), "label,ids\n");
  assert_int_equal(data_load_csv_sequences(path_of("empty.csv"), &d, &err), GRADC_ERR_DATA);
  assert_non_null(strstr(err.msg, "holds no sequences"));
}

/* IDX vectors of i32 (type 0x0C, big-endian) or of bytes in a dataset
 * directory, with labels: ids unscaled. */
static void test_sequences_idx(void **state) {
  (void)state;
  enum { N = 3, L = 4 };
  unsigned char b[12 + 4 * N * L];
  put_be32(b, 0xC02), put_be32(b + 4, N), put_be32(b + 8, L);
  for (int i = 0; i < N * L; i++) put_be32(b + 12 + 4 * i, (uint32_t)(i * 1000 - 5));
  char sub[300];
  snprintf(sub, sizeof sub, "%s/seqdir", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  write_file(path_of("seqdir/train-sequences-idx2-int.gz"), b, sizeof b, true);
  write_labels("seqdir/train-labels-idx1-ubyte", N, false);
  unsigned char u[12 + N * L];
  put_be32(u, 0x802), put_be32(u + 4, N), put_be32(u + 8, L);
  for (int i = 0; i < N * L; i++) u[12 + i] = (unsigned char)(200 + i);
  write_file(path_of("seqdir/t10k-sequences-idx2-ubyte"), u, sizeof u, false);
  write_labels("seqdir/t10k-labels-idx1-ubyte", N, false);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_mnist_dir(sub, true, &d, &err), GRADC_OK);
  assert_int_equal(d.n, N);
  assert_int_equal(d.sample_size, L);
  assert_non_null(d.seq);
  for (int i = 0; i < N * L; i++) assert_true(d.x[i] == (float)(i * 1000 - 5));
  for (int i = 0; i <= N; i++) assert_int_equal(d.seq[i], i * L);
  for (int i = 0; i < N; i++) assert_int_equal(d.y[i], i * 37 % 256);
  data_free(&d);
  assert_int_equal(data_load_mnist_dir(sub, false, &d, &err), GRADC_OK);
  for (int i = 0; i < N * L; i++) assert_true(d.x[i] == (float)(200 + i));
  data_free(&d);
  /* an IDX sequence file cut short says so */
  write_file(path_of("seqdir/train-sequences-idx2-int.gz"), b, sizeof b - 4, true);
  assert_int_equal(data_load_mnist_dir(sub, true, &d, &err), GRADC_ERR_DATA);
  assert_non_null(strstr(err.msg, "truncated: its header promises 3 sequences"));
}

/* Keras pad_sequences through the public API: a model's i32[batch, 4]
 * input takes each row padded or truncated at the chosen end; the labels
 * feed the i32[batch] input. */
static void test_sequences_feed(void **state) {
  (void)state;
  write_text(path_of("feed.csv"), "1,5,6\n0,1,2,3,4,5,6\n2\n");
  gradc_dataset *ds;
  assert_int_equal(gradc_dataset_load_sequences_csv(path_of("feed.csv"), &ds), GRADC_OK);
  assert_int_equal(gradc_dataset_size(ds), 3);
  gradc_model *m;
  assert_int_equal(gradc_compile_string("seq.nn",
                                        "input y : i32[batch]\ninput ids : i32[batch, 4]\n"
                                        "e = embedding(ids, 10, 2)\n"
                                        "loss = mean(softmax_cross_entropy(reshape(e, [-1, 8]), y))\n"
                                        "train loss with sgd\n",
                                        NULL, &m),
                   GRADC_OK);
  static const struct {
    int pad_post, trunc_post, value;
    int32_t want[12];
  } cases[] = {
      {0, 0, 0, {0, 0, 5, 6, 3, 4, 5, 6, 0, 0, 0, 0}},     /* Keras' defaults */
      {1, 0, 0, {5, 6, 0, 0, 3, 4, 5, 6, 0, 0, 0, 0}},
      {0, 1, 0, {0, 0, 5, 6, 1, 2, 3, 4, 0, 0, 0, 0}},
      {1, 1, 9, {5, 6, 9, 9, 1, 2, 3, 4, 9, 9, 9, 9}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    assert_int_equal(gradc_dataset_set_padding(ds, cases[i].pad_post, cases[i].trunc_post, cases[i].value),
                     GRADC_OK);
    assert_int_equal(gradc_dataset_feed(ds, m, NULL, 0, 3), GRADC_OK);
    int64_t c;
    const int32_t *ids = gradc_data(m, "ids", &c), *y = gradc_data(m, "y", NULL);
    assert_int_equal(c, 12);
    assert_memory_equal(ids, cases[i].want, sizeof cases[i].want);
    assert_int_equal(y[0], 1);
    assert_int_equal(y[2], 2);
    double loss;
    assert_int_equal(gradc_train_step(m, &loss), GRADC_OK);
    assert_true(isfinite(loss));
  }
  gradc_free(m);
  gradc_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_big_blocks),
      cmocka_unit_test(test_idx_plain),
      cmocka_unit_test(test_idx_gzip),
      cmocka_unit_test(test_idx_wrong_magic),
      cmocka_unit_test(test_idx_truncated),
      cmocka_unit_test(test_idx_truncated_gzip),
      cmocka_unit_test(test_idx_count_mismatch),
      cmocka_unit_test(test_idx_huge_header),
      cmocka_unit_test(test_mnist_dir),
      cmocka_unit_test(test_mnist_dir_missing),
      cmocka_unit_test(test_mnist_dir_hint),
      cmocka_unit_test(test_fashion_mnist),
      cmocka_unit_test(test_csv_good),
      cmocka_unit_test(test_csv_errors),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_permutation),
      cmocka_unit_test(test_sequences_csv),
      cmocka_unit_test(test_sequences_idx),
      cmocka_unit_test(test_sequences_feed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
