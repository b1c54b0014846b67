/*
 * save.c - a compiled .so's save and load, for the checks of
 * tests/run_aot_tests.sh on where a checkpoint may go (issue 23: a FIFO or
 * a device in the way, a symlink, two processes saving one path, a saver
 * killed mid-write).
 *
 *   cc -DMODEL=mnist_mlp -include mnist_mlp.h save.c -L. -lmnist_mlp
 *   ./save save PATH COUNT [LIMIT]   COUNT saves of one instance (seed 7)
 *                                    to PATH; with LIMIT, under a file-size
 *                                    limit of LIMIT bytes whose signal
 *                                    (SIGXFSZ) kills the process mid-write,
 *                                    as SIGKILL would
 *   ./save load PATH                 PATH loads, and holds seed 7's state
 *
 * Each failure prints the .so's message; exit 0 and "save: ok" when every
 * save (or the load) succeeded.
 */
#include <signal.h>
#include <sys/resource.h>

#define DRIVER "save"
#include "driver.h"

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "load")) || (!strcmp(argv[1], "save") && argc < 4)) {
    fprintf(stderr, "usage: save save PATH COUNT [LIMIT] | save load PATH\n");
    return 2;
  }
  const char *path = argv[2];
  gradc_aot_model *m = F(new)(), *ref = F(new)();
  if (!expect(m && ref && !F(init)(m, 7) && !F(init)(ref, 7), "cannot make the instances")) return finish();
  if (!strcmp(argv[1], "load")) {
    F(init)(m, 8);   /* different from the file, so that the load shows */
    if (expect(!F(load)(m, path), "%s", F(last_error)(m))) {
      size_t a, b;
      char *got = state_bytes(m, &a), *want = state_bytes(ref, &b);
      expect(got && want && a == b && !memcmp(got, want, a), "'%s' does not hold seed 7's state", path);
      free(got), free(want);
    }
  } else {
    if (argc > 4) {
      struct rlimit lim;
      signal(SIGXFSZ, SIG_DFL);
      if (getrlimit(RLIMIT_FSIZE, &lim) || (lim.rlim_cur = (rlim_t)atoll(argv[4]), setrlimit(RLIMIT_FSIZE, &lim)))
        return fprintf(stderr, "save: cannot set the file-size limit\n"), 2;
    }
    int failed = 0;
    for (int k = 0; k < atoi(argv[3]); k++)
      if (F(save)(m, path) && !failed++) expect(0, "save %d: %s", k + 1, F(last_error)(m));
    expect(!failed, "%d of %s saves failed", failed, argv[3]);
  }
  F(free)(m), F(free)(ref);
  return finish();
}
