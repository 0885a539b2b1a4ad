// seccomp-bpf allowlist for a running VM: only what vCPU threads, the event loop and the control socket use.
// Anything else kills the whole process (SECCOMP_RET_KILL_PROCESS): the daemon then sees vmm-crash with SIGSYS.
// Setup (open, KVM_CREATE_*, mmap of guest memory, thread creation) happens before the filter; after it the
// process cannot open files, exec, map executable memory, create non-Unix sockets or issue ioctls but KVM_RUN.
#include "seccomp.h"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define X32_SYSCALL_BIT 0x40000000u
#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define ARG_LO(n) (offsetof(struct seccomp_data, args) + (n) * sizeof(uint64_t)) /* little-endian low word */

#define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
/* If nr == syscall: allow. */
#define ALLOW(name) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_##name, 0, 1), RET(SECCOMP_RET_ALLOW)

/* Plain syscalls, allowed with any arguments. Why each one is needed: */
#define PLAIN_SYSCALLS(X)                                                    \
  X(read) X(write) X(readv) X(writev)          /* devices, console, sockets */ \
  X(pread64) X(pwrite64) X(preadv) X(pwritev) X(preadv2) X(pwritev2) X(lseek) \
  X(fsync) X(fdatasync)                        /* virtio-blk flush */       \
  X(fstat) X(newfstatat) X(fcntl) X(close)                                  \
  X(epoll_wait) X(epoll_pwait) X(epoll_ctl) X(poll) X(ppoll) X(eventfd2)    \
  X(bind) X(listen) X(accept) X(accept4) X(shutdown)  /* control + vsock forward sockets */ \
  X(sendto) X(recvfrom) X(sendmsg) X(recvmsg) X(getsockopt) X(setsockopt) X(getsockname) X(getpeername) \
  X(unlink) X(unlinkat) X(rename) X(renameat) X(renameat2)  /* exit record, forward socket files */ \
  X(getrandom)                                 /* virtio-rng */             \
  X(futex) X(sched_yield) X(nanosleep) X(clock_nanosleep) X(clock_gettime) X(gettimeofday) \
  X(getpid) X(gettid) X(tgkill) X(rt_sigprocmask) X(rt_sigreturn) X(restart_syscall) /* kicks, threads */ \
  X(munmap) X(madvise) X(brk) X(mremap)        /* malloc */                 \
  X(rseq) X(set_robust_list)                   /* run by a thread that starts just after the filter */ \
  X(exit) X(exit_group)                                                     \
  X(openat) X(mkdir) X(mkdirat) X(ftruncate)   /* `snapshot DIR`: the directory is only known at run time */

int seccomp_install(char *err, size_t errlen) {
  struct sock_filter filter[] = {
      LD(ARCH_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      RET(SECCOMP_RET_KILL_PROCESS),
      LD(NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
      RET(SECCOMP_RET_KILL_PROCESS),
#define X(name) ALLOW(name),
      PLAIN_SYSCALLS(X)
#undef X
      /* ioctl: KVM_RUN (vCPU threads) and the read-only KVM_GET_* that `snapshot DIR` needs. */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 19),
      LD(ARG_LO(1)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_RUN, 16, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_REGS, 15, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_SREGS, 14, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_XSAVE, 13, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_XCRS, 12, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_LAPIC, 11, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_MP_STATE, 10, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_VCPU_EVENTS, 9, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_DEBUGREGS, 8, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_MSR_INDEX_LIST, 7, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_MSRS, 6, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_IRQCHIP, 5, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_PIT2, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_CLOCK, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_CPUID2, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KVM_GET_TSC_KHZ, 1, 0),
      RET(SECCOMP_RET_KILL_PROCESS),
      RET(SECCOMP_RET_ALLOW),
      /* mmap/mprotect: never executable (malloc arenas need them). */
      LD(NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 4),
      LD(ARG_LO(2)),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
      RET(SECCOMP_RET_KILL_PROCESS),
      RET(SECCOMP_RET_ALLOW),
      /* socket: AF_UNIX only (runtime `forward PORT` listeners). */
      LD(NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 4),
      LD(ARG_LO(0)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
      RET(SECCOMP_RET_ALLOW),
      RET(SECCOMP_RET_KILL_PROCESS),
      RET(SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog prog = {.len = (unsigned short)(sizeof filter / sizeof filter[0]), .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return -1;
  }
  /* TSYNC: the vCPU and event-loop threads already exist and must get the same filter. */
  long rc = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (rc != 0) {
    snprintf(err, errlen, "seccomp: %s", rc < 0 ? strerror(errno) : "a thread could not be synchronized");
    return -1;
  }
  return 0;
}
