// onebox-init: PID 1 of every onebox guest (boot sequence in docs/guest.md).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdline.h"
#include "control.h"
#include "file-io.h"
#include "forwarder.h"
#include "log.h"
#include "modules.h"
#include "mounts.h"
#include "network.h"
#include "power.h"
#include "protocol.h"
#include "services.h"
#include "sockets.h"
#include "system.h"
#include "test-modes.h"
#include "user-cgroup.h"

#define READY_PROBE_MS 20

static void fatal(const char *what) {
  log_info("fatal: %s; powering off", what);
  power_off();
}

/* The kernel starts PID 1 with /dev/console as fds 0-2 only if the initramfs has the node;
 * reopen it from devtmpfs so output works either way. */
static void console_setup(void) {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int i = 0; i < 3; i++)
    if (fd != i) dup2(fd, i);
  if (fd > 2) close(fd);
}

static size_t read_cmdline(char *buf, size_t cap) {
  ssize_t n = file_read_text("/proc/cmdline", buf, cap);
  return n < 0 ? 0 : (size_t)n;
}

static void forwarder_main(void) {
  int fd = sock_listen_vsock(ONEBOX_VSOCK_FORWARD_PORT);
  if (fd < 0) {
    log_errno("forwarder: listen on vsock port %d", ONEBOX_VSOCK_FORWARD_PORT);
    _exit(1);
  }
  forwarder_run(fd, fwd_dial_tcp_loopback);
  _exit(1);
}

static void control_main(void) {
  int fd = sock_listen_vsock(ONEBOX_VSOCK_CONTROL_PORT);
  if (fd < 0) {
    log_errno("control: listen on vsock port %d", ONEBOX_VSOCK_CONTROL_PORT);
    _exit(1);
  }
  control_run(fd);
  _exit(1);
}

static bool agent_answers(void) {
  char err[128];
  int fd = fwd_dial_tcp_loopback(ENVD_PORT, err, sizeof err);
  if (fd < 0) return false;
  close(fd);
  return true;
}

/* supervise is PID 1's loop: start due services, reap every child, react to signals.
 * Signals are blocked and taken synchronously so PID 1 runs no code in handlers. */
static void __attribute__((noreturn)) supervise(bool want_ready) {
  sigset_t set;
  sigemptyset(&set);
  int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i]);
  sigprocmask(SIG_BLOCK, &set, NULL);
  bool ready = false;
  for (;;) {
    long wait_ms = services_tick();
    if (want_ready && !ready && services_running("agent")) {
      if (agent_answers()) {
        ready = true;
        log_raw(ONEBOX_MARKER_READY);
      } else if (wait_ms < 0 || wait_ms > READY_PROBE_MS) {
        wait_ms = READY_PROBE_MS;
      }
    }
    siginfo_t info;
    int sig;
    if (wait_ms < 0) {
      sig = sigwaitinfo(&set, &info);
    } else {
      struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000};
      sig = sigtimedwait(&set, &info, &ts);
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) services_reaped(pid, status);
    if (sig == SIGTERM || sig == SIGUSR2 || sig == SIGPWR) {
      log_info("power-off requested");
      services_stop_all(2000);
      power_off();
    }
    if (sig == SIGINT) {
      log_info("reboot requested");
      services_stop_all(2000);
      power_reboot();
    }
  }
}

int main(void) {
  if (getpid() != 1) {
    fprintf(stderr, "onebox-init: must run as PID 1 (the /init of a onebox initramfs)\n");
    return 2;
  }
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  umask(022);
  int bad_mounts = mounts_api();
  console_setup();
  if (bad_mounts) log_info("%d API mounts failed", bad_mounts);

  static char cmdline[CMDLINE_MAX + 1];
  size_t cl_len = read_cmdline(cmdline, sizeof cmdline);
  struct cmdline cl;
  cmdline_parse(cmdline, cl_len, &cl);
  if (cl.bad) log_info("ignored %d malformed onebox.* parameters", cl.bad);

  int bad_modules = modules_load_all(cmdline, cl_len);
  if (bad_modules) log_info("%d modules failed to load", bad_modules);
  log_raw(ONEBOX_MARKER_BOOTED);
  system_lo_up();
  if (network_setup(&cl) < 0) log_info("network setup failed; the sandbox has no network");
  system_set_hostname(cl.hostname[0] ? cl.hostname : "onebox");
  if (cl.id[0]) system_write_id(cl.id); /* /run is moved, not remounted: this survives switch root */

  if (cl.test[0]) {
    log_info("test mode: %s", cl.test);
    if (!strcmp(cl.test, "echo")) {
      services_add_fn("echo", test_echo_main);
      services_add_fn("forwarder", forwarder_main);
      services_add_fn("control", control_main);
      supervise(false);
    }
    if (test_run(&cl) < 0) log_info("unknown test '%s'", cl.test);
    power_off();
  }

  if (mounts_wait_dev("/dev/vda", 3000) < 0) fatal("no root disk /dev/vda");
  if (mounts_wait_dev("/dev/vdb", 3000) < 0) fatal("no layer disk /dev/vdb");
  modules_free();
  if (mounts_overlay_root("/dev/vda", "/dev/vdb") < 0) fatal("cannot mount the overlay root");
  network_write_resolv(&cl); /* in the root the sandbox runs in */
  system_check_user();
  user_cgroup_setup(); /* before the agent: every command it starts goes in there */

  services_add_fn("forwarder", forwarder_main);
  services_add_fn("control", control_main);
  services_add_conf("agent", AGENT_CONF);
  services_scan_dir();
  supervise(true);
}
