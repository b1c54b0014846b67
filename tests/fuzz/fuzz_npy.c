/*
 * fuzz_npy.c - libFuzzer target for the NumPy readers (loaders.c): a .npy
 * file (npy_read, what `gradc run --feed` reads) and an .npz archive made
 * into a dataset (data_load_arrays with arrays x and y).
 *
 * One input is one file:
 *
 *   byte 0       0 (even): the rest is a .npy file; 1 (odd): an .npz
 *   the rest     the file
 *
 * Seeds are the files in tests/fuzz/corpus/npy: arrays written by
 * np.save, np.savez and np.savez_compressed, each behind its byte 0.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FuzzFile file;
  if (size < 1 || size > (1 << 20)) return -1;
  if (!file.path[0]) fuzz_file_open(&file, "data.npy");
  fuzz_file_set(&file, data + 1, size - 1);
  RtError err = {{0}};
  if (!(data[0] & 1)) {
    NpyArray a;
    gradc_status s = npy_read(file.path, &a, &err);
    /* The contract: count elements of esize bytes, the last one readable
     * (under ASan), or a message and nothing held. */
    if (s == GRADC_OK) {
      int64_t count = 1;
      for (int k = 0; k < a.rank; k++) count *= a.dims[k];
      if (count != a.count || (count && !a.data)) abort();
      if (count) {
        volatile double last = npy_value(&a, count - 1);
        (void)last;
      }
    } else if (!err.msg[0] || a.block) {
      abort();
    }
    npy_free(&a);
    return 0;
  }
  Dataset d;
  gradc_status s = data_load_arrays(file.path, "x", "y", &d, &err);
  /* n samples of finite values, n labels, or a message and an empty Dataset */
  if (s == GRADC_OK) {
    if (d.n < 1 || d.sample_size < 1 || !d.x || !d.y) abort();
    volatile float last = d.x[d.n * d.sample_size - 1];
    if (!isfinite(last)) abort();
    volatile int32_t label = d.y[d.n - 1];
    (void)label;
  } else {
    Dataset empty;
    memset(&empty, 0, sizeof empty);
    if (!err.msg[0] || memcmp(&d, &empty, sizeof d)) abort();
  }
  data_free(&d);
  return 0;
}
