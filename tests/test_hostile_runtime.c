/*
 * test_hostile_runtime.c - issue 23's runtime items: what hostile data and
 * API calls did to the runtime and the training loop, each a case that
 * failed before its fix.
 *
 *   17  CSV fields strtod takes but that are no measurement (nan, inf,
 *       -Infinity, hex) or that overflow f32 (1e39) are refused at their
 *       line and column; a NUL byte is refused where it is, not dropped
 *       with its row.
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

static char dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-hostile-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

static const char *path_of(const char *name) {
  static char paths[4][512];
  static int next;
  char *p = paths[next++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_csv_numbers_refused),
      cmocka_unit_test(test_csv_numbers_accepted),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
