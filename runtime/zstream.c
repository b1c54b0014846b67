/*
 * zstream.c - zlib streams (RFC 1950/1951) without zlib, for checkpoints.
 *
 * A checkpoint's payload is a zlib stream (ckpt.c).  gradc writes it as
 * stored blocks - deflate's uncompressed form: a 5-byte header per 65535
 * bytes, an Adler-32 at the end - because trained float weights barely
 * compress at any level, and because the support library of a compiled
 * shared object, which writes and reads the same checkpoints, may need
 * nothing but libc, libm and OpenBLAS.  So the one codec of the JIT and
 * of every .so (ckpt.c) frames its own streams here, and nobody's
 * checkpoint depends on a zlib version's choices: the JIT and a .so of one
 * model write the same bytes.
 *
 * Reading must also take what older gradc versions wrote: zlib's
 * compress2 at level 1 (the JIT's checkpoints), or at any level.  That is
 * zs_inflate below, written after zlib's own reference decoder,
 * contrib/puff (Mark Adler): canonical Huffman codes decoded bit by bit -
 * slow next to zlib, some tens of MB/s, but a compressed checkpoint is an
 * old one and is read once, and stored blocks, what gradc writes now, are
 * copied whole.  It lives in this one place for the JIT and the .so alike;
 * the only other zlib user, data.c's gzip'd datasets, is outside the
 * support library and keeps zlib.
 *
 * Every read is checked against the input and every write and
 * back-reference against the output, so a damaged or hostile stream is an
 * error with a reason, never a read or write out of bounds.  The CRC-32 of
 * the checkpoint header lives here too (zlib's crc32, the same numbers).
 */
#include <pthread.h>
#include <string.h>

#include "runtime.h"

enum { STORED_MAX = 65535, ADLER_BASE = 65521, ADLER_NMAX = 5552 };

/* ------------------------------------------------------------ checksums */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void make_crc_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

uint32_t zs_crc32(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, make_crc_table);
  const unsigned char *p = data;
  uint32_t c = crc ^ 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void adler_add(uint32_t *a, uint32_t *b, const unsigned char *p, size_t n) {
  while (n) {
    size_t run = n < ADLER_NMAX ? n : ADLER_NMAX;   /* zlib's NMAX: no overflow before the modulo */
    for (size_t i = 0; i < run; i++) *a += p[i], *b += *a;
    *a %= ADLER_BASE, *b %= ADLER_BASE;
    p += run, n -= run;
  }
}

/* ------------------------------------------------------------- writing */

size_t zs_stored_size(size_t n) {
  size_t blocks = n ? (n + STORED_MAX - 1) / STORED_MAX : 1;
  return 2 + 5 * blocks + n + 4;
}

static unsigned char *put_le16(unsigned char *p, size_t v) {
  p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
  return p + 2;
}

/* The next block's header: BFINAL on the last, BTYPE 00 (stored), then
 * its length and the length's complement. */
static void block_header(ZsWriter *w) {
  size_t n = w->total - w->done < STORED_MAX ? w->total - w->done : STORED_MAX;
  *w->p++ = w->done + n == w->total;
  w->p = put_le16(w->p, n);
  w->p = put_le16(w->p, ~n & 0xffff);
  w->block_left = n;
}

void zs_begin(ZsWriter *w, unsigned char *out, size_t total) {
  *w = (ZsWriter){.p = out, .total = total, .adler_a = 1};
  *w->p++ = 0x78, *w->p++ = 0x01;          /* deflate, 32K window, no dictionary, level "fastest" */
  block_header(w);                        /* an empty payload is one empty final block */
}

void zs_put(ZsWriter *w, const void *data, size_t n) {
  const unsigned char *p = data;
  adler_add(&w->adler_a, &w->adler_b, p, n);
  while (n) {
    if (!w->block_left) block_header(w);
    size_t k = n < w->block_left ? n : w->block_left;
    memcpy(w->p, p, k);
    w->p += k, p += k, n -= k;
    w->done += k, w->block_left -= k;
  }
}

unsigned char *zs_end(ZsWriter *w) {
  uint32_t ad = w->adler_b << 16 | w->adler_a;   /* big-endian, as RFC 1950 says */
  *w->p++ = (unsigned char)(ad >> 24), *w->p++ = (unsigned char)(ad >> 16);
  *w->p++ = (unsigned char)(ad >> 8), *w->p++ = (unsigned char)ad;
  return w->p;
}

/* ------------------------------------------------------------- reading */

typedef struct Bits {
  const unsigned char *p;
  size_t n, at;              /* input and the next byte to take */
  uint32_t buf;
  int cnt;                   /* bits in buf */
  unsigned char *out;
  size_t size, got;          /* output capacity and bytes written */
} Bits;

/* need (<= 16) bits, least significant first; -1 past the end. */
static int take(Bits *s, int need) {
  uint32_t v = s->buf;
  while (s->cnt < need) {
    if (s->at >= s->n) return -1;
    v |= (uint32_t)s->p[s->at++] << s->cnt;
    s->cnt += 8;
  }
  s->buf = v >> need;
  s->cnt -= need;
  return (int)(v & ((1u << need) - 1));
}

enum { MAXBITS = 15, MAXLCODES = 286, MAXDCODES = 30, FIXLCODES = 288 };

typedef struct Huff {
  short count[MAXBITS + 1];  /* codes of each length */
  short symbol[FIXLCODES];   /* symbols in canonical order */
} Huff;

/* Builds h from code lengths; 0 complete, > 0 incomplete, < 0 over-subscribed. */
static int build(Huff *h, const short *length, int n) {
  short offs[MAXBITS + 1];
  memset(h->count, 0, sizeof h->count);
  for (int sym = 0; sym < n; sym++) h->count[length[sym]]++;
  if (h->count[0] == n) return 0;
  int left = 1;
  for (int len = 1; len <= MAXBITS; len++) {
    left <<= 1;
    left -= h->count[len];
    if (left < 0) return left;
  }
  offs[1] = 0;
  for (int len = 1; len < MAXBITS; len++) offs[len + 1] = (short)(offs[len] + h->count[len]);
  for (int sym = 0; sym < n; sym++)
    if (length[sym]) h->symbol[offs[length[sym]]++] = (short)sym;
  return left;
}

static int decode(Bits *s, const Huff *h) {
  int code = 0, first = 0, index = 0;
  for (int len = 1; len <= MAXBITS; len++) {
    int b = take(s, 1);
    if (b < 0) return -1;
    code |= b;
    int count = h->count[len];
    if (code - count < first) return h->symbol[index + (code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return -1;
}

static const char *codes(Bits *s, const Huff *lencode, const Huff *distcode) {
  static const short lbase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                  35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static const short lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  static const short dbase[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                  257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
  static const short dext[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  for (;;) {
    int sym = decode(s, lencode);
    if (sym < 0) return "its compressed data is damaged (a code)";
    if (sym < 256) {
      if (s->got >= s->size) return "its data is longer than its header says";
      s->out[s->got++] = (unsigned char)sym;
    } else if (sym == 256) {
      return NULL;
    } else {
      sym -= 257;
      if (sym >= 29) return "its compressed data is damaged (a length)";
      int e = take(s, lext[sym]);
      int dsym = e < 0 ? -1 : decode(s, distcode);
      if (dsym < 0 || dsym >= 30) return "its compressed data is damaged (a distance)";
      int de = take(s, dext[dsym]);
      if (de < 0) return "its compressed data is cut short";
      size_t len = (size_t)(lbase[sym] + e), dist = (size_t)(dbase[dsym] + de);
      if (dist > s->got) return "its compressed data is damaged (a distance too far back)";
      if (s->size - s->got < len) return "its data is longer than its header says";
      for (size_t k = 0; k < len; k++, s->got++) s->out[s->got] = s->out[s->got - dist];
    }
  }
}

static const char *stored(Bits *s) {
  s->buf = 0, s->cnt = 0;    /* to the next byte boundary */
  if (s->n - s->at < 4) return "its zlib stream is cut short";
  size_t len = (size_t)s->p[s->at] | (size_t)s->p[s->at + 1] << 8;
  size_t check = (size_t)s->p[s->at + 2] | (size_t)s->p[s->at + 3] << 8;
  if ((check ^ 0xffff) != len) return "a stored block's length check fails";
  s->at += 4;
  if (s->n - s->at < len) return "its zlib stream is cut short";
  if (s->size - s->got < len) return "its data is longer than its header says";
  memcpy(s->out + s->got, s->p + s->at, len);
  s->at += len, s->got += len;
  return NULL;
}

static const char *fixed(Bits *s) {
  short lengths[FIXLCODES];
  Huff lencode, distcode;
  int sym = 0;
  for (; sym < 144; sym++) lengths[sym] = 8;
  for (; sym < 256; sym++) lengths[sym] = 9;
  for (; sym < 280; sym++) lengths[sym] = 7;
  for (; sym < FIXLCODES; sym++) lengths[sym] = 8;
  build(&lencode, lengths, FIXLCODES);
  for (sym = 0; sym < MAXDCODES; sym++) lengths[sym] = 5;
  build(&distcode, lengths, MAXDCODES);
  return codes(s, &lencode, &distcode);
}

static const char *dynamic(Bits *s) {
  static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  short lengths[MAXLCODES + MAXDCODES];
  Huff lencode, distcode;
  int nlen = take(s, 5), ndist = take(s, 5), ncode = take(s, 4);
  if (nlen < 0 || ndist < 0 || ncode < 0) return "its zlib stream is cut short";
  nlen += 257, ndist += 1, ncode += 4;
  if (nlen > MAXLCODES || ndist > MAXDCODES) return "its compressed data is damaged (code counts)";
  int index = 0;
  for (; index < ncode; index++) {
    int b = take(s, 3);
    if (b < 0) return "its zlib stream is cut short";
    lengths[order[index]] = (short)b;
  }
  for (; index < 19; index++) lengths[order[index]] = 0;
  if (build(&lencode, lengths, 19) != 0) return "its compressed data is damaged (the code-length code)";
  for (index = 0; index < nlen + ndist;) {
    int sym = decode(s, &lencode);
    if (sym < 0) return "its compressed data is damaged (code lengths)";
    if (sym < 16) {
      lengths[index++] = (short)sym;
      continue;
    }
    int len = 0, rep;
    if (sym == 16) {
      if (index == 0) return "its compressed data is damaged (a repeat with nothing before)";
      len = lengths[index - 1];
      rep = take(s, 2), rep = rep < 0 ? -1 : 3 + rep;
    } else if (sym == 17) {
      rep = take(s, 3), rep = rep < 0 ? -1 : 3 + rep;
    } else {
      rep = take(s, 7), rep = rep < 0 ? -1 : 11 + rep;
    }
    if (rep < 0) return "its zlib stream is cut short";
    if (index + rep > nlen + ndist) return "its compressed data is damaged (too many lengths)";
    while (rep--) lengths[index++] = (short)len;
  }
  if (lengths[256] == 0) return "its compressed data is damaged (no end-of-block code)";
  int err = build(&lencode, lengths, nlen);
  if (err < 0 || (err > 0 && nlen - lencode.count[0] != 1)) return "its compressed data is damaged (literal code)";
  err = build(&distcode, lengths + nlen, ndist);
  if (err < 0 || (err > 0 && ndist - distcode.count[0] != 1)) return "its compressed data is damaged (distance code)";
  return codes(s, &lencode, &distcode);
}

const char *zs_inflate(const unsigned char *z, size_t zlen, unsigned char *out, size_t size) {
  if (zlen < 2 || (z[0] & 0x0f) != 8 || (z[0] >> 4) > 7 || (z[0] * 256u + z[1]) % 31 || (z[1] & 0x20))
    return "its payload is not a zlib stream";
  Bits s = {.p = z, .n = zlen, .at = 2, .out = out, .size = size};
  int last;
  do {
    last = take(&s, 1);
    int type = last < 0 ? -1 : take(&s, 2);
    const char *why = type < 0 ? "its zlib stream is cut short"
                      : type == 0 ? stored(&s) : type == 1 ? fixed(&s) : type == 2 ? dynamic(&s)
                      : "its compressed data is damaged (block type 3)";
    if (why) return why;
  } while (!last);
  if (s.got != size) return "its data is shorter than its header says";
  /* The Adler-32 follows at the next byte boundary. */
  if (s.n - s.at != 4) return s.n - s.at < 4 ? "its zlib stream is cut short" : "its zlib stream has stray bytes after its end";
  const unsigned char *a = z + s.at;
  uint32_t want = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
  uint32_t ad_a = 1, ad_b = 0;
  adler_add(&ad_a, &ad_b, out, size);
  if (want != (ad_b << 16 | ad_a)) return "its Adler-32 check fails";
  return NULL;
}
