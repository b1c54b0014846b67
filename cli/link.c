/*
 * link.c - gradc compile: a model file to a self-contained shared object,
 * or to the object, assembly or LLVM IR it is made of, and its C header.
 *
 * The graph comes from the JIT's pipeline (compile(), the same options at
 * the same level), and the same code generator turns it into LLVM IR; emit.c then writes an object file for
 * the requested target instead of loading the code into this process.  For
 * a .so, the system's C compiler driver (cc, or $CC) links that object with
 * libgradc_aot.a - the support library (runtime/aot.c), built next to the
 * gradc binary and installed in <libdir>/gradc - OpenBLAS and libm:
 *
 *   cc -shared -o OUT model.o libgradc_aot.a -Wl,--version-script=V
 *      -Wl,--no-undefined -lopenblas -lm
 *
 * The version script exports <prefix>_* and nothing else; --no-undefined
 * makes a missing function a link error here instead of a load error on
 * the user's machine.  The link writes a temporary file beside OUT that is
 * renamed over it, so a program that has the old .so mapped keeps running
 * and a failed link leaves no half-written file.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#ifndef GRADC_BLAS_LIBRARY
#define GRADC_BLAS_LIBRARY "-lopenblas"
#endif
/* Where cmake --install puts libgradc_aot.a, relative to the installed
 * gradc binary: <libdir>/gradc from <bindir> (CMakeLists.txt). */
#ifndef GRADC_AOT_RELDIR
#define GRADC_AOT_RELDIR "../lib/gradc"
#endif

extern char **environ;

/* The model through the one pipeline (compiler/compile.c), with the
 * options gradc_compile_file uses at this level. */
static Compilation *compile_graph(const char *path, int opt_level, bool data_parallel, TimeReport *times,
                                  RtError *err) {
  gradc_options api;
  gradc_options_default(&api);
  api.opt_level = opt_level;
  api.data_parallel = data_parallel;
  CompileOptions co = jitmodel_compile_options(&api);
  co.times = times;
  Compilation *c = compile_path(path, &co);
  if (!c) {
    rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
    return NULL;
  }
  diag_print(stderr, &c->diags);
  if (!c->graph) {
    rt_fail(err, c->status == COMPILE_ERR_IO ? GRADC_ERR_IO : c->status == COMPILE_ERR_NOMEM ? GRADC_ERR_NOMEM : GRADC_ERR_MODEL,
            "cannot compile '%s'", path);
    compilation_free(c);
    return NULL;
  }
  return c;
}

/* libgradc_aot.a next to the running gradc (the build tree), or in
 * GRADC_AOT_RELDIR from it (an installed gradc); $GRADC_AOT_LIB overrides
 * both. */
static bool find_support(char *out, size_t n, RtError *err) {
  const char *env = getenv("GRADC_AOT_LIB");
  if (env && *env) {
    snprintf(out, n, "%s", env);
    if (access(out, R_OK) == 0) return true;
    rt_fail(err, GRADC_ERR_IO, "the support library '%s' ($GRADC_AOT_LIB) cannot be read: %s", out, strerror(errno));
    return false;
  }
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) {
    rt_fail(err, GRADC_ERR_IO, "cannot find the gradc binary's directory (/proc/self/exe): %s", strerror(errno));
    return false;
  }
  exe[len] = 0;
  char *dir = dirname(exe);
  snprintf(out, n, "%s/libgradc_aot.a", dir);
  if (access(out, R_OK) == 0) return true;
  char first[4400];
  snprintf(first, sizeof first, "%s", out);
  snprintf(out, n, "%s/" GRADC_AOT_RELDIR "/libgradc_aot.a", dir);
  if (access(out, R_OK) == 0) return true;
  rt_fail(err, GRADC_ERR_IO,
          "the support library libgradc_aot.a is missing (looked for '%s' and '%s'); it is built with gradc "
          "(cmake --build) and installed with it (cmake --install), or set GRADC_AOT_LIB", first, out);
  return false;
}

/* Runs argv, its output into log; the exit status, or -1 with errno set
 * when it could not be started. */
static int run(char *const *argv, const char *log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e) {
    errno = e;
    return -1;
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  /* posix_spawnp reports a missing program as exit 127 from the child on glibc. */
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
    errno = ENOENT;
    return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void tail_of(const char *path, char *out, size_t n) {
  out[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t got = fread(out, 1, n - 1, f);
  out[got] = 0;
  fclose(f);
}

static gradc_status link_so(const char *obj, const char *out, const char *prefix, const char *dir, RtError *err) {
  char support[4300];
  if (!find_support(support, sizeof support, err)) return GRADC_ERR_IO;
  char script[4200], log[4200], tmp[4300];
  snprintf(script, sizeof script, "%s/exports.map", dir);
  snprintf(log, sizeof log, "%s/link.log", dir);
  FILE *f = fopen(script, "w");
  if (!f || fprintf(f, "{\n  global: %s_*;\n  local: *;\n};\n", prefix) < 0 || fclose(f) != 0)
    return rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", script, strerror(errno));
  /* The temporary output beside out: created here so that an unwritable
   * directory is reported as such, not as a linker failure. */
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  if (fd < 0) return rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", out, strerror(errno));
  close(fd);
  const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
  char vs[4300];
  snprintf(vs, sizeof vs, "-Wl,--version-script=%s", script);
  char *argv[] = {(char *)cc, "-shared", "-o", tmp, (char *)obj, support, vs, "-Wl,--no-undefined",
                  GRADC_BLAS_LIBRARY, "-lm", NULL};
  int rc = run(argv, log);
  if (rc != 0) {
    int e = errno;
    unlink(tmp);
    if (rc < 0)
      return rt_fail(err, GRADC_ERR_IO,
                     "cannot run the linker '%s': %s (install build-essential, set CC, or use --emit obj and "
                     "link yourself)", cc, strerror(e));
    char text[700];
    tail_of(log, text, sizeof text);
    return rt_fail(err, GRADC_ERR_IO, "linking '%s' with '%s' failed (exit %d):\n%s", out, cc, rc, text);
  }
  if (rename(tmp, out) != 0) {
    int e = errno;
    unlink(tmp);
    return rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", out, strerror(e));
  }
  return GRADC_OK;
}

/* The global symbols an ar archive defines, from its symbol index (the
 * GNU "/" or "/SYM64/" member that ranlib writes): a list of
 * NUL-terminated names into *names, *count of them; false when the file
 * cannot be read or has no index. */
static bool archive_symbols(const char *path, char **names, size_t *bytes, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char magic[8], hdr[60];
  bool ok = fread(magic, 1, 8, f) == 8 && (!memcmp(magic, "!<arch>\n", 8) || !memcmp(magic, "!<thin>\n", 8)) &&
            fread(hdr, 1, 60, f) == 60 && !memcmp(hdr + 58, "`\n", 2);
  int width = ok && !memcmp(hdr, "/               ", 16) ? 4 : ok && !memcmp(hdr, "/SYM64/         ", 16) ? 8 : 0;
  char size_text[11];
  memcpy(size_text, hdr + 48, 10);
  size_text[10] = 0;
  long size = width ? strtol(size_text, NULL, 10) : 0;
  char *data = size > width && size < (64L << 20) ? malloc((size_t)size) : NULL;
  ok = data && fread(data, 1, (size_t)size, f) == (size_t)size;
  fclose(f);
  if (!ok) {
    free(data);
    return false;
  }
  uint64_t n = 0;
  for (int i = 0; i < width; i++) n = n << 8 | (unsigned char)data[i];
  size_t skip = (size_t)width * (1 + (size_t)(n < (uint64_t)size ? n : 0));
  if (n >= (uint64_t)size || skip > (size_t)size) {
    free(data);
    return false;
  }
  memmove(data, data + skip, (size_t)size - skip);
  *names = data, *bytes = (size_t)size - skip, *count = (size_t)n;
  return true;
}

/* Why refused: the .so exports every <prefix>_* symbol (the version
 * script) and defines <prefix>_<entry> and <prefix>__<function>, so a
 * prefix under which the support library defines a name - gradc_aot
 * (gradc_aot_new), gradc, pool (pool_new), rt, inst - either makes two
 * definitions of one symbol (the model's entry points silently renamed
 * and nothing links) or exports the support library's internals.  A
 * name that a library of every program (libc, libm, OpenBLAS) defines
 * would take its place in the program.  The archive's own index says
 * what it defines, so this list cannot fall behind the runtime. */
static gradc_status check_prefix(const char *prefix, bool given, const char *support, const Graph *g,
                                 RtError *err) {
  size_t plen = strlen(prefix);
  char whose[200];
  snprintf(whose, sizeof whose, given ? "--name '%s'" : "the symbol prefix '%s' (the model's file name)", prefix);
  char *names = NULL;
  size_t bytes = 0, count = 0;
  if (support && archive_symbols(support, &names, &bytes, &count)) {
    const char *sym = names;
    for (size_t i = 0; i < count && sym < names + bytes; i++, sym += strlen(sym) + 1) {
      if (strncmp(sym, prefix, plen) != 0 || sym[plen] != '_') continue;
      gradc_status st = rt_fail(err, GRADC_ERR_ARG,
                                "%s clashes with the support library: %s defines '%s', and a .so "
                                "exports and defines the symbols %s_*; choose another prefix with --name",
                                whose, support, sym, prefix);
      free(names);
      return st;
    }
    free(names);
  }
  char sym[300];
  const char *entries[] = {
#define ENTRY(name, sig) #name,
      GRADC_ABI_ENTRIES(ENTRY)
#undef ENTRY
  };
  int nentries = (int)(sizeof entries / sizeof *entries);
  for (int i = 0; i < nentries + g->nsteps; i++) {
    if (i < nentries) snprintf(sym, sizeof sym, "%s_%s", prefix, entries[i]);
    else snprintf(sym, sizeof sym, "%s_step_%s", prefix, g->steps[i - nentries].name);
    if (dlsym(RTLD_DEFAULT, sym))
      return rt_fail(err, GRADC_ERR_ARG,
                     "%s clashes with a library: '%s', an entry point of the .so, is already "
                     "defined by a library programs link (libc, libm, OpenBLAS); choose another prefix "
                     "with --name", whose, sym);
  }
  return GRADC_OK;
}

static bool is_identifier(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
      return false;
  return true;
}

gradc_status cli_compile(const AotOptions *o, RtError *err) {
  Compilation *c = compile_graph(o->model, o->opt_level, o->data_parallel, o->times, err);
  if (!c) return GRADC_ERR_MODEL;
  const Graph *g = c->graph;
  char prefix[128];
  if (o->prefix) {
    snprintf(prefix, sizeof prefix, "%s", o->prefix);
  } else {
    /* The model's name as a C identifier: "mnist-mlp" -> mnist_mlp. */
    size_t k = 0;
    if (g->model_name[0] >= '0' && g->model_name[0] <= '9') prefix[k++] = '_';
    for (const char *s = g->model_name; *s && k + 1 < sizeof prefix; s++)
      prefix[k++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ? *s : '_';
    prefix[k] = 0;
  }
  if (!is_identifier(prefix) || strlen(prefix) > 100) {
    compilation_free(c);
    return rt_fail(err, GRADC_ERR_ARG, "--name '%s' is not a C identifier of at most 100 characters", prefix);
  }
  /* The support library is needed to link a .so; for an object, assembly
   * or IR the user links it later, so it is checked when it is here. */
  char support[4300];
  RtError ignored = {0};
  bool have_support = find_support(support, sizeof support, o->kind == EMIT_SO ? err : &ignored);
  gradc_status ps = o->kind == EMIT_SO && !have_support ? GRADC_ERR_IO
                    : check_prefix(prefix, o->prefix != NULL, have_support ? support : NULL, g, err);
  if (ps) {
    compilation_free(c);
    return ps;
  }
  EmitOptions eo = {.kind = o->kind, .triple = o->triple, .cpu = o->cpu, .prefix = prefix, .opt_level = o->opt_level,
                  .times = o->times};
  char dir[4096], obj[4200], msg[2048];
  const char *tmp_root = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/gradc_compile.XXXXXX", tmp_root);
  const char *tmpdir = NULL;
  gradc_status s = GRADC_OK;
  if (o->kind == EMIT_SO) {
    tmpdir = mkdtemp(dir);
    if (!tmpdir) s = rt_fail(err, GRADC_ERR_IO, "cannot create a temporary directory: %s", strerror(errno));
    snprintf(obj, sizeof obj, "%s/model.o", dir);
  }
  if (!s && !emit_file(g, &eo, o->kind == EMIT_SO ? obj : o->output, msg, sizeof msg))
    s = rt_fail(err, GRADC_ERR_JIT, "%s", msg);
  if (!s && o->kind == EMIT_SO) {
    if (!eo.host_arch)
      s = rt_fail(err, GRADC_ERR_ARG,
                  "cannot link a shared object for '%s' on this machine (the support library is built for "
                  "this host); use --emit obj and link it with a libgradc_aot.a built for that target",
                  eo.triple_used);
    else
      s = link_so(obj, o->output, prefix, dir, err);
  }
  if (!s && o->header) {
    FILE *f = fopen(o->header, "w");
    if (!f) {
      s = rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", o->header, strerror(errno));
    } else {
      header_write(f, g, &eo);
      bool bad = ferror(f);
      if (fclose(f) != 0 || bad) s = rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", o->header, strerror(errno));
    }
  }
  if (tmpdir) {
    char p[4200];
    static const char *const files[] = {"model.o", "exports.map", "link.log"};
    for (int i = 0; i < 3; i++) {
      snprintf(p, sizeof p, "%s/%s", dir, files[i]);
      unlink(p);
    }
    rmdir(dir);
  }
  if (!s && o->info) snprintf(o->info, o->info_len, "target %s, CPU %s, symbols %s_*", eo.triple_used, eo.cpu_used, prefix);
  compilation_free(c);
  return s;
}
