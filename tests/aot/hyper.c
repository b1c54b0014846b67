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
#define DRIVER "hyper"
#include "driver.h"

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
  size_t len;
  char *state = state_bytes(m, &len);
  FILE *f = fopen(argv[6], "wb");
  int wrote = f && state && fwrite(state, 1, len, f) == len;
  expect(f && !fclose(f) && wrote, "write the state");
  free(state);
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
  return finish();
}
