/*
 * driver.c - trains a model compiled by `gradc compile` through its shared
 * object and header only (no gradc, no LLVM), for tests/run_aot_tests.sh.
 *
 *   cc -DMODEL=mnist_mlp -DUPPER=MNIST_MLP -include mnist_mlp.h driver.c -L. -lmnist_mlp
 *   ./driver SEED STEPS BATCH STATE.ckpt OUTPUTS.bin [OTHER.ckpt]
 *
 * Initialises from SEED, runs STEPS train steps on the batches of data.h,
 * then one forward on the next batch; writes the state as a checkpoint
 * and the bytes of every output, metric and the loss.  With OTHER.ckpt
 * (written by the JIT) it loads that and checks the state is byte for byte
 * its own.  Also checks the API's refusals.  Exit 0 when all is well.
 */
#define DRIVER "driver"
#include "driver.h"

/* UPPER_NAME: the header's constant NAME (UPPER is the prefix in capitals). */
#define U(name) CAT(UPPER, name)

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: driver SEED STEPS BATCH STATE.ckpt OUTPUTS.bin [OTHER.ckpt]\n");
    return 2;
  }
  uint64_t seed = strtoull(argv[1], NULL, 10);
  int steps = atoi(argv[2]);
  int64_t batch = atoll(argv[3]);
  gradc_aot_model *m = F(new)();
  expect(m != NULL, "new");
  if (!m) return 1;
  expect(F(state_size)() == U(STATE_SIZE), "state_size() is the header's constant");
  expect(F(checkpoint_size)() == U(CHECKPOINT_SIZE), "checkpoint_size() is the header's constant");
  expect(F(tensor_count)() == U(TENSOR_COUNT), "tensor_count() is the header's constant");
  expect(F(forward)(m) == GRADC_AOT_ERR_ARG, "forward before bind is refused");
  expect(strstr(F(last_error)(m), "bind") != NULL, "the message says to bind");
  expect(F(bind)(m, 0, NULL) == GRADC_AOT_ERR_SHAPE, "batch 0 is refused");
  expect(F(data)(m, "no such tensor", NULL) == NULL, "an unknown name gives NULL");
  expect(F(workspace_size)(batch) > 0 && F(workspace_size)(0) == 0, "workspace_size");
  expect(F(init)(m, seed) == 0, "init");
  expect(F(bind)(m, batch, NULL) == 0, "bind");
  for (int s = 0; s < steps; s++) {
    feed(m, s);
    double loss = -1;
    expect(F(train_step)(m, &loss) == 0, "train_step");
    if (s == 0 || s == steps - 1) printf("step %d: loss %.17g\n", s + 1, loss);
  }
  /* A caller-owned workspace for the forward pass. */
  size_t wbytes = F(workspace_size)(batch);
  void *ws = aligned_alloc(64, (wbytes + 63) / 64 * 64);
  expect(F(bind)(m, batch, ws) == 0, "bind with a caller's workspace");
  feed(m, steps);
  expect(F(forward)(m) == 0, "forward");
  FILE *f = fopen(argv[5], "wb");
  gradc_aot_tensor t;
  for (int i = 0; f && i < F(tensor_count)(); i++)
    if (!F(tensor_info)(m, i, &t) && t.kind >= GRADC_AOT_OUTPUT) fwrite(t.data, 1, t.bytes, f);
  expect(f && fclose(f) == 0, "write the outputs");
  expect(F(save)(m, argv[4]) == 0, "save");

  /* A blob of another model's name is refused and changes nothing. */
  size_t n = F(checkpoint_size)(), len0, len1;
  char *blob = malloc(n);
  expect(F(get_state)(m, blob, n - 1) == GRADC_AOT_ERR_ARG, "get_state into a short buffer is refused");
  expect(F(get_state)(m, blob, n) == 0, "get_state");
  char *before = state_bytes(m, &len0);
  /* Every cut-short blob and every flipped bit of the first 512 bytes
   * (header, zlib and block headers, names, shapes) is refused with a
   * message, and the state stays as it was. */
  int refused = 1;
  for (size_t k = 0; k < n; k += k < 600 ? 1 : 997)
    refused &= F(set_state)(m, blob, k) == GRADC_AOT_ERR_CHECKPOINT && F(last_error)(m)[0];
  for (size_t k = 0; k < 512 && k < n; k++)
    for (int bit = 0; bit < 8; bit++) {
      if (k == 32 + 2 && bit >= 3) continue;  /* the first block header's padding, unused as in zlib */
      blob[k] ^= (char)(1 << bit);
      int s = F(set_state)(m, blob, n);
      if (s != GRADC_AOT_ERR_CHECKPOINT) fprintf(stderr, "driver: byte %zu bit %d flipped: %d\n", k, bit, s);
      refused &= s == GRADC_AOT_ERR_CHECKPOINT;
      blob[k] ^= (char)(1 << bit);
    }
  expect(refused, "truncated and damaged blobs are refused");
  char *still = state_bytes(m, &len1);
  expect(len0 == len1 && !memcmp(before, still, len0), "refused blobs change nothing");
  free(still);
  blob[32 + 2 + 5 + 4] ^= 1;                 /* the first letter of the model's name */
  expect(F(set_state)(m, blob, n) == GRADC_AOT_ERR_CHECKPOINT, "a damaged blob is refused");
  blob[32 + 2 + 5 + 4] ^= 1;
  expect(F(set_state)(m, blob, n) == 0, "set_state of our own blob");
  char *after = state_bytes(m, &len1);
  expect(len0 == len1 && !memcmp(before, after, len0), "get_state then set_state keeps the state");
  free(after);

  if (argc > 6) {
    int s = F(load)(m, argv[6]);
    if (s) fprintf(stderr, "driver: %s\n", F(last_error)(m));
    expect(s == 0, "load the JIT's checkpoint");
    after = state_bytes(m, &len1);
    expect(len0 == len1 && !memcmp(before, after, len0), "the JIT's state after the same steps is ours, byte for byte");
    free(after);
  }
  free(before);
  free(blob);
  free(ws);
  F(free)(m);
  return finish();
}
