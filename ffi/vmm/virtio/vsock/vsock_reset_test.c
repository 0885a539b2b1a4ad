// Native test of the vsock reset hold (reset_hold.c): after TRANSPORT_RESET, host and forward connections wait
// until the guest re-posts its event buffer (and are then served), are closed if it never does, and leak nothing.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "fake_guest.h"
#include "vsock.h"
#include "../persist.h"

#define MEM_SIZE (16u << 20)
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)
#define N_EVENTS 8 /* Linux posts 8 event buffers (virtio_vsock event_list) */

static char sock_path[108], fwd_path[108];
static uint64_t event_buf[N_EVENTS];

static bool host_has_data(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

static bool device_holding(struct fake_guest *g) {
  pthread_mutex_lock(&g->d.dev->lock);
  bool h = ((struct vsock *)g->d.dev->impl)->reset_hold;
  pthread_mutex_unlock(&g->d.dev->lock);
  return h;
}

/* What Linux's virtio_transport_event_work does once it runs: take the event, handle it, re-post, kick.
 * Returns whether the kick was needed (with EVENT_IDX, only if the device asked via avail_event). */
static bool guest_handles_reset(struct fake_guest *g) {
  uint32_t id, len;
  CHECK(fd_used(&g->d, VSOCK_QUEUE_EVENT, &id, &len) && len == 4);
  int i = 0;
  while (i < N_EVENTS && event_buf[i] != *(uint64_t *)fd_ptr(&g->d, g->d.q[VSOCK_QUEUE_EVENT].desc + 16ull * id)) i++;
  CHECK(i < N_EVENTS);
  CHECK(*(uint32_t *)fd_ptr(&g->d, event_buf[i]) == 0); /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
  struct fd_buf b = {event_buf[i], 4, true};
  CHECK(fd_add(&g->d, VSOCK_QUEUE_EVENT, &b, 1) >= 0);
  return fd_kick_needed(&g->d, VSOCK_QUEUE_EVENT);
}

/* Reads the hybrid handshake line; true if it is `OK <port>`. */
static bool host_ok(struct fake_guest *g, int fd) {
  char line[64] = {0};
  bool eof;
  size_t n = 0;
  while (n < sizeof line - 1) { /* byte by byte: the line must not swallow stream bytes */
    if (fg_read(g, fd, line + n, 1, NULL, 5, &eof) != 1) break;
    if (line[n++] == '\n') break;
  }
  return !strncmp(line, "OK ", 3);
}

static void echo_check(struct fake_guest *g, int fd) {
  CHECK(write(fd, "hello", 5) == 5);
  char buf[16] = {0};
  bool eof;
  CHECK(fg_read(g, fd, buf, 5, "hello", 5, &eof) == 5 && !memcmp(buf, "hello", 5));
}

/* Host and forward connections made right after the reset are held, then served once the guest re-arms. */
static void test_hold_until_rearm(struct fake_guest *g) {
  int requests = g->requests;
  CHECK(virtio_vsock_transport_reset(g->d.dev) == 0);
  CHECK(fd_irqs(&g->d) >= 1);
  int h = fg_host_connect(sock_path), f = fg_host_connect(fwd_path);
  CHECK(write(h, "CONNECT 5000\nhi", 15) == 15); /* bytes after the line wait with the connection */
  int closed_early = fg_host_connect(sock_path);    /* gives up while held: must not leak */
  CHECK(write(closed_early, "CONNECT 5000\n", 13) == 13);
  fg_run(g, 0.3, NULL); /* the guest runs, but its event work has not yet */
  CHECK(g->requests == requests);
  CHECK(fg_device_conns(g) == 3 && device_holding(g));
  CHECK(!host_has_data(h) && !host_has_data(f));
  close(closed_early);
  fg_run(g, 0.1, NULL);

  CHECK(guest_handles_reset(g)); /* the device asked for this kick (avail_event) */
  CHECK(host_ok(g, h));
  bool eof;
  char buf[8] = {0};
  CHECK(fg_read(g, h, buf, 2, "hi", 5, &eof) == 2 && !memcmp(buf, "hi", 2));
  echo_check(g, h);
  echo_check(g, f); /* the forward connection went through the forwarder's `TCP 80` / `OK` */
  CHECK(!device_holding(g));
  /* the early-closed one got its REQUEST too, then an RST once the device found its host side gone */
  CHECK(FG_WAIT(g, g->requests == requests + 3 && fg_device_conns(g) == 2, 5));
  close(h);
  close(f);
  CHECK(FG_WAIT(g, fg_device_conns(g) == 0, 5));
}

/* A guest that never re-posts: held connections are closed after reset_hold_ms, later ones go through. */
static void test_hold_timeout(struct fake_guest *g) {
  pthread_mutex_lock(&g->d.dev->lock);
  ((struct vsock *)g->d.dev->impl)->reset_hold_ms = 200;
  pthread_mutex_unlock(&g->d.dev->lock);
  int requests = g->requests;
  CHECK(virtio_vsock_transport_reset(g->d.dev) == 0);
  double t0 = fg_now();
  int h = fg_host_connect(sock_path), f = fg_host_connect(fwd_path);
  CHECK(write(h, "CONNECT 5000\n", 13) == 13);
  char buf[8];
  bool eof;
  CHECK(fg_read(g, h, buf, sizeof buf, NULL, 5, &eof) == 0 && eof); /* closed without `OK` */
  CHECK(fg_read(g, f, buf, sizeof buf, NULL, 5, &eof) == 0 && eof);
  double waited = fg_now() - t0;
  CHECK(waited >= 0.15 && waited < 4);
  CHECK(g->requests == requests); /* the guest never heard of them */
  CHECK(!device_holding(g) && fg_device_conns(g) == 0);
  close(h);
  close(f);
  h = fg_host_connect(sock_path); /* hold over: served at once, as before the hold existed */
  CHECK(write(h, "CONNECT 5000\n", 13) == 13);
  CHECK(host_ok(g, h));
  echo_check(g, h);
  close(h);
  CHECK(FG_WAIT(g, fg_device_conns(g) == 0, 5));
  guest_handles_reset(g); /* a late re-post changes nothing */
  fg_run(g, 0.05, NULL);
  CHECK(!device_holding(g));
}

/* A driver reset during the hold ends it (a re-initialised driver has no pre-snapshot sockets). */
static void test_driver_reset_ends_hold(struct fake_guest *g) {
  CHECK(virtio_vsock_transport_reset(g->d.dev) == 0);
  CHECK(device_holding(g));
  fd_wr(&g->d, VIRTIO_MMIO_STATUS, 0);
  CHECK(!device_holding(g));
}

static void run_suite(struct evloop *loop, bool event_idx) {
  static struct fake_guest g;
  char err[256];
  for (int i = 0; i < FG_MAX_CONNS; i++)
    if (g.conns[i].used) fg_drop(&g.conns[i]);
  memset(&g, 0, sizeof g);
  fd_setup(&g.d, MEM_SIZE, loop);
  g.d.dev = virtio_vsock_create(&g.d.env, FG_CID, sock_path, err, sizeof err);
  CHECK(g.d.dev);
  CHECK(virtio_vsock_add_forward(g.d.dev, FG_FORWARD_OK_TCP, fwd_path, err, sizeof err) == 0);
  CHECK(fd_init(&g.d, event_idx ? V1 | EVENT_IDX : V1, VIRTQ_MAX_SIZE) & VIRTIO_CONFIG_S_FEATURES_OK);
  fg_start(&g);
  for (int i = 0; i < N_EVENTS; i++) { /* virtio_vsock_event_fill */
    event_buf[i] = fd_alloc(&g.d, 4, 4);
    struct fd_buf b = {event_buf[i], 4, true};
    CHECK(fd_add(&g.d, VSOCK_QUEUE_EVENT, &b, 1) >= 0);
  }
  fd_kick_needed(&g.d, VSOCK_QUEUE_EVENT);
  /* Before any reset nothing is held. */
  int h = fg_host_connect(sock_path);
  CHECK(write(h, "CONNECT 5000\n", 13) == 13);
  CHECK(host_ok(&g, h));
  close(h);
  CHECK(FG_WAIT(&g, fg_device_conns(&g) == 0, 5));
  test_hold_until_rearm(&g);
  test_hold_timeout(&g);
  test_driver_reset_ends_hold(&g);
  CHECK(g.credit_violations == 0);
  fd_teardown(&g.d);
}

int main(void) {
  snprintf(sock_path, sizeof sock_path, "/tmp/virtio_vsock_reset_test.%d.sock", getpid());
  snprintf(fwd_path, sizeof fwd_path, "/tmp/virtio_vsock_reset_test.%d.fwd", getpid());
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  run_suite(loop, false);
  run_suite(loop, true);
  evloop_destroy(loop);
  printf("vsock_reset_test: ok\n");
  return 0;
}
