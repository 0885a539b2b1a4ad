// Parses and validates the onebox-vmm command line (docs/architecture.md); every value is checked here once.
#include "args.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "console_log.h"
#include "virtio/net/net.h"
#include "vm.h"

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || !*s || *end || v < min || v > max) return -1;
  *out = v;
  return 0;
}

int args_parse(struct vmm_args *a, int argc, char **argv, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->mem_mib = 512;
  a->vcpus = 1;
  a->cmdline = "";
  a->console_max = CONSOLE_LOG_MAX_DEFAULT;
  a->net_fd = -1;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    static const char *const with_value[] = {"--ctl", "--console", "--exit-file", "--kernel", "--initrd",
                                             "--cmdline", "--restore", "--test-guest", "--vsock", "--mem-mib",
                                             "--vcpus", "--cid", "--forward", "--disk", "--uid", "--gid", "--cgroup",
                                             "--console-max", "--forward-dir", "--restore-base", "--net"};
    bool flag = !strcmp(opt, "--rng") || !strcmp(opt, "--no-seccomp") || !strcmp(opt, "--pool");
    bool known = flag;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(opt, with_value[k]);
    if (!known) {
      snprintf(err, errlen, "unknown option %s (see docs/architecture.md)", opt);
      return -1;
    }
    const char *val = NULL;
    if (!flag) {
      if (i + 1 >= argc) {
        snprintf(err, errlen, "%s needs a value", opt);
        return -1;
      }
      val = argv[++i];
    }
    uint64_t n;
    if (!strcmp(opt, "--ctl")) a->ctl = val;
    else if (!strcmp(opt, "--console")) a->console = val;
    else if (!strcmp(opt, "--exit-file")) a->exit_file = val;
    else if (!strcmp(opt, "--kernel")) a->kernel = val;
    else if (!strcmp(opt, "--initrd")) a->initrd = val;
    else if (!strcmp(opt, "--cmdline")) a->cmdline = val;
    else if (!strcmp(opt, "--restore")) a->restore = val;
    else if (!strcmp(opt, "--test-guest")) a->test_guest = val;
    else if (!strcmp(opt, "--vsock")) a->vsock = val;
    else if (!strcmp(opt, "--forward-dir")) a->forward_dir = val;
    else if (!strcmp(opt, "--restore-base")) a->restore_base = val;
    else if (!strcmp(opt, "--rng")) a->rng = true;
    else if (!strcmp(opt, "--no-seccomp")) a->no_seccomp = true;
    else if (!strcmp(opt, "--pool")) a->pool = true;
    else if (!strcmp(opt, "--mem-mib")) {
      if (parse_u64(val, 16, VM_MAX_MEM_MIB, &n) < 0) {
        snprintf(err, errlen, "--mem-mib must be 16..%d", VM_MAX_MEM_MIB);
        return -1;
      }
      a->mem_mib = (uint32_t)n;
    } else if (!strcmp(opt, "--vcpus")) {
      if (parse_u64(val, 1, VM_MAX_VCPUS, &n) < 0) {
        snprintf(err, errlen, "--vcpus must be 1..%d", VM_MAX_VCPUS);
        return -1;
      }
      a->vcpus = (uint32_t)n;
    } else if (!strcmp(opt, "--console-max")) {
      if (parse_u64(val, CONSOLE_LOG_MAX_MIN, CONSOLE_LOG_MAX_MAX, &n) < 0) {
        snprintf(err, errlen, "--console-max must be %llu..%llu bytes", CONSOLE_LOG_MAX_MIN, CONSOLE_LOG_MAX_MAX);
        return -1;
      }
      a->console_max = n;
    } else if (!strcmp(opt, "--cid")) {
      /* vsock CIDs 0-2 are reserved (hypervisor, local, host); 32-bit in virtio-vsock config */
      if (parse_u64(val, 3, UINT32_MAX - 1, &n) < 0) {
        snprintf(err, errlen, "--cid must be 3..%u", UINT32_MAX - 1);
        return -1;
      }
      a->cid = n;
    } else if (!strcmp(opt, "--uid") || !strcmp(opt, "--gid")) {
      /* 0 is refused: the point of the option is to leave root; 2^32-1 is (uid_t)-1, "unchanged" to setresuid */
      if (parse_u64(val, 1, UINT32_MAX - 1, &n) < 0) {
        snprintf(err, errlen, "%s must be 1..%u", opt, UINT32_MAX - 1);
        return -1;
      }
      if (opt[2] == 'u') a->uid = (uint32_t)n;
      else a->gid = (uint32_t)n;
    } else if (!strcmp(opt, "--forward")) {
      /* PORT=PATH: the daemon names the socket (src/vmm/vm-spec.ts forwardPath); the vmm derives no name. */
      const char *eq = strchr(val, '=');
      char port[8] = "";
      if (eq && (size_t)(eq - val) < sizeof port) memcpy(port, val, (size_t)(eq - val));
      if (a->nforwards >= ARGS_MAX_FORWARDS || !eq || !eq[1] || parse_u64(port, 1, 65535, &n) < 0) {
        snprintf(err, errlen, "--forward takes PORT=PATH (TCP port 1..65535, the socket to listen on), at most %d times",
                 ARGS_MAX_FORWARDS);
        return -1;
      }
      a->forwards[a->nforwards].port = (uint32_t)n;
      a->forwards[a->nforwards++].path = eq + 1;
    } else if (!strcmp(opt, "--net")) {
      /* FD,MAC: an inherited TAP fd (3 is the vmm's dir) and the guest's MAC (a restore keeps the snapshot's). */
      const char *comma = strchr(val, ',');
      char fd[8] = "";
      if (comma && (size_t)(comma - val) < sizeof fd) memcpy(fd, val, (size_t)(comma - val));
      if (a->net_fd >= 0 || !comma || parse_u64(fd, 4, 1023, &n) < 0 || net_parse_mac(comma + 1, a->net_mac) < 0) {
        snprintf(err, errlen, "--net takes FD,MAC once (an inherited TAP fd 4..1023, a unicast MAC aa:bb:cc:dd:ee:ff)");
        return -1;
      }
      a->net_fd = (int)n;
    } else if (!strcmp(opt, "--cgroup")) {
      if (a->ncgroups >= ARGS_MAX_CGROUPS || strlen(val) >= 4000) {
        snprintf(err, errlen, "--cgroup: at most %d directories with paths under 4000 bytes", ARGS_MAX_CGROUPS);
        return -1;
      }
      a->cgroups[a->ncgroups++] = val;
    } else if (!strcmp(opt, "--disk")) {
      if (a->ndisks >= ARGS_MAX_DISKS || strlen(val) >= sizeof a->disk_paths[0]) {
        snprintf(err, errlen, "--disk: at most %d disks with paths under 4096 bytes", ARGS_MAX_DISKS);
        return -1;
      }
      char *p = a->disk_paths[a->ndisks];
      strcpy(p, val);
      size_t len = strlen(p);
      bool ro = len > 3 && !strcmp(p + len - 3, ",ro");
      if (ro) p[len - 3] = 0;
      a->disks[a->ndisks].path = p;
      a->disks[a->ndisks].read_only = ro;
      a->ndisks++;
    } else {
      snprintf(err, errlen, "unknown option %s (see docs/architecture.md)", opt);
      return -1;
    }
  }
  if (!a->ctl || !a->exit_file) {
    snprintf(err, errlen, "--ctl and --exit-file are required");
    return -1;
  }
  int sources = !!a->kernel + (a->restore || a->pool) + !!a->test_guest; /* --pool may name its --restore DIR */
  if (sources != 1) {
    snprintf(err, errlen, "give exactly one of --kernel, --restore, --test-guest, --pool (--pool may add --restore)");
    return -1;
  }
  if ((a->vsock == NULL) != (a->cid == 0)) {
    snprintf(err, errlen, "--vsock and --cid go together");
    return -1;
  }
  if ((a->uid == 0) != (a->gid == 0)) {
    snprintf(err, errlen, "--uid and --gid go together");
    return -1;
  }
  if (a->nforwards && !a->vsock) {
    snprintf(err, errlen, "--forward needs --vsock");
    return -1;
  }
  return 0;
}
