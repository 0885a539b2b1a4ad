// What the native virtio-net tests share: a device on a SOCK_SEQPACKET pair standing in for the TAP (one frame per
// read and write, like a TAP), the fake driver's setup, rx buffers, waiting for used elements, frames from the host side.
#pragma once
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "../contract.h"
#include "net.h"

#define MEM (8u << 20)
#define QN 16
static const uint8_t MAC[6] = {0x02, 0x00, 0xa9, 0xfe, 0x44, 0x06};

static inline uint64_t all_features(void) {
  return 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_NET_F_CSUM |
         1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_GUEST_TSO4 |
         1ull << VIRTIO_NET_F_GUEST_TSO6 | 1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 |
         1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS;
}

/* A device on one end of a socketpair; *peer gets the other end (the "host side of the TAP"). */
static inline struct virtio_mmio_dev *make_dev(const struct virtio_env *env, const uint8_t mac[6], int *peer) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  int big = 4 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  char err[256];
  struct virtio_mmio_dev *dev = virtio_net_create(env, sv[0], mac, err, sizeof err);
  if (!dev) fprintf(stderr, "%s\n", err);
  *peer = sv[1];
  return dev;
}

static inline struct net *impl(struct fake_driver *d) { return d->dev->impl; }

static inline void setup(struct fake_driver *d, struct evloop *loop, uint64_t features, int *peer) {
  fd_setup(d, MEM, loop);
  d->dev = make_dev(&d->env, MAC, peer);
  CHECK(d->dev);
  CHECK(fd_init(d, features, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
}

static inline void teardown(struct fake_driver *d, int peer) {
  fd_teardown(d);
  close(peer);
}

/* Posts n rx chains of one writable buffer of `size` bytes each; returns the first buffer's address. */
static inline uint64_t post_rx(struct fake_driver *d, int n, uint32_t size) {
  uint64_t first = 0;
  for (int i = 0; i < n; i++) {
    struct fd_buf b = {fd_alloc(d, size, 8), size, true};
    if (!i) first = b.gpa;
    CHECK(fd_add(d, NET_QUEUE_RX, &b, 1) >= 0);
  }
  return first;
}

/* Waits (the event loop delivers rx) for a used element on qi. */
static inline bool wait_used(struct fake_driver *d, uint16_t qi, uint32_t *id, uint32_t *len) {
  for (int i = 0; i < 2000; i++) {
    pthread_mutex_lock(&d->dev->lock);
    bool got = fd_used(d, qi, id, len);
    pthread_mutex_unlock(&d->dev->lock);
    if (got) return true;
    usleep(1000);
  }
  return false;
}

static inline void send_frame(int peer, const struct virtio_net_hdr_v1 *h, const uint8_t *frame, size_t len) {
  struct iovec v[2] = {{(void *)h, NET_HDR_LEN}, {(void *)frame, len}};
  struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
  CHECK(sendmsg(peer, &m, 0) == (ssize_t)(NET_HDR_LEN + len));
}

static inline void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 7);
}

static inline uint64_t csum_add_test(const uint8_t *p, size_t len) {
  uint64_t sum = 0;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  return sum;
}

static inline struct net_counters counters(struct fake_driver *d) {
  struct net_counters c;
  virtio_net_counters(d->dev, &c);
  return c;
}
