// Control loop on the main thread: serves the line protocol on the control socket, watches for the VM's end,
// then stops the vCPUs, writes the exit record, pushes `event exit` and returns the process exit status.
#include "control.h"
#include "snapshot/snapshot.h"
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "pool.h"
#include "virtio/vsock/vsock.h"
#include "vcpu.h"

#define CONTROL_LINE_MAX 4096
/* After "Kernel panic - not syncing" the kernel prints its backtrace and resets (panic=-1); if the reset
 * never comes (interrupts off, hung), the VM is ended as a panic after this grace period. */
#define PANIC_GRACE_MS 1000

int control_listen(struct control *c, const char *path, char *err, size_t errlen) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    snprintf(err, errlen, "--ctl path longer than %zu bytes", sizeof addr.sun_path - 1);
    return -1;
  }
  strcpy(addr.sun_path, path);
  c->client_fd = -1;
  c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c->listen_fd < 0) goto fail;
  unlink(path); /* a socket file left by a crashed earlier vmm of the same VM */
  if (bind(c->listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(c->listen_fd, 4) < 0) goto fail;
  return 0;
fail:
  snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
  return -1;
}

static void control_send(struct control *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void control_send(struct control *c, const char *fmt, ...) {
  if (c->client_fd < 0) return;
  char line[CONTROL_LINE_MAX + 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)(sizeof line - 2);
  line[n++] = '\n';
  /* Replies are short: a client that does not read them is dropped rather than blocking the VM's control. */
  if (send(c->client_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
    close(c->client_fd);
    c->client_fd = -1;
  }
}

static long smaps_field(const char *text, const char *name) {
  const char *p = strstr(text, name);
  return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

static void control_stats(struct control *c) {
  char text[4096];
  ssize_t n = -1;
  if (c->smaps_fd >= 0 && lseek(c->smaps_fd, 0, SEEK_SET) == 0) n = read(c->smaps_fd, text, sizeof text - 1);
  if (n < 0) {
    control_send(c, "err cannot read /proc/self/smaps_rollup");
    return;
  }
  text[n] = 0;
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  uint64_t first = atomic_load(&c->m->vm.first_exit_ns), enter = atomic_load(&c->m->vm.first_enter_ns);
  /* start_us: from main() (pooled: the `restore` request) to the first guest exit, 0 until there was one;
   * enter_us: to the first KVM_RUN entry, so start_us - enter_us is the guest's first run alone. */
  control_send(c, "ok rss_kib=%ld pss_kib=%ld cpu_ns=%llu start_us=%llu enter_us=%llu", smaps_field(text, "\nRss:"),
               smaps_field(text, "\nPss:"), (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec,
               (unsigned long long)(first ? (first - c->m->vm.start_ns) / 1000 : 0),
               (unsigned long long)(enter ? (enter - c->m->vm.start_ns) / 1000 : 0));
}

/* `restore DIR` (pooled vmm only). A refusal (bad or foreign snapshot, other shape) leaves it pooled for the next
 * try; a failure after the VM was changed ends it with reason error. */
static void control_restore(struct control *c, const char *dir) {
  char err[512] = "";
  struct pool_result r;
  if (!c->pooled) {
    control_send(c, "err restore needs a pooled vmm (started with --pool) that has not restored yet");
  } else if (!*dir) {
    control_send(c, "err restore needs a directory");
  } else if (pool_restore(c->m, c->args, dir, &r, err, sizeof err) < 0) {
    if (r.fatal) {
      c->pooled = false;
      vm_request_exit(&c->m->vm, VM_EXIT_ERROR, "restore %s: %s", dir, err);
    }
    control_send(c, "err %s", err);
  } else {
    c->pooled = false;
    control_send(c, "ok read_ns=%llu validate_ns=%llu mmap_ns=%llu vm_ns=%llu vcpu_ns=%llu devices_ns=%llu threads_ns=%llu total_ns=%llu",
                 (unsigned long long)r.t.read_ns, (unsigned long long)r.t.validate_ns, (unsigned long long)r.t.mmap_ns,
                 (unsigned long long)r.t.vm_ns, (unsigned long long)r.t.vcpu_ns, (unsigned long long)r.t.devices_ns,
                 (unsigned long long)r.threads_ns, (unsigned long long)r.total_ns);
  }
}

/* Where `forward PORT` binds: --forward-dir (a directory the vmm's uid may write in, given to it as an fd: the
 * run dir holding the sockets bound before the drop is root's). The one socket name the vmm makes itself; the
 * daemon opens the same name (src/vmm/vm-process.ts forward()). */
static void runtime_forward_path(const struct control *c, uint32_t port, char *path, size_t len) {
  snprintf(path, len, "%s/tcp-%u", c->args->forward_dir, port);
}

static void control_request(struct control *c, char *line) {
  struct vm *vm = &c->m->vm;
  unsigned port;
  char extra;
  if (!strcmp(line, "ping")) {
    control_send(c, "ok pid=%d state=%s", getpid(), c->pooled ? "pooled" : vcpus_paused(vm) ? "paused" : "running");
  } else if (!strncmp(line, "restore ", 8) || !strcmp(line, "restore")) {
    control_restore(c, line[7] ? line + 8 : "");
  } else if (c->pooled && strcmp(line, "stop") && strcmp(line, "stats")) {
    control_send(c, "err this vmm is pooled: send restore DIR first (or stop)");
  } else if (!strcmp(line, "pause")) {
    if (vcpus_pause(vm) < 0)
      control_send(c, "err vcpus did not stop within 2 s");
    else
      control_send(c, "ok");
  } else if (!strcmp(line, "resume")) {
    vcpus_resume(vm);
    control_send(c, "ok");
  } else if (!strcmp(line, "stop")) {
    vm_request_exit(vm, VM_EXIT_STOPPED, "stop requested");
    control_send(c, "ok");
  } else if (!strcmp(line, "stats")) {
    control_stats(c);
  } else if (!strncmp(line, "snapshot", 8) && (line[8] == ' ' || !line[8] || !strncmp(line + 8, "-diff", 5))) {
    /* snapshot DIR: everything; snapshot-diff DIR: only what changed since restore (docs/snapshot.md) */
    char err[512] = "";
    bool diff = !strncmp(line + 8, "-diff", 5);
    const char *rest = line + (diff ? 13 : 8);
    const char *dir = *rest == ' ' ? rest + 1 : "";
    if (!*dir) {
      control_send(c, "err snapshot needs a directory");
    } else if (!vcpus_paused(vm)) {
      control_send(c, "err pause the VM first");
    } else if ((diff ? snapshot_save_diff : snapshot_save)(c->m, dir, err, sizeof err) < 0) {
      control_send(c, "err %s", err);
    } else {
      control_send(c, "ok");
    }
  } else if (sscanf(line, "forward %u%c", &port, &extra) == 1) {
    char path[4200], err[256] = "";
    if (!machine_vsock(c->m)) {
      control_send(c, "err no vsock device (start the vmm with --vsock)");
    } else if (!c->args->forward_dir) {
      control_send(c, "err no directory for forward sockets (start the vmm with --forward-dir)");
    } else if (port == 0 || port > 65535) {
      control_send(c, "err port must be 1..65535");
    } else {
      runtime_forward_path(c, port, path, sizeof path);
      if (virtio_vsock_add_forward(machine_vsock(c->m), port, path, err, sizeof err) < 0) {
        control_send(c, "err %s", err);
      } else {
        control_send(c, "ok path=%s", path);
      }
    }
  } else {
    control_send(c, "err unknown request (ping, pause, resume, stop, stats, snapshot DIR, snapshot-diff DIR, forward PORT, restore DIR)");
  }
}

static void control_read_client(struct control *c) {
  ssize_t n = read(c->client_fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(c->client_fd);
    c->client_fd = -1;
    c->len = 0;
    return;
  }
  c->len += (size_t)n;
  char *start = c->buf, *nl;
  while (c->client_fd >= 0 && (nl = memchr(start, '\n', c->len - (size_t)(start - c->buf)))) {
    *nl = 0;
    if (nl > start && nl[-1] == '\r') nl[-1] = 0;
    control_request(c, start);
    start = nl + 1;
  }
  if (c->client_fd < 0) {
    c->len = 0;
    return;
  }
  c->len -= (size_t)(start - c->buf);
  memmove(c->buf, start, c->len);
  if (c->len >= CONTROL_LINE_MAX) {
    control_send(c, "err line longer than %d bytes", CONTROL_LINE_MAX);
    if (c->client_fd >= 0) close(c->client_fd);
    c->client_fd = -1;
    c->len = 0;
  }
}

static void control_accept(struct control *c) {
  int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  if (c->client_fd >= 0) close(c->client_fd); /* one client at a time: the newest wins (daemon restart) */
  c->client_fd = fd;
  c->len = 0;
}

/* The vsock and forward socket files are ours: remove them so a finished VM leaves only its records behind. (After
 * the privilege drop only those in the vmm's own dir can go; the daemon removes the rest.) */
static void control_unlink_sockets(struct control *c) {
  if (machine_vsock(c->m)) virtio_vsock_unlink_sockets(machine_vsock(c->m));
}

static int exit_status(enum vm_exit_reason r) {
  switch (r) {
    case VM_EXIT_POWEROFF:
    case VM_EXIT_STOPPED: return 0;
    case VM_EXIT_REBOOT: return 1;
    default: return 2;
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int control_run(struct control *c) {
  struct vm *vm = &c->m->vm;
  uint64_t panic_deadline = 0;
  while (atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
    struct pollfd fds[4] = {
        {.fd = vm->exit_efd, .events = POLLIN},
        {.fd = c->listen_fd, .events = POLLIN},
        {.fd = c->signal_fd, .events = POLLIN},
        {.fd = c->client_fd, .events = POLLIN},
    };
    int timeout = -1;
    if (panic_deadline) timeout = (int)(panic_deadline > now_ms() ? panic_deadline - now_ms() : 0);
    int n = poll(fds, c->client_fd >= 0 ? 4 : 3, timeout);
    if (n < 0 && errno != EINTR) {
      vm_request_exit(vm, VM_EXIT_ERROR, "poll: %s", strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      if (read(vm->exit_efd, &v, sizeof v) < 0) { /* nonblocking: nothing to drain */
      }
    }
    if (atomic_load(&vm->panic_seen) && !panic_deadline) panic_deadline = now_ms() + PANIC_GRACE_MS;
    if (panic_deadline && now_ms() >= panic_deadline)
      vm_request_exit(vm, VM_EXIT_PANIC, "kernel panic (seen on the console; no reset followed)");
    if (fds[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(c->signal_fd, &si, sizeof si) == sizeof si)
        vm_request_exit(vm, VM_EXIT_STOPPED, "signal %u", si.ssi_signo);
    }
    if (fds[1].revents & POLLIN) control_accept(c);
    if (c->client_fd >= 0 && n > 0 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR))) control_read_client(c);
  }

  /* The end: stop the vCPUs first so the console tail is final, then record and announce. */
  enum vm_exit_reason reason = (enum vm_exit_reason)atomic_load(&vm->exit_reason);
  vcpus_pause(vm);
  serial_flush(&c->m->serial);
  char *tail = malloc(SERIAL_TAIL_SIZE + 1);
  if (tail) serial_tail(&c->m->serial, tail, SERIAL_TAIL_SIZE + 1);
  const char *name = vm_exit_reason_name(reason);
  if (exit_record_commit(c->record, name, vm->exit_detail, tail ? tail : "") < 0)
    fprintf(stderr, "onebox-vmm: cannot write the exit record %s\n", c->record->path);
  control_unlink_sockets(c);
  control_send(c, "event exit reason=%s", name);
  free(tail);
  return exit_status(reason);
}
