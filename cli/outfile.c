/* Output files written whole or not at all, the way checkpoints are: into
 * a temporary beside the target, renamed over it once every byte is out.
 * What gradc sample, score's data, predict -o and plot write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

gradc_status out_open(OutFile *o, const char *path, RtError *err) {
  o->path = path;
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(o->tmp);
  /* the mode an fopen would give: mkstemp's 0600 would hide the file from others */
  mode_t mask = umask(0);
  umask(mask);
  if (fd >= 0) fchmod(fd, 0666 & ~mask);
  o->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (o->f) return GRADC_OK;
  int e = errno;
  if (fd >= 0) close(fd), unlink(o->tmp);
  return rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", path, strerror(e));
}

gradc_status out_commit(OutFile *o, gradc_status s, RtError *err) {
  errno = 0;
  bool bad = ferror(o->f) != 0;
  if (fclose(o->f) != 0) bad = true;
  o->f = NULL;
  if (!s && (bad || rename(o->tmp, o->path) != 0))
    s = rt_fail(err, GRADC_ERR_IO, "cannot write '%s': %s", o->path, strerror(errno ? errno : EIO));
  if (s) unlink(o->tmp);
  return s;
}
