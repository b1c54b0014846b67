/*
 * util_tensor.h - what the tests of values share (tensor toolkit, random
 * ops, augmentation): an element of any result as a double, a value by its
 * output or input name, a copy of a result, and a table of model sources
 * each of which must fail to compile with a given message.
 *
 * Include after <cmocka.h>, "compiler.h" and "gradc.h".  Everything is
 * static, so a file may leave any of it unused.
 */
#ifndef GRADC_UTIL_TENSOR_H
#define GRADC_UTIL_TENSOR_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((unused)) static double as_double(const void *p, gradc_dtype t, int64_t k) {
  switch (t) {
  case GRADC_F32: return ((const float *)p)[k];
  case GRADC_F64: return ((const double *)p)[k];
  case GRADC_I32: return ((const int32_t *)p)[k];
  case GRADC_BOOL: return ((const uint8_t *)p)[k];
  }
  return 0;
}

/* The node of output NAME, else of input NAME, else NULL. */
__attribute__((unused)) static const Node *named(const Graph *g, const char *name) {
  for (int k = 0; k < g->noutputs; k++)
    if (!strcmp(g->outputs[k].name, name)) return g->outputs[k].node;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == OP_INPUT && g->nodes[i]->name && !strcmp(g->nodes[i]->name, name)) return g->nodes[i];
  return NULL;
}

/* named(), failing the test where there is no such value. */
__attribute__((unused)) static const Node *must_name(const Graph *g, const char *name) {
  const Node *n = named(g, name);
  if (!n) fail_msg("no output or input %s", name);
  return n;
}

/* A copy of n floats (a result the next step overwrites); the caller frees. */
__attribute__((unused)) static float *copy(const float *v, int64_t n) {
  float *c = malloc(sizeof(float) * (size_t)n);
  assert_non_null(c);
  memcpy(c, v, sizeof(float) * (size_t)n);
  return c;
}

typedef struct ErrCase {
  const char *src;
  const char *text; /* file:line:col: error: ... */
} ErrCase;

/* Compiles each case as "e.nn"; prints and counts those that compile or
 * whose message lacks the expected text. */
__attribute__((unused)) static int failed_diagnostics(const ErrCase *cases, size_t n) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    gradc_model *m = NULL;
    gradc_status st = gradc_compile_string("e.nn", cases[i].src, NULL, &m);
    const char *msg = gradc_last_error(NULL);
    if (st != GRADC_ERR_MODEL || !strstr(msg, cases[i].text)) {
      print_error("case %zu: status %d, message:\n%s\nexpected: %s\n", i, st, msg, cases[i].text);
      bad++;
    }
    gradc_free(m);
  }
  return bad;
}

#endif
