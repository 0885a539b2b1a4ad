// The onebox.test= programs the e2e tests boot: echo, blk, boot, panic.
#include "test-modes.h"
#include "test-mode-dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blk-pattern.h"
#include "log.h"
#include "mounts.h"
#include "network.h"
#include "protocol.h"
#include "sha256.h"
#include "sockets.h"

#define BLK_CHUNK (1024 * 1024)

static void *echo_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || sock_write_all(fd, buf, (size_t)n) < 0) break;
  }
  close(fd);
  return NULL;
}

void test_echo_serve(int listen_fd) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) { usleep(10000); continue; }
      log_errno("echo: accept");
      return;
    }
    if (sock_spawn(echo_conn, (void *)(intptr_t)fd) < 0) close(fd);
  }
}

static void *echo_accept_thread(void *arg) {
  test_echo_serve((int)(intptr_t)arg);
  return NULL;
}

static int blk_io(int fd, uint8_t *buf, unsigned long bytes, uint64_t seed, int writing, struct sha256 *h) {
  uint64_t st = blk_pattern_init(seed);
  for (unsigned long off = 0; off < bytes; off += BLK_CHUNK) {
    size_t n = bytes - off < BLK_CHUNK ? bytes - off : BLK_CHUNK;
    if (writing) blk_pattern_fill(&st, buf, n);
    ssize_t r = writing ? pwrite(fd, buf, n, (off_t)off) : pread(fd, buf, n, (off_t)off);
    if (r != (ssize_t)n) {
      if (r >= 0) errno = EIO;
      log_errno("blk: %s at %lu", writing ? "write" : "read", off);
      return -1;
    }
    if (!writing) sha256_update(h, buf, n);
  }
  return 0;
}

int test_blk(const char *dev, uint64_t seed, unsigned long bytes, char out[65]) {
  if (bytes % 4096) return -1;
  /* O_DIRECT both ways: the read must come from the device, not from the page cache. */
  int fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    log_errno("blk: open %s", dev);
    return -1;
  }
  void *mem = NULL;
  if (posix_memalign(&mem, 4096, BLK_CHUNK)) {
    close(fd);
    return -1;
  }
  struct sha256 h;
  sha256_init(&h);
  int rc = blk_io(fd, mem, bytes, seed, 1, NULL);
  if (rc == 0 && fsync(fd) < 0) { log_errno("blk: fsync"); rc = -1; }
  if (rc == 0) rc = blk_io(fd, mem, bytes, seed, 0, &h);
  free(mem);
  close(fd);
  if (rc == 0) {
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_hex(d, out);
  }
  return rc;
}

/* Echo on vsock (the vsock device test) and on TCP 127.0.0.1 (reached through the forwarder),
 * both on ONEBOX_TEST_ECHO_PORT, plus the state service (test-mode-dirty.h); runs in a child of PID 1, on threads. */
void test_echo_main(void) {
  int v = sock_listen_vsock(ONEBOX_TEST_ECHO_PORT);
  if (v < 0) log_errno("echo: listen on vsock port %d", ONEBOX_TEST_ECHO_PORT);
  int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ONEBOX_TEST_ECHO_PORT)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  if (t >= 0) setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (t < 0 || bind(t, (struct sockaddr *)&a, sizeof a) < 0 || listen(t, 128) < 0) {
    log_errno("echo: listen on tcp 127.0.0.1:%d", ONEBOX_TEST_ECHO_PORT);
    if (t >= 0) close(t);
    t = -1;
  }
  if (v < 0 && t < 0) _exit(1);
  log_info("echo: listening on vsock port %d and tcp 127.0.0.1:%d", ONEBOX_TEST_ECHO_PORT, ONEBOX_TEST_ECHO_PORT);
  if (v >= 0 && test_state_start() < 0) log_info("echo: no state service (vsock port %d)", ONEBOX_TEST_STATE_PORT);
  if (t >= 0 && v >= 0 && sock_spawn(echo_accept_thread, (void *)(intptr_t)t) < 0) _exit(1);
  test_echo_serve(v >= 0 ? v : t);
  _exit(1);
}

/* The net test: TCP to the gateway's ONEBOX_TEST_ECHO_PORT through eth0 (network_setup ran). It uploads
 * NET_TEST_BYTES of a pattern after its hello line (large segments: the device's tx offloads), then reads the
 * server's line and a download until EOF, checking the same pattern (rx offloads, mergeable buffers). */
#define NET_TEST_BYTES (4u << 20)
static uint8_t net_pattern(uint32_t i) { return (uint8_t)(i * 7 + (i >> 12)); }

static void test_net(const struct cmdline *cl) {
  static uint8_t buf[65536];
  char line[200] = "", reply[128] = "";
  if (!cl->has_net) {
    log_raw("ONEBOX-TEST: net error no onebox.net=");
    return;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(ONEBOX_TEST_ECHO_PORT),
                           .sin_addr.s_addr = htonl(cl->net_gw)};
  sock_set_rcvtimeo(fd, 20000);
  int n = snprintf(line, sizeof line, "onebox-net-test %u\n", NET_TEST_BYTES);
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof to) == 0 && sock_write_all(fd, line, (size_t)n) == 0;
  for (uint32_t off = 0; ok && off < NET_TEST_BYTES; off += sizeof buf) {
    for (uint32_t j = 0; j < sizeof buf; j++) buf[j] = net_pattern(off + j);
    ok = sock_write_all(fd, buf, sizeof buf) == 0;
  }
  ok = ok && sock_read_line(fd, reply, sizeof reply) >= 0;
  uint32_t got = 0, bad = 0;
  ssize_t r;
  while (ok && (r = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t j = 0; j < r; j++) bad += buf[j] != net_pattern(got + (uint32_t)j);
    got += (uint32_t)r;
  }
  if (!ok || r < 0) {
    log_errno("net test: TCP to the gateway");
    log_raw("ONEBOX-TEST: net error");
  } else {
    snprintf(line, sizeof line, "%s%s rx=%u %s", ONEBOX_TEST_NET_PREFIX, reply, got, bad ? "bad" : "good");
    log_raw(line);
  }
  if (fd >= 0) close(fd);
}

int test_run(const struct cmdline *cl) {
  if (!strcmp(cl->test, "boot")) return 0;
  if (!strcmp(cl->test, "net")) {
    /* Every second, forever: a snapshot taken meanwhile shows whether its clones, each on its own TAP, still reach
     * the gateway with the configuration made at boot. */
    for (;;) {
      test_net(cl);
      sleep(1);
    }
  }
  if (!strcmp(cl->test, "panic")) {
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    if (fd < 0 || write(fd, "c", 1) != 1) log_errno("panic: /proc/sysrq-trigger");
    return 0; /* not reached when the panic worked */
  }
  if (!strcmp(cl->test, "blk")) {
    /* The scratch disk is /dev/vdb; a VM given only one disk uses /dev/vda. */
    const char *dev = mounts_wait_dev("/dev/vdb", 2000) == 0 ? "/dev/vdb" : "/dev/vda";
    char hex[65];
    if (mounts_wait_dev(dev, 100) < 0) {
      log_info("blk: no disk (/dev/vdb or /dev/vda)");
      return 0;
    }
    if (test_blk(dev, cl->seed, ONEBOX_BLK_TEST_BYTES, hex) < 0) {
      log_info("blk: failed on %s", dev);
      log_raw("ONEBOX-TEST: blk error");
      return 0;
    }
    char line[128];
    snprintf(line, sizeof line, "%s%s", ONEBOX_TEST_BLK_PREFIX, hex);
    log_raw(line);
    return 0;
  }
  return -1;
}
