// Frames/s through the virtio-net device loop alone (no TAP, no kernel stack), over a SOCK_SEQPACKET pair: tx = kick
// to socket write, rx = socket read to used ring through the event loop (docs/virtio.md). Run by hand:
// ffi/build/tests/net_bench_test (not part of the unit suite: it measures, it checks nothing but that frames move).
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include "net_test_util.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

struct drain {
  int fd;
  volatile int stop;
  uint64_t frames;
};

static void *drain_main(void *arg) {
  struct drain *dr = arg;
  static uint8_t b[70000];
  while (!dr->stop)
    if (recv(dr->fd, b, sizeof b, MSG_DONTWAIT) > 0) dr->frames++;
  return NULL;
}

static void *feed_main(void *arg) {
  struct drain *dr = arg; /* frames = frame size */
  static uint8_t b[NET_HDR_LEN + 65536];
  size_t len = NET_HDR_LEN + dr->frames;
  while (!dr->stop) {
    struct pollfd p = {dr->fd, POLLOUT, 0};
    poll(&p, 1, 10);
    while (!dr->stop && send(dr->fd, b, len, MSG_DONTWAIT) > 0) {
    }
  }
  return NULL;
}

/* rx: `bufsize` single-descriptor buffers, recycled as soon as they are used; with MRG_RXBUF or without (then each
 * buffer must hold a whole frame: Linux's big-packets mode). */
static void bench_rx(struct evloop *loop, uint32_t flen, uint32_t bufsize, bool mrg) {
  struct fake_driver d;
  int peer;
  fd_setup(&d, 64u << 20, loop);
  d.dev = make_dev(&d.env, MAC, &peer);
  uint64_t f = all_features() & ~(mrg ? 0 : 1ull << VIRTIO_NET_F_MRG_RXBUF);
  CHECK(fd_init(&d, f, 256) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint64_t pool = fd_alloc(&d, 256ull * bufsize, 4096);
  for (int i = 0; i < 255; i++) {
    struct fd_buf b = {pool + (uint64_t)bufsize * i, bufsize, true};
    pthread_mutex_lock(&d.dev->lock);
    fd_add(&d, NET_QUEUE_RX, &b, 1);
    pthread_mutex_unlock(&d.dev->lock);
  }
  fd_kick(&d, NET_QUEUE_RX);
  struct drain fe = {.fd = peer, .frames = flen};
  pthread_t t;
  pthread_create(&t, NULL, feed_main, &fe);
  double t0 = now_s();
  while (now_s() - t0 < 1.0) {
    uint32_t id, len;
    int got = 0;
    pthread_mutex_lock(&d.dev->lock);
    while (fd_used(&d, NET_QUEUE_RX, &id, &len)) {
      struct fd_buf b = {pool + (uint64_t)bufsize * id, bufsize, true}; /* single-descriptor chains: head = slot */
      fd_add(&d, NET_QUEUE_RX, &b, 1);
      got++;
    }
    pthread_mutex_unlock(&d.dev->lock);
    if (got) fd_kick_needed(&d, NET_QUEUE_RX);
    else sched_yield();
  }
  double dt = now_s() - t0;
  fe.stop = 1;
  pthread_join(t, NULL);
  struct net_counters c = counters(&d);
  printf("bench rx %5u-byte frames: %.0f frames/s, %.2f Gbit/s (%u-byte buffers, %s; guest memory posted %.1f MiB)\n",
         flen, c.rx_frames / dt, c.rx_bytes * 8 / dt / 1e9, bufsize, mrg ? "MRG_RXBUF" : "no MRG_RXBUF",
         255.0 * bufsize / (1 << 20));
  teardown(&d, peer);
}

/* Frames/s through the device loop alone (no TAP, no kernel stack): tx = kick to socket write, rx = socket read to
 * used ring through the event loop, for a 1514-byte frame and a 64 KiB TSO frame. */
static void bench(struct evloop *loop) {
  uint32_t sizes[] = {1514, 65000};
  for (int si = 0; si < 2; si++) {
    uint32_t flen = sizes[si];
    struct fake_driver d;
    int peer;
    fd_setup(&d, 64u << 20, loop);
    d.dev = make_dev(&d.env, MAC, &peer);
    CHECK(fd_init(&d, all_features(), 256) & VIRTIO_CONFIG_S_FEATURES_OK);
    struct drain dr = {.fd = peer};
    pthread_t t;
    pthread_create(&t, NULL, drain_main, &dr);
    uint64_t buf = fd_alloc(&d, NET_HDR_LEN + flen, 8);
    double t0 = now_s();
    uint64_t sent = 0;
    while (now_s() - t0 < 1.0) {
      for (int i = 0; i < 128; i++) {
        struct fd_buf b = {buf, NET_HDR_LEN + flen, false};
        if (fd_add(&d, NET_QUEUE_TX, &b, 1) < 0) break;
      }
      fd_kick(&d, NET_QUEUE_TX);
      uint32_t id, len;
      while (fd_used(&d, NET_QUEUE_TX, &id, &len)) sent++;
    }
    double dt = now_s() - t0;
    dr.stop = 1;
    pthread_join(t, NULL);
    struct net_counters c = counters(&d);
    printf("bench tx %5u-byte frames: %.0f frames/s, %.2f Gbit/s (%llu written, %llu refused by a full socket)\n",
           flen, c.tx_frames / dt, c.tx_bytes * 8 / dt / 1e9, (unsigned long long)c.tx_frames,
           (unsigned long long)c.tx_dropped_error);
    teardown(&d, peer);

  }
  bench_rx(loop, 1514, 4096, true);
  bench_rx(loop, 65000, 4096, true);
  bench_rx(loop, 1514, NET_HDR_LEN + 65550, false);
  bench_rx(loop, 65000, NET_HDR_LEN + 65550, false);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  bench(loop);
  evloop_destroy(loop);
  return 0;
}
