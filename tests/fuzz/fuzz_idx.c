/*
 * fuzz_idx.c - libFuzzer target for the IDX reader (data_load_idx), plain
 * and gzip'd.
 *
 * One input is two files and how to present them:
 *
 *   byte 0       flags: 1 gzip the image file, 2 gzip the label file,
 *                4 no label file (labels_path NULL)
 *   bytes 1-2    split, little-endian, modulo the bytes that remain + 1
 *   the rest     image file = rest[0, split), label file = rest[split, end)
 *
 * The gzip flags compress here, so mutations of the IDX header and body
 * still reach the reader through zlib; a seed whose image part is already
 * gzip'd (flags 0) lets mutations damage the gzip stream itself.  Seeds are
 * written by make_seeds.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_file.h"
#include "runtime.h"

enum { GZIP_IMAGES = 1, GZIP_LABELS = 2, NO_LABELS = 4 };

/* Writes data to f as is or as a gzip stream (zlib's deflate with a gzip
 * wrapper: windowBits 15 + 16). */
static void put(FuzzFile *f, const uint8_t *data, size_t n, int gzip) {
  if (!gzip) {
    fuzz_file_set(f, data, n);
    return;
  }
  z_stream z = {0};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  uLong bound = deflateBound(&z, (uLong)n);
  unsigned char *out = malloc(bound);
  if (!out) abort();
  z.next_in = (unsigned char *)data;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)bound;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  fuzz_file_set(f, out, z.total_out);
  deflateEnd(&z);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FuzzFile images, labels;
  if (size < 3 || size > (1 << 20)) return -1;
  if (!images.path[0]) {
    fuzz_file_open(&images, "images.idx");
    fuzz_file_open(&labels, "labels.idx");
  }
  int flags = data[0];
  size_t rest = size - 3, split = (size_t)(data[1] | data[2] << 8) % (rest + 1);
  const uint8_t *body = data + 3;
  put(&images, body, split, flags & GZIP_IMAGES);
  put(&labels, body + split, rest - split, flags & GZIP_LABELS);

  Dataset d;
  RtError err = {{0}};
  gradc_status s = data_load_idx(images.path, flags & NO_LABELS ? NULL : labels.path, &d, &err);
  /* The contract: n samples of rows x cols pixels in [0, 1] and n labels
   * 0..255 (the last of each read under ASan), or an error with a message
   * and an empty Dataset. */
  if (s == GRADC_OK) {
    if (d.n < 1 || d.sample_size != d.dims[0] * d.dims[1] || d.sample_size < 1 || !d.x) abort();
    volatile float last = d.x[d.n * d.sample_size - 1];
    if (!(last >= 0 && last <= 1)) abort();
    if (!(flags & NO_LABELS) && (!d.y || d.y[d.n - 1] < 0 || d.y[d.n - 1] > 255)) abort();
  } else {
    Dataset empty;
    memset(&empty, 0, sizeof empty);
    if (!err.msg[0] || memcmp(&d, &empty, sizeof d)) abort();
  }
  data_free(&d);
  return 0;
}
