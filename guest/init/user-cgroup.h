// The cgroup of user commands (docs/guest.md "Resource limits"): memory.max and pids.max below the
// VM's size, so a memory hog or a fork bomb is stopped inside it while PID 1 and the agent run on.
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Where the agent puts every process it starts (guest/agent/user-cgroup.ts reads the same path). */
#define USER_CGROUP_DIR "/sys/fs/cgroup/user"

struct user_cgroup_limits {
  uint64_t memory_max; /* bytes */
  uint64_t pids_max;
};

/* user_cgroup_limits_for derives the limits from /proc/meminfo's text; returns 0, or -1 without a
 * MemTotal line. memory.max = MemTotal - max(128 MiB, MemTotal/8) (half of MemTotal below 256 MiB);
 * pids.max = 2 per MiB of MemTotal, within 256..32768. */
int user_cgroup_limits_for(const char *meminfo, size_t len, struct user_cgroup_limits *out);

/* user_cgroup_setup enables the cpu, memory and pids controllers below the cgroup2 root and creates
 * USER_CGROUP_DIR with the limits; failures are logged, never fatal (commands then run unlimited). */
void user_cgroup_setup(void);
