/*
 * jit.c - LLVM module -> native code in this process, through ORC LLJIT.
 *
 * The module is optimised with LLVM's new pass manager at the requested
 * level for the host CPU (its name and features, so AVX2/AVX-512 are used
 * where present) and compiled here to an object file in memory, which an
 * LLJIT for the same host links (LLVMOrcLLJITAddObjectFile).  Making the
 * object ourselves, rather than handing LLJIT the IR, is what lets the
 * object cache (cache.c) keep it: on a hit the same object is linked and
 * LLVM's pipeline and code generator do not run at all.  Calls the module
 * makes to the outside (gradc_sgemm, libm) resolve to the addresses the
 * runtime passes in, then to symbols of the process.
 *
 * A large module is split among threads, one LLVM context each, into
 * several objects that LLJIT links (parallel_objects).  The cache's key
 * is computed from the optimized graph before any IR exists (object_key),
 * so that a hit generates none.
 *
 * Each step adds a row to the caller's TimeReport (--time-report).
 *
 * LLVM's C API drifts between versions; every call of it that the JIT needs
 * is here (LLVM 19).
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "compiler.h"
#include "llvm_internal.h"

struct Jit {
  LLVMOrcLLJITRef jit;
  StepFn **fns;               /* graph_function_roots' order */
  int nfns;
  char *ir_before, *ir_after, *asm_text;
  bool from_cache;            /* the object came from the cache */
};

static bool take_error(LLVMErrorRef e, char *err, size_t errlen, const char *what) {
  if (!e) return false;
  char *m = LLVMGetErrorMessage(e);
  snprintf(err, errlen, "%s: %s", what, m);
  LLVMDisposeErrorMessage(m);
  return true;
}

static char *dup_llvm(char *s) {
  char *r = strdup(s ? s : "");
  LLVMDisposeMessage(s);
  return r;
}

/* LLVM's options for machine code generation, set once for the process
 * (they are LLVM's global command-line options).  Each cut the time of
 * generating machine code for the kernels and none changed a step time
 * beyond noise (README: Compile time, measured on mnist_mlp, cnn_seed,
 * cnn_bn and resnet_small): loop strength reduction (a sixth of the time)
 * rewrites addresses that are already base + index * size, which x86
 * addressing takes as they are; a vectorized loop's remainder runs as a
 * scalar loop instead of a second, narrower vector loop; the schedulers
 * order instructions for a core that reorders them itself.  (Fast
 * instruction selection, -fast-isel, saved a tenth more, but it forms no
 * fused multiply-adds where the full selector does, so a kernel's scalar
 * and vector paths - one thread or several - no longer gave the same
 * bits.)  GRADC_LLVM_CODEGEN=llvm
 * keeps LLVM's defaults (and LLVM's default<O3> pipeline), to compare. */
static const char *const codegen_options[] = {
    "-disable-lsr", "-enable-epilogue-vectorization=false", "-post-RA-scheduler=false", "-enable-misched=false",
};

bool llvm_defaults(void) {
  const char *v = getenv("GRADC_LLVM_CODEGEN");
  return v && !strcmp(v, "llvm");
}

/* Every target this LLVM was built with: the AOT emitter cross-compiles. */
static void initialise_targets(void) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  const char *args[24] = {"gradc"};
  int n = 1;
  if (!llvm_defaults())
    for (size_t k = 0; k < sizeof codegen_options / sizeof *codegen_options; k++) args[n++] = codegen_options[k];
  /* GRADC_LLVM_OPTIONS: more of LLVM's options, space-separated, for
   * experiments (an option this LLVM does not know ends the process:
   * that is LLVM's command-line parser) */
  static char extra[512];
  const char *env = getenv("GRADC_LLVM_OPTIONS");
  if (env) {
    snprintf(extra, sizeof extra, "%s", env);
    for (char *save = NULL, *tok = strtok_r(extra, " ", &save); tok && n < 24; tok = strtok_r(NULL, " ", &save))
      args[n++] = tok;
  }
  if (n > 1) LLVMParseCommandLineOptions(n, args, NULL);
  /* LLVM makes some of its globals on first use (the pass timers' group
   * and lock, made by every pass pipeline): once here, before the parts'
   * threads run pipelines at once.  Its lazy set-up is thread-safe, but
   * by atomics inside libLLVM that ThreadSanitizer does not see. */
  LLVMModuleRef warm = LLVMModuleCreateWithName("gradc_warm_up");
  LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(warm, "function(instcombine<no-verify-fixpoint>)", NULL, pbo);
  if (e) LLVMConsumeError(e);
  LLVMDisposePassBuilderOptions(pbo);
  LLVMDisposeModule(warm);
}

LLVMTargetMachineRef llvm_target_machine(const char *triple, const char *cpu, const char *features,
                                         LLVMCodeGenOptLevel level, LLVMCodeModel model, char *err,
                                         size_t errlen) {
  /* Once per process, whichever thread compiles first. */
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, initialise_targets);
  LLVMTargetRef t;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    snprintf(err, errlen, "no LLVM target for '%s': %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, cpu, features, level, LLVMRelocPIC, model);
  if (!tm) snprintf(err, errlen, "LLVM could not create a target machine for '%s'", triple);
  return tm;
}

/* This host's CPU name and features.  Machine code is generated at LLVM's
 * default level, as LLJIT's own compile layer did before objects were
 * made here (and as the AOT emitter does): the same instructions, so the
 * same bits; position-independent and small, so that an object from the
 * cache links at whatever address the JIT gives it. */
static LLVMTargetMachineRef host_machine(char *err, size_t errlen) {
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
  LLVMTargetMachineRef tm =
      llvm_target_machine(triple, cpu, feat, LLVMCodeGenLevelDefault, LLVMCodeModelSmall, err, errlen);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  return tm;
}

/* The pass pipeline at -O2 and -O3: what the generated loops need, not
 * LLVM's whole default<O3>.  The kernels are loop nests over buffers the
 * plan laid out, called through tables (no inlining to do, no C++ to
 * devirtualise); what makes them fast is that invariants leave the loops
 * and the innermost loops are vectorized: SROA and early CSE clean the
 * IR as generated, loops rotate into the form the vectorizer takes, LICM
 * hoists, GVN removes the loads that are left twice.  (Instruction
 * combining as the pass text names it checks that one round reached a
 * fixpoint and aborts the process if not; default<O3> does not check, nor
 * do we.)  default<O3> also
 * ran the interprocedural passes, loop unswitching (which copies the
 * loops with a test hoisted out of them: more code to generate), the SLP
 * vectorizer and many cleanups again, and took twice the time for no
 * step time we measured (README: Compile time).  -O1 keeps LLVM's own
 * default<O1>.  GRADC_LLVM_PASSES (an LLVM pipeline text) replaces it,
 * for experiments; GRADC_LLVM_CODEGEN=llvm makes it default<O3>. */
static const char *const gradc_pipeline =
    "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,loop-mssa(loop-rotate,licm),"
    "loop(indvars),gvn,loop-vectorize,instcombine<no-verify-fixpoint>,simplifycfg)";

static void pipeline_text(int opt, char *out, size_t n) {
  const char *env = getenv("GRADC_LLVM_PASSES");
  if (env && *env) snprintf(out, n, "%s", env);
  else if (opt >= 2 && !llvm_defaults()) snprintf(out, n, "%s", gradc_pipeline);
  else snprintf(out, n, "default<O%d>", opt);
}

/* llvm_optimize's pipeline in words, for the cache's key: change the two
 * together, or old entries would be taken for new code. */
static void pipeline_name(int opt, char *out, size_t n) {
  char text[512];
  pipeline_text(opt, text, sizeof text);
  size_t k = (size_t)snprintf(out, n, "%s, no loop unrolling or interleaving", text);
  if (!llvm_defaults())
    for (size_t i = 0; i < sizeof codegen_options / sizeof *codegen_options && k < n; i++)
      k += (size_t)snprintf(out + k, n - k, " %s", codegen_options[i]);
  const char *env = getenv("GRADC_LLVM_OPTIONS");
  if (env && k < n) snprintf(out + k, n - k, " %s", env);
}

bool llvm_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char **ir_before, TimeReport *times,
                   char *err, size_t errlen) {
  double t = time_now_ms();
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, dl);
  LLVMDisposeTargetData(dl);
  char *verr = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &verr)) {
    /* Our bug, not the user's: say so plainly. */
    snprintf(err, errlen, "internal error: invalid LLVM IR generated: %.600s", verr ? verr : "");
    LLVMDisposeMessage(verr);
    return false;
  }
  LLVMDisposeMessage(verr);
  t = time_add(times, "LLVM IR verifier", t);
  if (ir_before) *ir_before = dup_llvm(LLVMPrintModuleToString(mod));
  LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(pbo, opt >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(pbo, opt >= 2);
  /* Unrolling and the vectorizer's interleaving made several copies of
   * every vectorized loop (resnet_small's IR grew fourfold) and took more
   * than half of LLVM's time, optimising and generating machine code,
   * for no step time we could measure: the loops left to LLVM are
   * elementwise and window loops bound by memory, the products run in
   * gradc's own kernels.  The bits are the same (README: Compile time). */
  LLVMPassBuilderOptionsSetLoopUnrolling(pbo, 0);
  LLVMPassBuilderOptionsSetLoopInterleaving(pbo, 0);
  char pipeline[512];
  pipeline_text(opt, pipeline, sizeof pipeline);
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, pbo);
  LLVMDisposePassBuilderOptions(pbo);
  time_add(times, "LLVM optimisation pipeline", t);
  return !take_error(e, err, errlen, "LLVM optimisation failed");
}

/* ------------------------------------------------ the cache's key */

/* A growing byte string: the graph as the key reads it. */
typedef struct Bytes {
  char *p;
  size_t n, cap;
  bool failed;               /* out of memory: no key, no cache */
} Bytes;

static void put(Bytes *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 1 << 16;
    while (cap < b->n + n) cap *= 2;
    char *q = b->failed ? NULL : realloc(b->p, cap);
    if (!q) {
      b->failed = true;
      return;
    }
    b->p = q, b->cap = cap;
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static void put_i64(Bytes *b, int64_t v) { put(b, &v, sizeof v); }

static void put_str(Bytes *b, const char *s) {
  put_i64(b, s ? (int64_t)strlen(s) : -1);
  if (s) put(b, s, strlen(s));
}

static void put_shape(Bytes *b, const Shape *s) {
  put_i64(b, s->rank);
  for (int i = 0; i < s->rank; i++) put_i64(b, s->d[i].n), put_i64(b, s->d[i].sym);
}

/* Every attribute as GRADC_ATTRS says it is compared (rewrite.c's
 * graph_same_node), field by field: the struct has padding. */
#define KEY_ATTR_EQ(f) put(b, &x->f, sizeof x->f)
#define KEY_ATTR_BYTES(f) put(b, &x->f, sizeof x->f)
#define KEY_ATTR_SHAPE(f) put_shape(b, &x->f)
#define KEY_ATTR_INIT(f) (put_i64(b, x->f.kind), put(b, &x->f.a, sizeof x->f.a), put(b, &x->f.b, sizeof x->f.b))
#define KEY_ATTR_VALUES(f)                                                              \
  do {                                                                                  \
    int64_t c = x->f ? shape_static_count(&n->shape) : -1;                              \
    put_i64(b, c);                                                                      \
    if (c >= 0) put(b, x->f, sizeof(double) * (size_t)(c > 0 ? c : 1));                 \
  } while (0)

static void put_node(Bytes *b, const Node *n) {
  const Attrs *x = &n->a;
  put_i64(b, n->id), put_i64(b, n->op), put_i64(b, n->dtype), put_i64(b, n->flags);
  put_shape(b, &n->shape);
  put_i64(b, n->nsrc);
  for (int k = 0; k < n->nsrc; k++) put_i64(b, n->src[k]->id);
  put_i64(b, n->inlined_into ? n->inlined_into->id : -1);
  put_i64(b, n->storage ? n->storage->id : -1);
  put_str(b, n->name);
#define ATTR(type, name, array, compare) KEY_##compare(name);
  GRADC_ATTRS(ATTR)
#undef ATTR
}

/* What codegen reads of the graph, as bytes: every node (fuse()'s
 * inlining and storage included), the symbolic sizes, the loops, and each
 * function's name and roots (the outputs, metrics, losses, updates). */
static void put_graph(Bytes *b, const Graph *g) {
  put_str(b, g->model_name);
  put_i64(b, g->nsym);
  for (int k = 1; k <= g->nsym; k++) put_str(b, g->sym[k]);
  put_i64(b, g->nscans);
  for (int l = 0; l < g->nscans; l++) {
    const Scan *sc = &g->scans[l];
    put_i64(b, sc->len.n), put_i64(b, sc->len.sym), put_i64(b, sc->reverse), put_i64(b, sc->fwd);
  }
  put_i64(b, g->nnodes);
  for (int i = 0; i < g->nnodes; i++) put_node(b, g->nodes[i]);
  Node **roots = malloc(sizeof(Node *) * (size_t)(graph_max_roots(g) + 1));
  for (int f = 0; roots && f < graph_nfunctions(g); f++) {
    int n = graph_function_roots(g, f, roots);
    put_str(b, cg_function_name(g, f));
    put_i64(b, n);
    for (int k = 0; k < n; k++) put_i64(b, roots[k]->id);
  }
  if (!roots) b->failed = true;
  free(roots);
}

/* This gradc's code: the file holding it (the executable or the shared
 * library), by size, modification time and inode.  The key no longer
 * hashes the generated IR, so a gradc whose code generator changed
 * without a new version number must not take the old entries; a rebuild
 * changes these. */
static const char build_marker;   /* an address in that file */

static void put_build(Bytes *b) {
  Dl_info info;
  struct stat st;
  if (dladdr(&build_marker, &info) && info.dli_fname && stat(info.dli_fname, &st) == 0) {
    put_str(b, info.dli_fname);
    put_i64(b, (int64_t)st.st_size), put_i64(b, (int64_t)st.st_ino);
    put_i64(b, (int64_t)st.st_mtim.tv_sec), put_i64(b, (int64_t)st.st_mtim.tv_nsec);
  } else {
    put_str(b, __FILE__ " " __DATE__ " " __TIME__);
  }
}

/* The object cache's key (cache.c), computed before any IR exists so that
 * a hit costs no IR generation: the optimized graph (put_graph) and
 * everything else that changes the machine code made from it - gradc's
 * version and build, LLVM's version, the pipeline, the target triple, CPU
 * name and features, the opt level and the profile and parallel flags. */
static bool object_key(const Graph *g, LLVMTargetMachineRef tm, int opt, const JitOptions *o, char *key) {
  unsigned maj, min, pat;
  LLVMGetVersion(&maj, &min, &pat);
  char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
  char *feat = LLVMGetTargetMachineFeatureString(tm);
  Bytes graph = {0};
  put_build(&graph);
  put_graph(&graph, g);
  char pipeline[640], what[1024];
  pipeline_name(opt, pipeline, sizeof pipeline);
  snprintf(what, sizeof what, "gradc %s cache %d llvm %u.%u.%u %s O%d profile %d parallel %d", GRADC_VERSION,
           CACHE_FORMAT, maj, min, pat, pipeline, opt, o->profile, o->parallel);
  const void *parts[] = {what, triple, cpu, feat, graph.p ? graph.p : ""};
  size_t lens[] = {strlen(what), strlen(triple), strlen(cpu), strlen(feat), graph.n};
  cache_key(parts, lens, 5, key);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  free(graph.p);
  return !graph.failed;
}

static LLVMMemoryBufferRef module_object(Jit *j, LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt,
                                         const JitOptions *o, char *err, size_t errlen);

/* ------------------------------------------- compiling in parallel */

/* The objects of one compilation: one per part the module was split into
 * (parallel_objects), or one. */
enum { MAX_PARTS = 8 };
typedef struct Objects {
  LLVMMemoryBufferRef b[MAX_PARTS];
  int n;
} Objects;

/* This process's threads that are running or want a core now
 * (/proc/self/task/N/stat, state R): a thread pool already started spins
 * or works there, and is not another program's load. */
static long own_runnable(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return 0;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    const char *close = strrchr(buf, ')');   /* the name may hold spaces */
    if (close && close[1] == ' ' && close[2] == 'R') n++;
  }
  closedir(d);
  return n;
}

/* Other programs' threads that want a core now: the fourth field of
 * /proc/loadavg ("running/total") less this process's own, the largest
 * of three readings a millisecond apart; -1 where it cannot be read. */
static long others_runnable_now(void) {
  long most = -1;
  for (int k = 0; k < 3; k++) {
    FILE *f = fopen("/proc/loadavg", "r");
    long running = -1, total;
    double a, b, c;
    if (f) {
      if (fscanf(f, "%lf %lf %lf %ld/%ld", &a, &b, &c, &running, &total) != 5) running = -1;
      fclose(f);
    }
    if (running >= 0) {
      running -= own_runnable();
      running = running < 0 ? 0 : running;
    }
    most = running > most ? running : most;
    if (k < 2) usleep(1000);
  }
  return most;
}

/* How many threads optimise and compile a module of nfns defined
 * functions: GRADC_COMPILE_THREADS, else one per idle core, at most
 * MAX_PARTS and one per 8 functions (a part has a fixed cost: a context,
 * the bitcode read, a pass pipeline and a code generator set up).  Idle
 * is the cores less other programs' threads running now, not less the
 * load average: that is a minute's mean, and after a run of gradc itself
 * said "busy" to the next compile on an idle machine; nor less this
 * process's own threads (a started thread pool), which wait while it
 * compiles (README: Compile time).  On the project's 2-core machine at
 * load 6, 2 threads took 2-20% longer than one: the second thread only
 * waits for a core. */
static int compile_threads(int nfns) {
  const char *env = getenv("GRADC_COMPILE_THREADS");
  if (env && *env) {
    long n = strtol(env, NULL, 10);
    return n < 1 ? 1 : n > MAX_PARTS ? MAX_PARTS : (int)n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN), busy = others_runnable_now();
  double load;
  if (busy < 0 && getloadavg(&load, 1) == 1) busy = (long)(load + 0.5) - 1;
  if (busy > 0) n = n - busy > 1 ? n - busy : 1;
  n = n < nfns / 8 ? n : nfns / 8;
  return n < 1 ? 1 : n > MAX_PARTS ? MAX_PARTS : (int)n;
}

/* What one thread compiles: the whole module's bitcode, read into a
 * context of its own (LLVM's contexts are not thread-safe), where only
 * the functions owner[] gives this part keep their bodies. */
typedef struct Part {
  const char *bitcode;
  size_t len;
  const int *owner;           /* per function of the module, in order */
  int nfns, index, opt;
  LLVMMemoryBufferRef obj;
  double optimise_ms, codegen_ms;
  char err[512];
} Part;

/* f, defined in this module, as a declaration of the same name: its code
 * is another part's. */
static void declare_only(LLVMModuleRef mod, LLVMValueRef f) {
  size_t len;
  const char *s = LLVMGetValueName2(f, &len);
  char name[256];
  snprintf(name, sizeof name, "%.*s", (int)len, s);
  LLVMValueRef d = LLVMAddFunction(mod, "", LLVMGlobalGetValueType(f));
  LLVMReplaceAllUsesWith(f, d);
  LLVMDeleteFunction(f);
  LLVMSetValueName2(d, name, strlen(name));
}

static void *compile_part(void *arg) {
  Part *p = arg;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRange(p->bitcode, p->len, "gradc-part", 0);
  LLVMModuleRef mod = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMParseBitcodeInContext2(ctx, mb, &mod)) {
    snprintf(p->err, sizeof p->err, "internal error: LLVM could not read back its own bitcode");
    goto done;
  }
  LLVMValueRef *fns = malloc(sizeof *fns * (size_t)(p->nfns ? p->nfns : 1));
  int n = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); fns && f && n < p->nfns; f = LLVMGetNextFunction(f)) fns[n++] = f;
  if (!fns || n != p->nfns) {
    snprintf(p->err, sizeof p->err, "internal error: a part's module has other functions");
    free(fns);
    goto done;
  }
  for (int k = 0; k < n; k++)
    if (!LLVMIsDeclaration(fns[k]) && p->owner[k] != p->index) declare_only(mod, fns[k]);
  free(fns);
  tm = host_machine(p->err, sizeof p->err);
  double t = time_now_ms();
  if (!tm || !llvm_optimize(mod, tm, p->opt, NULL, NULL, p->err, sizeof p->err)) goto done;
  double t2 = time_now_ms();
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &p->obj)) {
    snprintf(p->err, sizeof p->err, "LLVM machine code generation failed: %s", msg ? msg : "");
    p->obj = NULL;
  }
  LLVMDisposeMessage(msg);
  p->optimise_ms = t2 - t, p->codegen_ms = time_now_ms() - t2;
done:
  if (tm) LLVMDisposeTargetMachine(tm);
  if (mod) LLVMDisposeModule(mod);
  LLVMDisposeMemoryBuffer(mb);
  LLVMContextDispose(ctx);
  return NULL;
}

/* A function's share of the work: its instructions. */
static int function_weight(LLVMValueRef f) {
  int w = 1;
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef i = LLVMGetFirstInstruction(bb); i; i = LLVMGetNextInstruction(i)) w++;
  return w;
}

static int heavier(const void *x, const void *y) {
  const int *a = x, *b = y;   /* (weight, index) pairs */
  return a[0] != b[0] ? (a[0] < b[0]) - (a[0] > b[0]) : a[1] - b[1];
}

/* mod's functions in nparts parts, each optimised and compiled on a
 * thread of its own into an object of its own; the objects call each
 * other's functions, which LLJIT links.  Every defined function becomes
 * external (a kernel is called from another part's step), so that the
 * linker finds it; each part's copy of a private constant is its own.
 * The functions are dealt out heaviest first to the lightest part.
 * False after writing the reason into err. */
static bool parallel_objects(LLVMModuleRef mod, int nparts, int opt, Objects *out, TimeReport *times, char *err,
                             size_t errlen) {
  double t = time_now_ms();
  int nfns = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) nfns++;
  int *owner = calloc((size_t)nfns + 1, sizeof *owner), *order = calloc(2 * (size_t)nfns + 2, sizeof *order);
  Part *parts = calloc((size_t)nparts, sizeof *parts);
  pthread_t threads[MAX_PARTS];
  bool ok = owner && order && parts;
  int k = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); ok && f; f = LLVMGetNextFunction(f), k++) {
    if (!LLVMIsDeclaration(f)) LLVMSetLinkage(f, LLVMExternalLinkage);
    order[2 * k] = LLVMIsDeclaration(f) ? 0 : function_weight(f), order[2 * k + 1] = k;
  }
  LLVMMemoryBufferRef bc = ok ? LLVMWriteBitcodeToMemoryBuffer(mod) : NULL;
  if (ok) {
    long load[MAX_PARTS] = {0};
    qsort(order, (size_t)nfns, 2 * sizeof *order, heavier);
    for (int i = 0; i < nfns; i++) {
      int least = 0;
      for (int q = 1; q < nparts; q++) least = load[q] < load[least] ? q : least;
      owner[order[2 * i + 1]] = least;
      load[least] += order[2 * i];
    }
  }
  t = time_add(times, "LLVM bitcode for the threads", t);
  int started = 0;
  for (int q = 0; bc && q < nparts; q++) {
    parts[q] = (Part){LLVMGetBufferStart(bc), LLVMGetBufferSize(bc), owner, nfns, q, opt, NULL, 0, 0, ""};
    if (pthread_create(&threads[q], NULL, compile_part, &parts[q]) != 0) {
      snprintf(parts[q].err, sizeof parts[q].err, "cannot start a compiler thread");
      break;
    }
    started++;
  }
  double optimise = 0, codegen = 0;
  for (int q = 0; q < started; q++) {
    pthread_join(threads[q], NULL);
    optimise += parts[q].optimise_ms, codegen += parts[q].codegen_ms;
  }
  ok = bc && started == nparts;
  out->n = 0;
  for (int q = 0; parts && q < nparts; q++) {
    if (parts[q].err[0] && ok) snprintf(err, errlen, "%s", parts[q].err), ok = false;
    if (parts[q].obj) out->b[out->n++] = parts[q].obj;
  }
  if (!ok && !err[0]) snprintf(err, errlen, "out of memory for the compiler's threads");
  /* The threads' wall time, split as their own times split. */
  double wall = time_now_ms() - t, share = optimise + codegen > 0 ? optimise / (optimise + codegen) : 0.5;
  time_add(times, "LLVM optimisation pipeline (threads in parallel)", time_now_ms() - wall * share);
  time_add(times, "LLVM machine code generation (threads in parallel)", time_now_ms() - wall * (1 - share));
  if (bc) LLVMDisposeMemoryBuffer(bc);
  free(owner);
  free(order);
  free(parts);
  return ok;
}

/* The objects as one cache entry: their count, their sizes, their bytes. */
static char *pack_objects(const Objects *objs, size_t *len) {
  size_t n = sizeof(uint64_t) * (size_t)(1 + objs->n);
  for (int i = 0; i < objs->n; i++) n += LLVMGetBufferSize(objs->b[i]);
  char *p = malloc(n), *at = p + sizeof(uint64_t) * (size_t)(1 + objs->n);
  if (!p) return NULL;
  uint64_t head[1 + MAX_PARTS] = {(uint64_t)objs->n};
  for (int i = 0; i < objs->n; i++) {
    head[1 + i] = LLVMGetBufferSize(objs->b[i]);
    memcpy(at, LLVMGetBufferStart(objs->b[i]), head[1 + i]);
    at += head[1 + i];
  }
  memcpy(p, head, sizeof(uint64_t) * (size_t)(1 + objs->n));
  *len = n;
  return p;
}

/* pack_objects' entry back into objects; false when it is not one. */
static bool unpack_objects(const char *p, size_t len, Objects *objs) {
  uint64_t head[1 + MAX_PARTS];
  if (len < sizeof(uint64_t)) return false;
  memcpy(head, p, sizeof(uint64_t));
  if (head[0] < 1 || head[0] > MAX_PARTS || len < sizeof(uint64_t) * (1 + head[0])) return false;
  memcpy(head, p, sizeof(uint64_t) * (1 + head[0]));
  size_t at = sizeof(uint64_t) * (1 + head[0]);
  for (uint64_t i = 0; i < head[0]; i++) {
    if (head[1 + i] > len - at) return false;
    at += head[1 + i];
  }
  if (at != len) return false;
  at = sizeof(uint64_t) * (1 + head[0]);
  objs->n = 0;
  for (uint64_t i = 0; i < head[0]; i++) {
    objs->b[objs->n++] = LLVMCreateMemoryBufferWithMemoryRangeCopy(p + at, head[1 + i], "gradc-cached.o");
    at += head[1 + i];
  }
  return true;
}

/* The graph's code as object files in memory, from the cache when it
 * holds them for this key (no IR is generated then), else generated,
 * optimised and compiled here, on several threads where the module is
 * large enough (parallel_objects), and then stored.  False after writing
 * the reason into err. */
static bool object_code(Jit *j, const Graph *g, LLVMTargetMachineRef tm, int opt, const JitOptions *o,
                        Objects *objs, char *err, size_t errlen) {
  TimeReport *times = o->times;
  char key[CACHE_KEY_LEN + 1] = "";
  Cache cache;
  bool dump = o->keep_ir || o->keep_asm;
  bool cached = o->use_cache && !dump && cache_open(&cache);
  double t = time_now_ms();
  objs->n = 0;
  if (cached && !object_key(g, tm, opt, o, key)) cached = false;
  if (cached) {
    size_t len;
    char *entry = cache_load(&cache, key, &len);
    t = time_add(times, "object cache: key (hash of the graph) and lookup", t);
    bool hit = entry && unpack_objects(entry, len, objs);
    free(entry);
    if (hit) {
      j->from_cache = true;
      return true;
    }
  }
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = cg_module(ctx, g, "", o->profile, o->parallel);
  t = time_add(times, "IR generation (codegen)", t);
  int nfns = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) nfns += !LLVMIsDeclaration(f);
  int nparts = dump ? 1 : compile_threads(nfns);
  bool ok;
  if (nparts > 1) {
    ok = parallel_objects(mod, nparts, opt, objs, times, err, errlen);
  } else {
    objs->b[0] = module_object(j, mod, tm, opt, o, err, errlen);
    objs->n = objs->b[0] != NULL;
    ok = objs->n == 1;
  }
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  if (ok && cached) {
    t = time_now_ms();
    size_t len;
    char *entry = pack_objects(objs, &len);
    if (entry) cache_store(&cache, key, entry, len);
    free(entry);
    time_add(times, "object cache: store", t);
  }
  return ok;
}

/* mod optimised and compiled to an object file in memory (and kept as
 * text for dump --stage llvm|asm when asked); NULL after writing the
 * reason into err. */
static LLVMMemoryBufferRef module_object(Jit *j, LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt,
                                         const JitOptions *o, char *err, size_t errlen) {
  TimeReport *times = o->times;
  double t;
  if (!llvm_optimize(mod, tm, opt, o->keep_ir ? &j->ir_before : NULL, times, err, errlen)) return NULL;
  t = time_now_ms();
  if (o->keep_ir) j->ir_after = dup_llvm(LLVMPrintModuleToString(mod));
  char *msg = NULL;
  if (o->keep_asm) {
    LLVMMemoryBufferRef buf = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &buf)) {
      j->asm_text = strndup(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
      LLVMDisposeMemoryBuffer(buf);
    }
    LLVMDisposeMessage(msg);
    msg = NULL;
    t = time_add(times, "LLVM assembly text (dump)", t);
  }
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &buf)) {
    snprintf(err, errlen, "LLVM machine code generation failed: %s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  time_add(times, "LLVM machine code generation", t);
  return buf;
}

Jit *jit_compile(const Graph *g, const JitOptions *o, char *err, size_t errlen) {
  Jit *j = calloc(1, sizeof *j);
  if (!j) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  double t = time_now_ms();
  int opt = o->opt_level < 0 ? 0 : o->opt_level > 3 ? 3 : o->opt_level;
  LLVMTargetMachineRef tm = host_machine(err, errlen);
  if (!tm) {
    free(j);
    return NULL;
  }
  Objects objs;
  bool made = object_code(j, g, tm, opt, o, &objs, err, errlen);
  LLVMDisposeTargetMachine(tm);
  if (!made) {
    for (int i = 0; i < objs.n; i++) LLVMDisposeMemoryBuffer(objs.b[i]);
    jit_free(j);
    return NULL;
  }
  t = time_now_ms();

  bool failed;
  LLVMOrcJITTargetMachineBuilderRef jtmb;
  LLVMErrorRef e;
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  e = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
  if (!take_error(e, err, errlen, "LLVM cannot target this machine")) {
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    e = LLVMOrcCreateLLJIT(&j->jit, builder);
    failed = take_error(e, err, errlen, "LLVM JIT creation failed");
  } else {
    LLVMOrcDisposeLLJITBuilder(builder);
    failed = true;
  }
  if (failed) {
    for (int i = 0; i < objs.n; i++) LLVMDisposeMemoryBuffer(objs.b[i]);
    jit_free(j);
    return NULL;
  }
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  if (o->nsymbols) {
    LLVMOrcCSymbolMapPair *pairs = calloc((size_t)o->nsymbols, sizeof *pairs);
    for (int i = 0; pairs && i < o->nsymbols; i++) {
      pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, o->symbols[i].name);
      pairs[i].Sym.Address = (LLVMOrcExecutorAddress)o->symbols[i].addr;
      pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    }
    if (pairs) {
      e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, (size_t)o->nsymbols));
      free(pairs);
      failed = take_error(e, err, errlen, "LLVM JIT symbol definition failed");
    }
  }
  LLVMOrcDefinitionGeneratorRef gen;
  if (!failed) {
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit),
                                                              NULL, NULL);
    if (!take_error(e, err, errlen, "LLVM JIT symbol search failed")) LLVMOrcJITDylibAddGenerator(jd, gen);
    else failed = true;
  }
  if (!failed) {
    /* The JIT takes the buffer, whether it succeeds or not. */
    for (int i = 0; i < objs.n; i++) {
      e = failed ? NULL : LLVMOrcLLJITAddObjectFile(j->jit, jd, objs.b[i]);
      if (failed) LLVMDisposeMemoryBuffer(objs.b[i]);
      else failed = take_error(e, err, errlen, "LLVM JIT could not add the object file");
    }
  } else {
    for (int i = 0; i < objs.n; i++) LLVMDisposeMemoryBuffer(objs.b[i]);
  }
  j->nfns = graph_nfunctions(g);
  j->fns = calloc((size_t)j->nfns, sizeof *j->fns);
  if (!j->fns && !failed) {
    snprintf(err, errlen, "out of memory for the JIT's entry points");
    failed = true;
  }
  for (int f = 0; f < j->nfns && !failed; f++) {
    LLVMOrcExecutorAddress a = 0;
    const char *name = cg_function_name(g, f);
    char what[300];
    snprintf(what, sizeof what, "LLVM JIT could not link %s", name);
    failed = take_error(LLVMOrcLLJITLookup(j->jit, &a, name), err, errlen, what);
    if (!failed) j->fns[f] = (StepFn *)(uintptr_t)a;
  }
  time_add(o->times, "JIT linking (object file into ORC LLJIT)", t);
  if (failed) {
    jit_free(j);
    return NULL;
  }
  return j;
}

StepFn *jit_function(const Jit *j, int fn) { return fn >= 0 && fn < j->nfns ? j->fns[fn] : NULL; }
StepFn *jit_forward(const Jit *j) { return j->fns[0]; }
const char *jit_ir(const Jit *j, bool optimised) { return optimised ? j->ir_after : j->ir_before; }
const char *jit_asm(const Jit *j) { return j->asm_text; }
bool jit_from_cache(const Jit *j) { return j->from_cache; }

void jit_free(Jit *j) {
  if (!j) return;
  if (j->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
    if (e) LLVMConsumeError(e);
  }
  free(j->fns);
  free(j->ir_before);
  free(j->ir_after);
  free(j->asm_text);
  free(j);
}
