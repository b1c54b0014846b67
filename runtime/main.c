/*
 * main.c - the gradc command line.
 *
 * The only place that decides how the process ends: library code returns
 * errors as values, and this file prints them (diagnostics to stderr) and
 * picks the exit status: 0 success, 1 the model or data is wrong, 2 the
 * command line is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

#define GRADC_VERSION "0.1.0"

static const char usage[] =
    "usage: gradc <command> [options] FILE.nn\n"
    "\n"
    "commands:\n"
    "  dump FILE.nn      print the IR graph\n"
    "      --stage S       pipeline stage to show: parse (default) or grad\n"
    "                      (forward, backward and optimizer update)\n"
    "      --format F      text (default), dot (Graphviz) or nn (model file,\n"
    "                      parse stage only)\n"
    "      -o FILE         write to FILE instead of standard output\n"
    "  summary FILE.nn   print the parameter table (like Keras' model.summary)\n"
    "  check FILE.nn     compare every gradient with finite differences\n"
    "      --seed N        initializer and input seed (default 1)\n"
    "      --batch N       value of every symbolic dimension (default 3)\n"
    "      --tol X         relative error tolerance (default 1e-4)\n"
    "  help              print this text\n"
    "  version           print the version\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "gradc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'gradc help' for usage)\n");
  return 2;
}

/* Compiles the file and prints its diagnostics; NULL graph means failure. */
static Compilation *load(const char *path, Stage last) {
  Compilation *c = compile_model_file(path, last);
  if (!c) {
    fprintf(stderr, "gradc: out of memory\n");
    return NULL;
  }
  diag_print(stderr, &c->diags);
  if (!c->graph) {
    compilation_free(c);
    return NULL;
  }
  return c;
}

static int cmd_dump(int argc, char **argv) {
  const char *file = NULL, *outpath = NULL;
  Stage stage = STAGE_PARSE;
  DumpFormat fmt = DUMP_TEXT;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--stage") || !strcmp(a, "--format") || !strcmp(a, "-o")) {
      if (!has_val) return usage_error("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--stage")) {
        bool ok = false;
        for (int k = 0; k < STAGE_COUNT; k++)
          if (!strcmp(v, stage_names[k])) stage = (Stage)k, ok = true;
        if (!ok) return usage_error("unknown stage '%s'; stages: parse, grad", v);
      } else if (!strcmp(a, "--format")) {
        if (!strcmp(v, "text")) fmt = DUMP_TEXT;
        else if (!strcmp(v, "dot")) fmt = DUMP_DOT;
        else if (!strcmp(v, "nn")) fmt = DUMP_NN;
        else return usage_error("unknown format '%s'; formats: text, dot, nn", v);
      } else {
        outpath = v;
      }
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (file) {
      return usage_error("more than one model file given ('%s')", a);
    } else {
      file = a;
    }
  }
  if (!file) return usage_error("%s", "dump needs a model file");
  if (fmt == DUMP_NN && stage != STAGE_PARSE)
    return usage_error("%s", "--format nn writes the parse stage only (optimizer "
                       "state and updates have no model-file syntax)");
  Compilation *c = load(file, stage);
  if (!c) return 1;
  FILE *out = stdout;
  if (outpath && !(out = fopen(outpath, "w"))) {
    perror(outpath);
    compilation_free(c);
    return 1;
  }
  dump_graph(out, c->graph, fmt, c->graph->stage);
  int rc = 0;
  if (fflush(out) != 0 || ferror(out)) {
    perror(outpath ? outpath : "stdout");
    rc = 1;
  }
  if (out != stdout) fclose(out);
  compilation_free(c);
  return rc;
}

static int cmd_summary(int argc, char **argv) {
  if (argc != 1 || argv[0][0] == '-')
    return usage_error("%s", "usage: gradc summary FILE.nn");
  Compilation *c = load(argv[0], STAGE_PARSE);
  if (!c) return 1;
  dump_summary(stdout, c->graph);
  compilation_free(c);
  return 0;
}

/* Parses "--name VALUE" as a number in [lo, hi]; false with a message. */
static bool number_opt(const char *name, const char *v, double lo, double hi, double *out) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "gradc: %s expects a number in [%g, %g], got '%s'\n", name, lo, hi, v);
    return false;
  }
  *out = x;
  return true;
}

static int cmd_check(int argc, char **argv) {
  const char *file = NULL;
  double seed = 1, batch = 3, tol = 1e-4;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    double *dst = !strcmp(a, "--seed") ? &seed : !strcmp(a, "--batch") ? &batch
                : !strcmp(a, "--tol") ? &tol : NULL;
    if (dst) {
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      double hi = dst == &tol ? 1 : dst == &batch ? 4096 : 9007199254740991.0;
      if (!number_opt(a, argv[++i], dst == &tol ? 0 : dst == &batch ? 1 : 0, hi, dst)) return 2;
      if (dst != &tol && *dst != (double)(int64_t)*dst) return usage_error("%s must be an integer", a);
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (file) {
      return usage_error("more than one model file given ('%s')", a);
    } else {
      file = a;
    }
  }
  if (!file) return usage_error("%s", "check needs a model file");
  Compilation *c = load(file, STAGE_GRAD);
  if (!c) return 1;
  int rc = check_gradients(c->graph, (uint64_t)seed, (int64_t)batch, tol, stdout);
  compilation_free(c);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    fputs(usage, stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("gradc %s\n", GRADC_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "dump")) return cmd_dump(argc - 2, argv + 2);
  if (!strcmp(cmd, "summary")) return cmd_summary(argc - 2, argv + 2);
  if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
  return usage_error("unknown command '%s'", cmd);
}
