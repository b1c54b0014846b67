/*
 * images.c - folders of images as a dataset: `gradc train --data DIR`
 * where DIR/train/CLASS/NAME.png or .jpg (and DIR/test/CLASS/...), or DIR/CLASS/NAME
 * alone (no test split; --val-split holds out validation), as Keras'
 * image_dataset_from_directory reads them.
 *
 * The classes are the training folders' names in sorted (strcmp) order,
 * label 0 first; the test split must use the same names.  Files ending in
 * .png, .jpg or .jpeg (any case) are images, decoded by content (libpng in
 * png.c, libjpeg-turbo in jpeg.c); other files are skipped, as Keras skips
 * them.  Every image becomes the model's image input: H x W x C from its
 * declaration ([batch, H, W, C], or [batch, H, W] for one channel), or
 * --image-size HxWxC.  Color to gray and gray to color are the decoders'
 * (luma; copies), and the size changes by bilinear interpolation with
 * half-pixel centers (tf.image.resize's default, align_corners false), so
 * an image of the target size passes unchanged.  Values are in [0, 1].
 *
 * The samples are put in a fixed order that depends on --seed, not in
 * class order: --val-split takes the last samples, which would otherwise
 * be whole classes (Keras shuffles the files before its split too).
 */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names in dir (no hidden ones) that are directories (dirs) or image
 * files (else), sorted; NULL-terminated, malloc'd, or NULL. */
static char **list(const char *dir, bool dirs, int *count) {
  *count = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  int cap = 16;
  char **names = malloc(sizeof(char *) * (size_t)cap);
  struct dirent *e;
  while (names && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (dirs != is_dir(path)) continue;
    if (!dirs) {
      const char *dot = strrchr(e->d_name, '.');
      char ext[8] = "";
      for (int k = 0; dot && k < 6 && dot[k + 1]; k++) ext[k] = (char)tolower((unsigned char)dot[k + 1]), ext[k + 1] = 0;
      if (!dot || (strcmp(ext, "png") && strcmp(ext, "jpg") && strcmp(ext, "jpeg"))) continue;
    }
    if (*count + 1 >= cap) {
      char **g = realloc(names, sizeof(char *) * (size_t)(cap *= 2));
      if (!g) break;
      names = g;
    }
    if (!(names[*count] = strdup(e->d_name))) break;
    ++*count;
  }
  closedir(d);
  if (!names) return NULL;
  names[*count] = NULL;
  qsort(names, (size_t)*count, sizeof *names, by_name);
  return names;
}

static void free_list(char **names) {
  for (int i = 0; names && names[i]; i++) free(names[i]);
  free(names);
}

bool cli_is_image_dir(const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/train", dir);
  if (is_dir(path)) return true;
  int n;
  char **classes = list(dir, true, &n);
  free_list(classes);
  return n > 0;
}

bool cli_image_dir_has_test(const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/train", dir);
  bool split = is_dir(path);
  snprintf(path, sizeof path, "%s/test", dir);
  return split && is_dir(path);
}

/* H x W x C of the model's image input (the first float one), or
 * --image-size. */
static gradc_status find_size(gradc_model *m, const TrainOptions *o, int64_t hwc[3], RtError *err) {
  if (o->image_size[0]) {
    memcpy(hwc, o->image_size, sizeof(int64_t) * 3);
    return GRADC_OK;
  }
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    gradc_tensor t;
    if (gradc_tensor_info(m, i, &t) || t.kind != GRADC_INPUT || (t.dtype != GRADC_F32 && t.dtype != GRADC_F64))
      continue;
    if (t.rank == 4 && (t.dims[3] == 1 || t.dims[3] == 3)) {
      hwc[0] = t.dims[1], hwc[1] = t.dims[2], hwc[2] = t.dims[3];
      return GRADC_OK;
    }
    if (t.rank == 3) {
      hwc[0] = t.dims[1], hwc[1] = t.dims[2], hwc[2] = 1;
      return GRADC_OK;
    }
    return rt_fail(err, GRADC_ERR_ARG,
                   "input '%s' is not shaped as images ([batch, H, W, C] with C 1 or 3, or [batch, H, W]): give the "
                   "size images are resized to with --image-size HxWxC", t.name);
  }
  return rt_fail(err, GRADC_ERR_ARG, "the model has no float input for the images of '%s'", o->data_dir);
}

static gradc_status target_size(gradc_model *m, const TrainOptions *o, int64_t hwc[3], RtError *err) {
  gradc_status s = find_size(m, o, hwc, err);
  if (!s && (hwc[0] < 1 || hwc[1] < 1 || hwc[0] * hwc[1] > (1 << 24)))
    return rt_fail(err, GRADC_ERR_ARG, "the image input's size %lldx%lld is not one images can be resized to: give "
                   "--image-size HxWxC", (long long)hwc[0], (long long)hwc[1]);
  return s;
}

/* src (sh x sw x c bytes) into dst (h x w x c floats in [0, 1]), bilinear
 * with half-pixel centers: output pixel centre y + 0.5 maps to input
 * (y + 0.5) * sh / h - 0.5, clamped at the edges. */
static void resize(const unsigned char *src, int sh, int sw, float *dst, int64_t h, int64_t w, int64_t c) {
  for (int64_t y = 0; y < h; y++) {
    double fy = ((double)y + 0.5) * sh / (double)h - 0.5;
    if (fy < 0) fy = 0;
    int y0 = (int)fy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
    double ty = fy - y0;
    for (int64_t x = 0; x < w; x++) {
      double fx = ((double)x + 0.5) * sw / (double)w - 0.5;
      if (fx < 0) fx = 0;
      int x0 = (int)fx, x1 = x0 + 1 < sw ? x0 + 1 : x0;
      double tx = fx - x0;
      for (int64_t k = 0; k < c; k++) {
        double a = src[((size_t)y0 * sw + x0) * c + k], b = src[((size_t)y0 * sw + x1) * c + k];
        double p = src[((size_t)y1 * sw + x0) * c + k], q = src[((size_t)y1 * sw + x1) * c + k];
        double v = (a * (1 - tx) + b * tx) * (1 - ty) + (p * (1 - tx) + q * tx) * ty;
        dst[(y * w + x) * c + k] = (float)(v / 255.0);
      }
    }
  }
}

/* One image file into dst, decoded by its first bytes. */
static gradc_status load_image(const char *path, const int64_t hwc[3], float *dst, RtError *err) {
  unsigned char magic[8] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) return rt_fail(err, GRADC_ERR_IO, "cannot open '%s'", path);
  size_t got = fread(magic, 1, sizeof magic, f);
  fclose(f);
  unsigned char *px;
  int h, w;
  gradc_status s;
  if (got >= 8 && !memcmp(magic, "\x89PNG\r\n\x1a\n", 8)) s = cli_png_read(path, (int)hwc[2], &px, &h, &w, err);
  else if (got >= 3 && !memcmp(magic, "\xff\xd8\xff", 3)) s = cli_jpeg_read(path, (int)hwc[2], &px, &h, &w, err);
  else
    return rt_fail(err, GRADC_ERR_DATA, "'%s' is neither a PNG nor a JPEG image (its first bytes are %02x %02x %02x)",
                   path, magic[0], magic[1], magic[2]);
  if (s) return s;
  resize(px, h, w, dst, hwc[0], hwc[1], hwc[2]);
  free(px);
  return GRADC_OK;
}

gradc_status cli_load_image_dir(gradc_model *m, const TrainOptions *o, bool train, Dataset *out, RtError *err) {
  memset(out, 0, sizeof *out);
  int64_t hwc[3] = {0};
  gradc_status s = target_size(m, o, hwc, err);
  if (s) return s;
  char train_root[4200], root[4200];
  snprintf(train_root, sizeof train_root, "%s/train", o->data_dir);
  bool split = is_dir(train_root);
  if (!split) snprintf(train_root, sizeof train_root, "%s", o->data_dir);
  if (!train && !split)
    return rt_fail(err, GRADC_ERR_IO, "the image folder '%s' has no test split (no train/ and test/ folders); "
                   "train with --no-test, or hold out validation with --val-split", o->data_dir);
  if (train) snprintf(root, sizeof root, "%s", train_root);
  else snprintf(root, sizeof root, "%s/test", o->data_dir);
  int nclasses, nhere;
  char **classes = list(train_root, true, &nclasses), **here = train ? NULL : list(root, true, &nhere);
  if (!classes || nclasses == 0) {
    free_list(classes);
    return rt_fail(err, GRADC_ERR_DATA, "the image folder '%s' has no class folders", train_root);
  }
  for (int i = 0; here && here[i]; i++)
    if (!bsearch(&here[i], classes, (size_t)nclasses, sizeof *classes, by_name)) {
      s = rt_fail(err, GRADC_ERR_DATA, "'%s/%s' is a class the training folder '%s' does not have", root, here[i],
                  train_root);
      break;
    }
  free_list(here);
  Dataset d = {.rank = 3, .dims = {hwc[0], hwc[1], hwc[2]}, .sample_size = hwc[0] * hwc[1] * hwc[2]};
  int64_t cap = 0;
  for (int c = 0; !s && c < nclasses; c++) {
    char dir[8400];
    snprintf(dir, sizeof dir, "%s/%s", root, classes[c]);
    int nfiles = 0;
    char **files = is_dir(dir) ? list(dir, false, &nfiles) : NULL;
    for (int i = 0; !s && i < nfiles; i++) {
      if (d.n == cap) {
        cap = cap ? cap * 2 : 256;
        float *x = realloc(d.x, sizeof(float) * (size_t)(cap * d.sample_size));
        if (x) d.x = x;
        int32_t *y = realloc(d.y, sizeof(int32_t) * (size_t)cap);
        if (y) d.y = y;
        if (!x || !y) {
          s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for the images of '%s'", root);
          break;
        }
      }
      char path[8600];
      snprintf(path, sizeof path, "%s/%s", dir, files[i]);
      if ((s = load_image(path, hwc, d.x + d.n * d.sample_size, err))) break;
      d.y[d.n++] = c;
    }
    free_list(files);
  }
  free_list(classes);
  /* a directory with folders and no images may be a misplaced IDX or
   * CIFAR directory: say what else was looked for */
  if (!s && d.n == 0)
    s = rt_fail(err, GRADC_ERR_DATA, "'%s' holds folders but no .png or .jpg files in them (nor MNIST-format IDX "
                "files, CIFAR batches or .npy arrays)", root);
  int64_t *perm = s ? NULL : malloc(sizeof(int64_t) * (size_t)d.n);
  Dataset mixed = d;
  mixed.x = s ? NULL : malloc(sizeof(float) * (size_t)(d.n * d.sample_size));
  mixed.y = s ? NULL : malloc(sizeof(int32_t) * (size_t)d.n);
  if (!s && (!perm || !mixed.x || !mixed.y)) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory for '%s'", root);
  if (s) {
    free(perm), free(mixed.x), free(mixed.y);
    data_free(&d);
    return s;
  }
  data_permutation(perm, d.n, o->seed, -1);
  for (int64_t i = 0; i < d.n; i++) {
    memcpy(mixed.x + i * d.sample_size, d.x + perm[i] * d.sample_size, sizeof(float) * (size_t)d.sample_size);
    mixed.y[i] = d.y[perm[i]];
  }
  free(perm);
  data_free(&d);
  *out = mixed;
  return GRADC_OK;
}
