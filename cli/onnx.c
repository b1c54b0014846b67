/*
 * onnx.c - gradc import and gradc export, and the weights of an .onnx file
 * that train, eval and predict compile directly.
 *
 * The compiler does the work (compiler/onnx_import.c writes model text,
 * compile_path compiles .onnx files through it; compiler/onnx_export.c
 * writes a ModelProto from a parsed graph); this file moves values between
 * a model instance and the files: the initializers of an import go into
 * the instance the imported text compiles to (gradc_data), which writes the
 * checkpoint with gradc_save, so an imported checkpoint is an ordinary one
 * (optimizer slots included when the import added a train statement).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "onnx.h"

/* The whole file, or NULL with a message. */
static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "gradc: error: cannot read '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    if (cap >= MAX_SOURCE_BYTES) {
      fprintf(stderr, "gradc: error: '%s' is larger than the %d MiB limit for model files\n", path,
              MAX_SOURCE_BYTES >> 20);
      free(buf);
      fclose(f);
      return NULL;
    }
    char *b = realloc(buf, cap *= 2);
    if (!b) free(buf);
    buf = b;
  }
  bool bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    fprintf(stderr, "gradc: error: cannot read '%s': %s\n", path, buf ? strerror(EIO) : "out of memory");
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* Copies the imported values into m's parameters and state; each must
 * exist with the same number of elements (the text declares them so). */
static gradc_status set_weights(gradc_model *m, const OnnxImport *imp, char *err, size_t errlen) {
  for (int i = 0; i < imp->nparams; i++) {
    const OnnxParam *p = &imp->params[i];
    int64_t count = 0, want = 1;
    for (int k = 0; k < p->rank; k++) want *= p->dims[k];
    float *d = gradc_data(m, p->name, &count);
    if (!d || count != want) {
      snprintf(err, errlen, "the imported model has no parameter '%s' of %lld values%s%s", p->name,
               (long long)want, d ? "" : ": ", d ? "" : gradc_last_error(m));
      return GRADC_ERR_ARG;
    }
    memcpy(d, p->data, sizeof(float) * (size_t)want);
  }
  return GRADC_OK;
}

gradc_status cli_onnx_weights(gradc_model *m, const char *path, const OnnxImportOptions *added) {
  size_t len;
  char *buf = read_all(path, &len);
  if (!buf) return GRADC_ERR_IO;
  Arena *a = arena_new();
  OnnxImport imp;
  char err[1200];
  gradc_status s = GRADC_ERR_NOMEM;
  if (a && onnx_import(a, path, buf, len, added, &imp)) {
    s = set_weights(m, &imp, err, sizeof err);
    if (s) fprintf(stderr, "gradc: error: %s\n", err);
  } else if (a) {
    fprintf(stderr, "gradc: error: %s\n", imp.error);
    s = GRADC_ERR_MODEL;
  }
  arena_free(a);
  free(buf);
  return s;
}

/* gradc import MODEL.onnx [-o MODEL.nn] [--ckpt CKPT] [--loss L] [--label Y] [--optimizer O] */
int cli_import(int argc, char **argv) {
  const char *file = NULL, *outpath = NULL, *ckpt = NULL;
  OnnxImportOptions o = {0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = !strcmp(a, "-o") ? &outpath : !strcmp(a, "--ckpt") ? &ckpt : !strcmp(a, "--loss") ? &o.loss
                     : !strcmp(a, "--label") ? &o.label : !strcmp(a, "--optimizer") ? &o.optimizer : NULL;
    if (dst) {
      if (i + 1 >= argc || !*argv[i + 1]) {
        fprintf(stderr, "gradc: %s needs a value\n(run 'gradc help' for usage)\n", a);
        return 2;
      }
      *dst = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "gradc: unknown option '%s'\n(run 'gradc help' for usage)\n", a);
      return 2;
    } else if (file) {
      fprintf(stderr, "gradc: more than one model file given ('%s')\n(run 'gradc help' for usage)\n", a);
      return 2;
    } else {
      file = a;
    }
  }
  if (!file) {
    fprintf(stderr, "gradc: import needs an .onnx file\n(run 'gradc help' for usage)\n");
    return 2;
  }
  char def[600];
  if (!outpath) {
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    size_t len = strcspn(base, ".");
    snprintf(def, sizeof def, "%.*s.nn", (int)(len > 200 ? 200 : len), base);
    outpath = def;
  }
  if (!strcmp(outpath, file) || (ckpt && (!strcmp(ckpt, file) || !strcmp(ckpt, outpath)))) {
    fprintf(stderr, "gradc: -o and --ckpt must name two new files, not the model or each other\n");
    return 2;
  }
  size_t len;
  char *buf = read_all(file, &len);
  if (!buf) return 1;
  Arena *a = arena_new();
  OnnxImport imp;
  int rc = 1;
  gradc_model *m = NULL;
  if (!a) {
    fprintf(stderr, "gradc: error: out of memory\n");
  } else if (!onnx_import(a, file, buf, len, &o, &imp)) {
    fprintf(stderr, "gradc: error: %s\n", imp.error);
  } else if (gradc_compile_string(outpath, imp.text, NULL, &m)) {
    /* The written text must compile; a failure here is gradc's bug or a
     * model it cannot hold, and the message says which line. */
    const char *msg = gradc_last_error(NULL);
    fprintf(stderr, "%s%s", msg, *msg && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
  } else {
    char err[1200];
    FILE *f = fopen(outpath, "w");
    bool bad = !f || fwrite(imp.text, 1, imp.len, f) != imp.len;
    if (f) bad |= fclose(f) != 0;
    if (bad) {
      fprintf(stderr, "gradc: error: cannot write '%s': %s\n", outpath, strerror(errno ? errno : EIO));
    } else if (set_weights(m, &imp, err, sizeof err)) {
      fprintf(stderr, "gradc: error: %s\n", err);
    } else if (ckpt && gradc_save(m, ckpt)) {
      fprintf(stderr, "gradc: error: %s\n", gradc_last_error(m));
    } else {
      printf("wrote %s%s%s (opset %d, %d tensors)\n", outpath, ckpt ? " and " : "", ckpt ? ckpt : "", imp.opset,
             imp.nparams);
      rc = 0;
    }
  }
  gradc_free(m);
  arena_free(a);
  free(buf);
  return rc;
}

static const float *model_value(void *ctx, const char *name, int64_t count) {
  int64_t have = 0;
  const float *d = gradc_data(ctx, name, &have);
  return d && have == count ? d : NULL;
}

/* gradc export MODEL.nn [--load CKPT] -o MODEL.onnx */
int cli_export(int argc, char **argv) {
  const char *file = NULL, *outpath = NULL, *ckpt = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = !strcmp(a, "-o") ? &outpath : !strcmp(a, "--load") ? &ckpt : NULL;
    if (dst) {
      if (i + 1 >= argc || !*argv[i + 1]) {
        fprintf(stderr, "gradc: %s needs a value\n(run 'gradc help' for usage)\n", a);
        return 2;
      }
      *dst = argv[++i];
    } else if ((a[0] == '-' && a[1]) || file) {
      fprintf(stderr, "gradc: %s '%s'\n(run 'gradc help' for usage)\n",
              file ? "more than one model file given" : "unknown option", a);
      return 2;
    } else {
      file = a;
    }
  }
  if (!file || !outpath) {
    fprintf(stderr, "gradc: usage: gradc export MODEL.nn [--load CKPT] -o MODEL.onnx\n");
    return 2;
  }
  if (!strcmp(outpath, file) || (ckpt && !strcmp(outpath, ckpt))) {
    fprintf(stderr, "gradc: -o '%s' is an input; refusing to overwrite it\n", outpath);
    return 2;
  }
  /* The values: the checkpoint's, else the initializers' from seed 1. */
  gradc_model *m = NULL;
  if (gradc_compile_file(file, NULL, &m)) {
    const char *msg = gradc_last_error(NULL);
    fprintf(stderr, "%s%s", msg, *msg && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
    return 1;
  }
  if (ckpt && gradc_load(m, ckpt)) {
    fprintf(stderr, "gradc: error: %s\n", gradc_last_error(m));
    gradc_free(m);
    return 1;
  }
  if (onnx_is_onnx_path(file) && !ckpt && cli_onnx_weights(m, file, NULL)) {
    gradc_free(m);
    return 1;
  }
  /* The graph: the parse stage, before autodiff and the passes. */
  CompileOptions co = compile_defaults();
  co.last = STAGE_PARSE;
  Compilation *c = compile_path(file, &co);
  int rc = 1;
  if (!c) {
    fprintf(stderr, "gradc: out of memory\n");
  } else if (!c->graph) {
    diag_print(stderr, &c->diags);
  } else {
    char err[1024];
    if (!onnx_export(c->graph, model_value, m, outpath, err, sizeof err)) {
      fprintf(stderr, "gradc: error: %s\n", err);
    } else {
      printf("wrote %s (opset 17)\n", outpath);
      rc = 0;
    }
  }
  compilation_free(c);
  gradc_free(m);
  return rc;
}
