/*
 * fuzz_csv.c - libFuzzer target for the CSV reader (data_load_csv): the
 * input is the whole file.  Seeds: tests/fuzz/corpus/csv/, with the
 * numbers strtod takes but the reader must refuse (nan, inf, hex, past
 * f32's range, a NUL byte); dictionary: tests/fuzz/csv.dict.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FuzzFile file;
  if (!file.path[0]) fuzz_file_open(&file, "fuzz.csv");
  fuzz_file_set(&file, data, size);
  double *vals = NULL;
  int64_t rows, cols;
  RtError err = {{0}};
  gradc_status s = data_load_csv(file.path, &vals, &rows, &cols, &err);
  /* The contract, checked so that a wrong size is a finding too: a table
   * of rows x cols values (the last one read under ASan), or an error with
   * a message and nothing allocated. */
  if (s == GRADC_OK) {
    if (!vals || rows < 1 || cols < 1) abort();
    /* Every value read is a number that rounds to a finite f32 (issue 23,
     * item 17: nan, inf and 1e39 were accepted); 0x1.ffffffp127 is FLT_MAX
     * plus half its last place. */
    for (int64_t i = 0; i < rows * cols; i++)
      if (!(fabs(vals[i]) < 0x1.ffffffp127)) abort();
  } else if (vals || !err.msg[0]) {
    abort();
  }
  free(vals);
  return 0;
}
