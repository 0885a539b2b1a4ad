// Joins the VM's cgroups (docs/vmm.md "Isolation"): a write of our pid to each DIR/cgroup.procs.
#include "cgroup.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cgroup_join(const char *const *dirs, int n, char *err, size_t errlen) {
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  for (int i = 0; i < n; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    /* The kernel checks the move at write(), not open(): both can fail (gone, permission, a v2 parent without
     * the controllers enabled), and either one means the VM would run unconfined, so it must not start. */
    if (fd < 0 || write(fd, pid, (size_t)len) != len) {
      snprintf(err, errlen, "join cgroup %s: %s", path, strerror(errno));
      if (fd >= 0) close(fd);
      return -1;
    }
    close(fd);
  }
  return 0;
}
