/*
 * fuzz_parse.c - libFuzzer target for the front of the pipeline: a model
 * file through lex, parse, shape inference, autodiff, the graph optimizer
 * and fusion (compile_model up to STAGE_OPT), then everything that prints a
 * result: the diagnostics with their source line and caret, and, when a
 * graph comes back, its dumps and the parameter summary.
 *
 * A model that parses is compiled twice: to STAGE_PARSE, whose graph is
 * also written back as a model file (the nn dump, which the CLI offers for
 * that stage only), and to STAGE_OPT.  Nothing is evaluated: the reference
 * evaluator and the JIT would make each input thousands of times slower,
 * and test_eval/test_jit cover them.  Output goes to /dev/null, opened once.
 * Seeds: models/, tests/errors/, tests/fuzz/corpus/parse/ and
 * tests/fuzz/regressions/parse/; dictionary: tests/fuzz/nn.dict.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "compiler.h"

/* Model files are small; a long input only slows the search down.  The
 * 16 MiB limit itself is tested by test_robust. */
enum { MAX_FUZZ_BYTES = 64 << 10 };

static FILE *devnull;

/* Compiles up to last and prints everything; returns whether a graph came
 * back. */
static bool compile_and_print(const uint8_t *data, size_t size, Stage last) {
  Compilation *c = compile_model("fuzz.nn", (const char *)data, size, last);
  if (!c) return false;   /* not even the arena could be made */
  diag_print(devnull, &c->diags);
  const Graph *g = c->graph;
  if (g) {
    dump_graph(devnull, g, DUMP_TEXT, g->stage);
    dump_graph(devnull, g, DUMP_DOT, g->stage);
    if (last == STAGE_PARSE) dump_graph(devnull, g, DUMP_NN, g->stage);
    dump_summary(devnull, g);
  }
  compilation_free(c);
  return g != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_FUZZ_BYTES) return -1;   /* -1: not added to the corpus */
  if (!devnull && !(devnull = fopen("/dev/null", "w"))) {
    perror("/dev/null");
    abort();
  }
  if (compile_and_print(data, size, STAGE_PARSE)) compile_and_print(data, size, STAGE_OPT);
  return 0;
}
