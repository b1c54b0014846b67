/*
 * hyper.c - the run-time hyperparameters of a shared object
 * (<prefix>_set_hyper, <prefix>_get_hyper), for tests/run_aot_tests.sh.
 *
 *   cc -DMODEL=mnist_mlp -include mnist_mlp.h hyper.c -L. -lmnist_mlp
 *   ./hyper SEED STEPS BATCH AT LR STATE.bin
 *
 * Initialises from SEED, binds BATCH and trains STEPS steps on the batches
 * of data.h, setting lr to LR before step AT (1-based); prints each step's
 * loss and writes the parameter and state bytes to STATE.bin, for a cmp
 * with `jit_ref hyper`, which does the same through the JIT.  Also checks
 * get/set round trips and the refusals, printing the messages as
 * "error: ..." lines for the script to compare with the JIT's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define F(name) CAT(MODEL, name)

static int fails;

static void expect(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "hyper: FAILED: %s\n", what);
    fails++;
  }
}

static void feed(gradc_aot_model *m, int64_t step) {
  gradc_aot_tensor t;
  for (int i = 0, input = 0; i < F(tensor_count)(); i++)
    if (!F(tensor_info)(m, i, &t) && t.kind == GRADC_AOT_INPUT) fill_input(t.data, t.dtype, t.count, input++, step);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: hyper SEED STEPS BATCH AT LR STATE.bin\n");
    return 2;
  }
  int steps = atoi(argv[2]), at = atoi(argv[4]);
  double lr = atof(argv[5]), v = -1, old = -1;
  gradc_aot_model *m = F(new)();
  expect(m && !F(init)(m, strtoull(argv[1], NULL, 10)), "new, init");
  expect(!F(bind)(m, atoll(argv[3]), NULL), "bind");
  expect(!F(get_hyper)(m, NULL, "lr", &old) && old > 0, "get_hyper lr");
  for (int s = 1; s <= steps; s++) {
    if (s == at) {
      expect(!F(set_hyper)(m, NULL, "lr", lr), "set_hyper lr");
      expect(!F(get_hyper)(m, "train", "lr", &v) && v == lr, "get_hyper returns the value set");
    }
    feed(m, s - 1);
    double loss = -1;
    expect(!F(train_step)(m, &loss), "train_step");
    printf("step %d: loss %.17g\n", s, loss);
  }
  FILE *f = fopen(argv[6], "wb");
  gradc_aot_tensor t;
  for (int i = 0; f && i < F(tensor_count)(); i++)
    if (!F(tensor_info)(m, i, &t) && (t.kind == GRADC_AOT_PARAM || t.kind == GRADC_AOT_STATE))
      fwrite(t.data, 1, t.bytes, f);
  expect(f && !fclose(f), "write the state");
  /* the state tensor is the value itself */
  double *p = F(data)(m, "optimizer/lr", NULL);
  expect(p && *p == (at <= steps ? lr : old), "optimizer/lr holds the value");
  expect(!F(set_hyper)(m, NULL, "lr", 0.25) && p && *p == 0.25, "set_hyper writes optimizer/lr");
  /* refusals, in the JIT's words */
  expect(F(set_hyper)(m, NULL, "momentum", 1) == GRADC_AOT_ERR_ARG, "an unknown name");
  printf("error: %s\n", F(last_error)(m));
  expect(F(get_hyper)(m, "eval", "lr", &v) == GRADC_AOT_ERR_ARG, "an unknown step");
  printf("error: %s\n", F(last_error)(m));
  expect(F(get_hyper)(m, NULL, "lr", NULL) == GRADC_AOT_ERR_ARG, "a NULL out pointer");
  printf("error: %s\n", F(last_error)(m));
  expect(F(set_hyper)(m, NULL, NULL, 1) == GRADC_AOT_ERR_ARG, "a NULL name");
  expect(F(set_hyper)(NULL, NULL, "lr", 1) == GRADC_AOT_ERR_ARG, "a NULL model");
  expect(!F(get_hyper)(m, NULL, "lr", &v) && v == 0.25, "refusals change nothing");
  F(free)(m);
  if (!fails) printf("hyper: ok\n");
  return fails != 0;
}
