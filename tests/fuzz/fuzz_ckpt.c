/*
 * fuzz_ckpt.c - libFuzzer target for the checkpoint reader (ckpt_load),
 * against a fixed model: "m" with W f32[4,3] and b f32[3].
 *
 * Byte 0 picks how the rest is presented:
 *
 *   odd        the rest is the uncompressed payload (model name, tensors),
 *              and the target wraps it in a valid header with its CRC-32
 *              and zlib compression, as older gradc versions' ckpt_save
 *              did;
 *   2 (mod 4)  the rest is an output size (u32, little-endian, modulo
 *              4 MiB + 1) and a zlib stream, for zs_inflate alone, checked
 *              against zlib itself: what zlib decodes to exactly that size,
 *              zs_inflate must decode to the same bytes; what it accepts
 *              that zlib refuses (puff.c's rules on incomplete codes are
 *              laxer than zlib's) still passed the stream's Adler-32;
 *   0 (mod 4)  the rest is the checkpoint file as is: the magic, header
 *              and checksum checks.
 *
 * The odd mode exists because mutations of a whole file almost never get
 * past the stream's Adler-32 check and the CRC (checksums libFuzzer cannot
 * solve): with whole files only, a 60 s run reached 15 of load_payload's
 * 72 edges, all from the seeds.  The wrapping compresses (zlib level 1, as
 * older gradc versions wrote checkpoints), so the odd mode also runs the
 * Huffman decoding of runtime/zstream.c's inflate; files ckpt_save writes
 * now hold stored blocks.  But the odd mode's streams are always valid
 * ones: damaged compressed data reaches the decoder only in the whole-file
 * mode, past a header whose sizes must agree with the input's length -
 * hence the inflate mode.  Seeds (make_seeds.c) are checkpoints written by
 * ckpt_save in both forms, matching the model or differing from it in one
 * way each; older versions' checkpoints (zlib levels 1, 6 and 9, and fixed
 * Huffman codes) whole; and payloads compressed those ways for the
 * inflate mode.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_file.h"
#include "runtime.h"

/* The layout of ckpt.c's header: "GRADCKPT", u32 version 1, u64 payload
 * size, u32 CRC-32 of the payload, u64 compressed size (little-endian). */
enum { HEADER_BYTES = 32 };

static unsigned char *put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
  return p + bytes;
}

/* Writes the checkpoint that holds payload to f. */
static void put_wrapped(FuzzFile *f, const uint8_t *payload, size_t n) {
  uLong bound = compressBound((uLong)n), clen = bound;
  unsigned char *file = malloc(HEADER_BYTES + bound);
  if (!file || compress2(file + HEADER_BYTES, &clen, payload, (uLong)n, 1) != Z_OK) abort();
  unsigned char *h = file;
  memcpy(h, "GRADCKPT", 8), h += 8;
  h = put_le(h, 1, 4);
  h = put_le(h, n, 8);
  h = put_le(h, crc32_z(0, payload, n), 4);
  put_le(h, clen, 8);
  fuzz_file_set(f, file, HEADER_BYTES + clen);
  free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* zs_inflate against zlib's uncompress on one stream. */
static void inflate_both(const uint8_t *data, size_t size) {
  if (size < 4) return;
  size_t want = ((size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24) %
                ((4u << 20) + 1);   /* at most 4 MiB */
  const uint8_t *z = data + 4;
  size_t zlen = size - 4;
  unsigned char *ours = malloc(want + 1), *theirs = malloc(want + 1);
  if (!ours || !theirs) abort();
  const char *why = zs_inflate(z, zlen, ours, want);
  uLongf got = (uLongf)want;
  uLong used = (uLong)zlen;
  int zr = uncompress2(theirs, &got, z, &used);
  bool zlib_ok = zr == Z_OK && got == want && used == zlen;
  if (zlib_ok && (why || memcmp(ours, theirs, want))) abort();   /* a valid stream refused, or decoded wrong */
  if (!why && !zlib_ok) {
    /* Accepted what zlib refuses: only where puff.c is laxer than zlib
     * (an incomplete code), and then the bytes still carry the stream's
     * Adler-32 - checked by zs_inflate itself - so they are what was
     * written. */
    if (zr == Z_OK && used == zlen && got != want) abort();   /* a size zlib disagrees with */
  }
  free(ours);
  free(theirs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FuzzFile file;
  if (size < 1 || size > (1 << 20)) return -1;
  if ((data[0] & 3) == 2) {
    inflate_both(data + 1, size - 1);
    return 0;
  }
  if (!file.path[0]) fuzz_file_open(&file, "fuzz.ckpt");
  if (data[0] & 1) put_wrapped(&file, data + 1, size - 1);
  else fuzz_file_set(&file, data + 1, size - 1);

  float w[12], b[3], w0[12], b0[3];
  for (int i = 0; i < 12; i++) w[i] = w0[i] = (float)i;
  for (int i = 0; i < 3; i++) b[i] = b0[i] = (float)-i;
  const CkptTensor t[] = {
      {.name = "W", .dtype = GRADC_F32, .rank = 2, .dims = {4, 3}, .data = w},
      {.name = "b", .dtype = GRADC_F32, .rank = 1, .dims = {3}, .data = b},
  };
  RtError err = {{0}};
  gradc_status s = ckpt_load(file.path, "m", t, 2, &err);
  /* The contract: a failed load says why and leaves the tensors as they
   * were. */
  if (s != GRADC_OK && (!err.msg[0] || memcmp(w, w0, sizeof w) || memcmp(b, b0, sizeof b))) abort();
  return 0;
}
