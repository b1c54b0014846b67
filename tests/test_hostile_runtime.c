/*
 * test_hostile_runtime.c - issue 23's runtime items: what hostile data and
 * API calls did to the runtime and the training loop, each a case that
 * failed before its fix.
 *
 *   17  CSV fields strtod takes but that are no measurement (nan, inf,
 *       -Infinity, hex) or that overflow f32 (1e39) are refused at their
 *       line and column; a NUL byte is refused where it is, not dropped
 *       with its row.
 *   25  an IDX header whose values would not fit (5,000,000 images from a
 *       small gzip) is refused before anything is allocated, with the
 *       number; a process limit lowers the budget.
 *    4  gradc_dataset_feed checks the entries of order, not only start
 *       and count.
 *   11  a final save that fails (its directory gone during training)
 *       writes the weights to a fallback file and says where.
 *
 * Messages are checked for what they must tell the user: the file, the
 * line and column, the value, the numbers.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"
#include "gradc.h"
#include "runtime.h"

#include "util_files.h"

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

static void has(const char *msg, const char *want) {
  if (!strstr(msg, want)) fail_msg("'%s' not in: %s", want, msg);
}

/* ------------------------------------------------------------ 17: CSV */

/* The CSV text (a literal: NUL bytes count) fails to load with exactly
 * "PATH:where" as its message. */
#define csv_refused(text, where) csv_refused_n(text, sizeof text - 1, where)
static void csv_refused_n(const char *text, size_t len, const char *where) {
  write_file(path_of("t.csv"), text, len, false);
  double *v = NULL;
  int64_t r, c;
  RtError err = {{0}};
  assert_int_equal(data_load_csv(path_of("t.csv"), &v, &r, &c, &err), GRADC_ERR_DATA);
  assert_null(v);
  char want[1024];
  snprintf(want, sizeof want, "%s:%s", path_of("t.csv"), where);
  if (strcmp(err.msg, want)) fail_msg("expected: %s\n     got: %s", want, err.msg);
}

static void test_csv_numbers_refused(void **state) {
  (void)state;
  csv_refused("1,2\n3,nan\n", "2:3: bad number 'nan': NaN is not a value to train on");
  csv_refused("1,2\n3,  NaN\n", "2:5: bad number 'NaN': NaN is not a value to train on");
  csv_refused("1,2\ninf,3\n", "2:1: bad number 'inf': infinity is not a value to train on");
  csv_refused("1,2\n3,-Infinity\n", "2:3: bad number '-Infinity': infinity is not a value to train on");
  csv_refused("1,2\n3,0x10\n", "2:3: bad number '0x10': only decimal numbers are read (no hex)");
  csv_refused("1,2\n3,1e39\n", "2:3: bad number '1e39': beyond the range of f32 (magnitude at most 3.4e38)");
  csv_refused("1,2\n3,-4e38\n", "2:3: bad number '-4e38': beyond the range of f32 (magnitude at most 3.4e38)");
  /* A refused number is no header word, on line 1 either. */
  csv_refused("1e39,2\n3,4\n", "1:1: bad number '1e39': beyond the range of f32 (magnitude at most 3.4e38)");
  csv_refused("nan,2\n3,4\n", "1:1: bad number 'nan': NaN is not a value to train on");
  /* A row that starts with a NUL byte used to vanish; one in the middle
   * cut the row short. */
  csv_refused("1,2\n\0003,4\n5,6\n", "2:1: a NUL byte: the file is not text (binary or damaged)");
  csv_refused("a,b\n1,2\n3,4\0,5\n", "3:4: a NUL byte: the file is not text (binary or damaged)");
}

/* What decimal notation allows is still read, down to the largest f32. */
static void test_csv_numbers_accepted(void **state) {
  (void)state;
  static const char text[] = "+2,.5,5.,-0.25e+1,1e-50,3.4028235e38,-3.4028234e38\n";
  write_file(path_of("ok.csv"), text, sizeof text - 1, false);
  double *v = NULL;
  int64_t r, c;
  RtError err = {{0}};
  gradc_status s = data_load_csv(path_of("ok.csv"), &v, &r, &c, &err);
  if (s) fail_msg("%s", err.msg);
  assert_int_equal(r, 1);
  assert_int_equal(c, 7);
  const double want[] = {2, 0.5, 5, -2.5, 1e-50, 3.4028235e38, -3.4028234e38};
  for (int i = 0; i < 7; i++) assert_true(v[i] == want[i]);
  assert_true((float)v[5] == 3.4028234663852886e38f);     /* rounds to FLT_MAX, not to infinity */
  free(v);
}

/* ----------------------------------------------------------- 25: IDX */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* A gzip'd IDX image file whose header promises n images of 28x28 and
 * which holds `body` zero bytes after it. */
static void promise_images(const char *name, uint32_t n, size_t body) {
  size_t len = 16 + body;
  unsigned char *b = calloc(1, len);
  assert_non_null(b);
  put_be32(b, 0x803), put_be32(b + 4, n), put_be32(b + 8, 28), put_be32(b + 12, 28);
  write_file(path_of(name), b, len, true);
  free(b);
}

static void test_idx_promise_too_large(void **state) {
  (void)state;
  /* The file: 5,000,000 images, 15.68 GB as floats.  Refused
   * after the header, before the body is inflated or anything allocated. */
  promise_images("big-images.gz", 5000000, 1 << 20);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(data_load_idx(path_of("big-images.gz"), NULL, &d, &err), GRADC_ERR_DATA);
  assert_null(d.x);
  has(err.msg, path_of("big-images.gz"));
  has(err.msg, "promises 5000000 images, 15680000000 bytes of values in memory");
  has(err.msg, "more than gradc's limit for one data file (8 GiB): 8589934592 bytes");
  /* Under the budget, a file shorter than its header is truncated, not
   * allocated for in full: the promise is checked against what inflates. */
  promise_images("short-images.gz", 1000, 28 * 28 * 10);
  assert_int_equal(data_load_idx(path_of("short-images.gz"), NULL, &d, &err), GRADC_ERR_DATA);
  has(err.msg, "is truncated: its header promises 1000 images, 784016 bytes after decompression in all, but it "
               "holds 7856");
}

/* Within the 8 GiB, a process limit is the budget (here ulimit -d of
 * 1 GiB against 700,000 images, 2.2 GB as floats).  Not under
 * AddressSanitizer, whose allocator cannot live under such a limit. */
static void test_idx_budget_rlimit(void **state) {
  (void)state;
#if defined(__SANITIZE_ADDRESS__)
  skip();
#endif
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_DATA, &old), 0);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < (1u << 30)) skip();
  struct rlimit low = {(rlim_t)1 << 30, old.rlim_max};
  promise_images("mid-images.gz", 700000, 4096);
  Dataset d;
  RtError err = {{0}};
  assert_int_equal(setrlimit(RLIMIT_DATA, &low), 0);
  gradc_status s = data_load_idx(path_of("mid-images.gz"), NULL, &d, &err);
  assert_int_equal(setrlimit(RLIMIT_DATA, &old), 0);
  assert_int_equal(s, GRADC_ERR_NOMEM);
  assert_null(d.x);
  has(err.msg, "promises 700000 images, 2195200000 bytes of values in memory, more than ");
  if (!strstr(err.msg, "(ulimit -d): 1073741824 bytes")) has(err.msg, "MemAvailable");   /* a smaller machine */
}

/* Streaming conversion gives the values the whole-file reader gave:
 * images over several chunks of the reader, scaled by 1/255 exactly. */
static void test_idx_streamed_values(void **state) {
  (void)state;
  uint32_t n = 2000;                       /* 1.5 MiB of pixels: two chunks and a part */
  size_t len = 16 + (size_t)n * 784;
  unsigned char *b = malloc(len);
  assert_non_null(b);
  put_be32(b, 0x803), put_be32(b + 4, n), put_be32(b + 8, 28), put_be32(b + 12, 28);
  for (size_t k = 16; k < len; k++) b[k] = (unsigned char)(k * 131 % 251);
  write_file(path_of("stream.gz"), b, len, true);
  unsigned char l[8 + 2000];
  put_be32(l, 0x801), put_be32(l + 4, n);
  for (uint32_t i = 0; i < n; i++) l[8 + i] = (unsigned char)(i % 10);
  write_file(path_of("stream-labels"), l, sizeof l, false);
  Dataset d;
  RtError err = {{0}};
  gradc_status s = data_load_idx(path_of("stream.gz"), path_of("stream-labels"), &d, &err);
  if (s) fail_msg("%s", err.msg);
  assert_int_equal(d.n, n);
  for (size_t k = 0; k < (size_t)n * 784; k++)
    if (d.x[k] != (float)b[16 + k] / 255.0f) fail_msg("pixel %zu is %g, expected %g", k, d.x[k], b[16 + k] / 255.0);
  for (uint32_t i = 0; i < n; i++) assert_int_equal(d.y[i], i % 10);
  data_free(&d);
  free(b);
}

/* ------------------------------------------------- 4: gradc_dataset_feed */

static void test_feed_order_checked(void **state) {
  (void)state;
  static const char text[] = "1,5,6\n0,1,2,3\n2,7\n";
  write_file(path_of("feed.csv"), text, sizeof text - 1, false);
  gradc_dataset *ds;
  assert_int_equal(gradc_dataset_load_sequences_csv(path_of("feed.csv"), &ds), GRADC_OK);
  gradc_model *m;
  assert_int_equal(gradc_compile_string("feed.nn",
                                        "input y : i32[batch]\ninput ids : i32[batch, 4]\n"
                                        "e = embedding(ids, 10, 2)\n"
                                        "loss = mean(softmax_cross_entropy(reshape(e, [-1, 8]), y))\n"
                                        "train loss with sgd\n",
                                        NULL, &m),
                   GRADC_OK);
  int64_t good[] = {2, 0, 1}, bad[] = {0, 3, 1}, negative[] = {2, -1, 0}, huge[] = {1, 0, INT64_MAX};
  assert_int_equal(gradc_dataset_feed(ds, m, good, 0, 3), GRADC_OK);
  assert_int_equal(gradc_data(m, "y", NULL) ? ((int32_t *)gradc_data(m, "y", NULL))[0] : -1, 2);
  assert_int_equal(gradc_dataset_feed(ds, m, bad, 0, 3), GRADC_ERR_ARG);
  assert_string_equal(gradc_last_error(m), "gradc_dataset_feed: order[1] is 3, outside the dataset of 3 samples");
  assert_string_equal(gradc_last_error(NULL), gradc_last_error(m));
  assert_int_equal(gradc_dataset_feed(ds, m, negative, 0, 3), GRADC_ERR_ARG);
  has(gradc_last_error(m), "order[1] is -1");
  assert_int_equal(gradc_dataset_feed(ds, m, huge, 1, 2), GRADC_ERR_ARG);
  has(gradc_last_error(m), "order[2] is 9223372036854775807");
  /* Only the entries start .. start + count - 1 are read. */
  assert_int_equal(gradc_dataset_feed(ds, m, huge, 0, 2), GRADC_OK);
  /* The model was left as the last good feed bound it. */
  gradc_tensor t;
  for (int i = 0; i < gradc_tensor_count(m); i++)
    if (gradc_tensor_info(m, i, &t) == GRADC_OK && !strcmp(t.name, "y")) assert_int_equal(t.dims[0], 2);
  gradc_free(m);
  gradc_dataset_free(ds);
}

/* ------------------------------------------------ 11: the final save */

/* The training loop's progress stream: at its first "Epoch" line (after
 * the checks before training) it removes the directory the checkpoint is
 * to be saved in, as a disk failing or a directory deleted during a long
 * run would make the final save fail. */
static char doomed[512];

static ssize_t progress_write(void *cookie, const char *buf, size_t n) {
  (void)cookie;
  if (*doomed && memmem(buf, n, "Epoch", 5)) {
    assert_int_equal(rmdir(doomed), 0);
    *doomed = 0;
  }
  return (ssize_t)n;
}

static void test_save_fallback(void **state) {
  (void)state;
  char text[2048] = "a,b,label\n";
  for (int i = 0; i < 32; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text), "0.%d,0.%d,%d\n", i % 10, i * 7 % 10, i % 4);
  write_file(path_of("cls.csv"), text, strlen(text), false);
  gradc_model *m;
  assert_int_equal(gradc_compile_string("cls.nn",
                                        "input x : f32[batch, 2]\ninput y : i32[batch]\n"
                                        "param W : f32[2, 4] = glorot_uniform\nlogits = x @ W\n"
                                        "loss = mean(softmax_cross_entropy(logits, y))\ntrain loss with sgd\n",
                                        NULL, &m),
                   GRADC_OK);
  snprintf(doomed, sizeof doomed, "%s/doomed", dir);
  assert_int_equal(mkdir(doomed, 0755), 0);
  char save[600], data[600];
  snprintf(save, sizeof save, "%s/model.ckpt", doomed);
  snprintf(data, sizeof data, "%s", path_of("cls.csv"));
  FILE *out = fopencookie(NULL, "w", (cookie_io_functions_t){.write = progress_write});
  assert_non_null(out);
  setvbuf(out, NULL, _IONBF, 0);
  char *old_tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
  setenv("TMPDIR", dir, 1);
  TrainOptions o = {.data_dir = data, .epochs = 1, .batch = 8, .seed = 1, .save = save, .out = out};
  RtError err = {{0}};
  gradc_status s = cli_train(m, &o, &err);
  if (old_tmpdir) setenv("TMPDIR", old_tmpdir, 1);
  else unsetenv("TMPDIR");
  free(old_tmpdir);
  fclose(out);
  assert_int_equal(*doomed, 0);              /* the directory went during training */
  assert_int_equal(s, GRADC_ERR_IO);
  has(err.msg, "cannot save the checkpoint");
  has(err.msg, save);
  /* "...; the trained weights were saved to 'DIR/cls-rescued-XXXXXX.ckpt' instead" */
  const char *at = strstr(err.msg, "the trained weights were saved to '");
  if (!at) fail_msg("no fallback in: %s", err.msg);
  char rescued[600];
  snprintf(rescued, sizeof rescued, "%s", at + strlen("the trained weights were saved to '"));
  assert_non_null(strchr(rescued, '\''));
  *strchr(rescued, '\'') = 0;
  assert_int_equal(strncmp(rescued, dir, strlen(dir)), 0);
  has(rescued, "/cls-rescued-");
  /* It holds the trained weights: they load back, bit for bit. */
  float trained[8];
  memcpy(trained, gradc_data(m, "W", NULL), sizeof trained);
  assert_int_equal(gradc_init(m, 99), GRADC_OK);
  assert_int_equal(gradc_load(m, rescued), GRADC_OK);
  assert_memory_equal(gradc_data(m, "W", NULL), trained, sizeof trained);
  /* A destination missing before training is refused before it. */
  snprintf(save, sizeof save, "%s/missing/model.ckpt", dir);
  out = fopencookie(NULL, "w", (cookie_io_functions_t){.write = progress_write});
  o.out = out;
  s = cli_train(m, &o, &err);
  fclose(out);
  assert_int_equal(s, GRADC_ERR_IO);
  has(err.msg, "its directory '");
  has(err.msg, "/missing' does not exist (checked before training)");
  gradc_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_csv_numbers_refused),
      cmocka_unit_test(test_csv_numbers_accepted),
      cmocka_unit_test(test_idx_promise_too_large),
      cmocka_unit_test(test_idx_budget_rlimit),
      cmocka_unit_test(test_idx_streamed_values),
      cmocka_unit_test(test_feed_order_checked),
      cmocka_unit_test(test_save_fallback),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
