/*
 * test_ckpt_save.c - the temporary files of checkpoint saves (issue 23,
 * items 10 and 12; runtime/ckpt.c's write_atomically).
 *
 * A save writes <path>.tmp.<pid>.<space>.<random> and renames it over the
 * path.  What is pinned here:
 *   - a file or symlink planted at the very name a save is about to use
 *     is never written through: the save takes another name, the symlink's
 *     target keeps its bytes, and the checkpoint is a regular file;
 *   - a saver killed mid-write (a file-size limit's SIGXFSZ, which kills
 *     as SIGKILL does: no handler runs) leaves its temporary, and the next
 *     save of the same path removes it - and nothing else: not a live
 *     process's, not another pid space's, not another path's, not a name
 *     that merely looks alike;
 *   - two processes saving one path over and over all succeed (with one
 *     shared `<path>.tmp`, as gradc had it, one's rename took the other's
 *     file away: "No such file or directory").
 *
 * To know the name a save will use, this test links with
 * -Wl,--wrap=getrandom (CMakeLists.txt): while `script` holds values, each
 * getrandom call returns the next one.
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
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

/* ------------------------------------------------ scripted getrandom */

static uint32_t script[32];
static int script_len, script_at;

ssize_t __real_getrandom(void *buf, size_t n, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags) {
  if (script_at >= script_len || n != sizeof(uint32_t)) return __real_getrandom(buf, n, flags);
  memcpy(buf, &script[script_at++], n);
  return (ssize_t)n;
}

/* The next n getrandom calls return values[0..n-1]; then the real ones. */
static void play(const uint32_t *values, int n) {
  if (n) memcpy(script, values, sizeof *values * (size_t)n);
  script_len = n, script_at = 0;
}

/* ----------------------------------------------------------- helpers */

#include "util_files.h"

enum { N = 1 << 16 };   /* floats: a 256 KiB checkpoint */
static float values[N];

static CkptTensor tensor(float fill) {
  for (int i = 0; i < N; i++) values[i] = fill + (float)i;
  return (CkptTensor){.name = "w", .dtype = GRADC_F32, .rank = 1, .dims = {N}, .data = values};
}

static gradc_status save(const char *path, float fill, RtError *err) {
  CkptTensor t = tensor(fill);
  return ckpt_save(path, "m", &t, 1, err);
}

static void save_ok(const char *path, float fill) {
  RtError err = {{0}};
  gradc_status s = save(path, fill, &err);
  if (s) fail_msg("%s", err.msg);
}

/* path holds the checkpoint of `fill`. */
static void expect_saved(const char *path, float fill) {
  static float got[N];
  CkptTensor t = {.name = "w", .dtype = GRADC_F32, .rank = 1, .dims = {N}, .data = got};
  RtError err = {{0}};
  if (ckpt_load(path, "m", &t, 1, &err)) fail_msg("%s", err.msg);
  assert_true(got[0] == fill && got[N - 1] == fill + (float)(N - 1));
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void expect_text(const char *path, const char *text) {
  char buf[64] = {0};
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  assert_int_equal(n, strlen(text));
  assert_string_equal(buf, text);
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* The entries of dir whose names start with prefix. */
static int count_prefixed(const char *prefix, char *first, size_t size) {
  DIR *dp = opendir(dir);
  assert_non_null(dp);
  int n = 0;
  for (struct dirent *e; (e = readdir(dp));)
    if (!strncmp(e->d_name, prefix, strlen(prefix)) && n++ == 0 && first) snprintf(first, size, "%s", e->d_name);
  closedir(dp);
  return n;
}

/* Saves `path` in a child process that a file-size limit kills in its
 * first write (SIGXFSZ's default action: no handler, no cleanup - a
 * SIGKILL as far as the save can tell); returns the child's pid, dead and
 * reaped, and its leftover temporary's name in `left` (relative to dir). */
static pid_t killed_saver(const char *path, char *left, size_t size) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(3);
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_DFL);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(3);
    RtError err;
    save(path, 7, &err);
    _exit(4);   /* not reached when the limit kills */
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGXFSZ) fail_msg("the saver ended with status %#x", status);
  const char *slash = strrchr(path, '/');
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s.tmp.%ld.", slash + 1, (long)pid);
  assert_int_equal(count_prefixed(prefix, left, size), 1);
  return pid;
}

/* The parts of a temporary's name after "<base>.tmp.": pid, space, random. */
static void split_temp(const char *name, const char *base, long *pid, char space[9], char random[9]) {
  const char *p = name + strlen(base);
  assert_int_equal(strncmp(p, ".tmp.", 5), 0);
  char *end;
  *pid = strtol(p + 5, &end, 10);
  assert_int_equal(*end, '.');
  assert_int_equal(strlen(end), 1 + 8 + 1 + 8);
  memcpy(space, end + 1, 8), space[8] = '\0';
  memcpy(random, end + 10, 8), random[8] = '\0';
  assert_int_equal(end[9], '.');
}

/* ------------------------------------------------------------- tests */

/* Symlinks (and a plain file) at the names the save draws first: each is
 * passed over, the targets keep their bytes, the checkpoint is a regular
 * file, and the planted entries are left as they were. */
static void test_planted_at_the_temp_name(void **state) {
  (void)state;
  const char *path = path_of("planted.ckpt");
  char left[300], space[9], random[9];
  long pid;
  killed_saver(path, left, sizeof left);   /* only to learn our pid space's tag */
  split_temp(left, "planted.ckpt", &pid, space, random);
  unlink(path_of(left));

  const char *victim = path_of("victim.txt");
  write_text(victim, "precious");
  char planted[3][600];
  const uint32_t draws[] = {0x11111111u, 0x22222222u, 0x33333333u, 0x44444444u};
  for (int k = 0; k < 3; k++) {
    snprintf(planted[k], sizeof planted[k], "%s.tmp.%ld.%s.%08x", path, (long)getpid(), space, (unsigned)draws[k]);
    if (k == 2) write_text(planted[k], "someone's file");
    else assert_int_equal(symlink(k ? "victim.txt" : victim, planted[k]), 0);
  }
  play(draws, 4);
  save_ok(path, 1);
  assert_int_equal(script_at, 4);   /* three names passed over, the fourth used */
  expect_text(victim, "precious");
  expect_text(planted[2], "someone's file");
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  expect_saved(path, 1);
  for (int k = 0; k < 2; k++) {
    assert_int_equal(lstat(planted[k], &st), 0);
    assert_true(S_ISLNK(st.st_mode));
  }

  /* Every name it draws taken: the save fails with the reason, the old
   * checkpoint and the victim are untouched, and it gives up in bounded
   * time. */
  uint32_t same[16];
  for (int k = 0; k < 16; k++) same[k] = draws[0];
  play(same, 16);
  RtError err = {{0}};
  assert_int_equal(save(path, 2, &err), GRADC_ERR_IO);
  assert_int_equal(script_at, 16);
  if (!strstr(err.msg, "cannot create") || !strstr(err.msg, strerror(EEXIST))) fail_msg("%s", err.msg);
  expect_saved(path, 1);
  expect_text(victim, "precious");
  play(NULL, 0);
  for (int k = 0; k < 3; k++) unlink(planted[k]);
}

/* The checkpoint path itself a symlink: replaced by a regular file, its
 * target untouched (a save never writes through a link). */
static void test_path_is_a_symlink(void **state) {
  (void)state;
  const char *victim = path_of("target.txt"), *path = path_of("linked.ckpt");
  write_text(victim, "precious");
  assert_int_equal(symlink("target.txt", path), 0);
  save_ok(path, 3);
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  expect_text(victim, "precious");
  expect_saved(path, 3);
}

/* A saver killed mid-write leaves its temporary; the next save of the
 * same path removes it and nothing else. */
static void test_stale_temporaries_removed(void **state) {
  (void)state;
  const char *path = path_of("stale.ckpt");
  save_ok(path, 1);
  char left[300], space[9], random[9];
  long dead;
  killed_saver(path, left, sizeof left);
  split_temp(left, "stale.ckpt", &dead, space, random);
  expect_saved(path, 1);   /* the killed saves never touched the checkpoint */

  /* Look-alikes that must stay: a live process's (ours, and pid 1's), one
   * of another pid space, a name with more after it, capital hex, another
   * checkpoint's temporary, a directory. */
  char other_space[9];
  snprintf(other_space, sizeof other_space, "%s", space);
  other_space[0] = other_space[0] == '0' ? '1' : '0';
  char keep[7][600];
  snprintf(keep[0], 600, "%s.tmp.%ld.%s.%s", path, (long)getpid(), space, random);
  snprintf(keep[1], 600, "%s.tmp.1.%s.%s", path, space, random);
  snprintf(keep[2], 600, "%s.tmp.%ld.%s.%s", path, dead, other_space, random);
  snprintf(keep[3], 600, "%s.tmp.%ld.%s.%s.x", path, dead, space, random);
  snprintf(keep[4], 600, "%s.tmp.%ld.%s.ABCDEF01", path, dead, space);
  snprintf(keep[5], 600, "%s.tmp.%ld.%s.%s", path_of("other.ckpt"), dead, space, random);
  snprintf(keep[6], 600, "%s.tmp.%ld.%s.0000abcd", path, dead, space);
  for (int k = 0; k < 6; k++) write_text(keep[k], "keep");
  assert_int_equal(mkdir(keep[6], 0755), 0);
  /* A stale name that is a symlink: the link goes, its target stays. */
  const char *victim = path_of("victim2.txt");
  char link[600];
  snprintf(link, sizeof link, "%s.tmp.%ld.%s.%08x", path, dead, space, 0xfeedbeefu);
  write_text(victim, "precious");
  assert_int_equal(symlink(victim, link), 0);

  save_ok(path, 2);
  expect_saved(path, 2);
  assert_false(exists(path_of(left)));
  assert_false(exists(link));
  expect_text(victim, "precious");
  for (int k = 0; k < 6; k++) expect_text(keep[k], "keep");
  assert_true(exists(keep[6]));
  for (int k = 0; k < 6; k++) unlink(keep[k]);
  rmdir(keep[6]);
}

/* Two processes save one path 200 times each, at once: every save
 * succeeds, the file is one of the two checkpoints, whole, and no
 * temporary is left. */
static void test_two_processes_one_path(void **state) {
  (void)state;
  const char *path = path_of("shared.ckpt");
  pid_t kid[2];
  for (int i = 0; i < 2; i++) {
    kid[i] = fork();
    assert_true(kid[i] >= 0);
    if (kid[i] == 0) {
      int failed = 0;
      for (int k = 0; k < 200; k++) {
        RtError err;
        if (save(path, (float)(10 + i), &err)) {
          if (!failed++) fprintf(stderr, "saver %d: %s\n", i, err.msg);
        }
      }
      _exit(failed > 100 ? 100 : failed);
    }
  }
  for (int i = 0; i < 2; i++) {
    int status;
    assert_int_equal(waitpid(kid[i], &status, 0), kid[i]);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status)) fail_msg("saver %d: %d saves failed", i, WEXITSTATUS(status));
  }
  static float got[N];
  CkptTensor t = {.name = "w", .dtype = GRADC_F32, .rank = 1, .dims = {N}, .data = got};
  RtError err = {{0}};
  if (ckpt_load(path, "m", &t, 1, &err)) fail_msg("%s", err.msg);
  assert_true(got[0] == 10 || got[0] == 11);
  assert_true(got[N - 1] == got[0] + (float)(N - 1));
  assert_int_equal(count_prefixed("shared.ckpt.tmp", NULL, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_planted_at_the_temp_name),
      cmocka_unit_test(test_path_is_a_symlink),
      cmocka_unit_test(test_stale_temporaries_removed),
      cmocka_unit_test(test_two_processes_one_path),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
