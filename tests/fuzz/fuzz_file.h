/*
 * fuzz_file.h - in-memory files for the fuzz targets whose code under test
 * takes a path (the IDX, CSV and checkpoint readers).
 *
 * Each FuzzFile is a memfd made once per process; its /proc/self/fd path
 * opens like any regular file (fstat says S_ISREG, as ckpt.c requires), so
 * every input costs a truncate and a write, no disk and nothing to clean up.
 * A failing system call here is the harness's fault, not the code's, so it
 * aborts with the reason instead of being reported as a finding.
 */
#ifndef GRADC_FUZZ_FILE_H
#define GRADC_FUZZ_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct FuzzFile {
  int fd;
  char path[64];
} FuzzFile;

static void fuzz_file_die(const char *what) {
  perror(what);
  abort();
}

static void fuzz_file_open(FuzzFile *f, const char *name) {
  f->fd = memfd_create(name, MFD_CLOEXEC);
  if (f->fd < 0) fuzz_file_die("memfd_create");
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's contents with n bytes of data. */
static void fuzz_file_set(FuzzFile *f, const void *data, size_t n) {
  if (ftruncate(f->fd, 0) != 0) fuzz_file_die("ftruncate");
  const unsigned char *p = data;
  size_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(f->fd, p + done, n - done, (off_t)done);
    if (w <= 0) fuzz_file_die("pwrite");
    done += (size_t)w;
  }
}

#endif
