// Per-VM cgroup membership for onebox-vmm: the daemon creates and limits the cgroups, the vmm joins them itself.
#pragma once
#include <stddef.h>

/* Moves this process into each directory's cgroup.procs (one per cgroup v1 hierarchy, or one cgroup v2 dir).
 * Must run while still root (the files are root's) and before guest memory is touched or any thread exists, so
 * every page and thread of the VM is charged to and limited by its own cgroup. Returns 0, or -1 with err set. */
int cgroup_join(const char *const *dirs, int n, char *err, size_t errlen);
