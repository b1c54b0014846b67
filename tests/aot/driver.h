/*
 * driver.h - what the C programs that drive one compiled .so share (the
 * drivers of tests/run_aot_tests.sh: driver.c, hyper.c, steps.c,
 * threads.c, dims.c).  Each is compiled against one model's header,
 * included with -include NAME.h, and defines before including this
 *
 *   DRIVER   its own name, which starts its messages ("steps: FAILED: ...")
 *
 * and, when compiled with -DMODEL=prefix (gradc compile's symbol prefix),
 * gets F(name) for the entry point prefix_name and the helpers that go
 * through them: feeding the batches of data.h, reading the state.  A
 * driver for one fixed model (dims.c) calls its entry points by name and
 * takes only expect and finish.
 *
 * Everything is static inline: a driver that leaves a helper unused still
 * compiles under -Wall -Wextra -Werror.
 */
#ifndef GRADC_TEST_AOT_DRIVER_H
#define GRADC_TEST_AOT_DRIVER_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DRIVER
#error "define DRIVER (the program's name) before including driver.h"
#endif

static int fails;

/* Counts a failed check and says which on stderr; returns ok. */
__attribute__((format(printf, 2, 3))) static inline int expect(int ok, const char *what, ...) {
  if (!ok) {
    va_list ap;
    va_start(ap, what);
    fprintf(stderr, "%s: FAILED: ", DRIVER);
    vfprintf(stderr, what, ap);
    fputc('\n', stderr);
    va_end(ap);
    fails++;
  }
  return ok;
}

/* The end of main: "NAME: ok" when every check held; the exit status. */
static inline int finish(void) {
  if (!fails) printf("%s: ok\n", DRIVER);
  return fails != 0;
}

#ifdef MODEL
#include "data.h"

/* prefix_name: the model's entry point `name` (MODEL is the prefix). */
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define F(name) CAT(MODEL, name)

/* The batch of data.h for step `step` into every input. */
static inline void feed(gradc_aot_model *m, int64_t step) {
  gradc_aot_tensor t;
  for (int i = 0, input = 0; i < F(tensor_count)(); i++)
    if (!F(tensor_info)(m, i, &t) && t.kind == GRADC_AOT_INPUT) fill_input(t.data, t.dtype, t.count, input++, step);
}

/* All parameter and state bytes, concatenated, malloc'd (NULL when out of
 * memory); a NULL model has none. */
static inline char *state_bytes(gradc_aot_model *m, size_t *len) {
  size_t n = 0;
  gradc_aot_tensor t;
  for (int i = 0; m && i < F(tensor_count)(); i++)
    if (!F(tensor_info)(m, i, &t) && (t.kind == GRADC_AOT_PARAM || t.kind == GRADC_AOT_STATE)) n += t.bytes;
  char *b = malloc(n + 1), *p = b;
  for (int i = 0; m && p && i < F(tensor_count)(); i++)
    if (!F(tensor_info)(m, i, &t) && (t.kind == GRADC_AOT_PARAM || t.kind == GRADC_AOT_STATE))
      memcpy(p, t.data, t.bytes), p += t.bytes;
  *len = n;
  return b;
}
#endif

#endif
