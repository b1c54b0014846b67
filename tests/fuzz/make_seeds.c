/*
 * make_seeds.c - writes the binary seed corpora of the fuzz targets:
 *
 *   fuzz_seeds DIR    -> files in DIR/idx (fuzz_idx's input layout, see
 *                        fuzz_idx.c), DIR/ckpt (checkpoints written by
 *                        ckpt_save, in fuzz_ckpt's forms, and as older
 *                        versions compressed them) and DIR/api (sessions
 *                        of calls, in fuzz_api's encoding)
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

static unsigned char *put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
  return p + bytes;
}

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
  return v;
}

/* The payload compressed as older gradc versions did (zlib levels 1, 6
 * and 9, and fixed Huffman codes): "old-zL-NAME", a whole checkpoint
 * (mode 0), and "inflate-zL-NAME", the stream alone after its size (mode
 * 2), for fuzz_ckpt. */
static void compressed_seeds(const char *name, const unsigned char *payload, size_t n) {
  static const struct { const char *tag; int level, strategy; } kinds[] = {
      {"z1", 1, Z_DEFAULT_STRATEGY}, {"z6", 6, Z_DEFAULT_STRATEGY}, {"z9", 9, Z_DEFAULT_STRATEGY},
      {"fixed", 6, Z_FIXED}};
  static unsigned char z[16384], file[16384 + 33];
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    z_stream zs = {0};
    if (deflateInit2(&zs, kinds[k].level, Z_DEFLATED, 15, 8, kinds[k].strategy) != Z_OK) die("deflateInit2");
    zs.next_in = (unsigned char *)payload;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = sizeof z;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) die("deflate");
    size_t zlen = zs.total_out;
    deflateEnd(&zs);
    unsigned char *h = file;
    *h++ = 0;
    memcpy(h, "GRADCKPT", 8), h += 8;
    h = put_le(h, 1, 4), h = put_le(h, n, 8), h = put_le(h, crc32(0, payload, (uInt)n), 4), h = put_le(h, zlen, 8);
    memcpy(h, z, zlen);
    char fname[256];
    snprintf(fname, sizeof fname, "old-%s-%s", kinds[k].tag, name);
    write_file("ckpt", fname, file, 33 + zlen);
    h = file;
    *h++ = 2;
    h = put_le(h, n, 4);
    memcpy(h, z, zlen);
    snprintf(fname, sizeof fname, "inflate-%s-%s", kinds[k].tag, name);
    write_file("ckpt", fname, file, 5 + zlen);
  }
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
  compressed_seeds(name, seed + 1, size);
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

/* ------------------------------------------------------------------- API */

/* Sessions in fuzz_api's encoding: per call a model byte (0 or 1; 7 is
 * NULL), a call byte and its arguments, indices into fuzz_api.c's tables
 * (batches: 0 is 4, 2 is 2, 4 is 7, 5 is 16, 8 is 0, 9 is -1, 10 is
 * 2^24 + 1; paths: 0 a.ckpt, 1 b.ckpt, 2 bad.ckpt, 5 a dataset file, 6 the
 * directory, 7 NULL). */
static void api_seeds(void) {
  static const unsigned char train[] = {
      0, 0, 5,                          /* bind 16 */
      0, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8,  /* inputs in range */
      0, 4, 1,                          /* train_step */
      0, 9, 0,                          /* save a.ckpt */
      0, 3,                             /* forward */
      0, 6, 0, 0, 0,                    /* set_hyper lr 1e-3 */
      0, 4, 1,                          /* train_step */
      0, 10, 0,                         /* load a.ckpt */
      0, 7, 0, 1,                       /* get_hyper lr */
      0, 11, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0x55,   /* bad.ckpt: a.ckpt with byte 40 changed */
      0, 10, 2,                         /* load bad.ckpt */
      0, 12, 3, 1, 2, 1, 5, 1, 9, 0, 2, 0,       /* feed order {2, 5, 9} from 0, 2 samples */
      0, 4, 1,                          /* train_step */
      0, 13, 10, 1,                     /* data optimizer/lr */
      0, 9, 1,                          /* save b.ckpt */
  };
  static const unsigned char dims[] = {
      1, 1, 14, 4,                      /* bind_dim n 7 */
      1, 2, 0, 9, 9, 9, 9, 9, 9, 9, 9,  /* inputs */
      1, 3,                             /* forward */
      1, 13, 8, 1,                      /* data s */
      1, 4, 1,                          /* train_step: it has none */
      1, 14, 3, 0,                      /* tensor_info 0 */
      1, 15, 3,                         /* step_name 0 */
      1, 0, 9,                          /* bind -1 */
      1, 9, 0,                          /* save a.ckpt */
      0, 10, 0,                         /* the other model loads it */
  };
  static const unsigned char hostile[] = {
      7, 0, 0,                          /* bind NULL */
      7, 3,                             /* forward NULL */
      0, 0, 10,                         /* bind 2^24 + 1 */
      0, 1, 16, 0,                      /* bind_dim nope */
      0, 12, 0, 0, 8, 0, 1,             /* feed 0 samples */
      0, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8,  /* inputs of any bits */
      0, 4, 1,                          /* train_step on them */
      0, 11, 2, 3, 1, 2, 3,             /* bad.ckpt: 3 bytes */
      0, 10, 2,                         /* load it */
      0, 9, 6,                          /* save to the directory */
      0, 9, 7,                          /* save to NULL */
      0, 10, 5,                         /* load a dataset file */
  };
  write_file("api", "train", train, sizeof train);
  write_file("api", "dims", dims, sizeof dims);
  write_file("api", "hostile", hostile, sizeof hostile);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_seeds DIR\n");
    return 2;
  }
  dir = argv[1];
  char sub[4096];
  const char *subs[] = {"", "/idx", "/ckpt", "/api"};
  for (int i = 0; i < 4; i++) {
    snprintf(sub, sizeof sub, "%s%s", dir, subs[i]);
    if (mkdir(sub, 0755) != 0 && access(sub, F_OK) != 0) die(sub);
  }
  idx_seeds();
  ckpt_seeds();
  api_seeds();
  return 0;
}
