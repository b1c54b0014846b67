/*
 * main.c - the gradc command line.
 *
 * The only place that decides how the process ends: library code returns
 * errors as values, and this file prints them (diagnostics to stderr) and
 * picks the exit status: 0 success, 1 the model or data is wrong, 2 the
 * command line is wrong.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "cli.h"
#include "onnx.h"

/* GRADC_VERSION comes from project(VERSION) in CMakeLists.txt. */
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static const char usage[] =
    "usage: gradc <command> [options] FILE.nn\n"
    "\n"
    "commands:\n"
    "  dump FILE.nn      print the IR graph\n"
    "      --stage S       pipeline stage to show: parse (default), grad\n"
    "                      (forward, backward and optimizer update), opt\n"
    "                      (after the graph passes), llvm (LLVM IR before\n"
    "                      and after LLVM's pipeline), asm\n"
    "                      memory (the workspace plan; --batch N, default 128)\n"
    "      --after PASS    the graph after one pass: fold, simplify, cse,\n"
    "                      dce, fuse\n"
    "      --stats         what each graph pass changed\n"
    "      --format F      text (default), dot (Graphviz) or nn (model file,\n"
    "                      parse stage only); svg or png: the dot graph drawn\n"
    "                      by Graphviz's dot (installed separately; png needs -o)\n"
    "      -o FILE         write to FILE instead of standard output\n"
    "  summary FILE.nn   print the parameter table (like Keras' model.summary)\n"
    "  plot HISTORY.csv  draw a training history as an SVG: loss and each\n"
    "                    metric per epoch, training against validation\n"
    "      -o FILE.svg     the picture (default HISTORY.svg)\n"
    "  check FILE.nn     compare every gradient with finite differences\n"
    "      --seed N        initializer and input seed (default 1)\n"
    "      --batch N       value of every symbolic dimension (default 3)\n"
    "      --tol X         relative error tolerance (default 1e-4)\n"
    "      --order N       1: gradients; 2: also the gradient of <v, gradient>\n"
    "                      for a random v (default 2 when the model has grad())\n"
    "  train FILE.nn     JIT-compile and train (Fashion-MNIST by default)\n"
    "      --sequences     the CSV's rows are a label and any number of ids\n"
    "      --padding P     pre (default) or post: where shorter sequences are\n"
    "                      padded to the input's length (Keras pad_sequences)\n"
    "      --truncating T  pre (default) or post: which end longer ones lose\n"
    "      --pad-value N   the padding id (default 0)\n"
    "      --pixels R      0,1 (default) or -1,1: the range images' pixels are\n"
    "                      scaled to (-1,1 for a generator ending in tanh)\n"
    "      --samples DIR   after each epoch, DIR/epoch_N.png: a grid of the\n"
    "                      model's images (an auto-encoder's: inputs above\n"
    "                      their reconstructions)\n"
    "      --sample-output NAME  the output to draw (default: the first that\n"
    "                      is an image)\n"
    "      --epochs N      passes over the training set (default 5)\n"
    "      --batch N       batch size (default 128)\n"
    "      --lr X          learning rate instead of the model's\n"
    "      --seed N        initialisation and shuffling seed (default 1)\n"
    "      --val-split F   hold out this fraction for validation (default 0)\n"
    "      --save CKPT     write a checkpoint at the end (also on Ctrl-C)\n"
    "      --resume CKPT   start from a checkpoint (also --load CKPT)\n"
    "      --history CSV   per-epoch results (default MODEL_history.csv)\n"
    "      --early-stopping MONITOR[,patience=N,min_delta=D,restore_best,mode=M]\n"
    "                      Keras' EarlyStopping, e.g. val_loss,patience=3,restore_best\n"
    "      --save-best CKPT  write CKPT whenever the monitored value improves\n"
    "                      (ModelCheckpoint save_best_only; --monitor M, default\n"
    "                      val_loss, loss without validation)\n"
    "      --reduce-lr-on-plateau MONITOR[,factor=F,patience=N,min_delta=D,\n"
    "                      cooldown=N,min_lr=X]  Keras' ReduceLROnPlateau\n"
    "      --threads N     BLAS threads (default: all cores)\n"
    "      -O N            LLVM optimisation level 0..3 (default 3)\n"
    "      --check-numerics  stop at the first NaN/Inf loss, naming its node\n"
    "      --profile       report the share of training time in sgemm and\n"
    "                      the kernels that took longest\n"
    "      --no-test       skip the test-set evaluation at the end\n"
    "      --time-report   time per compiler stage\n";
static const char usage_data[] =
    "      --data PATH     the data, by what PATH holds (README: Data formats):\n"
    "                      a directory of MNIST-format IDX files (default\n"
    "                      " DEFAULT_DATA "; SPLIT-sequences-idx2-int/\n"
    "                      -ubyte for sequences of ids); a CSV file (inputs\n"
    "                      take its columns in order); a NumPy .npz, or a\n"
    "                      directory of NAME.npy (x_train, y_train, x_test,\n"
    "                      y_test as Keras' mnist.npz; or x, y); CIFAR-10/100\n"
    "                      binary batches (data_batch_N.bin, test_batch.bin;\n"
    "                      train.bin, test.bin); image folders DIR/train/CLASS/\n"
    "                      and DIR/test/CLASS/, or DIR/CLASS/ (PNG, JPEG)\n"
    "      --arrays x=A,y=B,x_test=C,y_test=D  which arrays of an .npz or\n"
    "                      .npy directory are the samples and labels\n"
    "      --cifar-labels L  fine (default) or coarse: CIFAR-100's labels\n"
    "      --image-size HxWxC  image folders: the size images are resized to\n"
    "                      (bilinear; default the image input's)\n"
    "      --no-shuffle    train on the samples in the data's order\n";
static const char usage2[] =
    "      --no-cache      no object cache (also GRADC_CACHE=off)\n"
    "      --mpi-timeout S under mpirun: end every rank when a collective\n"
    "                      operation waits longer than S seconds (default 300)\n"
    "      --mpi-check     under mpirun: compare the ranks' parameters every epoch\n"
    "      --mpi-overlap   under mpirun: reduce gradients in a thread of their\n"
    "                      own while the backward pass goes on\n"
    "      --mpi-bucket-mb M under mpirun: fuse gradients into reductions of about\n"
    "                      M MiB each (default 25; 0: one per gradient)\n"
    "      --mpi-reduce R  under mpirun: sum gradients through a shared-memory\n"
    "                      window (shared; needs every rank on one node), with\n"
    "                      MPI's collectives (collective), or auto (default):\n"
    "                      shared when every rank is on one node; same bits\n"
    "  run FILE.nn       compile a forward-only program, run it once and print\n"
    "                    every output with its dtype and shape (numpy-style)\n"
    "      --feed NAME=FILE  an input's values from a .npy or .csv file\n"
    "      --seed N        initializer and random-op seed (default 1)\n"
    "      --format F      text (default) or npy: write DIR/NAME.npy (-o DIR)\n"
    "      -O N            optimisation level 0..3 (default 3; 0: no folding)\n"
    "      --shapes        print each output's dtype and shape only\n"
    "  eval FILE.nn --load CKPT [--data DIR] [--batch N]\n"
    "                    test loss and metrics of a checkpoint\n"
    "      --confusion F.svg  also the confusion matrix of a classifier (first\n"
    "                      output [batch, classes]), as text and as an SVG\n"
    "      --class-names N fashion-mnist or a,b,...: its labels (default:\n"
    "                      Fashion-MNIST's for 10 classes of a fashion-mnist\n"
    "                      --data, else the class indices)\n"
    "  predict FILE.nn --load CKPT [--data DIR] [--count N]\n"
    "                    predicted classes of the first N test images\n"
    "      --format F      table (default: classes), csv or npy: the values of\n"
    "                      any output, a row per sample\n"
    "      --output NAME   which output (default the first)\n"
    "      -o FILE         csv: the file (default standard output); npy: needed\n"
    "  sample FILE.nn --load CKPT -o GRID.png [--count N] [--data DIR]\n"
    "                    a PNG grid of the model's images from forward: a\n"
    "                    generator's draws, an auto-encoder's inputs above\n"
    "                    their reconstructions (--count, default 64;\n"
    "                    --pixels, --sample-output as for train)\n"
    "      --format idx    -o names a directory: --count images as an MNIST\n"
    "                      test split (t10k-*-ubyte), for gradc score\n"
    "  score FILE.nn --load CKPT [--data DIR] [--batch N]\n"
    "                    the Inception score exp(E KL(p(y|x) || p(y))) of the\n"
    "                    data's test split under a classifier (its first\n"
    "                    output, probabilities; e.g. cnn_seed)\n"
    "  compile FILE.nn   compile to a shared object that needs only libc, libm\n"
    "                    and OpenBLAS (no LLVM, no gradc) and exports MODEL_*\n"
    "      -o FILE         output (default libMODEL.so, MODEL.o, MODEL.s, MODEL.ll)\n"
    "      --emit K        so (default), obj (link it with libgradc_aot.a\n"
    "                      -lopenblas -lm), asm or llvm\n"
    "      --header FILE   also write the C header documenting the entry points\n"
    "      --data-parallel steps hand each gradient to MODEL_set_allreduce's callback\n"
    "      --target T      target triple (default: this machine's); a .so only\n"
    "                      for this machine's architecture\n"
    "      --cpu C         CPU to compile for (default x86-64-v2 on x86-64,\n"
    "                      generic elsewhere; native = this machine's)\n"
    "      --name P        symbol prefix (default: the model's name)\n"
    "      -O N            LLVM optimisation level 0..3 (default 3)\n"
    "      --time-report   time per compiler stage\n"
    "  cache stats|clear the object cache (README)\n"
    "  help              print this text\n"
    "  version           print the version\n";
/* More commands (C caps one string literal at 4095 characters). */
static const char usage_onnx[] =
    "  import F.onnx [-o F.nn] [--ckpt CKPT] [--loss L] [--label Y] [--optimizer O]\n"
    "                    the ONNX model as a model file and its weights (README: ONNX)\n"
    "  export F.nn -o F.onnx [--load CKPT]\n"
    "                    the forward graph as ONNX (opset 17) with the weights\n"
    "  every command that takes FILE.nn takes an .onnx file too;\n"
    "  train|eval|predict F.onnx [--loss L] [--label Y] [--optimizer O] add the loss as import does\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "gradc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'gradc help' for usage)\n");
  return 2;
}

/* A non-option argument is the model file; an unknown option is an error. */
static int take_file(const char *a, const char **file) {
  if (a[0] == '-' && a[1]) return usage_error("unknown option '%s'", a);
  if (*file) return usage_error("more than one model file given ('%s')", a);
  *file = a;
  return 0;
}

/* Compiles the file through the one pipeline and prints its diagnostics;
 * NULL means failure. */
static Compilation *load(const char *path, const CompileOptions *o) {
  Compilation *c = compile_path(path, o);
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

/* Is s a decimal number: an optional sign, digits with an optional point
 * and an optional exponent (integer: digits only)?  strtod alone would
 * take "0x2", "inf" and "nan" as well. */
static bool is_decimal(const char *s, bool integer) {
  if (*s == '+' || *s == '-') s++;
  size_t digits = strspn(s, "0123456789");
  s += digits;
  if (integer) return digits && !*s;
  if (*s == '.') {
    size_t frac = strspn(s + 1, "0123456789");
    digits += frac;
    s += 1 + frac;
  }
  if (digits && (*s == 'e' || *s == 'E')) {
    const char *e = s + 1 + (s[1] == '+' || s[1] == '-');
    size_t exp = strspn(e, "0123456789");
    if (exp) s = e + exp;
  }
  return digits && !*s;
}

/* Parses "--name VALUE" as a decimal number in [lo, hi], an integer when
 * integer is set; false with a message.  Every numeric option of every
 * command comes through here, so none truncates (--epochs 2.5 is not 2)
 * or reads hex (--epochs 0x2). */
static bool number_opt(const char *name, const char *v, double lo, double hi, bool integer, double *out) {
  double x = is_decimal(v, integer) ? strtod(v, NULL) : NAN;
  if (!(x >= lo && x <= hi)) {
    fprintf(stderr, "gradc: %s expects %s in [%.*g, %.*g], got '%s'\n", name, integer ? "an integer" : "a number",
            integer ? 17 : 6, lo, integer ? 17 : 6, hi, v);
    return false;
  }
  *out = x;
  return true;
}

/* A file a command reads or writes, for refuse_overwrite. */
typedef struct FileArg {
  const char *what;          /* "--save", "the model file" */
  const char *path;
  bool output;               /* an input list may hold outputs too */
} FileArg;

/* Are a and b one file: the same device and inode when both exist (a
 * hard link or a symlink to it included), the same name in the same
 * directory when neither does yet (two outputs)? */
static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
  if (ea || eb) return ea && eb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  const char *ba = strrchr(a, '/'), *bb = strrchr(b, '/');
  ba = ba ? ba + 1 : a, bb = bb ? bb + 1 : b;
  if (strcmp(ba, bb)) return false;
  char da[4096], db[4096];
  snprintf(da, sizeof da, "%.*s", ba == a ? 1 : (int)(ba - a), ba == a ? "." : a);
  snprintf(db, sizeof db, "%.*s", bb == b ? 1 : (int)(bb - b), bb == b ? "." : b);
  return stat(da, &sa) == 0 && stat(db, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Refuses an output that is one of the inputs or another output
 * (same_file), since writing it would destroy what the command reads
 * (gradc train m.nn --save m.nn replaced the model file with a
 * checkpoint) or what it writes.  2 after a message, else 0. */
static int refuse_overwrite(const FileArg *in, int nin, const FileArg *out, int nout) {
  for (int i = 0; i < nout; i++) {
    for (int k = 0; out[i].path && k < nin + i; k++) {
      const FileArg *x = k < nin ? &in[k] : &out[k - nin];
      if (!x->path || !same_file(out[i].path, x->path)) continue;
      fprintf(stderr, "gradc: %s '%s' is the same file as %s '%s'; refusing to overwrite %s\n"
              "(run 'gradc help' for usage)\n", out[i].what, out[i].path, x->what, x->path,
              x->output ? "another output" : "an input");
      return 2;
    }
  }
  return 0;
}

static int cmd_dump(int argc, char **argv) {
  const char *file = NULL, *outpath = NULL, *native = NULL, *after = NULL, *render = NULL;
  Stage stage = STAGE_PARSE;
  bool stats = false;
  int64_t batch = 128;
  int rc;
  DumpFormat fmt = DUMP_TEXT;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--stats")) {
      stats = true;
    } else if (!strcmp(a, "--batch")) {
      if (!has_val) return usage_error("%s needs a value", a);
      double x;
      if (!number_opt(a, argv[++i], 1, 1 << 24, true, &x)) return 2;
      batch = (int64_t)x;
    } else if (!strcmp(a, "--after")) {
      if (!has_val) return usage_error("%s needs a value", a);
      after = argv[++i];
      bool ok = false;
      for (int k = 0; k < PASS_COUNT; k++) ok |= !strcmp(after, pass_names[k]);
      if (!ok) return usage_error("unknown pass '%s'; passes: fold, simplify, cse, dce, fuse", after);
      stage = STAGE_OPT;
    } else if (!strcmp(a, "--stage") || !strcmp(a, "--format") || !strcmp(a, "-o")) {
      if (!has_val) return usage_error("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--stage")) {
        bool ok = false;
        for (int k = 0; k < STAGE_COUNT; k++)
          if (!strcmp(v, stage_names[k])) stage = (Stage)k, ok = true;
        if (!strcmp(v, "llvm") || !strcmp(v, "asm") || !strcmp(v, "memory"))
          native = v, stage = STAGE_OPT, ok = true;
        if (!ok) return usage_error("unknown stage '%s'; stages: parse, grad, opt, memory, llvm, asm", v);
      } else if (!strcmp(a, "--format")) {
        if (!strcmp(v, "text")) fmt = DUMP_TEXT;
        else if (!strcmp(v, "dot")) fmt = DUMP_DOT;
        else if (!strcmp(v, "nn")) fmt = DUMP_NN;
        else if (!strcmp(v, "svg") || !strcmp(v, "png")) fmt = DUMP_DOT, render = v;   /* through dot */
        else return usage_error("unknown format '%s'; formats: text, dot, nn, svg, png", v);
      } else {
        outpath = v;
      }
    } else if ((rc = take_file(a, &file))) {
      return rc;
    }
  }
  if (!file) return usage_error("%s", "dump needs a model file");
  const FileArg dump_in[] = {{"the model file", file, false}}, dump_out[] = {{"-o", outpath, true}};
  if ((rc = refuse_overwrite(dump_in, 1, dump_out, 1))) return rc;
  if (fmt == DUMP_NN && stage != STAGE_PARSE)
    return usage_error("%s", "--format nn writes the parse stage only (optimizer "
                       "state and updates have no model-file syntax)");
  if (render && (native || stats))
    return usage_error("--format %s draws the graph; --stats and the memory, llvm and asm stages are text", render);
  if (render && !strcmp(render, "png") && !outpath) return usage_error("%s", "--format png needs -o FILE.png");
  if (stats && stage < STAGE_OPT) stage = STAGE_OPT;
  PassStats st = {0};
  CompileOptions co = compile_defaults();
  co.last = stage, co.stop_after = after, co.stats = &st;
  Compilation *c = load(file, &co);
  if (!c) return 1;
  if (render) {
    /* the DOT text, then Graphviz's picture of it (graphviz.c) */
    char *text = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&text, &len);
    RtError err = {{0}};
    gradc_status s = GRADC_ERR_NOMEM;
    if (ms) {
      dump_graph(ms, c->graph, DUMP_DOT, c->graph->stage);
      s = fclose(ms) ? GRADC_ERR_NOMEM : cli_graphviz(text, len, render, outpath, &err);
    }
    if (s) fprintf(stderr, "gradc: error: %s\n", s == GRADC_ERR_NOMEM && !*err.msg ? "out of memory" : err.msg);
    free(text);
    compilation_free(c);
    return s ? 1 : 0;
  }
  FILE *out = stdout;
  if (outpath && !(out = fopen(outpath, "w"))) {
    perror(outpath);
    compilation_free(c);
    return 1;
  }
  rc = 0;
  if (native && !strcmp(native, "memory")) {
    if (!dump_memory(out, c->graph, batch)) {
      fprintf(stderr, "gradc: the workspace at batch %lld is too large to plan\n", (long long)batch);
      rc = 1;
    }
  } else if (native) {
    int nsyms;
    JitOptions jo = {.opt_level = 3, .keep_ir = !strcmp(native, "llvm"),
                     .keep_asm = !strcmp(native, "asm")};
    jo.symbols = rt_symbols(false, &nsyms);
    jo.nsymbols = nsyms;
    char err[2048];
    Jit *j = jit_compile(c->graph, &jo, err, sizeof err);
    if (!j) {
      fprintf(stderr, "gradc: %s\n", err);
      rc = 1;
    } else if (jo.keep_ir) {
      fprintf(out, "; ---- LLVM IR as generated ----\n%s\n; ---- after LLVM's O3 pipeline ----\n%s",
              jit_ir(j, false), jit_ir(j, true));
    } else {
      fputs(jit_asm(j) ? jit_asm(j) : "", out);
    }
    jit_free(j);
  } else {
    dump_graph(out, c->graph, fmt, c->graph->stage);
  }
  if (stats && c) {
    fprintf(out, "# canon (before autodiff): %d rewrites\n", c->graph->canon_rewrites);
    fprintf(out, "# %-10s %8s %8s %8s %9s\n", "pass", "before", "after", "changed", "ms");
    for (int k = 0; k < st.n; k++)
      fprintf(out, "# %-10s %8d %8d %8d %9.3f\n", st.pass[k].name, st.pass[k].before, st.pass[k].after,
              st.pass[k].changed, st.pass[k].ms);
    int64_t sym[MAX_SYMS + 1];
    for (int k = 0; k <= MAX_SYMS; k++) sym[k] = k ? batch : 1;
    size_t *off = malloc(sizeof(size_t) * (size_t)(c->graph->nnodes + 1)), naive = 0;
    size_t arena = off ? plan_offsets(c->graph, sym, c->graph->reuse_memory, off, &naive) : SIZE_MAX;
    if (arena != SIZE_MAX)
      fprintf(out, "# plan: workspace at batch %lld: %zu bytes; %zu without reuse; %zu with every "
              "value stored\n", (long long)batch, arena, naive, plan_unfused_bytes(c->graph, sym));
    free(off);
  }
  if (out != stdout) {               /* standard output is main's to check */
    errno = 0;
    bool bad = fflush(out) != 0 || ferror(out);
    int e = errno;
    bad |= fclose(out) != 0;
    if (bad) {
      fprintf(stderr, "gradc: error: cannot write '%s': %s\n", outpath, strerror(e ? e : errno ? errno : EIO));
      rc = 1;
    }
  }
  compilation_free(c);
  return rc;
}

static int cmd_summary(int argc, char **argv) {
  if (argc != 1 || argv[0][0] == '-')
    return usage_error("%s", "usage: gradc summary FILE.nn");
  CompileOptions co = compile_defaults();
  co.last = STAGE_PARSE;
  Compilation *c = load(argv[0], &co);
  if (!c) return 1;
  dump_summary(stdout, c->graph);
  compilation_free(c);
  return 0;
}

/* gradc plot HISTORY.csv [-o OUT.svg]: default HISTORY.svg */
static int cmd_plot(int argc, char **argv) {
  const char *csv = NULL, *svg = NULL;
  int rc;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-o")) {
      if (i + 1 >= argc) return usage_error("%s needs a value", "-o");
      svg = argv[++i];
    } else if ((rc = take_file(argv[i], &csv))) {
      return rc;
    }
  }
  if (!csv) return usage_error("%s", "plot needs a history file: gradc plot HISTORY.csv -o curves.svg");
  char def[4096];
  if (!svg) {
    const char *dot = strrchr(csv, '.'), *slash = strrchr(csv, '/');
    int stem = dot && (!slash || dot > slash) ? (int)(dot - csv) : (int)strlen(csv);
    snprintf(def, sizeof def, "%.*s.svg", stem, csv);
    svg = def;
  }
  if (!strcmp(svg, csv)) return usage_error("-o '%s' is the history itself", svg);
  RtError err = {{0}};
  gradc_status s = cli_plot(csv, svg, stdout, &err);
  if (s) fprintf(stderr, "gradc: error: %s\n", err.msg);
  return s ? 1 : 0;
}

static int cmd_check(int argc, char **argv) {
  const char *file = NULL;
  double seed = 1, batch = 3, tol = 1e-4, order = 0;
  int rc;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    double *dst = !strcmp(a, "--seed") ? &seed : !strcmp(a, "--batch") ? &batch
                : !strcmp(a, "--tol") ? &tol : !strcmp(a, "--order") ? &order : NULL;
    if (dst) {
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      double hi = dst == &tol ? 1 : dst == &batch ? 4096 : dst == &order ? 2 : 9007199254740991.0;
      double lo = dst == &batch || dst == &order ? 1 : 0;
      if (!number_opt(a, argv[++i], lo, hi, dst != &tol, dst)) return 2;
    } else if ((rc = take_file(a, &file))) {
      return rc;
    }
  }
  if (!file) return usage_error("%s", "check needs a model file");
  /* The graph gradc train compiles, passes and all, so that a pass that
   * changed a gradient would show here too. */
  CompileOptions co = compile_defaults();
  Compilation *c = load(file, &co);
  if (!c) return 1;
  /* A loss that holds grad() is checked at order 2 unless --order 1 says
   * otherwise: its own gradient already differentiates gradient nodes,
   * and order 2 differentiates once more. */
  int ord = order > 0 ? (int)order : c->graph->ngrad_exprs ? 2 : 1;
  rc = check_gradients_order(c->graph, (uint64_t)seed, (int64_t)batch, tol, ord, stdout);
  compilation_free(c);
  return rc == 0 ? 0 : 1;
}

/* Options shared by train, eval and predict. */
typedef struct RunArgs {
  const char *file, *load, *resume;
  TrainOptions t;
  gradc_options o;
  int64_t count;
  bool history_set;
  bool time_report;
  DistOptions mpi;
  const char *output;          /* gradc sample's PNG, or directory with --format idx */
  bool idx;
  OnnxImportOptions onnx;      /* MODEL.onnx --loss L [--label Y] [--optimizer O]: the model
                                  train trained, so eval and predict load its checkpoint */
} RunArgs;

/* Which of train, eval and predict take each option: an option a command
 * does not use is an error, never silently ignored (gradc train --load X
 * used to train from scratch, and --save X then replaced X). */
enum { TRAIN = 1, EVAL = 2, PREDICT = 4, SAMPLE = 8, SCORE = 16, RUNS = TRAIN | EVAL | PREDICT | SAMPLE | SCORE };
static const struct RunOption {
  const char *name;
  int commands;
} run_options[] = {
    {"--data", RUNS}, {"--epochs", TRAIN}, {"--batch", TRAIN | EVAL | SCORE}, {"--lr", TRAIN}, {"--seed", TRAIN},
    {"--val-split", TRAIN}, {"--save", TRAIN}, {"--resume", TRAIN}, {"--load", RUNS}, {"--history", TRAIN},
    {"--threads", RUNS}, {"--count", PREDICT | SAMPLE}, {"-O", RUNS}, {"-o", SAMPLE | PREDICT}, {"--format", SAMPLE | PREDICT}, {"--check-numerics", TRAIN}, {"--profile", TRAIN},
    {"--no-test", TRAIN}, {"--time-report", RUNS}, {"--no-cache", RUNS}, {"--sequences", RUNS},
    {"--padding", RUNS}, {"--truncating", RUNS}, {"--pad-value", RUNS}, {"--pixels", RUNS},
    {"--samples", TRAIN}, {"--sample-output", TRAIN | SAMPLE}, {"--mpi-timeout", TRAIN},
    {"--mpi-check", TRAIN}, {"--mpi-overlap", TRAIN}, {"--mpi-bucket-mb", TRAIN}, {"--mpi-reduce", TRAIN},
    {"--loss", RUNS}, {"--label", RUNS}, {"--optimizer", RUNS},
    {"--output", PREDICT}, {"--confusion", EVAL}, {"--class-names", EVAL},
    {"--arrays", RUNS}, {"--cifar-labels", RUNS}, {"--image-size", RUNS}, {"--no-shuffle", TRAIN}, {"--early-stopping", TRAIN}, {"--save-best", TRAIN}, {"--monitor", TRAIN}, {"--reduce-lr-on-plateau", TRAIN},
};

/* --arrays x=A,y=B,x_test=C,y_test=D (any of them): the names of the
 * arrays of an .npz that are the samples and labels of each split. */
static int parse_arrays(const char *v, const char *names[4]) {
  static const char *const keys[] = {"x", "y", "x_test", "y_test"};
  static char buf[4][256];
  for (const char *p = v; *p;) {
    const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p), *eq = memchr(p, '=', (size_t)(end - p));
    int k = 0;
    while (eq && k < 4 && ((size_t)(eq - p) != strlen(keys[k]) || strncmp(p, keys[k], (size_t)(eq - p)))) k++;
    if (!eq || k == 4 || eq + 1 == end || end - eq - 1 >= 256)
      return usage_error("--arrays takes x=NAME,y=NAME,x_test=NAME,y_test=NAME (any of them), got '%s'", v);
    snprintf(buf[k], sizeof buf[k], "%.*s", (int)(end - eq - 1), eq + 1);
    names[k] = buf[k];
    p = comma ? comma + 1 : end;
  }
  return 0;
}

static int parse_run_args(int argc, char **argv, RunArgs *r, const char *cmd) {
  gradc_options_default(&r->o);
  r->t = (TrainOptions){.data_dir = DEFAULT_DATA, .epochs = 5, .batch = 128, .seed = 1, .test = true,
                        };
  r->count = 10;
  r->mpi.timeout = 300;
  r->mpi.bucket_mb = 25;
  int rc, self = !strcmp(cmd, "train") ? TRAIN : !strcmp(cmd, "eval") ? EVAL : !strcmp(cmd, "sample") ? SAMPLE
               : !strcmp(cmd, "score") ? SCORE : PREDICT;
  if (self == SAMPLE) r->count = 64;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    double x;
    const struct RunOption *opt = NULL;
    for (size_t k = 0; k < sizeof run_options / sizeof *run_options; k++)
      if (!strcmp(a, run_options[k].name)) opt = &run_options[k];
    if (opt && !(opt->commands & self)) {
      char whose[40] = "";
      static const char *const names[] = {"train", "eval", "predict", "sample", "score"};
      for (int k = 0, left = opt->commands; k < 5; k++)
        if (opt->commands & 1 << k)
          left &= ~(1 << k), snprintf(whose + strlen(whose), sizeof whose - strlen(whose), "%s%s", *whose ? (left ? ", " : " and ") : "", names[k]);
      fprintf(stderr, "gradc: %s is not an option of gradc %s (only of gradc %s)\n"
              "(run 'gradc help' for usage)\n", a, cmd, whose);
      return 2;
    }
#define NEED_VALUE() do { if (!v) return usage_error("%s needs a value", a); i++; } while (0)
#define NUMBER(lo, hi) do { NEED_VALUE(); if (!number_opt(a, v, lo, hi, false, &x)) return 2; } while (0)
#define INTEGER(lo, hi) do { NEED_VALUE(); if (!number_opt(a, v, lo, hi, true, &x)) return 2; } while (0)
    if (!strcmp(a, "--data")) { NEED_VALUE(); r->t.data_dir = v; }
    else if (!strcmp(a, "--epochs")) { INTEGER(1, 1e6); r->t.epochs = (int)x; }
    else if (!strcmp(a, "--batch")) { INTEGER(1, 1 << 24); r->t.batch = (int64_t)x; }
    else if (!strcmp(a, "--lr")) { NUMBER(1e-12, 1e6); r->o.lr = x; }
    else if (!strcmp(a, "--seed")) { INTEGER(0, 9007199254740991.0); r->o.seed = r->t.seed = (uint64_t)x; }
    else if (!strcmp(a, "--val-split")) { NUMBER(0, 0.99); r->t.val_split = x; }
    else if (!strcmp(a, "--save")) { NEED_VALUE(); r->t.save = v; }
    /* train --load is --resume: both start from a checkpoint's parameters
     * and optimizer state, as eval and predict --load do. */
    else if (!strcmp(a, "--resume") || (self == TRAIN && !strcmp(a, "--load"))) {
      NEED_VALUE();
      if (r->resume && strcmp(r->resume, v))
        return usage_error("%s", "--resume and --load (its other name) name two checkpoints; give one");
      r->resume = v;
    }
    else if (!strcmp(a, "--load")) { NEED_VALUE(); r->load = v; }
    else if (!strcmp(a, "--history")) { NEED_VALUE(); r->t.history = v; r->history_set = true; }
    /* Keras' fit callbacks (callbacks.c) */
    else if (!strcmp(a, "--early-stopping") || !strcmp(a, "--reduce-lr-on-plateau") || !strcmp(a, "--monitor")) {
      NEED_VALUE();
      char msg[512];
      Callback *cb = !strcmp(a, "--early-stopping") ? &r->t.early_stopping
                     : !strcmp(a, "--monitor") ? &r->t.save_best : &r->t.reduce_lr;
      if (!cb_parse(a, v, cb, msg, sizeof msg)) return usage_error("%s", msg);
    }
    else if (!strcmp(a, "--save-best")) { NEED_VALUE(); r->t.save_best_path = v; }
    else if (!strcmp(a, "--threads")) { INTEGER(1, 1024); r->o.threads = (int)x; }
    else if (!strcmp(a, "--count")) { INTEGER(1, 1e6); r->count = (int64_t)x; }
    else if (!strcmp(a, "--format") && self == PREDICT) {
      /* predict's values of any output (issue 22) */
      NEED_VALUE();
      if (strcmp(v, "table") && strcmp(v, "csv") && strcmp(v, "npy"))
        return usage_error("predict --format takes table, csv or npy, got '%s'", v);
      r->t.predict_format = v;
    }
    else if (!strcmp(a, "--output")) { NEED_VALUE(); r->t.predict_output = v; }
    else if (!strcmp(a, "--confusion")) { NEED_VALUE(); r->t.confusion = v; }
    else if (!strcmp(a, "--class-names")) { NEED_VALUE(); r->t.class_names = v; }
    else if (!strcmp(a, "--format")) {
      NEED_VALUE();
      if (strcmp(v, "png") && strcmp(v, "idx")) return usage_error("--format takes png or idx, got '%s'", v);
      r->idx = !strcmp(v, "idx");
    }
    else if (!strcmp(a, "-o")) { NEED_VALUE(); r->output = v; }
    else if (!strcmp(a, "-O")) { INTEGER(0, 3); r->o.opt_level = (int)x; }
    else if (!strcmp(a, "--check-numerics")) r->o.check_numerics = 1;
    else if (!strcmp(a, "--profile")) r->t.profile = true;
    else if (!strcmp(a, "--no-test")) r->t.test = false;
    else if (!strcmp(a, "--time-report")) r->time_report = true;
    /* The library reads the switch from the environment (cache.c), so the
     * flag and GRADC_CACHE=off are one thing. */
    else if (!strcmp(a, "--no-cache")) setenv("GRADC_CACHE", "off", 1);
    else if (!strcmp(a, "--sequences")) r->t.sequences = true;
    else if (!strcmp(a, "--no-shuffle")) r->t.no_shuffle = true;
    else if (!strcmp(a, "--cifar-labels")) {
      NEED_VALUE();
      if (strcmp(v, "fine") && strcmp(v, "coarse")) return usage_error("--cifar-labels takes fine or coarse, got '%s'", v);
      r->t.cifar_coarse = !strcmp(v, "coarse");
    }
    else if (!strcmp(a, "--arrays")) {
      NEED_VALUE();
      if ((rc = parse_arrays(v, r->t.arrays))) return rc;
    }
    else if (!strcmp(a, "--image-size")) {
      NEED_VALUE();
      long long h, w, c = 0;
      int end = 0;
      if ((sscanf(v, "%lldx%lldx%lld%n", &h, &w, &c, &end) != 3 || v[end]) &&
          (c = 0, end = 0, sscanf(v, "%lldx%lld%n", &h, &w, &end) != 2 || v[end]))
        return usage_error("--image-size takes HxW or HxWxC (C 1 or 3), got '%s'", v);
      if (!c) c = 1;
      if (h < 1 || w < 1 || h > 4096 || w > 4096 || (c != 1 && c != 3))
        return usage_error("--image-size takes H and W in 1..4096 and C 1 or 3, got '%s'", v);
      r->t.image_size[0] = h, r->t.image_size[1] = w, r->t.image_size[2] = c;
    }
    else if (!strcmp(a, "--padding") || !strcmp(a, "--truncating")) {
      NEED_VALUE();
      if (strcmp(v, "pre") && strcmp(v, "post")) return usage_error("--padding and --truncating take pre or post, got '%s'", v);
      *(a[2] == 'p' ? &r->t.pad.pad_post : &r->t.pad.truncate_post) = !strcmp(v, "post");
    }
    else if (!strcmp(a, "--mpi-timeout")) { NUMBER(0.1, 1e7); r->mpi.timeout = x; }
    else if (!strcmp(a, "--mpi-check")) r->t.mpi_check = true;
    else if (!strcmp(a, "--mpi-overlap")) r->mpi.overlap = true;
    else if (!strcmp(a, "--mpi-bucket-mb")) { NUMBER(0, 1e6); r->mpi.bucket_mb = x; }
    else if (!strcmp(a, "--mpi-reduce")) {
      NEED_VALUE();
      if (!strcmp(v, "auto")) r->mpi.reduce = DIST_REDUCE_AUTO;
      else if (!strcmp(v, "shared")) r->mpi.reduce = DIST_REDUCE_SHARED;
      else if (!strcmp(v, "collective")) r->mpi.reduce = DIST_REDUCE_COLLECTIVE;
      else return usage_error("--mpi-reduce takes auto, shared or collective, not '%s'", v);
    }
    else if (!strcmp(a, "--pad-value")) { INTEGER(-2147483648.0, 2147483647.0); r->t.pad.value = (int32_t)x; }
    else if (!strcmp(a, "--pixels")) {
      NEED_VALUE();
      if (!strcmp(v, "0,1")) r->t.signed_pixels = false;
      else if (!strcmp(v, "-1,1")) r->t.signed_pixels = true;
      else return usage_error("--pixels takes 0,1 (the default) or -1,1, got '%s'", v);
    }
    /* what gradc import adds to an .onnx model, added in memory */
    else if (!strcmp(a, "--loss")) { NEED_VALUE(); r->onnx.loss = v; }
    else if (!strcmp(a, "--label")) { NEED_VALUE(); r->onnx.label = v; }
    else if (!strcmp(a, "--optimizer")) { NEED_VALUE(); r->onnx.optimizer = v; }
    else if (!strcmp(a, "--samples")) { NEED_VALUE(); r->t.samples = v; }
    else if (!strcmp(a, "--sample-output")) { NEED_VALUE(); r->t.sample_output = v; }
    else if ((rc = take_file(a, &r->file))) return rc;
#undef INTEGER
#undef NUMBER
#undef NEED_VALUE
  }
  if (!r->file) {
    fprintf(stderr, "gradc: %s needs a model file\n(run 'gradc help' for usage)\n", cmd);
    return 2;
  }
  if (r->t.save_best.on && !r->t.save_best_path) return usage_error("%s", "--monitor is --save-best's; give --save-best CKPT");
  /* A model file has its loss and train statement in its text; only an
   * .onnx model, which has none, takes them from the command line. */
  if ((r->onnx.loss || r->onnx.label || r->onnx.optimizer) && !onnx_is_onnx_path(r->file))
    return usage_error("--loss, --label and --optimizer add a loss to an .onnx model; %s states its own "
                       "(edit its loss and train lines)", r->file);
  if ((r->onnx.label || r->onnx.optimizer) && !r->onnx.loss)
    return usage_error("%s", "--label and --optimizer go with --loss softmax_cross_entropy|mse");
  if (r->t.save_best_path && !r->t.save_best.on) {
    /* ModelCheckpoint's default monitor, val_loss, where there is any */
    char msg[256];
    cb_parse("--monitor", r->t.val_split > 0 ? "val_loss" : "loss", &r->t.save_best, msg, sizeof msg);
  }
  return 0;
}

/* What gradc train, eval or predict reads: the model, the checkpoint and
 * the data (a CSV file, or the files of both splits in a directory); and
 * what train writes: the checkpoint and the history.  --save may be the
 * checkpoint it resumes from: that one is read whole before training, and
 * replaced atomically by the trained one, which is the point of resuming. */
static int refuse_run_overwrite(const RunArgs *r) {
  char files[4][4096];
  FileArg in[8] = {{"the model file", r->file, false}, {"--load", r->load, false}, {"--data", NULL, false}};
  int nin = 3;
  struct stat st;
  if (stat(r->t.data_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    RtError ignored;
    bool seq;
    for (int k = 0; k < 2; k++)   /* a missing file is the loader's to report */
      if (!data_mnist_paths(r->t.data_dir, k == 0, files[2 * k], files[2 * k + 1], sizeof files[0], &seq, &ignored)) {
        in[nin++] = (FileArg){"the data file", files[2 * k], false};
        in[nin++] = (FileArg){"the data file", files[2 * k + 1], false};
      }
  } else {
    in[2].path = r->t.data_dir;
  }
  const FileArg history[] = {{"--history", r->t.history, true}}, save[] = {{"--save", r->t.save, true}};
  in[nin] = (FileArg){"the checkpoint it resumes from", r->resume, false};
  int rc = refuse_overwrite(in, nin + 1, history, 1);
  in[nin] = history[0];
  rc = rc ? rc : refuse_overwrite(in, nin + 1, save, 1);
  const FileArg png[] = {{"-o", r->output, true}}, confusion[] = {{"--confusion", r->t.confusion, true}};
  rc = rc ? rc : refuse_overwrite(in, nin + 1, png, 1);
  return rc ? rc : refuse_overwrite(in, nin + 1, confusion, 1);
}

static int report(gradc_status s, const char *msg) {
  if (!s) return 0;
  fprintf(stderr, "gradc: error: %s\n", msg);
  return 1;
}

static int cmd_run_model(RunArgs *rp, bool training, const char *cmd);

static int cmd_run(int argc, char **argv, const char *cmd) {
  RunArgs r = {0};
  int rc = parse_run_args(argc, argv, &r, cmd);
  if (rc) return rc;
  bool training = !strcmp(cmd, "train");
  bool onnx = onnx_is_onnx_path(r.file);   /* its weights come with it */
  if (!training && !r.load && !onnx)
    return usage_error("%s needs --load CKPT (a checkpoint from gradc train --save)", cmd);
  if (!strcmp(cmd, "sample") && !r.output) return usage_error("%s", "sample needs -o GRID.png");

  /* Under mpirun -np N (N > 1) gradc train is one rank of a
   * data-parallel job (cli/mpi.c): every rank compiles the model with the
   * gradient reduction; rank 0 reads the checkpoint, prints and writes. */
  Dist dist = {0};
  RtError err = {{0}};
  if (training && dist_launched_size() > 1) {
    if (dist_init(&dist, &r.mpi, &err))
      return report(GRADC_ERR_ARG, err.msg);
    r.t.dist = &dist;
    r.o.data_parallel = 1;
    if (dist.rank > 0 && !(r.t.out = fopen("/dev/null", "w"))) dist_abort(&dist, 1);
  }
  r.t.model_path = r.file;
  rc = cmd_run_model(&r, training, cmd);
  if (r.t.dist) {
    /* a failure on one rank must not leave the others waiting in a
     * collective: it ends the job */
    if (rc && rc != 130) dist_abort(&dist, rc);
    dist_finish(&dist);
  }
  return rc;
}

static int cmd_run_model(RunArgs *rp, bool training, const char *cmd) {
  RunArgs r = *rp;
  int rc;
  bool onnx = onnx_is_onnx_path(r.file);
  gradc_model *m;
  const OnnxImportOptions *added = r.onnx.loss ? &r.onnx : NULL;
  gradc_status s = jitmodel_compile_file(r.file, &r.o, r.t.profile, added, &m);
  if (s) {
    const char *msg = gradc_last_error(NULL);
    fputs(msg, stderr);
    if (!*msg || msg[strlen(msg) - 1] != '\n') fputc('\n', stderr);
    return 1;
  }
  char hist[512];
  if (training && !r.history_set) {
    snprintf(hist, sizeof hist, "%s_history.csv", jitmodel_graph(m)->model_name);
    r.t.history = hist;
  }
  if ((rc = refuse_run_overwrite(&r))) {
    gradc_free(m);
    return rc;
  }
  fputs(gradc_warnings(m), stderr);
  if (r.time_report)
    time_print(stderr, jitmodel_times(m), jitmodel_from_cache(m) ? "gradc compile time report (object from the cache)"
                                                                 : "gradc compile time report");
  const char *ckpt = training ? r.resume : r.load;
  if (training && onnx && !jitmodel_graph(m)->nsteps) {
    fprintf(stderr, "gradc: error: %s has no loss to train; add one: gradc train %s --loss "
            "softmax_cross_entropy [--label y] [--optimizer 'adam(lr=0.001)'], or write a model file with it: "
            "gradc import %s --loss softmax_cross_entropy (README: ONNX)\n", r.file, r.file, r.file);
    gradc_free(m);
    return 1;
  }
  if (onnx && !ckpt && cli_onnx_weights(m, r.file, added)) {
    gradc_free(m);
    return 1;
  }
  bool lead = !r.t.dist || r.t.dist->rank == 0;   /* the others get rank 0's state */
  if (ckpt && lead && (s = gradc_load(m, ckpt))) {
    rc = report(s, gradc_last_error(m));
    gradc_free(m);
    return rc;
  }
  RtError err = {{0}};
  if (training && lead) {
    dump_summary(stdout, jitmodel_graph(m));
    int nt = rt_context_threads(rt_context(m));
    if (r.t.dist)
      printf("data parallel: %d ranks (MPI), each %lld rows of every batch of %lld\n", r.t.dist->size,
             (long long)(r.t.batch / r.t.dist->size), (long long)r.t.batch);
    printf("compiled in %.0f ms (LLVM -O%d; products: %s kernels, OpenBLAS %s kernels for the rest; "
           "%d thread%s)\n", gradc_compile_ms(m), r.o.opt_level, gemm_kernels(), rt_blas_kernels(), nt,
           nt == 1 ? "" : "s");
    if (ckpt) printf("resumed from %s\n", ckpt);
  }
  if (training) {
    s = cli_train(m, &r.t, &err);
    if (!s && r.t.dist && lead && r.t.dist->reductions) {
      printf("communication: %.3f s in %ld reductions of %ld tensors (buckets of %g MiB; %d ranks; %s)",
             r.t.dist->comm_seconds, r.t.dist->reductions, r.t.dist->gradients, r.mpi.bucket_mb, r.t.dist->size,
             r.t.dist->shared ? "shared memory" : "MPI collectives");
      if (r.mpi.overlap)
        printf("; the steps waited %.3f s for them: %.0f%% hidden behind the backward pass", r.t.dist->wait_seconds,
               r.t.dist->wait_seconds < r.t.dist->comm_seconds
                   ? 100 * (1 - r.t.dist->wait_seconds / r.t.dist->comm_seconds) : 0.0);
      printf("\n");
    }
    if (!s && r.t.history && lead) printf("history: %s\n", r.t.history);
    if (!s && cli_interrupted()) {
      gradc_free(m);
      return 130;                 /* the shell's convention for SIGINT */
    }
  } else if (!strcmp(cmd, "eval")) {
    s = cli_evaluate(m, &r.t, &err);
  } else if (!strcmp(cmd, "sample")) {
    if (!r.idx && r.count > 1024) s = rt_fail(&err, GRADC_ERR_ARG, "a PNG grid holds at most 1024 images, not %lld "
                                              "(--format idx writes any number)", (long long)r.count);
    if (!s) s = cli_sample(m, &r.t, r.output, r.count, r.idx, &err);
    if (!s) printf("wrote %s%s\n", r.output, r.idx ? "/t10k-images-idx3-ubyte and its labels (all 0)" : "");
  } else if (!strcmp(cmd, "score")) {
    double is;
    int64_t n;
    s = cli_score(m, &r.t, &is, &n, &err);
    if (!s) printf("inception score: %.4f over %lld images (output '%s')\n", is, (long long)n,
                   jitmodel_graph(m)->outputs[0].name);
  } else {
    r.t.predict_path = r.output;
    s = cli_predict(m, &r.t, r.count, &err);
  }
  if (s && r.t.dist) {
    fprintf(stderr, "gradc: error: rank %d of %d: %s\n", r.t.dist->rank, r.t.dist->size, err.msg);
    rc = 1;
  } else {
    rc = report(s, err.msg);
  }
  gradc_free(m);
  return rc;
}

static int cmd_compile(int argc, char **argv) {
  AotOptions o = {.kind = EMIT_SO, .opt_level = 3};
  TimeReport times = {0};
  const char *emit = "so";
  int rc;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = !strcmp(a, "-o") ? &o.output : !strcmp(a, "--header") ? &o.header
                     : !strcmp(a, "--target") ? &o.triple : !strcmp(a, "--cpu") ? &o.cpu
                     : !strcmp(a, "--name") ? &o.prefix : !strcmp(a, "--emit") ? &emit : NULL;
    if (dst) {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("%s needs a value", a);
      *dst = argv[++i];
    } else if (!strcmp(a, "--time-report")) {
      o.times = &times;
    } else if (!strcmp(a, "--data-parallel")) {
      o.data_parallel = true;
    } else if (!strcmp(a, "-O")) {
      double x;
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      if (!number_opt(a, argv[++i], 0, 3, true, &x)) return 2;
      o.opt_level = (int)x;
    } else if ((rc = take_file(a, &o.model))) {
      return rc;
    }
  }
  if (!o.model) return usage_error("%s", "compile needs a model file");
  static const char *const kinds[] = {"so", "obj", "asm", "llvm"};
  static const char *const ext[] = {".so", ".o", ".s", ".ll"};
  int k = 0;
  while (k < 4 && strcmp(emit, kinds[k])) k++;
  if (k == 4) return usage_error("unknown --emit '%s'; forms: so, obj, asm, llvm", emit);
  o.kind = (EmitKind)k;
  char def[512], info[300];
  if (!o.output) {
    /* The model file's stem, as the compiler names the model. */
    const char *base = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
    size_t len = strcspn(base, ".");
    snprintf(def, sizeof def, "%s%.*s%s", k == EMIT_SO ? "lib" : "", (int)(len > 200 ? 200 : len), base, ext[k]);
    o.output = def;
  }
  const FileArg compile_in[] = {{"the model file", o.model, false}},
                compile_out[] = {{"-o", o.output, true}, {"--header", o.header, true}};
  if ((rc = refuse_overwrite(compile_in, 1, compile_out, 2))) return rc;
  o.info = info;
  o.info_len = sizeof info;
  RtError err = {{0}};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  gradc_status s = cli_compile(&o, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (s == GRADC_ERR_MODEL) return 1;          /* diagnostics already printed */
  if (s) return report(s, err.msg);
  printf("wrote %s%s%s (%s) in %.0f ms\n", o.output, o.header ? " and " : "", o.header ? o.header : "", info,
         (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  time_print(stderr, o.times, "gradc compile time report");
  return 0;
}

/* gradc run FILE.nn [--feed NAME=FILE]... [--seed N] [--format text|npy -o DIR] */
static int cmd_run_once(int argc, char **argv) {
  RunOptions o = {.seed = 1, .opt_level = 3};
  const char *format = "text", *dir = NULL;
  int rc;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--feed") || !strcmp(a, "--seed") || !strcmp(a, "--format") || !strcmp(a, "-o")) {
      if (i + 1 >= argc || !*argv[i + 1]) return usage_error("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--format")) format = v;
      else if (!strcmp(a, "-o")) dir = v;
      else if (!strcmp(a, "--seed")) {
        double x;
        if (!number_opt(a, v, 0, 9007199254740992.0, true, &x)) return 2;
        o.seed = (uint64_t)x;
      } else {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1]) return usage_error("--feed takes NAME=FILE, got '%s'", v);
        if (o.nfeeds == RUN_MAX_FEEDS) return usage_error("%s", "too many --feed options");
        o.feeds[o.nfeeds].name = strndup(v, (size_t)(eq - v));
        o.feeds[o.nfeeds++].path = eq + 1;
      }
    } else if (!strcmp(a, "-O")) {
      double x;
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      if (!number_opt(a, argv[++i], 0, 3, true, &x)) return 2;
      o.opt_level = (int)x;
    } else if (!strcmp(a, "--shapes")) {
      o.shapes_only = true;
    } else if ((rc = take_file(a, &o.model))) {
      return rc;
    }
  }
  if (!o.model) return usage_error("%s", "run needs a model file");
  if (!strcmp(format, "npy")) {
    if (!dir) return usage_error("%s", "--format npy needs -o DIR");
    o.npy_dir = dir;
  } else if (strcmp(format, "text")) {
    return usage_error("unknown --format '%s'; forms: text, npy", format);
  } else if (dir) {
    return usage_error("%s", "-o DIR goes with --format npy");
  }
  RtError err = {{0}};
  gradc_status s = cli_run(&o, stdout, &err);
  for (int i = 0; i < o.nfeeds; i++) free((char *)o.feeds[i].name);
  if (s == GRADC_ERR_MODEL) {
    fputs(err.msg, stderr);
    return 1;
  }
  return report(s, err.msg);
}

/* gradc cache stats | clear */
static int cmd_cache(int argc, char **argv) {
  if (argc != 1 || (strcmp(argv[0], "stats") && strcmp(argv[0], "clear")))
    return usage_error("%s", "usage: gradc cache stats|clear");
  Cache c;
  if (!cache_open(&c)) {
    printf("cache: off (GRADC_CACHE=off, or neither XDG_CACHE_HOME nor HOME is set)\n");
    return 0;
  }
  if (!strcmp(argv[0], "stats")) {
    if (cache_stats(stdout, &c)) return 0;
  } else {
    int n = cache_clear(&c);
    if (n >= 0) {
      printf("removed %d entr%s from %s\n", n, n == 1 ? "y" : "ies", c.dir);
      return 0;
    }
  }
  fprintf(stderr, "gradc: error: cannot read the cache directory '%s': %s\n", c.dir, strerror(errno));
  return 1;
}

static int command(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    fputs(usage_data, stderr);
    fputs(usage2, stderr);
    fputs(usage_onnx, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    fputs(usage, stdout);
    fputs(usage_data, stdout);
    fputs(usage2, stdout);
    fputs(usage_onnx, stdout);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("gradc %s\n", GRADC_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "dump")) return cmd_dump(argc - 2, argv + 2);
  if (!strcmp(cmd, "summary")) return cmd_summary(argc - 2, argv + 2);
  if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
  if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
  if (!strcmp(cmd, "compile")) return cmd_compile(argc - 2, argv + 2);
  if (!strcmp(cmd, "cache")) return cmd_cache(argc - 2, argv + 2);
  if (!strcmp(cmd, "import")) return cli_import(argc - 2, argv + 2);
  if (!strcmp(cmd, "export")) return cli_export(argc - 2, argv + 2);
  if (!strcmp(cmd, "run")) return cmd_run_once(argc - 2, argv + 2);
  if (!strcmp(cmd, "train") || !strcmp(cmd, "eval") || !strcmp(cmd, "predict") || !strcmp(cmd, "sample") ||
      !strcmp(cmd, "score"))
    return cmd_run(argc - 2, argv + 2, cmd);
  return usage_error("unknown command '%s'", cmd);
}

/* Standard output is checked as every output file is: its buffered
 * writes fail only at the flush or close (a full disk, /dev/full), and a
 * command whose output was lost must not exit 0. */
int main(int argc, char **argv) {
  int rc = command(argc, argv);
  errno = 0;
  bool bad = fflush(stdout) != 0 || ferror(stdout);
  int e = errno;
  bad |= fclose(stdout) != 0;
  if (!e) e = errno;
  if (bad) {
    fprintf(stderr, "gradc: error: cannot write the standard output: %s\n", e ? strerror(e) : "a write failed");
    return rc ? rc : 1;
  }
  return rc;
}
