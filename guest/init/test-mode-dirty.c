// The echo test mode's state service: memory, a file and a process whose survival across pause/resume the host checks.
#include "test-mode-dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk-pattern.h"
#include "log.h"
#include "sockets.h"

#define PAGE 4096
#define FILE_PATH "/tmp/onebox-state.dat"
#define FILE_BYTES (1024 * 1024)
#define MAX_MIB 2048

/* One client at a time is enough for the tests; the service thread owns all of this. */
static uint8_t *region;
static size_t region_bytes;
static uint64_t region_seed, file_seed;
static int file_made;
static pid_t ticker = -1;
static volatile uint64_t *ticks; /* MAP_SHARED with the ticker */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pages of buf that differ from the pattern of seed. */
static long pattern_bad_pages(const uint8_t *buf, size_t n, uint64_t seed) {
  static uint8_t want[PAGE];
  uint64_t st = blk_pattern_init(seed);
  long bad = 0;
  for (size_t off = 0; off < n; off += PAGE) {
    blk_pattern_fill(&st, want, PAGE);
    if (memcmp(buf + off, want, PAGE)) bad++;
  }
  return bad;
}

static int op_dirty(unsigned long mib, uint64_t seed, char *out, size_t cap) {
  if (mib == 0 || mib > MAX_MIB) return snprintf(out, cap, "err MIB must be 1..%d", MAX_MIB), -1;
  if (region) munmap(region, region_bytes);
  region_bytes = mib << 20;
  region = mmap(NULL, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) {
    region = NULL;
    return snprintf(out, cap, "err mmap: %s", strerror(errno)), -1;
  }
  uint64_t t0 = now_ms(), st = blk_pattern_init(seed);
  blk_pattern_fill(&st, region, region_bytes); /* every page written: every page is the guest's own */
  region_seed = seed;
  return snprintf(out, cap, "ok ms=%llu", (unsigned long long)(now_ms() - t0)), 0;
}

static int op_file(uint64_t seed, char *out, size_t cap) {
  static uint8_t buf[FILE_BYTES];
  uint64_t st = blk_pattern_init(seed);
  blk_pattern_fill(&st, buf, sizeof buf);
  int fd = open(FILE_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return snprintf(out, cap, "err open %s: %s", FILE_PATH, strerror(errno)), -1;
  ssize_t n = write(fd, buf, sizeof buf);
  int rc = n == (ssize_t)sizeof buf && fsync(fd) == 0 ? 0 : -1;
  close(fd);
  if (rc < 0) return snprintf(out, cap, "err write %s", FILE_PATH), -1;
  file_seed = seed;
  file_made = 1;
  return snprintf(out, cap, "ok"), 0;
}

static int op_spawn(char *out, size_t cap) {
  if (ticker > 0) return snprintf(out, cap, "ok pid=%d", (int)ticker), 0;
  if (!ticks) {
    void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return snprintf(out, cap, "err mmap: %s", strerror(errno)), -1;
    ticks = p;
  }
  pid_t pid = fork();
  if (pid < 0) return snprintf(out, cap, "err fork: %s", strerror(errno)), -1;
  if (pid == 0) {
    /* Only async-signal-safe work here: the parent has threads. */
    struct timespec d = {0, 10 * 1000 * 1000};
    for (;;) {
      nanosleep(&d, NULL);
      __atomic_add_fetch(ticks, 1, __ATOMIC_RELAXED);
    }
  }
  ticker = pid;
  return snprintf(out, cap, "ok pid=%d", (int)pid), 0;
}

static long file_bad_pages(void) {
  static uint8_t buf[FILE_BYTES];
  if (!file_made) return -1;
  int fd = open(FILE_PATH, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FILE_BYTES / PAGE;
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n != (ssize_t)sizeof buf) return FILE_BYTES / PAGE;
  return pattern_bad_pages(buf, sizeof buf, file_seed);
}

static int op_check(char *out, size_t cap) {
  long mem_bad = region ? pattern_bad_pages(region, region_bytes, region_seed) : -1;
  /* waitpid, not kill(pid, 0): a zombie still answers kill. */
  int alive = 0;
  if (ticker > 0) {
    pid_t w = waitpid(ticker, NULL, WNOHANG);
    alive = w == 0 || (w < 0 && errno == ECHILD && kill(ticker, 0) == 0); /* ECHILD: SIGCHLD ignored */
  }
  return snprintf(out, cap, "ok mem_bad=%ld file_bad=%ld pid=%d alive=%d ticks=%llu", mem_bad, file_bad_pages(),
                  (int)ticker, alive, ticks ? (unsigned long long)*ticks : 0ull),
         0;
}

static void state_request(char *line, char *out, size_t cap) {
  unsigned long mib;
  unsigned long long seed;
  char extra;
  if (sscanf(line, "dirty %lu %llu%c", &mib, &seed, &extra) == 2) op_dirty(mib, seed, out, cap);
  else if (sscanf(line, "file %llu%c", &seed, &extra) == 1) op_file(seed, out, cap);
  else if (!strcmp(line, "spawn")) op_spawn(out, cap);
  else if (!strcmp(line, "check")) op_check(out, cap);
  else snprintf(out, cap, "err unknown request (dirty MIB SEED, file SEED, spawn, check)");
}

static void *state_thread(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      log_errno("state: accept");
      usleep(10000);
      continue;
    }
    char line[256], out[256];
    while (sock_read_line(fd, line, sizeof line) >= 0) {
      state_request(line, out, sizeof out - 1);
      size_t n = strlen(out);
      out[n++] = '\n';
      if (sock_write_all(fd, out, n) < 0) break;
    }
    close(fd);
  }
  return NULL;
}

int test_state_start(void) {
  int fd = sock_listen_vsock(ONEBOX_TEST_STATE_PORT);
  if (fd < 0) {
    log_errno("state: listen on vsock port %d", ONEBOX_TEST_STATE_PORT);
    return -1;
  }
  if (sock_spawn(state_thread, (void *)(intptr_t)fd) < 0) {
    close(fd);
    return -1;
  }
  return 0;
}
