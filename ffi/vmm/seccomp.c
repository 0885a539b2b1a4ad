// seccomp-bpf allowlists: one for a running VM (only what vCPU threads, the event loop and the control socket use),
// and a wider one for a pooled vmm waiting for `restore DIR` (that plus the KVM_SET_* of a restore and threads).
// Anything else kills the whole process (SECCOMP_RET_KILL_PROCESS): the daemon then sees vmm-crash with SIGSYS.
// Setup (open, KVM_CREATE_*, memslot, thread creation) happens before the first filter; after the running filter
// the process cannot exec, map executable memory, create non-Unix sockets or issue ioctls but KVM_RUN and
// the read-only KVM_GET_* of `snapshot DIR`.
#include "seccomp.h"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdbool.h>
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
#define MAX_INSNS 256

/* Plain syscalls, allowed with any arguments. Why each one is needed: */
static const int plain_syscalls[] = {
    __NR_read, __NR_write, __NR_readv, __NR_writev, /* devices, console, sockets */
    __NR_pread64, __NR_pwrite64, __NR_preadv, __NR_pwritev, __NR_preadv2, __NR_pwritev2, __NR_lseek,
    __NR_fsync, __NR_fdatasync, /* virtio-blk flush */
    __NR_fstat, __NR_newfstatat, __NR_fcntl, __NR_close,
    __NR_epoll_wait, __NR_epoll_pwait, __NR_epoll_ctl, __NR_poll, __NR_ppoll, __NR_eventfd2,
    __NR_timerfd_settime, /* vsock reset hold timer (created at setup), armed at restore */
    __NR_bind, __NR_listen, __NR_accept, __NR_accept4, __NR_shutdown, /* control + vsock forward sockets */
    __NR_sendto, __NR_recvfrom, __NR_sendmsg, __NR_recvmsg, __NR_getsockopt, __NR_setsockopt, __NR_getsockname,
    __NR_getpeername,
    __NR_unlink, __NR_unlinkat, __NR_rename, __NR_renameat, __NR_renameat2, /* exit record, forward socket files */
    __NR_getrandom, /* virtio-rng */
    __NR_futex, __NR_sched_yield, __NR_nanosleep, __NR_clock_nanosleep, __NR_clock_gettime, __NR_gettimeofday,
    __NR_getpid, __NR_gettid, __NR_tgkill, __NR_rt_sigprocmask, __NR_rt_sigreturn, __NR_restart_syscall, /* kicks */
    __NR_munmap, __NR_madvise, __NR_brk, __NR_mremap, /* malloc */
    __NR_rseq, __NR_set_robust_list, /* run by a thread that starts just after the filter */
    __NR_exit, __NR_exit_group,
    __NR_openat, __NR_mkdir, __NR_mkdirat, __NR_ftruncate, /* `snapshot DIR` (and `restore DIR`): known at run time */
};

/* ioctls a running VM may issue: KVM_RUN (vCPU threads) and the read-only KVM_GET_* that `snapshot DIR` needs. */
static const uint32_t running_ioctls[] = {
    KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_LAPIC, KVM_GET_MP_STATE,
    KVM_GET_VCPU_EVENTS, KVM_GET_DEBUGREGS, KVM_GET_MSR_INDEX_LIST, KVM_GET_MSRS, KVM_GET_IRQCHIP, KVM_GET_PIT2,
    KVM_GET_CLOCK, KVM_GET_CPUID2, KVM_GET_TSC_KHZ,
};

/* What `restore DIR` sets in a prepared VM (ffi/vmm/snapshot/restore.c). No KVM_CREATE_*, no memslot, no CPUID:
 * the waiting vmm cannot make another VM or change its memory layout. */
static const uint32_t restore_ioctls[] = {
    KVM_SET_IRQCHIP, KVM_SET_PIT2, KVM_SET_CLOCK, KVM_SET_SREGS, KVM_SET_REGS, KVM_SET_XSAVE, KVM_SET_XCRS,
    KVM_SET_DEBUGREGS, KVM_SET_LAPIC, KVM_SET_MSRS, KVM_SET_MP_STATE, KVM_SET_VCPU_EVENTS,
};

struct prog {
  struct sock_filter insn[MAX_INSNS];
  unsigned n;
};

static void emit(struct prog *p, struct sock_filter i) {
  if (p->n < MAX_INSNS) p->insn[p->n] = i;
  p->n++; /* an overflow is caught before install */
}
static void load(struct prog *p, uint32_t off) { emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off)); }
static void ret(struct prog *p, uint32_t v) { emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, v)); }
/* if A == k: return v */
static void ret_if(struct prog *p, uint32_t k, uint32_t v) {
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
  ret(p, v);
}
/* if A (the syscall number) == nr: the block that follows, which must end in a return; else skip it (end_if). */
static unsigned begin_if(struct prog *p, uint32_t nr) {
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 0));
  return p->n - 1;
}
static void end_if(struct prog *p, unsigned at) {
  if (at < MAX_INSNS) p->insn[at].jf = (uint8_t)(p->n - at - 1);
}
/* if (A & bit): return yes; else return no */
static void ret_jset(struct prog *p, uint32_t bit, uint32_t yes, uint32_t no) {
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, bit, 0, 1));
  ret(p, yes);
  ret(p, no);
}

#define ALLOW SECCOMP_RET_ALLOW
#define KILL SECCOMP_RET_KILL_PROCESS
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void build(struct prog *p, enum seccomp_stage stage) {
  load(p, ARCH_OFF);
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  ret(p, KILL);
  load(p, NR_OFF);
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1));
  ret(p, KILL);
  for (size_t i = 0; i < COUNT(plain_syscalls); i++) ret_if(p, (uint32_t)plain_syscalls[i], ALLOW);

  unsigned at = begin_if(p, __NR_ioctl);
  load(p, ARG_LO(1));
  for (size_t i = 0; i < COUNT(running_ioctls); i++) ret_if(p, running_ioctls[i], ALLOW);
  if (stage == SECCOMP_POOLED)
    for (size_t i = 0; i < COUNT(restore_ioctls); i++) ret_if(p, restore_ioctls[i], ALLOW);
  ret(p, KILL);
  end_if(p, at);

  /* mmap/mprotect: never executable (malloc arenas, thread stacks and the snapshot memory need them). */
  static const int no_exec[] = {__NR_mmap, __NR_mprotect};
  for (size_t i = 0; i < COUNT(no_exec); i++) {
    at = begin_if(p, (uint32_t)no_exec[i]);
    load(p, ARG_LO(2));
    ret_jset(p, PROT_EXEC, KILL, ALLOW);
    end_if(p, at);
  }

  /* socket: AF_UNIX only (runtime `forward PORT` listeners). */
  at = begin_if(p, __NR_socket);
  load(p, ARG_LO(0));
  ret_if(p, AF_UNIX, ALLOW);
  ret(p, KILL);
  end_if(p, at);

  if (stage == SECCOMP_POOLED) {
    /* After `restore DIR`: the event loop and vCPU threads are started, the process-wide kick handler was set
     * during setup. clone only with CLONE_THREAD (a thread, never a process); clone3 passes its flags in memory
     * that seccomp cannot read, so it fails with ENOSYS and glibc falls back to clone. `seccomp` itself stacks
     * the running filter on top once the VM runs (filters only ever add restrictions). */
    at = begin_if(p, __NR_clone);
    load(p, ARG_LO(0));
    ret_jset(p, CLONE_THREAD, ALLOW, KILL);
    end_if(p, at);
    ret_if(p, __NR_clone3, SECCOMP_RET_ERRNO | ENOSYS);
    ret_if(p, __NR_seccomp, ALLOW);
    /* glibc's first pthread_create installs its setxid signal handler (SIGRT_1). */
    ret_if(p, __NR_rt_sigaction, ALLOW);
    /* realpath(DIR): the absolute base path that a later `snapshot-diff` records. */
    ret_if(p, __NR_readlink, ALLOW);
    ret_if(p, __NR_getcwd, ALLOW);
  }
  ret(p, KILL);
}

int seccomp_install(enum seccomp_stage stage, char *err, size_t errlen) {
  static struct prog p;
  memset(&p, 0, sizeof p);
  build(&p, stage);
  if (p.n > MAX_INSNS) {
    snprintf(err, errlen, "seccomp: filter of %u instructions is over %d", p.n, MAX_INSNS);
    return -1;
  }
  /* NO_NEW_PRIVS sticks once set: a pooled vmm stacking the running filter does not need (or may call) prctl. */
  static bool no_new_privs;
  if (!no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return -1;
  }
  no_new_privs = true;
  struct sock_fprog prog = {.len = (unsigned short)p.n, .filter = p.insn};
  /* TSYNC: the vCPU and event-loop threads may already exist and must get the same filter. */
  long rc = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (rc != 0) {
    snprintf(err, errlen, "seccomp: %s", rc < 0 ? strerror(errno) : "a thread could not be synchronized");
    return -1;
  }
  return 0;
}
