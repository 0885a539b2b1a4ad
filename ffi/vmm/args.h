// The onebox-vmm command line (docs/architecture.md "Command line"), parsed into a config.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARGS_MAX_DISKS 8
#define ARGS_MAX_FORWARDS 16
#define ARGS_MAX_CGROUPS 8

struct vmm_args {
  const char *ctl, *console, *exit_file;
  uint64_t console_max; /* --console-max: the console log's size cap in bytes (console_log.h) */
  uint32_t mem_mib, vcpus;
  const char *kernel, *initrd, *cmdline, *restore, *test_guest;
  struct { const char *path; bool read_only; } disks[ARGS_MAX_DISKS];
  int ndisks;
  bool rng;
  const char *vsock;
  int net_fd;       /* --net FD,MAC: a TAP the daemon opened (-1: no network) */
  uint8_t net_mac[6];
  uint64_t cid;
  struct { uint32_t port; const char *path; } forwards[ARGS_MAX_FORWARDS]; /* --forward PORT=PATH */
  int nforwards;
  bool no_seccomp;
  bool pool; /* --pool: prepare a --vcpus x --mem-mib machine and wait for `restore DIR` (docs/snapshot.md);
              * with --restore DIR, that snapshot is read at start, as root (`restore DIR` then names it again) */
  const char *restore_base; /* --restore-base: the base a diff in --restore DIR must lie over (the daemon's
                             * record; DIR/state's path is the vmm's writing and only checked against it) */
  const char *forward_dir; /* --forward-dir: where `forward PORT` binds (DIR/tcp-PORT); without it, no `forward` */
  uint32_t uid, gid; /* 0 = keep running as the caller (no --uid/--gid) */
  const char *cgroups[ARGS_MAX_CGROUPS]; /* --cgroup: directories whose cgroup.procs the vmm joins first */
  int ncgroups;
  char disk_paths[ARGS_MAX_DISKS][4096];
};

/* Returns 0, or -1 with a message in err that says what to fix. */
int args_parse(struct vmm_args *a, int argc, char **argv, char *err, size_t errlen);
