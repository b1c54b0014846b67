/*
 * util_files.h - a scratch directory for the tests that write files: the
 * setup and teardown fixtures that make and remove it, paths inside it,
 * and compiling a model from a string on one thread.
 *
 * Include after <cmocka.h> and "gradc.h".  Everything is static, so a file
 * may leave any of it unused.
 */
#ifndef GRADC_UTIL_FILES_H
#define GRADC_UTIL_FILES_H

#include <stdio.h>
#include <stdlib.h>

static char dir[256];

__attribute__((unused)) static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-test-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

__attribute__((unused)) static int teardown(void **state) {
  (void)state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

/* dir/name; the last 8 results stay valid. */
__attribute__((unused)) static char *path_of(const char *name) {
  static char paths[8][600];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 600, "%s/%.300s", dir, name);
  return p;
}

/* The model of src, compiled on one thread; a failure prints why. */
__attribute__((unused)) static gradc_model *compile_src(const char *name, const char *src) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string(name, src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

#endif
