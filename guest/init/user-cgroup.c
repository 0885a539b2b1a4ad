// The cgroup of user commands: the agent (root cgroup, oom_score_adj -1000) stays outside it, so
// the kernel stops runaway commands within the cgroup's limits instead of killing the guest.
#include "user-cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-io.h"
#include "log.h"

#define MIB (1024ull * 1024)
#define CGROUP_ROOT "/sys/fs/cgroup"

int user_cgroup_limits_for(const char *meminfo, size_t len, struct user_cgroup_limits *out) {
  static const char key[] = "MemTotal:";
  const char *p = meminfo, *end = meminfo + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    if ((size_t)(eol - p) > sizeof key - 1 && !memcmp(p, key, sizeof key - 1)) {
      const char *q = p + sizeof key - 1;
      while (q < eol && *q == ' ') q++;
      uint64_t kib = 0;
      int digits = 0;
      for (; q < eol && *q >= '0' && *q <= '9' && digits < 15; q++, digits++) kib = kib * 10 + (uint64_t)(*q - '0');
      if (!digits || kib == 0) return -1;
      uint64_t total = kib * 1024;
      uint64_t reserve = total < 256 * MIB ? total / 2 : (total / 8 > 128 * MIB ? total / 8 : 128 * MIB);
      out->memory_max = total - reserve;
      uint64_t pids = total / MIB * 2;
      out->pids_max = pids < 256 ? 256 : pids > 32768 ? 32768 : pids;
      return 0;
    }
    p = eol + 1;
  }
  return -1;
}

void user_cgroup_setup(void) {
  static char meminfo[4096];
  ssize_t n = file_read_text("/proc/meminfo", meminfo, sizeof meminfo);
  struct user_cgroup_limits lim;
  if (n <= 0 || user_cgroup_limits_for(meminfo, (size_t)n, &lim) < 0) {
    log_info("user cgroup: cannot read MemTotal; user commands run without limits");
    return;
  }
  /* One controller at a time: a kernel without one (e.g. no CFS group scheduling) keeps the others. */
  static const char *const controllers[] = {"+memory", "+pids", "+cpu"};
  for (size_t i = 0; i < sizeof controllers / sizeof controllers[0]; i++)
    if (file_write_text(CGROUP_ROOT "/cgroup.subtree_control", controllers[i]) < 0)
      log_errno("user cgroup: enable %s", controllers[i] + 1);
  if (mkdir(USER_CGROUP_DIR, 0755) < 0 && errno != EEXIST) {
    log_errno("user cgroup: mkdir " USER_CGROUP_DIR);
    return;
  }
  char num[32];
  snprintf(num, sizeof num, "%llu", (unsigned long long)lim.memory_max);
  if (file_write_text(USER_CGROUP_DIR "/memory.max", num) < 0) log_errno("user cgroup: memory.max %s", num);
  /* No swap in the guest; 0 makes that explicit should a template add some. */
  file_write_text(USER_CGROUP_DIR "/memory.swap.max", "0");
  snprintf(num, sizeof num, "%llu", (unsigned long long)lim.pids_max);
  if (file_write_text(USER_CGROUP_DIR "/pids.max", num) < 0) log_errno("user cgroup: pids.max %s", num);
  /* Half the default weight: under a CPU-bound command the agent (a root-cgroup task of weight
   * 100) still gets two thirds of a busy vCPU, so the sandbox keeps answering. */
  file_write_text(USER_CGROUP_DIR "/cpu.weight", "50");
  log_info("user cgroup: memory.max %llu MiB, pids.max %llu", (unsigned long long)(lim.memory_max / MIB),
           (unsigned long long)lim.pids_max);
}
