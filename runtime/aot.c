/*
 * aot.c - the entry points of compiled shared objects (libgradc_aot.a).
 *
 * `gradc compile` links the model's object (compiler/emit.c) with this
 * archive, OpenBLAS and libm into a .so.  Its public functions
 * <model>_<name> (abi.h's GRADC_ABI_ENTRIES) are one-line forwards to
 * gradc_aot_<name> here, with the model's AbiModel - descriptor, names,
 * initial values, entry points, all constants of the object - as first
 * argument.  Every symbol of the archive is hidden: several models' .so
 * files live in one program without sharing anything.
 *
 * A .so's model is a model instance (instance.c) of that descriptor, the
 * same code the JIT's gradc_model runs on, so it binds, lays out,
 * initialises, steps and checkpoints exactly as the JIT does.  What this
 * file adds is what a C header promises that include/gradc.h does not:
 * the handle is checked against the model it is passed to (two .so files
 * in one program), errors name the model's functions (mnist_mlp_bind), a
 * caller may supply the workspace (bind's third argument, one workspace
 * kept: the caller's memory of the last bind, or ours), and sizes are
 * functions of the descriptor alone (state, checkpoint, workspace).  A new
 * instance takes OpenBLAS's default thread count and is initialised from
 * seed 1, like gradc_compile_file's.
 *
 * The archive holds this file, instance.c, the checkpoint codec (ckpt.c,
 * zstream.c), init.c, layout.c and the runtime's products, threads and
 * memory (gemm.c, pool.c, context.c, mem.c, rterror.c), and needs nothing
 * but libc, libm and OpenBLAS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* The handle belongs to this model: a NULL or another model's handle is
 * refused with a message naming the function. */
static gradc_status check(const AbiModel *am, gradc_model *m, const char *fn) {
  if (!m) return inst_fail(NULL, GRADC_ERR_ARG, "%s_%s: NULL model", am->names[0], fn);
  if (inst_model(m) != am)
    return inst_fail(m, GRADC_ERR_ARG, "%s_%s: the handle belongs to model '%s'", am->names[0], fn,
                     inst_model(m)->names[0]);
  return GRADC_OK;
}

gradc_model *gradc_aot_new(const AbiModel *am) {
  InstanceOptions o = {.api = am->names[0], .threads = rt_default_threads(), .workspaces = 1};
  gradc_model *m = inst_new(am, &o);
  if (m && inst_init(m, 1)) {
    inst_fail(NULL, GRADC_ERR_NOMEM, "%s", inst_last_error(m));
    inst_free(m);
    m = NULL;
  }
  return m;
}

void gradc_aot_free(const AbiModel *am, gradc_model *m) {
  (void)am;
  inst_free(m);
}

int gradc_aot_init(const AbiModel *am, gradc_model *m, uint64_t seed) {
  gradc_status s = check(am, m, "init");
  return s ? s : inst_init(m, seed);
}

size_t gradc_aot_workspace_size(const AbiModel *am, int64_t batch) {
  if (batch < 1 || batch > RT_MAX_DIM) return 0;
  int64_t sym[ABI_MAX_SYMS + 1];
  for (int k = 0; k <= ABI_MAX_SYMS; k++) sym[k] = k ? batch : 1;
  size_t bytes = inst_workspace_size(am, sym);
  return bytes == SIZE_MAX ? 0 : bytes;
}

size_t gradc_aot_state_size(const AbiModel *am) { return inst_state_size(am); }
size_t gradc_aot_checkpoint_size(const AbiModel *am) { return inst_checkpoint_size(am); }

int gradc_aot_bind(const AbiModel *am, gradc_model *m, int64_t batch, void *workspace) {
  gradc_status s = check(am, m, "bind");
  return s ? s : inst_bind(m, batch, workspace);
}

int gradc_aot_bind_dim(const AbiModel *am, gradc_model *m, const char *dim, int64_t value) {
  gradc_status s = check(am, m, "bind_dim");
  return s ? s : inst_bind_dim(m, dim, value);
}

int gradc_aot_forward(const AbiModel *am, gradc_model *m) {
  gradc_status s = check(am, m, "forward");
  return s ? s : inst_forward(m);
}

int gradc_aot_train_step(const AbiModel *am, gradc_model *m, double *loss) {
  gradc_status s = check(am, m, "train_step");
  if (s) return s;
  int st = inst_find_step(m, "train_step", NULL);
  return st < 0 ? GRADC_ERR_ARG : inst_step(m, "train_step", st, loss);
}

/* <prefix>_step(m, name, &loss), and the one-step entries
 * <prefix>_step_NAME(m, &loss) that emit.c makes for each step. */
int gradc_aot_step(const AbiModel *am, gradc_model *m, const char *name, double *loss) {
  gradc_status s = check(am, m, "step");
  if (s) return s;
  int st = inst_find_step(m, "step", name);
  return st < 0 ? GRADC_ERR_ARG : inst_step(m, "step", st, loss);
}

int gradc_aot_step_count(const AbiModel *am) { return (int)am->desc[ABI_H_NSTEPS]; }

const char *gradc_aot_step_name(const AbiModel *am, int i) {
  return i >= 0 && i < am->desc[ABI_H_NSTEPS] ? am->names[abi_step(am->desc, i)[ABI_S_NAME]] : NULL;
}

int gradc_aot_tensor_count(const AbiModel *am) { return inst_tensor_count(am); }

int gradc_aot_tensor_info(const AbiModel *am, const gradc_model *m, int i, gradc_aot_tensor *out) {
  if (m && inst_model(m) != am) return inst_fail((gradc_model *)m, GRADC_ERR_ARG, "the handle belongs to another model");
  if (!inst_tensor(am, m, i, out))
    return inst_fail((gradc_model *)m, GRADC_ERR_ARG, "%s_tensor_info: no tensor %d", am->names[0], i);
  return GRADC_OK;
}

void *gradc_aot_data(const AbiModel *am, gradc_model *m, const char *name, int64_t *count) {
  if (check(am, m, "data")) return NULL;
  if (!name) {
    inst_fail(m, GRADC_ERR_ARG, "%s_data: NULL argument", am->names[0]);
    return NULL;
  }
  return inst_data(m, name, count);
}

int gradc_aot_set_hyper(const AbiModel *am, gradc_model *m, const char *step, const char *name, double value) {
  gradc_status s = check(am, m, "set_hyper");
  if (s) return s;
  double *h = inst_hyper(m, "set_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *h = value;
  return GRADC_OK;
}

/* The .so's m_set_allreduce: the gradient reduction of a model compiled
 * with gradc compile --data-parallel (gradc_set_allreduce's contract). */
int gradc_aot_set_allreduce(const AbiModel *am, gradc_model *m, gradc_allreduce_fn fn, void *user) {
  gradc_status s = check(am, m, "set_allreduce");
  return s ? s : inst_set_allreduce(m, "set_allreduce", fn, user);
}

/* The .so's m_set_row_offset (gradc_set_row_offset's contract). */
int gradc_aot_set_row_offset(const AbiModel *am, gradc_model *m, int64_t first_row) {
  gradc_status s = check(am, m, "set_row_offset");
  return s ? s : inst_set_row_offset(m, "set_row_offset", first_row);
}

int gradc_aot_get_hyper(const AbiModel *am, gradc_model *m, const char *step, const char *name, double *value) {
  gradc_status s = check(am, m, "get_hyper");
  if (s) return s;
  if (!value) return inst_fail(m, GRADC_ERR_ARG, "%s_get_hyper: NULL argument", am->names[0]);
  double *h = inst_hyper(m, "get_hyper", step, name);
  if (!h) return GRADC_ERR_ARG;
  *value = *h;
  return GRADC_OK;
}

int gradc_aot_get_state(const AbiModel *am, const gradc_model *m, void *blob, size_t size) {
  gradc_status s = check(am, (gradc_model *)m, "get_state");
  return s ? s : inst_get_state((gradc_model *)m, blob, size);
}

int gradc_aot_set_state(const AbiModel *am, gradc_model *m, const void *blob, size_t size) {
  gradc_status s = check(am, m, "set_state");
  return s ? s : inst_set_state(m, blob, size);
}

int gradc_aot_save(const AbiModel *am, const gradc_model *m, const char *path) {
  gradc_status s = check(am, (gradc_model *)m, "save");
  return s ? s : inst_save((gradc_model *)m, path);
}

int gradc_aot_load(const AbiModel *am, gradc_model *m, const char *path) {
  gradc_status s = check(am, m, "load");
  return s ? s : inst_load(m, path);
}

const char *gradc_aot_last_error(const AbiModel *am, const gradc_model *m) {
  (void)am;
  return inst_last_error(m);
}
