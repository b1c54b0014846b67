/*
 * fuzz_onnx.c - libFuzzer target for ONNX import: any bytes through
 * onnx_import (protobuf-c's decoder, then every check of the importer), and
 * when they import, the written model text through the parser to
 * STAGE_PARSE and the graph back out through onnx_export (to /dev/null,
 * every parameter zero).  The importer must refuse with a message or write
 * text the parser accepts or diagnoses - never crash, leak or read out of
 * bounds; a text the parser rejects is counted, not a finding (the
 * importer cannot know every shape rule), but the diagnostics are printed.
 * Seeds: tests/fuzz/corpus/onnx/ (small models gradc exported and PyTorch
 * exported) and tests/fuzz/regressions/onnx/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "compiler.h"
#include "onnx.h"

enum { MAX_FUZZ_BYTES = 256 << 10, MAX_VALUES = 1 << 20 };

static FILE *devnull;
static float zeros[MAX_VALUES];

static const float *zero_values(void *ctx, const char *name, int64_t count) {
  (void)ctx, (void)name;
  return count <= MAX_VALUES ? zeros : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_FUZZ_BYTES) return -1;
  if (!devnull && !(devnull = fopen("/dev/null", "w"))) {
    perror("/dev/null");
    abort();
  }
  Arena *a = arena_new();
  if (!a) return 0;
  OnnxImport imp;
  OnnxImportOptions o = {.loss = size % 2 ? "softmax_cross_entropy" : NULL};
  if (onnx_import(a, "fuzz.onnx", data, size, &o, &imp)) {
    Compilation *c = compile_model("fuzz.nn", imp.text, imp.len, STAGE_PARSE);
    if (c) {
      diag_print(devnull, &c->diags);
      char err[512];
      if (c->graph) onnx_export(c->graph, zero_values, NULL, "/dev/null", err, sizeof err);
      compilation_free(c);
    }
  } else {
    fputs(imp.error, devnull);
  }
  arena_free(a);
  return 0;
}
