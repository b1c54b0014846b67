/*
 * data.h - the synthetic batches the shared-object tests feed, shared by
 * the .so driver (driver.c) and the JIT reference (jit_ref.c) so that both
 * train on the same numbers: a pure function of (input index, element,
 * step).  Integer inputs are labels in 0..9.
 */
#ifndef GRADC_TEST_AOT_DATA_H
#define GRADC_TEST_AOT_DATA_H

#include <stdint.h>

/* dtype codes: 0 f32, 1 f64, 2 i32, 3 bool (gradc_dtype and GRADC_AOT_*). */
static void fill_input(void *data, int dtype, int64_t count, int input, int64_t step) {
  for (int64_t k = 0; k < count; k++) {
    uint64_t h = (uint64_t)k * 2654435761u + (uint64_t)step * 40503u + (uint64_t)input * 977u;
    double v = (double)(h % 1000) / 1000.0;
    switch (dtype) {
    case 0: ((float *)data)[k] = (float)v; break;
    case 1: ((double *)data)[k] = v; break;
    case 2: ((int32_t *)data)[k] = (int32_t)((k + step) % 10); break;
    default: ((uint8_t *)data)[k] = (uint8_t)(k & 1); break;
    }
  }
}

#endif
