/*
 * header.c - the C header of a compiled shared object (gradc compile
 * --header): plain C, like tfcompile's header but without C++.
 *
 * Input: the optimized graph and the target emit.c compiled for.  Output:
 * declarations of the entry points <prefix>_<name> (abi.h's
 * GRADC_ABI_ENTRIES), each documented; one enum constant per named tensor,
 * its index for <prefix>_tensor_info, with a table of name, kind, dtype,
 * shape (the batch shown symbolically) and bytes; the symbolic dimensions
 * and run-time hyperparameters by name; the parameter-state and checkpoint
 * sizes as constants; the workspace size at a few batch sizes and its
 * bound as a function of the batch; the target triple and CPU.
 *
 * The header says what the .so will do, so it asks the same sources: the
 * tensors, steps and hyperparameters come from the model's descriptor
 * (descriptor.c, the numbers the .so holds), and the sizes from the
 * runtime's own functions of that descriptor (runtime/instance.c), which
 * the .so's state_size, checkpoint_size and workspace_size return.
 *
 * The types shared by every model's header (gradc_aot_model, the tensor
 * description, kinds, dtypes, status codes) sit behind one include guard so
 * that several models' headers go into one translation unit; their
 * numbers are printed from abi.h's rows, and the tensor struct must stay
 * the one runtime.h defines (gradc_aot_tensor).
 */
#include <ctype.h>
#include <string.h>

#include "compiler.h"
#include "runtime.h"

static const char *const kind_names[ABI_KIND_COUNT] = {
#define X(id, name) [ABI_##id] = name,
    GRADC_ABI_KINDS(X)
#undef X
};

static void upper(char *out, size_t n, const char *a, const char *b) {
  size_t k = 0;
  for (const char *s = a; s && *s && k + 1 < n; s++) out[k++] = isalnum((unsigned char)*s) ? (char)toupper((unsigned char)*s) : '_';
  for (const char *s = b; s && *s && k + 1 < n; s++) out[k++] = isalnum((unsigned char)*s) ? (char)toupper((unsigned char)*s) : '_';
  out[k] = 0;
}

/* The layout of runtime.h's gradc_aot_tensor, which instance.c fills (keep the two in step). */
static const char tensor_struct[] =
    "\n"
    "/* A named tensor under the model's current batch size. */\n"
    "typedef struct gradc_aot_tensor {\n"
    "  const char *name;\n"
    "  int kind, dtype, rank;      /* GRADC_AOT_INPUT..., GRADC_AOT_F32... */\n"
    "  int64_t dims[%d];            /* -1 for the batch before bind */\n"
    "  int symbolic[%d];            /* non-zero where the dimension is the batch */\n"
    "  int64_t count;              /* elements (0 before bind if batched) */\n"
    "  size_t bytes;\n"
    "  void *data;                 /* NULL without a model or before bind */\n"
    "} gradc_aot_tensor;\n"
    "#endif\n\n";

/* The part every model's header shares, behind one include guard: the
 * status, kind and dtype numbers from abi.h's rows, then the tensor
 * description. */
static void write_common(FILE *out) {
  fprintf(out, "#ifndef GRADC_AOT_TYPES\n"
               "#define GRADC_AOT_TYPES\n"
               "/* Shared by the headers of every model gradc compiles. */\n"
               "typedef struct gradc_aot_model gradc_aot_model;   /* opaque: one model instance */\n"
               "\n"
               "/* Status codes (the values of gradc_status in gradc.h). */\n"
               "enum {\n");
#define X(id, value, what) \
  fprintf(out, "  GRADC_AOT_%s = %d,%*s%s%s%s\n", #id, value, *what ? (int)(16 - sizeof #id) : 0, "", *what ? "/* " : "", what, *what ? " */" : "");
  GRADC_ABI_STATUS(X)
#undef X
  fprintf(out, "};\n\nenum {");
#define X(id, name) fprintf(out, " GRADC_AOT_%s%s", #id, ABI_##id + 1 < ABI_KIND_COUNT ? "," : " };\n");
  GRADC_ABI_KINDS(X)
#undef X
  fprintf(out, "enum {");
#define X(id, name, ctype, bytes) fprintf(out, " GRADC_AOT_%s%s", #id, DT_##id + 1 < DT_COUNT ? "," : " };\n");
  GRADC_ABI_DTYPES(X)
#undef X
  fprintf(out, tensor_struct, ABI_MAX_RANK, ABI_MAX_RANK);
}

/* The C type of a tensor's elements, by dtype. */
static const char *const ctype[DT_COUNT] = {
#define X(id, name, type, bytes) [DT_##id] = #type,
    GRADC_ABI_DTYPES(X)
#undef X
};

void header_write(FILE *out, const Graph *g, const EmitOptions *o) {
  const char *p = o->prefix;
  char up[200], id[300], buf[SHAPE_STR_MAX];
  upper(up, sizeof up, p, NULL);
  int nt;
  DescTensor *t = desc_tensors(g, &nt);
  /* The sizes are what the .so's own functions return: the runtime's
   * answers for the descriptor the .so holds. */
  Descriptor dd;
  desc_build(g, &dd);
  const AbiModel am = {dd.desc, dd.names, dd.values, NULL};
  size_t state = inst_state_size(&am), ckpt = inst_checkpoint_size(&am);

  fprintf(out, "/*\n * %s.h - the model '%s' (%s) compiled by gradc into a shared object.\n", p, g->model_name,
          g->src->name);
  fprintf(out,
          " * Generated; do not edit.\n *\n"
          " * Target %s, CPU %s%s.\n"
          " * The shared object needs libc, libm and OpenBLAS (libopenblas.so.0) only: no\n"
          " * LLVM, no gradc.  Link it (cc prog.c -L. -l%s) or dlopen it; it exports\n"
          " * only the %s_* functions below, so several models live in one program.\n *\n",
          o->triple_used, o->cpu_used,
          !strcmp(o->cpu_used, "x86-64-v2") ? " (portable: any x86-64 CPU with SSE4.2)" : "", p, p);
  fprintf(out,
          " *   gradc_aot_model *m = %s_new();              // parameters from seed 1\n"
          " *   %s_bind(m, 128, NULL);                      // batch size; allocates the workspace\n"
          " *   %s *x = %s_data(m, \"%s\", NULL);         // fill the inputs, then\n"
          " *   double loss;\n"
          " *   %s_train_step(m, &loss);                    // or %s_forward(m)\n"
          " *   %s_save(m, \"model.ckpt\");                   // a gradc checkpoint\n"
          " *   %s_free(m);\n"
          " *\n"
          " * Functions that can fail return 0 or a GRADC_AOT_ERR_* code and leave a\n"
          " * message for %s_last_error(m).  Pointers into a model stay valid until the\n"
          " * next %s_bind or %s_free.  A step allocates nothing.\n */\n",
          p, p, ctype[nt ? t[0].node->dtype : DT_F32], p, nt ? t[0].name : "x", p, p, p, p, p, p, p);
  fprintf(out, "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n", up, up);
  fprintf(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  write_common(out);
  fprintf(out, "#define %s_TARGET \"%s\"\n#define %s_CPU \"%s\"\n", up, o->triple_used, up, o->cpu_used);
  fprintf(out, "/* Bytes of all parameters and optimizer state (each tensor 64-byte aligned). */\n");
  fprintf(out, "#define %s_STATE_SIZE %zu\n", up, state);
  fprintf(out, "/* Bytes of the state as a gradc checkpoint (%s_get_state). */\n", p);
  fprintf(out, "#define %s_CHECKPOINT_SIZE %zu\n", up, ckpt);
  fprintf(out, "#define %s_TENSOR_COUNT %d\n\n", up, nt);

  fprintf(out, "/* The named tensors: index (for %s_tensor_info), kind, dtype, shape, bytes.\n", p);
  for (int i = 0; i < nt; i++) {
    const Node *n = t[i].node;
    bool batched = false;
    int64_t c = 1;
    for (int k = 0; k < n->shape.rank; k++) {
      batched |= n->shape.d[k].sym != 0;
      c *= n->shape.d[k].n;
    }
    char bytes[64];
    if (batched) snprintf(bytes, sizeof bytes, "%lld * batch", (long long)(c * (int64_t)dtype_size(n->dtype)));
    else snprintf(bytes, sizeof bytes, "%lld", (long long)(c * (int64_t)dtype_size(n->dtype)));
    fprintf(out, " *   %2d %-7s %-14s %-5s %-18s %s\n", i, kind_names[t[i].kind], t[i].name,
            dtype_names[n->dtype], shape_str(g, &n->shape, buf, sizeof buf), bytes);
  }
  fprintf(out, " */\nenum {\n");
  /* Names that differ only in case or punctuation (W and w, W/rms and
   * W_rms) become the same C identifier: a later one gets _2, _3, ... */
  char **ids = arena_alloc(g->arena, sizeof *ids * (size_t)(nt + 1));
  for (int i = 0; i < nt; i++) {
    upper(id, sizeof id, p, "_T_");
    size_t l = strlen(id);
    upper(id + l, sizeof id - l, t[i].name, NULL);
    char *unique = arena_strdup(g->arena, id);
    for (int k = 2, j = 0; j < i; j++)
      if (!strcmp(ids[j], unique)) {
        unique = arena_printf(g->arena, "%s_%d", id, k++);
        j = -1;              /* the suffixed name may repeat another: check again */
      }
    ids[i] = unique;
    fprintf(out, "  %s = %d,\n", ids[i], i);
  }
  fprintf(out, "};\n\n");

  /* The workspace: exact at a few sizes, and the no-reuse bound. */
  fprintf(out, "/* The workspace (inputs, outputs and every intermediate value) for a batch\n"
               " * size: exactly %s_workspace_size(batch) bytes, for example\n", p);
  static const int64_t sizes[] = {1, 32, 128, 1024};
  for (int s = 0; s < 4; s++) {
    int64_t sym[MAX_SYMS + 1];
    for (int k = 0; k <= MAX_SYMS; k++) sym[k] = k ? sizes[s] : 1;
    fprintf(out, " *   batch %5lld: %zu bytes\n", (long long)sizes[s], inst_workspace_size(&am, sym));
  }
  PlanBuffer *pb = arena_alloc(g->arena, sizeof *pb * (size_t)(g->nnodes + 1));
  int nb = plan_buffers(g, pb);
  int64_t fixed = 0, per = 0;
  bool linear = true;
  for (int b = 0; b < nb; b++) {
    const Node *n = pb[b].node;
    int nsym = 0;
    int64_t c = (int64_t)dtype_size(n->dtype);
    for (int k = 0; k < n->shape.rank; k++) c *= n->shape.d[k].n, nsym += n->shape.d[k].sym != 0;
    if (nsym > 1) linear = false;
    if (nsym) fixed += 63, per += c;
    else fixed += (c + 63) & ~(int64_t)63;
  }
  if (linear)
    fprintf(out, " * and never more than %lld + %lld * batch bytes (buffers placed end to end;\n"
                 " * the plan shares bytes between values whose lifetimes do not meet).\n",
            (long long)fixed, (long long)per);
  fprintf(out, " */\n\n");

  fprintf(out,
          "/* A new instance: parameters and optimizer state (%s_STATE_SIZE bytes)\n"
          " * initialised from seed 1.  NULL when out of memory (%s_last_error(NULL)).\n"
          " * Free it with %s_free (NULL is fine). */\n"
          "gradc_aot_model *%s_new(void);\n"
          "void %s_free(gradc_aot_model *m);\n\n",
          up, p, p, p, p);
  fprintf(out,
          "/* Re-initialises parameters and optimizer state with the model's\n"
          " * initializers from seed: the values `gradc train --seed N` starts from. */\n"
          "int %s_init(gradc_aot_model *m, uint64_t seed);\n\n", p);
  fprintf(out,
          "/* Bytes of the workspace for batch (1..2^24), 0 for a batch out of range. */\n"
          "size_t %s_workspace_size(int64_t batch);\n"
          "size_t %s_state_size(void);         /* %s_STATE_SIZE */\n"
          "size_t %s_checkpoint_size(void);    /* %s_CHECKPOINT_SIZE */\n\n",
          p, p, up, p, up);
  fprintf(out,
          "/* Sets the batch size.  workspace: 64-byte aligned memory of\n"
          " * %s_workspace_size(batch) bytes that the caller owns and keeps until the\n"
          " * next bind or free, or NULL for memory the model allocates (and reuses\n"
          " * when large enough).  Inputs and outputs move: look them up again. */\n"
          "int %s_bind(gradc_aot_model *m, int64_t batch, void *workspace);\n\n", p, p);
  fprintf(out, "/* Sets one symbolic dimension by name, the others keeping their values (1\n"
               " * before any bind; %s_bind sets every one to the batch): ", p);
  for (int k = 1; k <= g->nsym; k++) fprintf(out, "%s%s", k > 1 ? ", " : "", g->sym[k]);
  fprintf(out, "%s.\n", g->nsym ? "" : "none");
  fprintf(out,
          " * The workspace is the caller's of the last bind while the new layout fits\n"
          " * in the bytes that bind asked for, else memory the model allocates.\n"
          " * GRADC_AOT_ERR_ARG for a name the model does not declare (the message lists\n"
          " * the declared ones), GRADC_AOT_ERR_SHAPE for a value outside 1..2^24. */\n"
          "int %s_bind_dim(gradc_aot_model *m, const char *dim, int64_t value);\n\n", p);
  fprintf(out,
          "/* The optimizer's run-time hyperparameters, f64 state tensors\n"
          " * %soptimizer/NAME that a train step reads every time, per step:\n",
          dd.nsteps > 1 ? "STEP/" : "");
  for (int s = 0; s < dd.nsteps; s++) {
    const int64_t *r = abi_step(dd.desc, s);
    fprintf(out, " *   %s (%s): ", dd.names[r[ABI_S_NAME]], dd.names[r[ABI_S_OPT_NAME]]);
    for (int k = 0; k < r[ABI_S_NHYPER]; k++)
      fprintf(out, "%s%s", k ? ", " : "", dd.names[abi_hyper(dd.desc, r[ABI_S_HYPER] + k)[ABI_P_NAME]]);
    fprintf(out, "%s\n", r[ABI_S_NHYPER] ? "" : "none");
  }
  if (!dd.nsteps) fprintf(out, " *   none: the model has no train statement\n");
  fprintf(out,
          " * Setting one changes the next step (learning-rate schedules); checkpoints\n"
          " * keep them.  step: the step's name, or NULL for the only one.\n"
          " * GRADC_AOT_ERR_ARG for a NULL name or out pointer, an unknown step, or a\n"
          " * name the update does not read (the message lists the valid names). */\n"
          "int %s_set_hyper(gradc_aot_model *m, const char *step, const char *name, double value);\n"
          "int %s_get_hyper(gradc_aot_model *m, const char *step, const char *name, double *value);\n\n",
          p, p);
  fprintf(out,
          "/* Data-parallel training (a .so made with gradc compile --data-parallel):\n"
          " * fn(user, data, count, dtype) must sum one gradient (count elements of\n"
          " * GRADC_AOT_F32 or _F64) in place over every replica, each weighted by its\n"
          " * share of the global batch, and return 0 (non-zero fails the step).  Each\n"
          " * train step calls it on the calling thread once per trained parameter as\n"
          " * the backward pass completes its gradient, and with data NULL before an\n"
          " * update reads a sum: every sum handed over must then be in place (an\n"
          " * asynchronous fn waits there, a synchronous one returns 0).  NULL removes it;\n"
          " * GRADC_AOT_ERR_ARG for a .so made without --data-parallel%s.\n"
          " * examples/train_mpi_so.c plugs MPI in. */\n"
          "int %s_set_allreduce(gradc_aot_model *m, int (*fn)(void *user, void *data, int64_t count, int dtype),\n"
          "                    void *user);\n"
          "/* Data parallel: the global index of the first row of the batch bound from\n"
          " * now on (default 0), so that the random ops (dropout masks, random_normal)\n"
          " * draw row j of a batch-sized value as row first_row + j: replicas stepping\n"
          " * on consecutive shards draw what one process does for the whole batch.\n"
          " * GRADC_AOT_ERR_ARG for a negative first_row. */\n"
          "int %s_set_row_offset(gradc_aot_model *m, int64_t first_row);\n\n",
          dd.desc[ABI_H_ALLREDUCE] ? "" : " (as this one)", p, p);
  const int64_t *first = dd.nsteps ? abi_step(dd.desc, 0) : NULL;
  fprintf(out,
          "/* Outputs, metrics and every loss (when the label inputs are filled) from\n"
          " * the inputs and parameters. */\n"
          "int %s_forward(gradc_aot_model *m);\n"
          "/* One training step on the bound batch: forward, backward and the\n"
          " * optimizer update in place; *loss (may be NULL) gets the batch's loss,\n"
          " * a double in the precision of the loss's dtype.  Outputs, metrics\n"
          " * and the loss then hold the step's values, computed from the parameters\n"
          " * and state before the update.  train_step runs the only step (an error\n"
          " * when the model has several); step the one named; step_count and\n"
          " * step_name list them. */\n"
          "int %s_train_step(gradc_aot_model *m, double *loss);%s%s%s\n"
          "int %s_step(gradc_aot_model *m, const char *step, double *loss);\n"
          "int %s_step_count(void);\n"
          "const char *%s_step_name(int i);\n",
          p, p, dd.nsteps == 1 ? "   /* loss: " : "",
          dd.nsteps == 1 && first[ABI_S_LOSS] >= 0 ? dtype_names[abi_tensor(dd.desc, first[ABI_S_LOSS])[ABI_T_DTYPE]] : "",
          dd.nsteps == 1 ? " */" : "", p, p, p);
  for (int s = 0; s < dd.nsteps; s++) {
    const int64_t *r = abi_step(dd.desc, s);
    fprintf(out, "int %s_step_%s(gradc_aot_model *m, double *loss);   /* %s, loss %s (%s) */\n", p,
            dd.names[r[ABI_S_NAME]], dd.names[r[ABI_S_OPT_NAME]],
            r[ABI_S_LOSS] >= 0 ? dd.names[abi_tensor(dd.desc, r[ABI_S_LOSS])[ABI_T_NAME]] : "none",
            r[ABI_S_LOSS] >= 0 ? dtype_names[abi_tensor(dd.desc, r[ABI_S_LOSS])[ABI_T_DTYPE]] : "-");
  }
  fputc('\n', out);
  fprintf(out,
          "/* The whole parameter and optimizer state as a gradc checkpoint, the bytes\n"
          " * `gradc train --save` writes and --resume reads: get_state needs\n"
          " * size >= %s_CHECKPOINT_SIZE; set_state checks model name, tensor names,\n"
          " * dtypes, shapes and CRC and changes nothing unless all match.  save and load\n"
          " * do the same with a file (save through a temporary file and a rename). */\n"
          "int %s_get_state(const gradc_aot_model *m, void *blob, size_t size);\n"
          "int %s_set_state(gradc_aot_model *m, const void *blob, size_t size);\n"
          "int %s_save(const gradc_aot_model *m, const char *path);\n"
          "int %s_load(gradc_aot_model *m, const char *path);\n\n", up, p, p, p, p);
  fprintf(out,
          "/* Tensors: their number, the description of tensor i (m may be NULL for\n"
          " * shapes only), and a tensor's storage by name with its element count in\n"
          " * *count (may be NULL); NULL for an unknown name or, for batched tensors,\n"
          " * before bind.  Element types: float f32, double f64, int32_t i32, uint8_t bool. */\n"
          "int %s_tensor_count(void);\n"
          "int %s_tensor_info(const gradc_aot_model *m, int i, gradc_aot_tensor *out);\n"
          "void *%s_data(gradc_aot_model *m, const char *name, int64_t *count);\n\n", p, p, p);
  fprintf(out,
          "/* The last error of m, or of this thread when m is NULL; \"\" if none. */\n"
          "const char *%s_last_error(const gradc_aot_model *m);\n\n", p);
  fprintf(out, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
}
