/*
 * replay.c - a fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput
 * once on every file named on the command line, or in a directory named
 * there, in name order.  ctest builds each target of tests/fuzz/ with this
 * main (CMakeLists.txt: fuzz_replay_*) and replays that target's
 * tests/fuzz/regressions/<target>/ on every run, release and sanitizers
 * alike, with graph verification on: a fixed finding that comes back fails
 * the ordinary test suite, not only the next fuzzing run (CI's, 30 s per
 * target, from random seeds, may miss it).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      uint8_t *grown = realloc(buf, cap *= 2);
      if (!grown) free(buf);
      buf = grown;
    }
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "%s: out of memory\n", path);
    return 1;
  }
  fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

static int skip_entry(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv) {
  int inputs = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      failed |= replay_file(argv[i]);
      inputs++;
      continue;
    }
    struct dirent **names;
    int n = scandir(argv[i], &names, skip_entry, alphasort);
    if (n < 0) {
      perror(argv[i]);
      return 1;
    }
    for (int k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
      if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        failed |= replay_file(path);
        inputs++;
      }
      free(names[k]);
    }
    free(names);
  }
  printf("replayed %d inputs\n", inputs);
  return failed || inputs == 0;
}
