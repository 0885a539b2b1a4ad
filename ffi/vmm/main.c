// onebox-vmm entry point: parses the command line (docs/architecture.md), builds and runs one VM, reports its end.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "args.h"
#include "cgroup.h"
#include "console_log.h"
#include "control.h"
#include "exit_record.h"
#include "jail.h"
#include "machine.h"
#include "pool.h"
#include "seccomp.h"

/* Exit status for failures before the VM runs (docs/architecture.md: 2 for everything but poweroff/stopped/reboot). */
#define EXIT_SETUP_FAILED 2

static struct machine machine;
static struct control control;
static struct exit_record record = {.fd = -1};

/* Undo for a failed setup: nothing half-made stays behind (sockets, device back-ends; the record says why). */
static int setup_failed(const struct vmm_args *a, const char *err) {
  fprintf(stderr, "onebox-vmm: %s\n", err);
  for (int i = 0; i < machine.nvirtio; i++) virtio_mmio_destroy(machine.virtio[i]);
  machine.nvirtio = 0;
  vm_destroy(&machine.vm);
  if (control.listen_fd > 0) {
    close(control.listen_fd);
    unlink(a->ctl);
  }
  if (record.fd >= 0) exit_record_commit(&record, "error", err, "");
  return EXIT_SETUP_FAILED;
}

int main(int argc, char **argv) {
  uint64_t start_ns = vm_now_ns();
  struct vmm_args args;
  char err[512] = "";
  if (args_parse(&args, argc, argv, err, sizeof err) < 0) {
    fprintf(stderr, "onebox-vmm: %s\n", err);
    return EXIT_SETUP_FAILED;
  }
  if (exit_record_open(&record, args.exit_file, err, sizeof err) < 0) {
    fprintf(stderr, "onebox-vmm: %s\n", err);
    return EXIT_SETUP_FAILED;
  }

  /* First, while root and before any allocation or thread: the VM's own cgroups (limits set by the daemon). */
  if (cgroup_join(args.cgroups, args.ncgroups, err, sizeof err) < 0) return setup_failed(&args, err);

  /* SIGTERM/SIGINT end the VM like `stop`; blocked here so every thread created later inherits the mask. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN); /* a peer that hangs up must not kill the VM */
  control.m = &machine;
  control.args = &args;
  control.record = &record;
  control.client_fd = -1;
  control.smaps_fd = -1;
  control.signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (control.signal_fd < 0) {
    snprintf(err, sizeof err, "signalfd: %s", strerror(errno));
    return setup_failed(&args, err);
  }

  int console_fd = -1;
  if (args.console) {
    console_fd = console_log_open(args.console, err, sizeof err);
    if (console_fd < 0) return setup_failed(&args, err);
  }
  if (machine_build(&machine, &args, console_fd, err, sizeof err) < 0) return setup_failed(&args, err);
  machine.serial.log.max = args.console_max;
  machine.vm.start_ns = start_ns;
  if (control_listen(&control, args.ctl, err, sizeof err) < 0) return setup_failed(&args, err);
  if (args.pool && args.restore) pool_preread(args.restore, args.restore_base);
  control.smaps_fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
  /* Everything that needs root is open, bound or mapped by now; no thread exists yet, so the new ids and the
   * empty capability sets apply to every thread started below. */
  if (args.uid && jail_drop_privileges(args.uid, args.gid, err, sizeof err) < 0) return setup_failed(&args, err);
  if (args.pool) {
    /* Pooled: no thread yet; the wider pooled filter lets `restore DIR` set state and start threads, then the
     * running filter is stacked on it (pool.c). */
    control.pooled = true;
    if (!args.no_seccomp && seccomp_install(SECCOMP_POOLED, err, sizeof err) < 0) return setup_failed(&args, err);
  } else {
    if (machine_start(&machine, err, sizeof err) < 0) return setup_failed(&args, err);
    if (!args.no_seccomp && seccomp_install(SECCOMP_RUNNING, err, sizeof err) < 0) {
      /* vCPUs already run: end them through the normal exit path so the record is written. */
      vm_request_exit(&machine.vm, VM_EXIT_ERROR, "%s", err);
    }
  }

  int status = control_run(&control);
  unlink(args.ctl);
  fflush(stderr);
  /* _exit: the vCPU and event-loop threads are parked or idle; running atexit handlers under them gains nothing. */
  _exit(status);
}
