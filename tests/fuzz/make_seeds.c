/*
 * make_seeds.c - writes the binary seed corpora of the fuzz targets:
 *
 *   fuzz_seeds DIR    -> files in DIR/idx (fuzz_idx's input layout, see
 *                        fuzz_idx.c) and DIR/ckpt (checkpoints written by
 *                        ckpt_save, in fuzz_ckpt's two forms)
 *
 * Generated rather than committed so that they always match the writers of
 * this tree; the same bytes every run (no clock, no randomness), so CI
 * fuzzes a fixed corpus.  scripts/fuzz.sh runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime.h"

static const char *dir;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void write_file(const char *sub, const char *name, const void *data, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) die(path);
}

/* ------------------------------------------------------------------- IDX */

typedef struct Buf {
  unsigned char b[8192];
  size_t n;
} Buf;

static void put_be32(Buf *b, uint32_t v) {
  for (int k = 3; k >= 0; k--) b->b[b->n++] = (unsigned char)(v >> (8 * k));
}

/* An IDX image file of n images of rows x cols, or a label file of n. */
static Buf idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  Buf b = {.n = 0};
  put_be32(&b, 0x803), put_be32(&b, n), put_be32(&b, rows), put_be32(&b, cols);
  for (uint32_t i = 0; i < n * rows * cols; i++) b.b[b.n++] = (unsigned char)(i * 37);
  return b;
}

static Buf idx_labels(uint32_t n) {
  Buf b = {.n = 0};
  put_be32(&b, 0x801), put_be32(&b, n);
  for (uint32_t i = 0; i < n; i++) b.b[b.n++] = (unsigned char)(i % 10);
  return b;
}

static Buf gzipped(const Buf *in) {
  Buf out = {.n = 0};
  z_stream z = {0};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("deflateInit2");
  z.next_in = (unsigned char *)in->b;
  z.avail_in = (uInt)in->n;
  z.next_out = out.b;
  z.avail_out = sizeof out.b;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) die("deflate");
  out.n = z.total_out;
  deflateEnd(&z);
  return out;
}

static void idx_seed(const char *name, int flags, const Buf *img, const Buf *lab) {
  Buf s = {.n = 0};
  s.b[s.n++] = (unsigned char)flags;
  s.b[s.n++] = (unsigned char)(img->n & 0xff);
  s.b[s.n++] = (unsigned char)(img->n >> 8);
  memcpy(s.b + s.n, img->b, img->n), s.n += img->n;
  memcpy(s.b + s.n, lab->b, lab->n), s.n += lab->n;
  write_file("idx", name, s.b, s.n);
}

static void idx_seeds(void) {
  Buf img = idx_images(3, 4, 4), lab = idx_labels(3), lab2 = idx_labels(2);
  Buf big = idx_images(1, 28, 28), lab1 = idx_labels(1);
  Buf gz_img = gzipped(&img), gz_lab = gzipped(&lab);
  idx_seed("plain", 0, &img, &lab);
  idx_seed("gzip-images", 1, &img, &lab);
  idx_seed("gzip-both", 3, &img, &lab);
  idx_seed("no-labels", 4, &img, &lab);
  idx_seed("count-mismatch", 0, &img, &lab2);
  idx_seed("mnist-size", 0, &big, &lab1);
  /* Already compressed, presented as is: mutations hit the gzip stream. */
  idx_seed("raw-gzip", 0, &gz_img, &gz_lab);
}

/* ------------------------------------------------------------ checkpoints */

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
  return v;
}

/* Two seeds per checkpoint, in fuzz_ckpt's two forms: "file-NAME" is 0 and
 * the file ckpt_save wrote, "payload-NAME" is 1 and its payload
 * decompressed (the header's layout is in ckpt.c). */
static void ckpt_seed(const char *name, const char *model, const CkptTensor *t, int n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/ckpt/saved.tmp", dir);
  RtError err;
  if (ckpt_save(path, model, t, n, &err)) {
    fprintf(stderr, "fuzz_seeds: %s\n", err.msg);
    exit(1);
  }
  static unsigned char file[8192], seed[8192];
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  size_t len = fread(file + 1, 1, sizeof file - 1, f);
  fclose(f);
  remove(path);
  if (len < 32 || len == sizeof file - 1) die("unexpected checkpoint size");
  file[0] = 0;
  snprintf(path, sizeof path, "file-%s", name);
  write_file("ckpt", path, file, len + 1);

  uLong size = (uLong)get_le(file + 1 + 12, 8), got = size;
  uLong used = (uLong)get_le(file + 1 + 24, 8);
  seed[0] = 1;
  if (size >= sizeof seed || uncompress2(seed + 1, &got, file + 1 + 32, &used) != Z_OK || got != size)
    die("cannot decompress the checkpoint");
  snprintf(path, sizeof path, "payload-%s", name);
  write_file("ckpt", path, seed, size + 1);
}

static void ckpt_seeds(void) {
  float w[12], b[4];
  double w64[12];
  int32_t c[2] = {7, -7};
  for (int i = 0; i < 12; i++) w[i] = 0.5f * (float)i, w64[i] = i;
  for (int i = 0; i < 4; i++) b[i] = (float)i;
  /* The fuzz target's model: "m" with W f32[4,3] and b f32[3]. */
  CkptTensor W = {.name = "W", .dtype = GRADC_F32, .rank = 2, .dims = {4, 3}, .data = w};
  CkptTensor B = {.name = "b", .dtype = GRADC_F32, .rank = 1, .dims = {3}, .data = b};
  CkptTensor B4 = {.name = "b", .dtype = GRADC_F32, .rank = 1, .dims = {4}, .data = b};
  CkptTensor W64 = {.name = "W", .dtype = GRADC_F64, .rank = 2, .dims = {4, 3}, .data = w64};
  CkptTensor C = {.name = "c", .dtype = GRADC_I32, .rank = 1, .dims = {2}, .data = c};
  CkptTensor E = {.name = "e", .dtype = GRADC_BOOL, .rank = 3, .dims = {0, 2, 1}, .data = NULL};
  ckpt_seed("match", "m", (CkptTensor[]){W, B}, 2);
  ckpt_seed("reordered", "m", (CkptTensor[]){B, W}, 2);
  ckpt_seed("other-model", "mlp", (CkptTensor[]){W, B}, 2);
  ckpt_seed("shape-differs", "m", (CkptTensor[]){W, B4}, 2);
  ckpt_seed("dtype-differs", "m", (CkptTensor[]){W64, B}, 2);
  ckpt_seed("extra-tensors", "m", (CkptTensor[]){W, B, C, E}, 4);
  ckpt_seed("missing-tensor", "m", (CkptTensor[]){W}, 1);
  ckpt_seed("empty", "m", NULL, 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_seeds DIR\n");
    return 2;
  }
  dir = argv[1];
  char sub[4096];
  const char *subs[] = {"", "/idx", "/ckpt"};
  for (int i = 0; i < 3; i++) {
    snprintf(sub, sizeof sub, "%s%s", dir, subs[i]);
    if (mkdir(sub, 0755) != 0 && access(sub, F_OK) != 0) die(sub);
  }
  idx_seeds();
  ckpt_seeds();
  return 0;
}
