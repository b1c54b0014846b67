/* Grids of images as PNG files, through libpng: what `gradc train
 * --samples` and `gradc sample` write so a user can look at what a
 * generative model draws.  Written atomically like checkpoints: into a
 * temporary file beside the target, renamed over it when complete. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { GAP = 2 };            /* pixels between cells, and around the grid */

/* v in [lo, hi] -> 0..255, clamped: a generator's tanh may overshoot the
 * data's range.  NaN is a blank cell (a short last row), drawn as the
 * gaps are. */
static png_byte to_byte(float v, double lo, double hi) {
  if (isnan(v)) return 96;
  double t = ((double)v - lo) / (hi - lo) * 255.0 + 0.5;
  if (!(t > 0)) return 0;
  return t >= 255 ? 255 : (png_byte)t;
}

static gradc_status write_rows(FILE *f, png_bytep *rows, int64_t width, int64_t height, int color,
                               const char *path, RtError *err) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the PNG '%s'", path);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return rt_fail(err, GRADC_ERR_IO, "cannot write the PNG '%s': libpng failed", path);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
               color == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return GRADC_OK;
}

gradc_status cli_png_grid(const char *path, const float *px, int64_t n, int64_t h, int64_t w, int64_t c,
                          int64_t cols, double lo, double hi, RtError *err) {
  if (n < 1 || h < 1 || w < 1 || (c != 1 && c != 3) || cols < 1)
    return rt_fail(err, GRADC_ERR_ARG, "cannot draw %lld images of %lldx%lldx%lld as a grid", (long long)n,
                   (long long)h, (long long)w, (long long)c);
  int64_t gcols = n < cols ? n : cols, grows = (n + cols - 1) / cols;
  int64_t width = GAP + gcols * (w + GAP), height = GAP + grows * (h + GAP);
  if (width > 16384 || height > 16384)
    return rt_fail(err, GRADC_ERR_ARG, "a grid of %lldx%lld pixels is too large to write (at most 16384 "
                   "on a side)", (long long)width, (long long)height);
  png_bytep pixels = malloc((size_t)(width * height * c));
  png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)height);
  if (!pixels || !rows) {
    free(pixels), free(rows);
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the PNG '%s'", path);
  }
  memset(pixels, 96, (size_t)(width * height * c));     /* gray between the cells */
  for (int64_t k = 0; k < n; k++) {
    int64_t x0 = GAP + (k % cols) * (w + GAP), y0 = GAP + (k / cols) * (h + GAP);
    const float *img = px + k * h * w * c;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w * c; x++)
        pixels[((y0 + y) * width + x0) * c + x] = to_byte(img[y * w * c + x], lo, hi);
  }
  for (int64_t y = 0; y < height; y++) rows[y] = pixels + y * width * c;

  OutFile out;
  gradc_status s = out_open(&out, path, err);
  if (!s) s = out_commit(&out, write_rows(out.f, rows, width, height, (int)c, path, err), err);
  free(pixels), free(rows);
  return s;
}

/* Reading, for image folders (images.c): libpng's simplified API converts
 * every PNG (palette, 16-bit, alpha composited on black, gray or color) to
 * 8-bit gray or RGB, its own sRGB-weighted luma for color to gray. */
gradc_status cli_png_read(const char *path, int channels, unsigned char **px, int *h, int *w, RtError *err) {
  *px = NULL;
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path))
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is not a readable PNG image (libpng: %s)", path, img.message);
  img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  /* an image of more than 2^24 pixels is no training sample */
  if ((uint64_t)img.width * img.height > (UINT64_C(1) << 24)) {
    png_image_free(&img);
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is a PNG of %ux%u pixels; gradc reads images of at most 2^24 pixels",
                   path, img.width, img.height);
  }
  unsigned char *buf = malloc(PNG_IMAGE_SIZE(img));
  if (!buf) {
    png_image_free(&img);
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", path);
  }
  if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
    free(buf);
    gradc_status s = rt_fail(err, GRADC_ERR_DATA, "'%s' is a damaged PNG image (libpng: %s)", path, img.message);
    png_image_free(&img);
    return s;
  }
  *px = buf, *h = (int)img.height, *w = (int)img.width;
  return GRADC_OK;
}
