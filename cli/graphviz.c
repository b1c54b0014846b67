/*
 * graphviz.c - `gradc dump --format svg|png` (issue 22): the graph's DOT
 * text (dump.c) rendered by Graphviz's dot, run as a child process.
 *
 * gradc does not link Graphviz: dot is found on PATH when asked for, so
 * that gradc builds and runs without it and says what to install when it
 * is missing.  The DOT goes to dot's standard input through a pipe; dot
 * writes the picture straight into the output (a temporary beside the
 * target, renamed over it only when dot exits 0, as every output of the
 * CLI is written) or onto standard output.  dot's own messages go to our
 * standard error.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* Writes all of text to fd; false with errno set on failure (EPIPE when
 * dot ended before reading it all). */
static bool write_all(int fd, const char *text, size_t len) {
  while (len) {
    ssize_t k = write(fd, text, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    text += k, len -= (size_t)k;
  }
  return true;
}

/* Runs dot -T<format> with dot_text on its standard input and its
 * standard output on fd_out; GRADC_OK when it exited 0. */
static gradc_status run_dot(const char *dot_text, size_t len, const char *format, int fd_out, RtError *err) {
  int in[2];
  if (pipe2(in, O_CLOEXEC)) return rt_fail(err, GRADC_ERR_IO, "cannot make a pipe to dot: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  if (fd_out != 1) posix_spawn_file_actions_adddup2(&fa, fd_out, 1);
  char type[16];
  snprintf(type, sizeof type, "-T%s", format);
  char *argv[] = {"dot", type, NULL};
  pid_t pid;
  int e = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  if (e) {
    close(in[1]);
    if (e == ENOENT)
      return rt_fail(err, GRADC_ERR_ARG, "--format %s renders the graph with Graphviz's dot, which is not installed "
                     "(not on PATH); install graphviz (Debian: apt-get install graphviz), or write --format dot "
                     "and render it elsewhere", format);
    return rt_fail(err, GRADC_ERR_IO, "cannot run dot: %s", strerror(e));
  }
  /* A dot that dies before reading everything must not kill gradc with
   * SIGPIPE: the write fails with EPIPE and dot's status says why. */
  struct sigaction ignore = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGPIPE, &ignore, &old);
  bool wrote = write_all(in[1], dot_text, len);
  int write_errno = errno;
  close(in[1]);
  sigaction(SIGPIPE, &old, NULL);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return rt_fail(err, GRADC_ERR_IO, "waiting for dot: %s", strerror(errno));
  if (WIFSIGNALED(status))
    return rt_fail(err, GRADC_ERR_IO, "dot -T%s was killed by signal %d", format, WTERMSIG(status));
  if (WEXITSTATUS(status))
    return rt_fail(err, GRADC_ERR_IO, "dot -T%s failed with exit status %d (its messages are above)", format,
                   WEXITSTATUS(status));
  if (!wrote) return rt_fail(err, GRADC_ERR_IO, "cannot write the graph to dot: %s", strerror(write_errno));
  return GRADC_OK;
}

gradc_status cli_graphviz(const char *dot_text, size_t len, const char *format, const char *path, RtError *err) {
  if (!path) {
    fflush(stdout);   /* what gradc printed comes before dot's output */
    return run_dot(dot_text, len, format, 1, err);
  }
  OutFile file;
  gradc_status s = out_open(&file, path, err);
  if (s) return s;
  fflush(file.f);
  s = run_dot(dot_text, len, format, fileno(file.f), err);
  return out_commit(&file, s, err);
}
