// Native test of virtio-vsock: hybrid CONNECT, 100 concurrent 1 MiB echoes, credit both ways, RSTs, forwards.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "../contract.h"
#include "fake_guest.h"
#include "vsock.h"

#define MEM_SIZE (16u << 20)
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)
#define N_CONNS 100
#define STREAM_BYTES (1u << 20)

static char sock_path[108];

static void send_all(int fd, const void *p, size_t n) { CHECK(write(fd, p, n) == (ssize_t)n); }

static uint8_t pattern(uint32_t conn, uint32_t off) { return (uint8_t)((off * 2654435761u) >> 13) ^ (uint8_t)conn; }

/* Reads until `want` bytes, EOF or timeout on the guest-driven side; returns bytes read. */
static size_t read_some(int fd, char *buf, size_t want, int timeout_ms) {
  size_t got = 0;
  while (got < want) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t n = read(fd, buf + got, want - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got;
}

struct host_run {
  int fds[N_CONNS];
  uint32_t sent[N_CONNS], recvd[N_CONNS];
  bool eof[N_CONNS], shut[N_CONNS];
  int errors;
  int done; /* set by the host thread when it is finished */
};

/* Host side of the big test: N_CONNS clients each stream STREAM_BYTES and check the echo byte by byte. */
static void *host_clients(void *arg) {
  struct host_run *r = arg;
  static uint8_t chunk[16384];
  char line[64];
  for (int i = 0; i < N_CONNS; i++) {
    r->fds[i] = fg_host_connect(sock_path);
    send_all(r->fds[i], "CONNECT 5000\n", 13);
  }
  for (int i = 0; i < N_CONNS; i++) { /* `OK <hostport>\n`, read byte by byte to not eat the stream */
    size_t n = 0;
    while (n < sizeof line - 1 && read_some(r->fds[i], line + n, 1, 10000) == 1 && line[n] != '\n') n++;
    line[n] = 0;
    if (strncmp(line, "OK ", 3) != 0) r->errors++;
    fcntl(r->fds[i], F_SETFL, O_NONBLOCK);
  }
  double end = fg_now() + 60;
  int open_count = N_CONNS;
  while (open_count && fg_now() < end && !r->errors) {
    struct pollfd p[N_CONNS];
    for (int i = 0; i < N_CONNS; i++)
      p[i] = (struct pollfd){r->eof[i] ? -1 : r->fds[i], (short)(POLLIN | (r->sent[i] < STREAM_BYTES ? POLLOUT : 0)), 0};
    if (poll(p, N_CONNS, 1000) <= 0) continue;
    for (int i = 0; i < N_CONNS; i++) {
      if (p[i].revents & POLLOUT) {
        uint32_t n = STREAM_BYTES - r->sent[i] < sizeof chunk ? STREAM_BYTES - r->sent[i] : sizeof chunk;
        for (uint32_t k = 0; k < n; k++) chunk[k] = pattern((uint32_t)i, r->sent[i] + k);
        ssize_t w = write(r->fds[i], chunk, n);
        if (w > 0) r->sent[i] += (uint32_t)w;
        if (r->sent[i] == STREAM_BYTES && !r->shut[i]) {
          shutdown(r->fds[i], SHUT_WR);
          r->shut[i] = true;
        }
      }
      if (p[i].revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(r->fds[i], chunk, sizeof chunk);
        if (n == 0) {
          r->eof[i] = true;
          open_count--;
        }
        for (ssize_t k = 0; k < n; k++)
          if (chunk[k] != pattern((uint32_t)i, r->recvd[i] + (uint32_t)k)) r->errors++;
        if (n > 0) r->recvd[i] += (uint32_t)n;
      }
    }
  }
  __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static int guest_conns(struct fake_guest *g) {
  int n = 0;
  for (int i = 0; i < FG_MAX_CONNS; i++) n += g->conns[i].used;
  return n;
}

static void test_many_echo(struct fake_guest *g) {
  static struct host_run r;
  memset(&r, 0, sizeof r); /* the suite runs twice */
  pthread_t t;
  CHECK(pthread_create(&t, NULL, host_clients, &r) == 0);
  fg_run(g, 90, &r.done);
  pthread_join(t, NULL);
  CHECK(r.errors == 0);
  for (int i = 0; i < N_CONNS; i++) {
    if (r.sent[i] != STREAM_BYTES || r.recvd[i] != STREAM_BYTES || !r.eof[i])
      fprintf(stderr, "conn %d: sent %u received %u eof %d\n", i, r.sent[i], r.recvd[i], r.eof[i]);
    CHECK(r.sent[i] == STREAM_BYTES && r.recvd[i] == STREAM_BYTES && r.eof[i]);
    close(r.fds[i]);
  }
  CHECK(g->credit_violations == 0);
  CHECK(fd_irqs(&g->d) >= 1);
  uint64_t total = 0;
  for (int i = 0; i < N_CONNS; i++) total += r.recvd[i];
  printf("echo: %d connections, %llu bytes echoed\n", N_CONNS, (unsigned long long)total);
  /* Both sides forget every connection: the device after its closing RSTs, the guest once it got them. */
  CHECK(FG_WAIT(g, fg_device_conns(g) == 0 && guest_conns(g) == 0, 5));
}

/* Closed by the device with no data: EOF within a few seconds of guest time. */
static bool closed_without_data(struct fake_guest *g, int fd) {
  char buf[64];
  bool eof;
  size_t n = fg_read(g, fd, buf, sizeof buf, NULL, 5, &eof);
  return n == 0 && eof;
}

static struct fg_conn *guest_conn_on(struct fake_guest *g, uint32_t port) {
  for (int i = 0; i < FG_MAX_CONNS; i++)
    if (g->conns[i].used && g->conns[i].port == port) return &g->conns[i];
  return NULL;
}

/* The device must not send more than the guest's buf_alloc, and resume on CREDIT_UPDATE. */
static void test_guest_credit(struct fake_guest *g) {
  int fd = fg_host_connect(sock_path);
  send_all(fd, "CONNECT 5001\n", 13);
  char line[64];
  bool eof;
  CHECK(fg_read(g, fd, line, sizeof line, "\n", 5, &eof) > 3 && memcmp(line, "OK ", 3) == 0);
  static uint8_t big[65536];
  memset(big, 7, sizeof big);
  send_all(fd, big, sizeof big);
  struct fg_conn *c = guest_conn_on(g, FG_SLOW_PORT);
  CHECK(c && FG_WAIT(g, c->received_total >= FG_SLOW_BUF_ALLOC, 5));
  fg_run(g, 0.05, NULL); /* nothing more may arrive */
  CHECK(c->received_total == FG_SLOW_BUF_ALLOC);
  c->fwd_cnt += FG_SLOW_BUF_ALLOC; /* the guest app read it all */
  c->len = 0;
  CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0));
  CHECK(FG_WAIT(g, c->received_total >= 2 * FG_SLOW_BUF_ALLOC, 5));
  fg_run(g, 0.05, NULL);
  CHECK(c->received_total == 2 * FG_SLOW_BUF_ALLOC);
  CHECK(g->credit_violations == 0);
  close(fd);
  /* The host closed: the device reads EOF but may not pass it (no credit); the guest's RST ends it. */
  CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_RST, 0, NULL, 0));
  fg_drop(c);
  fg_run(g, 0.02, NULL);
}

/* A guest that ignores the host's credit gets reset; the device buffers at most its buf_alloc. */
static void test_host_credit_overrun(struct fake_guest *g) {
  int fd = fg_host_connect(sock_path); /* never read: the socket fills, then the device's buffer */
  send_all(fd, "CONNECT 5002\n", 13);
  CHECK(FG_WAIT(g, guest_conn_on(g, FG_SINK_PORT) != NULL, 5));
  struct fg_conn *c = guest_conn_on(g, FG_SINK_PORT);
  int before = g->rsts_received;
  static uint8_t junk[FG_PAYLOAD];
  for (int i = 0; i < 4096 && g->rsts_received == before; i++) { /* up to 16 MiB */
    while (!fg_send(g, c, VIRTIO_VSOCK_OP_RW, 0, junk, sizeof junk)) fg_poll(g);
    fg_poll(g);
  }
  CHECK(FG_WAIT(g, g->rsts_received == before + 1, 5));
  CHECK(c->tx_cnt < 8u << 20); /* socket buffer + VSOCK_BUF_ALLOC, not everything */
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ssize_t n;
  while ((n = read(fd, junk, sizeof junk)) > 0) {
  }
  CHECK(n == 0); /* the device closed the host side before its RST */
  close(fd);
}

static void test_refusals(struct fake_guest *g) {
  char buf[64];
  /* Nothing listens on the guest port: the guest's RST closes the host socket, no OK. */
  int fd = fg_host_connect(sock_path);
  send_all(fd, "CONNECT 7777\n", 13);
  CHECK(closed_without_data(g, fd));
  close(fd);
  /* Bad lines are closed without the guest hearing of them. */
  int req = g->requests;
  const char *bad[] = {"HELLO 5000\n", "CONNECT -1\n", "CONNECT 99999999999\n", "CONNECT \n"};
  for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fd = fg_host_connect(sock_path);
    send_all(fd, bad[i], strlen(bad[i]));
    CHECK(closed_without_data(g, fd));
    close(fd);
  }
  fd = fg_host_connect(sock_path);
  memset(buf, 'A', sizeof buf); /* 64 bytes and no newline */
  send_all(fd, buf, sizeof buf);
  CHECK(closed_without_data(g, fd));
  close(fd);
  CHECK(g->requests == req);
  /* A guest packet for a connection the host does not have gets an RST back. */
  struct fg_conn ghost = {.port = 999, .peer_port = 12345, .buf_alloc = FG_BUF_ALLOC};
  int rst = g->rsts_received;
  CHECK(fg_send(g, &ghost, VIRTIO_VSOCK_OP_RW, 0, "x", 1));
  CHECK(FG_WAIT(g, g->rsts_received == rst + 1, 5));
  CHECK(g->last_rst.dst_port == 999 && g->last_rst.src_port == 12345);
}

static void test_forward(struct fake_guest *g) {
  char path[120], buf[64];
  char err[256];
  bool eof;
  snprintf(path, sizeof path, "%s.tcp-%d", sock_path, FG_FORWARD_OK_TCP);
  CHECK(virtio_vsock_add_forward(g->d.dev, FG_FORWARD_OK_TCP, path, err, sizeof err) == 0);
  CHECK(virtio_vsock_add_forward(g->d.dev, FG_FORWARD_OK_TCP, path, err, sizeof err) == 0); /* idempotent */
  int fd = fg_host_connect(path);
  send_all(fd, "ping", 4);
  /* `OK\n` is consumed by the device: the host sees only the echo. */
  CHECK(fg_read(g, fd, buf, 4, NULL, 5, &eof) == 4 && memcmp(buf, "ping", 4) == 0);
  shutdown(fd, SHUT_WR);
  CHECK(closed_without_data(g, fd));
  close(fd);
  /* The forwarder refuses TCP 81: the host connection closes without data. */
  snprintf(path, sizeof path, "%s.tcp-81", sock_path);
  CHECK(virtio_vsock_add_forward(g->d.dev, 81, path, err, sizeof err) == 0);
  fd = fg_host_connect(path);
  send_all(fd, "GET / HTTP/1.1\r\n\r\n", 18);
  CHECK(closed_without_data(g, fd));
  close(fd);
  CHECK(virtio_vsock_add_forward(g->d.dev, 0, path, err, sizeof err) < 0);
}

/* Guest closes first: the host gets every byte, then EOF; the device ends with an RST. CREDIT_REQUEST is
 * answered with CREDIT_UPDATE. */
static void test_guest_close(struct fake_guest *g) {
  int fd = fg_host_connect(sock_path);
  send_all(fd, "CONNECT 5002\n", 13);
  char buf[256];
  bool eof;
  CHECK(fg_read(g, fd, buf, sizeof buf, "\n", 5, &eof) > 3);
  struct fg_conn *c = guest_conn_on(g, FG_SINK_PORT);
  CHECK(c);
  int updates = g->ops[VIRTIO_VSOCK_OP_CREDIT_UPDATE];
  CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0));
  CHECK(FG_WAIT(g, g->ops[VIRTIO_VSOCK_OP_CREDIT_UPDATE] == updates + 1, 5));
  int rsts = g->rsts_received;
  CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_RW, 0, "bye from the guest", 18));
  CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0));
  size_t n = fg_read(g, fd, buf, sizeof buf, NULL, 5, &eof);
  CHECK(n == 18 && eof && memcmp(buf, "bye from the guest", 18) == 0);
  CHECK(FG_WAIT(g, g->rsts_received == rsts + 1, 5));
  CHECK(!guest_conn_on(g, FG_SINK_PORT));
  close(fd);
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Out of fds at accept: the listener must not spin, and must accept again once a connection closes. */
static void test_accept_emfile(struct fake_guest *g) {
  enum { N = 8 };
  int keep = fg_host_connect(sock_path); /* an established connection, closed later to free an fd */
  send_all(keep, "CONNECT 5000\n", 13);
  char buf[64];
  bool eof;
  CHECK(fg_read(g, keep, buf, sizeof buf, "\n", 5, &eof) > 3);
  int fds[N], maxfd = keep;
  for (int i = 0; i < N; i++) {
    fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fds[i] >= 0);
    if (fds[i] > maxfd) maxfd = fds[i];
  }
  struct rlimit old, low;
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  low = old;
  low.rlim_cur = (rlim_t)maxfd + 1; /* no fd can be created any more */
  CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, sock_path);
  for (int i = 0; i < N; i++) CHECK(connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0);
  usleep(50000);
  double cpu0 = cpu_seconds();
  usleep(300000);
  double spent = cpu_seconds() - cpu0;
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  if (spent > 0.05) fprintf(stderr, "listener spun: %.3f s CPU in 0.3 s\n", spent);
  CHECK(spent < 0.05); /* a spinning loop thread burns most of the 0.3 s */
  close(keep); /* the device sees EOF, the connection goes, the listener resumes */
  for (int i = 0; i < N; i++) {
    send_all(fds[i], "CONNECT 5000\n", 13);
    CHECK(fg_read(g, fds[i], buf, sizeof buf, "\n", 5, &eof) > 3 && memcmp(buf, "OK ", 3) == 0);
    close(fds[i]);
  }
  fg_run(g, 0.05, NULL);
}

/* Driver reset and a fresh start: new rings, no connections, empty tx slots. */
static void fg_restart(struct fake_guest *g) {
  CHECK(fd_init(&g->d, g->d.event_idx ? V1 | EVENT_IDX : V1, VIRTQ_MAX_SIZE) & VIRTIO_CONFIG_S_FEATURES_OK);
  for (int i = 0; i < FG_MAX_CONNS; i++)
    if (g->conns[i].used) fg_drop(&g->conns[i]);
  memset(g->tx_busy, 0, sizeof g->tx_busy);
  fg_start(g);
}

/* Echoes one short message over a fresh hybrid connection. */
static void echo_once(struct fake_guest *g) {
  int fd = fg_host_connect(sock_path);
  send_all(fd, "CONNECT 5000\nhello", 18); /* stream bytes right after the line go to the guest first */
  char buf[64];
  bool eof;
  size_t n = fg_read(g, fd, buf, sizeof buf, "hello", 5, &eof);
  CHECK(n > 5 && memcmp(buf, "OK ", 3) == 0 && memcmp(buf + n - 5, "hello", 5) == 0);
  close(fd);
  fg_run(g, 0.02, NULL);
}

/* A device reset drops every host connection; a malformed vsock ring stops the device until reset. */
static void test_reset(struct fake_guest *g) {
  int fd = fg_host_connect(sock_path);
  send_all(fd, "CONNECT 5000\n", 13);
  char buf[64];
  bool eof;
  CHECK(fg_read(g, fd, buf, sizeof buf, "\n", 5, &eof) > 3);
  fd_wr(&g->d, VIRTIO_MMIO_STATUS, 0);
  CHECK(closed_without_data(g, fd));
  close(fd);
  fg_restart(g);
  echo_once(g);
  /* tx buffers must be device-readable */
  uint64_t a = fd_alloc(&g->d, 64, 8);
  struct fd_buf bad = {a, 64, true};
  CHECK(fd_add(&g->d, VSOCK_QUEUE_TX, &bad, 1) >= 0);
  fd_irqs(&g->d);
  fd_kick(&g->d, VSOCK_QUEUE_TX);
  CHECK(fd_rd(&g->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
  CHECK(fd_irqs(&g->d) >= 1);
  int req = g->requests;
  fd = fg_host_connect(sock_path); /* not served while the device needs a reset */
  send_all(fd, "CONNECT 5000\n", 13);
  fg_run(g, 0.05, NULL);
  CHECK(g->requests == req);
  fg_restart(g);
  CHECK(!(fd_rd(&g->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
  CHECK(closed_without_data(g, fd)); /* dropped by the reset */
  close(fd);
  echo_once(g);
}

/* The whole suite on one device, with or without VIRTIO_F_EVENT_IDX (Linux negotiates it). */
static void run_suite(struct evloop *loop, bool event_idx) {
  static struct fake_guest g;
  char err[256];
  for (int i = 0; i < FG_MAX_CONNS; i++)
    if (g.conns[i].used) fg_drop(&g.conns[i]);
  memset(&g, 0, sizeof g);
  fd_setup(&g.d, MEM_SIZE, loop);
  CHECK(!virtio_vsock_create(&g.d.env, 2, sock_path, err, sizeof err) && strstr(err, "CID"));
  g.d.dev = virtio_vsock_create(&g.d.env, FG_CID, sock_path, err, sizeof err);
  if (!g.d.dev) fprintf(stderr, "%s\n", err);
  CHECK(g.d.dev);
  uint64_t cid = 0;
  virtio_mmio_read(g.d.dev, VIRTIO_MMIO_CONFIG, (uint8_t *)&cid, 8);
  CHECK(cid == FG_CID && fd_rd(&g.d, VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_VSOCK);
  CHECK(fd_device_features(&g.d) & EVENT_IDX);
  CHECK(fd_init(&g.d, event_idx ? V1 | EVENT_IDX : V1, VIRTQ_MAX_SIZE) & VIRTIO_CONFIG_S_FEATURES_OK);
  fg_start(&g);
  test_refusals(&g);
  test_guest_credit(&g);
  test_host_credit_overrun(&g);
  test_forward(&g);
  test_guest_close(&g);
  test_accept_emfile(&g);
  test_many_echo(&g);
  test_reset(&g);
  if (event_idx) {
    printf("event_idx: %d tx kicks, %d kicks saved\n", g.kicks, g.kicks_saved);
    CHECK(g.kicks_saved > 0); /* the device really published avail_event */
  }
  fd_teardown(&g.d); /* destroys the device */
  CHECK(access(sock_path, F_OK) != 0); /* socket removed */
}

/* Contract devices: each on its own socket (a restore test has two at once). */
static struct virtio_mmio_dev *contract_create(const struct virtio_env *env, void *ctx) {
  static int n;
  char err[256], path[108];
  snprintf(path, sizeof path, "/tmp/virtio_vsock_test.%d.c%d.sock", getpid(), n++);
  struct virtio_mmio_dev *dev = virtio_vsock_create(env, FG_CID, path, err, sizeof err);
  if (!dev) fprintf(stderr, "%s\n", err);
  return dev;
}

/* A tx packet for a connection that does not exist: consumed at once (answered by a queued RST). */
static void contract_request(struct fake_driver *d) {
  uint64_t a = fd_alloc(d, HDR_LEN, 8);
  *(struct virtio_vsock_hdr *)fd_ptr(d, a) = (struct virtio_vsock_hdr){
      .src_cid = FG_CID, .dst_cid = VSOCK_CID_HOST, .src_port = 7, .dst_port = 7, .type = VIRTIO_VSOCK_TYPE_STREAM,
      .op = VIRTIO_VSOCK_OP_RW};
  struct fd_buf b = {a, HDR_LEN, false};
  CHECK(fd_add(d, VSOCK_QUEUE_TX, &b, 1) >= 0);
}

int main(void) {
  snprintf(sock_path, sizeof sock_path, "/tmp/virtio_vsock_test.%d.sock", getpid());
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  contract_run(&(struct contract_device){.name = "vsock", .device_id = VIRTIO_ID_VSOCK, .num_queues = 3,
                                         .create = contract_create, .request_queue = VSOCK_QUEUE_TX,
                                         .post_request = contract_request},
               loop);
  run_suite(loop, false);
  run_suite(loop, true);
  evloop_destroy(loop);
  printf("vsock_test: ok\n");
  return 0;
}
