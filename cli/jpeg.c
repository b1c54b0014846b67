/* JPEG images through libjpeg-turbo, for image folders (images.c): the one
 * file that includes jpeglib.h.  libjpeg reports errors by calling
 * error_exit, which by default exits the process; ours longjmps back and
 * the message names the file. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "cli.h"

typedef struct JpegError {
  struct jpeg_error_mgr mgr;
  jmp_buf back;
} JpegError;

static void on_error(j_common_ptr c) { longjmp(((JpegError *)c->err)->back, 1); }

/* Warnings (a premature end of data among them: libjpeg fills the rest
 * gray and goes on) are errors too: a cut-off download is no sample. */
static void on_message(j_common_ptr c, int level) {
  if (level < 0) longjmp(((JpegError *)c->err)->back, 1);
}

gradc_status cli_jpeg_read(const char *path, int channels, unsigned char **px, int *h, int *w, RtError *err) {
  *px = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot open '%s'", path);
  struct jpeg_decompress_struct d;
  JpegError je;
  unsigned char *volatile buf = NULL;
  d.err = jpeg_std_error(&je.mgr);
  je.mgr.error_exit = on_error;
  je.mgr.emit_message = on_message;
  if (setjmp(je.back)) {
    char msg[JMSG_LENGTH_MAX];
    je.mgr.format_message((j_common_ptr)&d, msg);
    jpeg_destroy_decompress(&d);
    fclose(f);
    free(buf);
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is not a readable JPEG image (libjpeg: %s)", path, msg);
  }
  jpeg_create_decompress(&d);
  jpeg_stdio_src(&d, f);
  jpeg_read_header(&d, TRUE);
  if ((uint64_t)d.image_width * d.image_height > (UINT64_C(1) << 24)) {
    jpeg_destroy_decompress(&d);
    fclose(f);
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is a JPEG of %ux%u pixels; gradc reads images of at most 2^24 pixels",
                   path, d.image_width, d.image_height);
  }
  /* libjpeg converts YCbCr and gray either way (gray from color: the Y
   * channel, 0.299 R + 0.587 G + 0.114 B) */
  d.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&d);
  size_t stride = (size_t)d.output_width * (size_t)d.output_components;
  buf = malloc(stride * d.output_height);
  if (!buf) {
    jpeg_destroy_decompress(&d);
    fclose(f);
    return rt_fail(err, GRADC_ERR_NOMEM, "out of memory reading '%s'", path);
  }
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = buf + d.output_scanline * stride;
    jpeg_read_scanlines(&d, &row, 1);
  }
  jpeg_finish_decompress(&d);
  *h = (int)d.output_height, *w = (int)d.output_width;
  *px = buf;
  jpeg_destroy_decompress(&d);
  fclose(f);
  return GRADC_OK;
}
