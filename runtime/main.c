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
    "      --stage S       pipeline stage to show: parse (default)\n"
    "      --format F      text (default), dot (Graphviz) or nn (model file)\n"
    "      -o FILE         write to FILE instead of standard output\n"
    "  summary FILE.nn   print the parameter table (like Keras' model.summary)\n"
    "  help              print this text\n"
    "  version           print the version\n";

static const char *const stages[] = {"parse"};

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "gradc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'gradc help' for usage)\n");
  return 2;
}

/* Compiles the file and prints its diagnostics; NULL graph means failure. */
static Compilation *load(const char *path) {
  Compilation *c = compile_file(path);
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
  const char *file = NULL, *stage = "parse", *outpath = NULL;
  DumpFormat fmt = DUMP_TEXT;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--stage") || !strcmp(a, "--format") || !strcmp(a, "-o")) {
      if (!has_val) return usage_error("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--stage")) {
        bool ok = false;
        for (size_t k = 0; k < sizeof stages / sizeof *stages; k++)
          ok |= !strcmp(v, stages[k]);
        if (!ok) return usage_error("unknown stage '%s'; stages: parse", v);
        stage = v;
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
  Compilation *c = load(file);
  if (!c) return 1;
  FILE *out = stdout;
  if (outpath && !(out = fopen(outpath, "w"))) {
    perror(outpath);
    compilation_free(c);
    return 1;
  }
  dump_graph(out, c->graph, fmt, stage);
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
  Compilation *c = load(argv[0]);
  if (!c) return 1;
  dump_summary(stdout, c->graph);
  compilation_free(c);
  return 0;
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
  return usage_error("unknown command '%s'", cmd);
}
