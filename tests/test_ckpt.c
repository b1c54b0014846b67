/*
 * test_ckpt.c - checkpoints (runtime/ckpt.c): a round trip of every dtype
 * and a scalar; files damaged every way we can think of (a flipped byte,
 * cut short, wrong magic, a newer version, a payload re-compressed under
 * the old checksum, lengths that point past the end) refused with a
 * message and without touching the destination; tensors that differ from
 * the model named one by one; and saves that fail (missing directory, a
 * directory or a device in the way, a file-size limit mid-write) keeping
 * the previous checkpoint and leaving no temporary file behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime.h"

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-ckpt-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", dir, dir);
  return system(cmd);
}

/* ------------------------------------------------------------ helpers */

static const char *path_of(const char *name) {
  static char paths[4][512];
  static int next;
  char *p = paths[next++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

/* A small model's worth of tensors, filled from `fill` so that two sets
 * can be told apart: every dtype, a scalar, and an empty tensor. */
typedef struct Model {
  float w[3][4];
  int32_t steps[5];
  double m[2][2];
  bool mask[7];
  float scale;
  float none[1];
  CkptTensor t[6];
} Model;

static void make_model(Model *m, int fill) {
  memset(m, 0, sizeof *m);                         /* padding too: compared with memcmp */
  for (int i = 0; i < 12; i++) m->w[i / 4][i % 4] = (float)(fill * 100 + i) / 8;
  for (int i = 0; i < 5; i++) m->steps[i] = fill * 1000 - i;
  for (int i = 0; i < 4; i++) m->m[i / 2][i % 2] = fill + i / 3.0;
  for (int i = 0; i < 7; i++) m->mask[i] = (fill + i) % 3 == 0;
  m->scale = (float)fill + 0.5f;
  m->none[0] = -1;
  m->t[0] = (CkptTensor){.name = "dense.kernel", .dtype = GRADC_F32, .rank = 2, .dims = {3, 4}, .data = m->w};
  m->t[1] = (CkptTensor){.name = "optimizer/iterations", .dtype = GRADC_I32, .rank = 1, .dims = {5}, .data = m->steps};
  m->t[2] = (CkptTensor){.name = "dense.kernel/m", .dtype = GRADC_F64, .rank = 2, .dims = {2, 2}, .data = m->m};
  m->t[3] = (CkptTensor){.name = "mask", .dtype = GRADC_BOOL, .rank = 1, .dims = {7}, .data = m->mask};
  m->t[4] = (CkptTensor){.name = "scale", .dtype = GRADC_F32, .rank = 0, .data = &m->scale};
  m->t[5] = (CkptTensor){.name = "empty", .dtype = GRADC_F32, .rank = 2, .dims = {0, 3}, .data = m->none};
}

/* Everything but the CkptTensor table, which holds addresses. */
static bool same_values(const Model *a, const Model *b) { return !memcmp(a, b, offsetof(Model, t)); }

static void save_ok(const char *path, const char *model, const Model *m) {
  RtError err = {{0}};
  gradc_status s = ckpt_save(path, model, m->t, 6, &err);
  if (s) print_error("%s\n", err.msg);
  assert_int_equal(s, GRADC_OK);
}

/* Loads path into a fresh model filled with 9s, expecting status want,
 * a message containing `want_msg`, and on failure the 9s untouched. */
static void load_expect(const char *path, const char *model, gradc_status want, const char *want_msg) {
  Model m, before;
  make_model(&m, 9);
  make_model(&before, 9);
  RtError err = {{0}};
  gradc_status s = ckpt_load(path, model, m.t, 6, &err);
  if (s != want || (want_msg && !strstr(err.msg, want_msg)))
    fail_msg("status %d, wanted %d with \"%s\": %s", s, want, want_msg ? want_msg : "", err.msg);
  if (s) assert_true(same_values(&m, &before));
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  rewind(f);
  unsigned char *b = malloc(*len + 1);
  assert_int_equal(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

static void write_all(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
  return v;
}

/* Writes a checkpoint file around an arbitrary payload, with the CRC of
 * `crc_of` (normally the payload itself): the way to reach the parser
 * with payloads the saver never writes. */
static void write_ckpt(const char *path, const unsigned char *payload, size_t size, const unsigned char *crc_of) {
  uLong bound = compressBound(size);
  unsigned char *file = malloc(32 + bound);
  uLong clen = bound;
  assert_int_equal(compress2(file + 32, &clen, payload, size, 6), Z_OK);
  memcpy(file, "GRADCKPT", 8);
  put_le(file + 8, 1, 4);
  put_le(file + 12, size, 8);
  put_le(file + 20, crc32(0, crc_of, (uInt)size), 4);
  put_le(file + 24, clen, 8);
  write_all(path, file, 32 + clen);
  free(file);
}

/* The uncompressed payload of a checkpoint file. */
static unsigned char *payload_of(const char *path, size_t *size) {
  size_t len;
  unsigned char *file = read_all(path, &len);
  uLongf n = (uLongf)get_le(file + 12, 8);
  unsigned char *p = malloc(n + 1);
  assert_int_equal(uncompress(p, &n, file + 32, len - 32), Z_OK);
  *size = n;
  free(file);
  return p;
}

/* Whether dir holds a leftover temporary file (name containing ".tmp."). */
static bool has_temp_file(const char *d) {
  DIR *dp = opendir(d);
  assert_non_null(dp);
  bool found = false;
  for (struct dirent *e; (e = readdir(dp));) found |= strstr(e->d_name, ".tmp.") != NULL;
  closedir(dp);
  return found;
}

/* ------------------------------------------------------------- round trip */

static void test_round_trip(void **state) {
  (void)state;
  Model a, b;
  make_model(&a, 1);
  make_model(&b, 2);
  assert_false(same_values(&a, &b));
  save_ok(path_of("rt.ckpt"), "mlp", &a);
  RtError err = {{0}};
  assert_int_equal(ckpt_load(path_of("rt.ckpt"), "mlp", b.t, 6, &err), GRADC_OK);
  assert_true(same_values(&a, &b));
  assert_true(b.m[0][1] == 1 + 1 / 3.0);          /* f64 bits, not rounded through f32 */
  assert_false(has_temp_file(dir));

  /* The header as documented, and the payload's first fields. */
  size_t len, size;
  unsigned char *file = read_all(path_of("rt.ckpt"), &len);
  assert_memory_equal(file, "GRADCKPT", 8);
  assert_int_equal(get_le(file + 8, 4), 1);
  assert_int_equal(get_le(file + 24, 8), len - 32);
  unsigned char *p = payload_of(path_of("rt.ckpt"), &size);
  assert_int_equal(get_le(file + 12, 8), size);
  assert_int_equal(get_le(file + 20, 4), crc32(0, p, (uInt)size));
  assert_int_equal(get_le(p, 4), 3);
  assert_memory_equal(p + 4, "mlp", 3);
  assert_int_equal(get_le(p + 7, 4), 6);
  assert_int_equal(get_le(p + 11, 4), 12);        /* "dense.kernel" */
  free(p);
  free(file);

  /* Saving again replaces the file; an empty checkpoint is fine too. */
  save_ok(path_of("rt.ckpt"), "mlp", &b);
  assert_int_equal(ckpt_save(path_of("none.ckpt"), "", NULL, 0, &err), GRADC_OK);
  assert_int_equal(ckpt_load(path_of("none.ckpt"), "", NULL, 0, &err), GRADC_OK);
}

/* ------------------------------------------------------- damaged files */

static void test_corrupted(void **state) {
  (void)state;
  Model a;
  make_model(&a, 1);
  const char *good = path_of("good.ckpt"), *bad = path_of("bad.ckpt");
  save_ok(good, "mlp", &a);
  size_t len;
  unsigned char *file = read_all(good, &len);

  /* A flipped byte in the compressed data: zlib or the CRC notices. */
  for (size_t at = 32; at < len; at += 7) {
    file[at] ^= 0x10;
    write_all(bad, file, len);
    load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "corrupted");
    file[at] ^= 0x10;
  }
  /* A flipped byte in the stored CRC. */
  file[21] ^= 1;
  write_all(bad, file, len);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "checksum mismatch: the file is corrupted");
  file[21] ^= 1;

  /* A payload changed and re-compressed, so zlib is content: only the
   * CRC, computed over the original, can tell. */
  size_t size;
  unsigned char *p = payload_of(good, &size), *changed = malloc(size);
  memcpy(changed, p, size);
  changed[size - 20] ^= 0x40;                      /* inside a tensor's data */
  write_ckpt(bad, changed, size, p);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "checksum mismatch: the file is corrupted");
  write_ckpt(bad, p, size, p);                     /* the control: the same, unchanged */
  load_expect(bad, "mlp", GRADC_OK, NULL);
  free(changed);
  free(p);

  /* Cut short anywhere, and extended. */
  const size_t cuts[] = {0, 4, 8, 20, 31, 32, 33, len / 2, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    write_all(bad, file, cuts[i]);
    load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, cuts[i] < 8 ? "not a gradc checkpoint" : "truncated");
  }
  unsigned char *longer = malloc(len + 5);
  memcpy(longer, file, len);
  memset(longer + len, 0, 5);
  write_all(bad, longer, len + 5);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "trailing data");
  free(longer);

  /* Magic and version. */
  file[0] = 'X';
  write_all(bad, file, len);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "is not a gradc checkpoint");
  file[0] = 'G';
  put_le(file + 8, 2, 4);
  write_all(bad, file, len);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "checkpoint format version 2; this gradc reads 1");
  put_le(file + 8, 1, 4);
  /* A header that claims a payload zlib could never produce from it. */
  put_le(file + 12, UINT64_C(1) << 40, 8);
  write_all(bad, file, len);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "claims 1099511627776 bytes");
  free(file);

  load_expect(path_of("missing.ckpt"), "mlp", GRADC_ERR_IO, "No such file or directory");
  load_expect(dir, "mlp", GRADC_ERR_IO, "not a regular file");
}

/* Payloads the saver never writes, with valid checksums: every length is
 * checked against what remains, so each is an error, never a crash. */
static void test_malformed_payload(void **state) {
  (void)state;
  const char *bad = path_of("payload.ckpt");
  unsigned char p[256];
  struct {
    size_t len;
    const char *bytes;           /* the payload, with \x escapes */
    const char *msg;
  } cases[] = {
      {0, "", "model name runs past the end"},
      {4, "\x09\0\0\0", "model name runs past the end"},
      {6, "\x03\0\0\0ml", "model name runs past the end"},
      {7, "\x03\0\0\0mlp", "tensor count is missing"},
      {11, "\x03\0\0\0mlp\xff\xff\xff\xff", "claims 4294967295 tensors in 0 bytes"},
      {11, "\x03\0\0\0mlp\0\0\0\0", "holds no 'dense.kernel'"},
      {23, "\x03\0\0\0mlp\x01\0\0\0\xff\xff\0\0\0\0\0\0\0\0\0\0", "in tensor 1 of 1, a name runs past"},
      {24, "\x03\0\0\0mlp\x01\0\0\0\x01\0\0\0a\x07\0\0\0\0\0\0\0", "a dtype is unknown"},
      {24, "\x03\0\0\0mlp\x01\0\0\0\x01\0\0\0a\0\0\0\0\x09\0\0\0", "a rank is over 8"},
      {28, "\x03\0\0\0mlp\x01\0\0\0\x01\0\0\0a\0\0\0\0\x01\0\0\0\x05\0\0\0", "a shape runs past"},
      {40, "\x03\0\0\0mlp\x01\0\0\0\x01\0\0\0a\0\0\0\0\x02\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\x02\0\0\0\0\0\0\0",
       "data runs past the end"},                  /* (2^64-1) x 2: overflows */
      {32, "\x03\0\0\0mlp\x01\0\0\0\x01\0\0\0a\0\0\0\0\x01\0\0\0\x02\0\0\0\0\0\0\0", "data runs past the end"},
      {26, "\x03\0\0\0mlp\x01\0\0\0\x01\0\0\0a\x03\0\0\0\0\0\0\0\x01\x02", "1 stray bytes after the last tensor"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    memcpy(p, cases[i].bytes, cases[i].len);
    write_ckpt(bad, p, cases[i].len, p);
    if (strstr(cases[i].msg, "holds no")) {
      load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "'dense.kernel' is missing from the file");
      continue;
    }
    load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, cases[i].msg);
  }
  /* A tensor named twice. */
  static const unsigned char twice[] = "\x03\0\0\0mlp\x02\0\0\0"
                                       "\x04\0\0\0mask\x03\0\0\0\0\0\0\0\x01"
                                       "\x04\0\0\0mask\x03\0\0\0\0\0\0\0\x01";
  write_ckpt(bad, twice, sizeof twice - 1, twice);
  load_expect(bad, "mlp", GRADC_ERR_CHECKPOINT, "holds 'mask' twice");
}

/* ------------------------------------------------- the model differs */

static void test_mismatch(void **state) {
  (void)state;
  Model a;
  make_model(&a, 1);
  const char *path = path_of("mlp.ckpt");
  save_ok(path, "mlp", &a);
  load_expect(path, "cnn", GRADC_ERR_CHECKPOINT, "is for model 'mlp', not 'cnn'");

  /* A model whose kernel is wider, whose mask is gone, whose scale is f64
   * and that has a tensor the file lacks: all four in one message, in
   * the model's order, then the file's leftovers. */
  Model m, before;
  make_model(&m, 9);
  make_model(&before, 9);
  double scale64 = 7;
  float extra[2] = {5, 6};
  CkptTensor t[6];
  memcpy(t, m.t, sizeof t);
  t[0].dims[1] = 8;
  t[3] = (CkptTensor){.name = "dense.bias", .dtype = GRADC_F32, .rank = 1, .dims = {2}, .data = extra};
  t[4].dtype = GRADC_F64, t[4].data = &scale64;
  float wide[3][8];
  t[0].data = wide;
  memset(wide, 0x7f, sizeof wide);
  RtError err = {{0}};
  assert_int_equal(ckpt_load(path, "mlp", t, 6, &err), GRADC_ERR_CHECKPOINT);
  char expect[1024];
  snprintf(expect, sizeof expect,
           "checkpoint '%s' does not match the model: "
           "'dense.kernel' has shape [3,4] in the file but [3,8] in the model; "
           "'dense.bias' is missing from the file; "
           "'scale' is f32[] in the file but f64[] in the model; "
           "'mask' is in the file but not in the model",
           path);
  assert_string_equal(err.msg, expect);
  /* Nothing was loaded, not even the tensors that matched. */
  assert_true(same_values(&m, &before));
  assert_true(scale64 == 7 && extra[0] == 5 && wide[2][7] == wide[0][0]);

  /* Rank differences print both shapes. */
  memcpy(t, m.t, sizeof t);
  t[1].rank = 2, t[1].dims[1] = 1;
  assert_int_equal(ckpt_load(path, "mlp", t, 6, &err), GRADC_ERR_CHECKPOINT);
  assert_non_null(strstr(err.msg, "'optimizer/iterations' has shape [5] in the file but [5,1] in the model"));
  assert_true(same_values(&m, &before));
}

/* Hundreds of differences: as many as fit, then a count. */
static void test_many_differences(void **state) {
  (void)state;
  enum { N = 300 };
  static char names[N][16];
  static float data[N];
  static CkptTensor t[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "w%03d", i);
    t[i] = (CkptTensor){.name = names[i], .dtype = GRADC_F32, .rank = 1, .dims = {1}, .data = &data[i]};
  }
  RtError err = {{0}};
  assert_int_equal(ckpt_save(path_of("many.ckpt"), "big", t, N, &err), GRADC_OK);
  for (int i = 0; i < N; i++) t[i].dims[0] = 0;     /* every shape differs now */
  assert_int_equal(ckpt_load(path_of("many.ckpt"), "big", t, N, &err), GRADC_ERR_CHECKPOINT);
  assert_non_null(strstr(err.msg, "'w000' has shape [1] in the file but [0] in the model; 'w001'"));
  const char *more = strstr(err.msg, "; and ");
  assert_non_null(more);
  assert_true(strlen(err.msg) < sizeof err.msg - 1);   /* ended by us, not cut off */
  int listed = 0;
  for (const char *p = err.msg; (p = strstr(p, " has shape ")); p++) listed++;
  assert_int_equal(listed + atoi(more + 6), N);
}

/* --------------------------------------------------------- failed saves */

/* Saves that fail leave the old checkpoint loadable and no temporary. */
static void expect_save_fails(const char *path, const char *want_msg) {
  Model b;
  make_model(&b, 2);
  RtError err = {{0}};
  gradc_status s = ckpt_save(path, "mlp", b.t, 6, &err);
  if (s != GRADC_ERR_IO || !strstr(err.msg, want_msg))
    fail_msg("status %d, wanted GRADC_ERR_IO with \"%s\": %s", s, want_msg, err.msg);
}

static void expect_old_checkpoint(const char *path) {
  Model a, got;
  make_model(&a, 1);
  make_model(&got, 9);
  RtError err = {{0}};
  gradc_status s = ckpt_load(path, "mlp", got.t, 6, &err);
  if (s) print_error("%s\n", err.msg);
  assert_int_equal(s, GRADC_OK);
  assert_true(same_values(&a, &got));
}

static void test_save_failures(void **state) {
  (void)state;
  Model a;
  make_model(&a, 1);
  /* A directory that does not exist. */
  expect_save_fails(path_of("no/such/dir/x.ckpt"), "No such file or directory");

  /* A read-only directory: refused by the OS, except to root, who writes
   * anyway (the tests usually run as root in CI containers). */
  char ro[300];
  snprintf(ro, sizeof ro, "%s/readonly", dir);
  assert_int_equal(mkdir(ro, 0755), 0);
  char ro_ckpt[400];
  snprintf(ro_ckpt, sizeof ro_ckpt, "%s/m.ckpt", ro);
  save_ok(ro_ckpt, "mlp", &a);
  assert_int_equal(chmod(ro, 0555), 0);
  if (geteuid() != 0) {
    expect_save_fails(ro_ckpt, "Permission denied");
    expect_old_checkpoint(ro_ckpt);
    assert_false(has_temp_file(ro));
  }
  assert_int_equal(chmod(ro, 0755), 0);

  /* A directory, and a device, where the file should go: renaming over
   * either would replace it, so both are refused up front. */
  const char *sub = path_of("subdir.ckpt");
  assert_int_equal(mkdir(sub, 0755), 0);
  expect_save_fails(sub, "exists and is not a regular file");
  struct stat st;
  assert_int_equal(stat(sub, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  if (access("/dev/full", W_OK) == 0) {
    expect_save_fails("/dev/full", "exists and is not a regular file");
    assert_int_equal(stat("/dev/full", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_false(has_temp_file("/dev"));
  }
  assert_false(has_temp_file(dir));
}

/* The disk fills up mid-write (a file-size limit: the OS's short write
 * and then EFBIG, as ENOSPC would come, and at any uid): the previous
 * checkpoint survives and the temporary file is removed. */
static void test_save_disk_full(void **state) {
  (void)state;
  Model a;
  make_model(&a, 1);
  const char *path = path_of("full.ckpt");
  save_ok(path, "mlp", &a);
  /* Larger tensors so that the file outgrows the limit. */
  enum { N = 1 << 16 };
  static float big[N];
  for (int i = 0; i < N; i++) big[i] = (float)i * 1.37f;
  CkptTensor t = {.name = "big", .dtype = GRADC_F32, .rank = 1, .dims = {N}, .data = big};

  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 4096;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);     /* EFBIG, not a signal */
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  RtError err = {{0}};
  gradc_status s = ckpt_save(path, "mlp", &t, 1, &err);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  assert_int_equal(s, GRADC_ERR_IO);
  assert_non_null(strstr(err.msg, "write of"));
  assert_non_null(strstr(err.msg, strerror(EFBIG)));
  expect_old_checkpoint(path);
  assert_false(has_temp_file(dir));
}

/* A stale temporary file of ours (a crashed run whose pid came back) is
 * neither an obstacle nor overwritten. */
static void test_stale_temp_file(void **state) {
  (void)state;
  Model a;
  make_model(&a, 1);
  const char *path = path_of("stale.ckpt");
  char stale[600];
  snprintf(stale, sizeof stale, "%s.tmp.%ld", path, (long)getpid());
  write_all(stale, "old", 3);
  save_ok(path, "mlp", &a);
  expect_old_checkpoint(path);
  size_t len;
  unsigned char *b = read_all(stale, &len);
  assert_int_equal(len, 3);
  free(b);
  unlink(stale);
  assert_false(has_temp_file(dir));
}

static void test_bad_arguments(void **state) {
  (void)state;
  Model a;
  make_model(&a, 1);
  RtError err = {{0}};
  assert_int_equal(ckpt_save(NULL, "mlp", a.t, 6, &err), GRADC_ERR_ARG);
  assert_int_equal(ckpt_save(path_of("arg.ckpt"), NULL, a.t, 6, &err), GRADC_ERR_ARG);
  assert_int_equal(ckpt_load(path_of("arg.ckpt"), "mlp", NULL, 6, &err), GRADC_ERR_ARG);
  a.t[1].name = "dense.kernel";
  assert_int_equal(ckpt_save(path_of("arg.ckpt"), "mlp", a.t, 6, &err), GRADC_ERR_ARG);
  assert_string_equal(err.msg, "ckpt_save: two tensors are named 'dense.kernel'");
  make_model(&a, 1);
  a.t[2].rank = 9;
  assert_int_equal(ckpt_save(path_of("arg.ckpt"), "mlp", a.t, 6, &err), GRADC_ERR_ARG);
  a.t[2].rank = 2;
  a.t[3].data = NULL;
  assert_int_equal(ckpt_load(path_of("arg.ckpt"), "mlp", a.t, 6, &err), GRADC_ERR_ARG);
  assert_string_equal(err.msg, "ckpt_load: tensor 'mask' has no data");
  assert_int_equal(access(path_of("arg.ckpt"), F_OK), -1);
  /* No RtError: the status alone. */
  assert_int_equal(ckpt_save(NULL, "mlp", a.t, 6, NULL), GRADC_ERR_ARG);
}

/* rterror.c, which every message above went through. */
static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(gradc_status_str(GRADC_OK), "ok");
  assert_string_equal(gradc_status_str(GRADC_ERR_NOMEM), "out of memory");
  assert_string_equal(gradc_status_str(GRADC_ERR_CHECKPOINT), "bad checkpoint");
  for (int s = 0; s < GRADC_STATUS_COUNT; s++) {
    assert_non_null(gradc_status_str((gradc_status)s));
    assert_string_not_equal(gradc_status_str((gradc_status)s), "unknown status");
  }
  assert_string_equal(gradc_status_str(GRADC_STATUS_COUNT), "unknown status");
  assert_string_equal(gradc_status_str((gradc_status)-1), "unknown status");
  RtError e = {{0}};
  assert_int_equal(rt_fail(&e, GRADC_ERR_DATA, "%d of %s", 3, "four"), GRADC_ERR_DATA);
  assert_string_equal(e.msg, "3 of four");
  assert_int_equal(rt_fail(&e, GRADC_ERR_IO, "again: %s", e.msg), GRADC_ERR_IO);   /* own msg as argument */
  assert_string_equal(e.msg, "again: 3 of four");
  assert_int_equal(rt_fail(NULL, GRADC_ERR_ARG, "nowhere"), GRADC_ERR_ARG);
  char longer[2000];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  rt_fail(&e, GRADC_ERR_ARG, "%s", longer);
  assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_corrupted),
      cmocka_unit_test(test_malformed_payload),
      cmocka_unit_test(test_mismatch),
      cmocka_unit_test(test_many_differences),
      cmocka_unit_test(test_save_failures),
      cmocka_unit_test(test_save_disk_full),
      cmocka_unit_test(test_stale_temp_file),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_status_names),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
