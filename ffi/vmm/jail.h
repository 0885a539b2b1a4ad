// Privilege drop for onebox-vmm: after root-only setup, the process becomes its VM's own uid with no capabilities.
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* Drops every capability from the bounding set, clears supplementary groups, switches to uid/gid, and checks
 * that root cannot be regained and no capability is left. Returns 0, or -1 with a message in err. Must run
 * before any thread exists (so every thread gets the new ids without glibc's setxid broadcast). */
int jail_drop_privileges(uid_t uid, gid_t gid, char *err, size_t errlen);
