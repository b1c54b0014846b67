/*
 * steps.c - a model with two train statements (tests/models/two_steps.nn)
 * through its shared object, for tests/run_aot_tests.sh.
 *
 *   cc -DMODEL=two_steps -include two_steps.h steps.c -L. -ltwo_steps
 *   ./steps SEED BATCH SCHEDULE STATE.ckpt
 *
 * SCHEDULE is a string of f and s: step `first` (through the entry point
 * <prefix>_step_first) or `second` (through <prefix>_step(m, "second")),
 * each on the batch of data.h for its position; the learning rate of
 * `second` becomes 0.02 before the sixth step.  Prints each step's loss
 * and the refusals' messages ("error: ..."), and saves the checkpoint, for
 * a comparison with `jit_ref steps`, which does the same through the JIT.
 */
#define DRIVER "steps"
#include "driver.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: steps SEED BATCH SCHEDULE STATE.ckpt\n");
    return 2;
  }
  const char *schedule = argv[3];
  gradc_aot_model *m = F(new)();
  expect(m && !F(init)(m, strtoull(argv[1], NULL, 10)), "new, init");
  expect(!F(bind)(m, atoll(argv[2]), NULL), "bind");
  expect(F(step_count)() == 2, "two steps");
  expect(F(step_name)(0) && !strcmp(F(step_name)(0), "first"), "step 0 is first");
  expect(F(step_name)(1) && !strcmp(F(step_name)(1), "second"), "step 1 is second");
  expect(!F(step_name)(2), "no step 2");
  for (int i = 0; schedule[i]; i++) {
    if (i == 5) expect(!F(set_hyper)(m, "second", "lr", 0.02), "set_hyper second lr");
    feed(m, i);
    double loss = -1;
    if (schedule[i] == 'f') expect(!F(step_first)(m, &loss), "step_first");
    else expect(!F(step)(m, "second", &loss), "step second");
    printf("step %d (%c): loss %.17g\n", i + 1, schedule[i], loss);
  }
  expect(!F(save)(m, argv[4]), "save");
  double loss;
  expect(F(train_step)(m, &loss) == GRADC_AOT_ERR_ARG, "train_step refuses two steps");
  printf("error: %s\n", F(last_error)(m));
  expect(F(step)(m, "third", &loss) == GRADC_AOT_ERR_ARG, "an unknown step");
  printf("error: %s\n", F(last_error)(m));
  expect(F(set_hyper)(m, NULL, "lr", 1) == GRADC_AOT_ERR_ARG, "set_hyper needs the step");
  printf("error: %s\n", F(last_error)(m));
  expect(F(set_hyper)(m, "first", "momentum", 1) == GRADC_AOT_ERR_ARG, "adam has no momentum");
  printf("error: %s\n", F(last_error)(m));
  F(free)(m);
  return finish();
}
