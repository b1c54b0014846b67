/*
 * onnx_run.c - runs a model through the public API on raw inputs, for
 * tests/run_onnx_tests.sh, which compares what it prints with PyTorch.
 *
 *   onnx_run MODEL CKPT|- X.f32 Y.i32|- BATCH STEPS OUT.f32
 *
 * compiles MODEL (.nn or .onnx), loads CKPT (or, with -, an .onnx model's
 * initializers come from the test script's import), binds BATCH, fills
 * the model's float input from X.f32 and its i32 input from Y.i32, runs
 * STEPS train steps printing each loss ("%.9g"), then the forward function,
 * and writes its first output's floats to OUT.f32.  X.f32 "@fill" fills
 * every float input with a fixed pattern in [0, 1) by element index (and
 * i32 inputs with 0 and 1), the same for any model of the same inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradc.h"

static int fill(const char *path, void *dst, size_t bytes) {
  if (!strcmp(path, "@fill") || !strcmp(path, "@ints")) {
    for (size_t k = 0; k < bytes / 4; k++) {
      float f = (float)((k * 7919 + 13) % 1000) / 1000.0f;
      int32_t i = (int32_t)(k % 2);
      memcpy((char *)dst + 4 * k, bytes % 4 == 0 && path[1] == 'f' ? (void *)&f : (void *)&i, 4);
    }
    return 0;
  }
  FILE *f = fopen(path, "rb");
  if (!f) return perror(path), 1;
  size_t got = fread(dst, 1, bytes, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != bytes || extra) {
    fprintf(stderr, "%s: expected %zu bytes\n", path, bytes);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: onnx_run MODEL CKPT|- X.f32 Y.i32|- BATCH STEPS OUT.f32\n");
    return 2;
  }
  gradc_model *m;
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  if (gradc_compile_file(argv[1], &o, &m)) {
    fprintf(stderr, "%s\n", gradc_last_error(NULL));
    return 1;
  }
  int64_t batch = atoll(argv[5]);
  int steps = atoi(argv[6]);
  if (strcmp(argv[2], "-") && gradc_load(m, argv[2])) goto fail;
  if (gradc_bind(m, batch)) goto fail;
  const char *out = NULL;
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    if (gradc_tensor_info(m, i, &t)) goto fail;
    int64_t count;
    void *d = gradc_data(m, t.name, &count);
    if (t.kind == GRADC_INPUT && t.dtype == GRADC_F32 && fill(argv[3], d, sizeof(float) * (size_t)count)) return 1;
    if (t.kind == GRADC_INPUT && t.dtype == GRADC_I32 &&
        fill(strcmp(argv[3], "@fill") ? argv[4] : "@ints", d, sizeof(int32_t) * (size_t)count))
      return 1;
    if (t.kind == GRADC_OUTPUT && !out) out = t.name;
  }
  for (int s = 0; s < steps; s++) {
    double loss;
    if (gradc_train_step(m, &loss)) goto fail;
    printf("%.9g\n", loss);
  }
  if (gradc_forward(m)) goto fail;
  int64_t count;
  const float *y = gradc_data(m, out, &count);
  FILE *f = fopen(argv[7], "wb");
  if (!y || !f || fwrite(y, sizeof(float), (size_t)count, f) != (size_t)count || fclose(f)) {
    fprintf(stderr, "cannot write %s\n", argv[7]);
    return 1;
  }
  gradc_free(m);
  return 0;
fail:
  fprintf(stderr, "%s\n", gradc_last_error(m));
  return 1;
}
