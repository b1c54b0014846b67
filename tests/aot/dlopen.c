/*
 * dlopen.c - loads two compiled models' shared objects into a process that
 * never linked LLVM or gradc, finds their entry points by name, and trains
 * each for a step: several models live in one program.
 *
 *   cc dlopen.c -ldl -o dlopen && ./dlopen ./libA.so A ./libB.so B
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void *NewFn(void);
typedef int BindFn(void *, int64_t, void *);
typedef int StepFn(void *, double *);
typedef void *DataFn(void *, const char *, int64_t *);
typedef void FreeFn(void *);

static void *sym(void *lib, const char *prefix, const char *name) {
  char full[256];
  snprintf(full, sizeof full, "%s_%s", prefix, name);
  void *p = dlsym(lib, full);
  if (!p) fprintf(stderr, "dlopen: %s: %s\n", full, dlerror());
  return p;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc % 2 == 0) {
    fprintf(stderr, "usage: dlopen LIB.so PREFIX [LIB.so PREFIX]...\n");
    return 2;
  }
  for (int a = 1; a + 1 < argc; a += 2) {
    void *lib = dlopen(argv[a], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return 1;
    }
    NewFn *mk = (NewFn *)sym(lib, argv[a + 1], "new");
    BindFn *bind = (BindFn *)sym(lib, argv[a + 1], "bind");
    StepFn *step = (StepFn *)sym(lib, argv[a + 1], "train_step");
    FreeFn *fr = (FreeFn *)sym(lib, argv[a + 1], "free");
    if (!mk || !bind || !step || !fr) return 1;
    void *m = mk();
    double loss = -1;
    if (!m || bind(m, 4, NULL) || step(m, &loss)) {
      fprintf(stderr, "dlopen: %s: a step failed\n", argv[a + 1]);
      return 1;
    }
    printf("%s: one step, loss %g\n", argv[a + 1], loss);
    fr(m);
  }
  /* Nothing of LLVM came with them. */
  if (dlsym(RTLD_DEFAULT, "LLVMContextCreate") || dlsym(RTLD_DEFAULT, "gradc_compile_file")) {
    fprintf(stderr, "dlopen: LLVM or gradc symbols are present in the process\n");
    return 1;
  }
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  while (maps && fgets(line, sizeof line, maps))
    if (strstr(line, "LLVM")) {
      fprintf(stderr, "dlopen: mapped: %s", line);
      return 1;
    }
  if (maps) fclose(maps);
  printf("dlopen: ok, no LLVM in the process\n");
  return 0;
}
