/*
 * test_timing.c - the compile-time report (compiler/timing.c) and the
 * object cache's key and entries (compiler/cache.c) from C: a report is the
 * caller's alone (two compilations keep two), NULL is a no-op, a full
 * report loses no time; a key changes with every part and with where the
 * parts split; an entry reads back as written, and a changed byte makes it
 * a miss that removes it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler.h"

static const char mlp[] =
    "input x : f32[batch, 4]\n"
    "input y : i32[batch]\n"
    "param W : f32[4, 3] = glorot_uniform\n"
    "logits = x @ W\n"
    "output probs = softmax(logits)\n"
    "loss = mean(softmax_cross_entropy(logits, y))\n"
    "train loss with sgd(lr=0.1)\n";

static void test_report_per_compilation(void **state) {
  (void)state;
  TimeReport a = {0}, b = {0};
  CompileOptions o = compile_defaults();
  o.times = &a;
  Compilation *c = compile("m.nn", mlp, strlen(mlp), &o);
  assert_non_null(c->graph);
  o.times = &b;
  Compilation *d = compile("m.nn", mlp, strlen(mlp), &o);
  assert_non_null(d->graph);
  /* one row per stage and pass, in the pipeline's order, in each report */
  static const char *const rows[] = {"parse", "canon", "hoist", "autodiff", "update (optimizer)",
                                     "fold", "simplify", "cse", "dce", "fuse"};
  assert_int_equal(a.n, 10);
  assert_int_equal(b.n, 10);
  for (int i = 0; i < 10; i++) {
    assert_string_equal(a.row[i].name, rows[i]);
    assert_string_equal(b.row[i].name, rows[i]);
    assert_true(a.row[i].ms >= 0);
  }
  compilation_free(c);
  compilation_free(d);
  /* without a report, nothing is recorded and nothing breaks */
  o.times = NULL;
  compilation_free(compile("m.nn", mlp, strlen(mlp), &o));
}

static void test_report_full(void **state) {
  (void)state;
  TimeReport r = {0};
  double t = time_now_ms() - 1.0;
  for (int i = 0; i < TIME_MAX_ROWS + 5; i++) time_add(&r, "x", t);
  assert_int_equal(r.n, TIME_MAX_ROWS);
  /* the rows past the end went into the last one */
  assert_true(r.row[TIME_MAX_ROWS - 1].ms >= 6 * 1.0);
  assert_true(time_add(NULL, "x", t) >= t);
}

static void key_of(const char *p, const char *q, char *key) {
  const void *parts[] = {p, q};
  size_t lens[] = {strlen(p), strlen(q)};
  cache_key(parts, lens, 2, key);
}

static void test_key(void **state) {
  (void)state;
  char k1[CACHE_KEY_LEN + 1], k2[CACHE_KEY_LEN + 1];
  key_of("ab", "c", k1);
  assert_int_equal(strlen(k1), CACHE_KEY_LEN);
  key_of("ab", "c", k2);
  assert_string_equal(k1, k2);
  key_of("a", "bc", k2);          /* same bytes, split elsewhere */
  assert_string_not_equal(k1, k2);
  key_of("ab", "d", k2);
  assert_string_not_equal(k1, k2);
  key_of("abcdefgh-ijklmnop", "q", k1);   /* a change inside a word */
  key_of("abcdefgh-ijklmnoq", "q", k2);
  assert_string_not_equal(k1, k2);
}

static void test_entry(void **state) {
  (void)state;
  char dir[] = "/tmp/gradc_test_cache.XXXXXX";
  assert_non_null(mkdtemp(dir));
  setenv("XDG_CACHE_HOME", dir, 1);
  unsetenv("GRADC_CACHE");
  unsetenv("GRADC_CACHE_MAX");
  Cache c;
  assert_true(cache_open(&c));
  char key[CACHE_KEY_LEN + 1];
  key_of("model", "target", key);
  size_t len = 0;
  assert_null(cache_load(&c, key, &len));
  static const char payload[] = "an object file, or what stands in for one";
  assert_true(cache_store(&c, key, payload, sizeof payload));
  char *got = cache_load(&c, key, &len);
  assert_non_null(got);
  assert_int_equal(len, sizeof payload);
  assert_memory_equal(got, payload, sizeof payload);
  free(got);
  /* one changed byte of the payload: a miss, and the entry is gone */
  char path[sizeof c.dir + 64];
  snprintf(path, sizeof path, "%s/%s.gco", c.dir, key);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, -3, SEEK_END);
  fputc('#', f);
  fclose(f);
  assert_null(cache_load(&c, key, &len));
  assert_int_equal(access(path, F_OK), -1);
  /* off: no directory */
  setenv("GRADC_CACHE", "off", 1);
  assert_false(cache_open(&c));
  unsetenv("GRADC_CACHE");
  assert_true(cache_open(&c));
  assert_int_equal(cache_clear(&c), 0);
  rmdir(c.dir);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_report_per_compilation),
      cmocka_unit_test(test_report_full),
      cmocka_unit_test(test_key),
      cmocka_unit_test(test_entry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
