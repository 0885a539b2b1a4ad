// Native test of virtio-net through a fake driver, with a SOCK_SEQPACKET socket standing in for the TAP (one frame per
// read and write, like a TAP): the device contract, tx and rx (mergeable buffers), no reading while the guest has no
// buffers, a burst read straight into the buffers with one interrupt decision, oversized and short frames dropped and
// counted, malformed rings, offloads for a driver that declines them, the MAC kept across restore. `net_test --bench` measures the device loop's frames/s (docs/virtio.md).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include "../contract.h"
#include "net.h"

#define MEM (8u << 20)
#define QN 16
static const uint8_t MAC[6] = {0x02, 0x00, 0xa9, 0xfe, 0x44, 0x06};
static int peers[64], npeers;

static uint64_t all_features(void) {
  return 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_NET_F_CSUM |
         1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_GUEST_TSO4 |
         1ull << VIRTIO_NET_F_GUEST_TSO6 | 1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 |
         1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS;
}

/* A device on one end of a socketpair; *peer gets the other end (the "host side of the TAP"). */
static struct virtio_mmio_dev *make_dev(const struct virtio_env *env, const uint8_t mac[6], int *peer) {
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

static struct virtio_mmio_dev *contract_create(const struct virtio_env *env, void *ctx) {
  int peer;
  struct virtio_mmio_dev *dev = make_dev(env, MAC, &peer);
  if (npeers < 64) peers[npeers++] = peer;
  return dev;
}

/* One tx frame: header + 60 bytes. */
static void contract_request(struct fake_driver *d) {
  uint64_t a = fd_alloc(d, NET_HDR_LEN + 60, 8);
  struct fd_buf b = {a, NET_HDR_LEN + 60, false};
  CHECK(fd_add(d, NET_QUEUE_TX, &b, 1) >= 0);
}

static struct net *impl(struct fake_driver *d) { return d->dev->impl; }

static void setup(struct fake_driver *d, struct evloop *loop, uint64_t features, int *peer) {
  fd_setup(d, MEM, loop);
  d->dev = make_dev(&d->env, MAC, peer);
  CHECK(d->dev);
  CHECK(fd_init(d, features, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
}

static void teardown(struct fake_driver *d, int peer) {
  fd_teardown(d);
  close(peer);
}

/* Posts n rx chains of one writable buffer of `size` bytes each; returns the first buffer's address. */
static uint64_t post_rx(struct fake_driver *d, int n, uint32_t size) {
  uint64_t first = 0;
  for (int i = 0; i < n; i++) {
    struct fd_buf b = {fd_alloc(d, size, 8), size, true};
    if (!i) first = b.gpa;
    CHECK(fd_add(d, NET_QUEUE_RX, &b, 1) >= 0);
  }
  return first;
}

/* Waits (the event loop delivers rx) for a used element on qi. */
static bool wait_used(struct fake_driver *d, uint16_t qi, uint32_t *id, uint32_t *len) {
  for (int i = 0; i < 2000; i++) {
    pthread_mutex_lock(&d->dev->lock);
    bool got = fd_used(d, qi, id, len);
    pthread_mutex_unlock(&d->dev->lock);
    if (got) return true;
    usleep(1000);
  }
  return false;
}

static void send_frame(int peer, const struct virtio_net_hdr_v1 *h, const uint8_t *frame, size_t len) {
  struct iovec v[2] = {{(void *)h, NET_HDR_LEN}, {(void *)frame, len}};
  struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
  CHECK(sendmsg(peer, &m, 0) == (ssize_t)(NET_HDR_LEN + len));
}

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 7);
}

static uint64_t csum_add_test(const uint8_t *p, size_t len) {
  uint64_t sum = 0;
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  return sum;
}

static struct net_counters counters(struct fake_driver *d) {
  struct net_counters c;
  virtio_net_counters(d->dev, &c);
  return c;
}

/* Config space: the MAC and LINK_UP (§5.1.4). */
static void test_config(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  uint8_t cfg[8];
  for (int i = 0; i < 8; i++) virtio_mmio_read(d.dev, VIRTIO_MMIO_CONFIG + i, &cfg[i], 1);
  CHECK(!memcmp(cfg, MAC, 6) && cfg[6] == VIRTIO_NET_S_LINK_UP && cfg[7] == 0);
  CHECK(fd_device_features(&d) == all_features());
  teardown(&d, peer);
}

/* Tx: each chain is one write of header + frame, as the guest laid it out (here over three descriptors). */
static void test_tx(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  for (int k = 0; k < 2; k++) {
    uint32_t flen = k ? 1514 : 42;
    uint64_t h = fd_alloc(&d, NET_HDR_LEN, 8), a = fd_alloc(&d, 10, 8), b = fd_alloc(&d, flen - 10, 8);
    struct virtio_net_hdr_v1 hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
    memcpy(fd_ptr(&d, h), &hdr, sizeof hdr);
    fill(fd_ptr(&d, a), 10, (uint8_t)k);
    fill(fd_ptr(&d, b), flen - 10, (uint8_t)(k + 10));
    struct fd_buf bufs[3] = {{h, NET_HDR_LEN, false}, {a, 10, false}, {b, flen - 10, false}};
    CHECK(fd_add(&d, NET_QUEUE_TX, bufs, 3) >= 0);
  }
  fd_irqs(&d);
  fd_kick(&d, NET_QUEUE_TX);
  uint32_t id, len;
  CHECK(fd_used(&d, NET_QUEUE_TX, &id, &len) && len == 0);
  CHECK(fd_used(&d, NET_QUEUE_TX, &id, &len) && len == 0);
  CHECK(fd_irqs(&d) >= 1);
  for (int k = 0; k < 2; k++) {
    uint32_t flen = k ? 1514 : 42;
    uint8_t got[4096], want[2048];
    CHECK(recv(peer, got, sizeof got, 0) == (ssize_t)(NET_HDR_LEN + flen));
    struct virtio_net_hdr_v1 hdr;
    memcpy(&hdr, got, sizeof hdr);
    CHECK(hdr.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && hdr.csum_start == 34 && hdr.csum_offset == 6);
    fill(want, 10, (uint8_t)k);
    fill(want + 10, flen - 10, (uint8_t)(k + 10));
    CHECK(!memcmp(got + NET_HDR_LEN, want, flen));
  }
  CHECK(recv(peer, (uint8_t[16]){0}, 16, 0) < 0 && errno == EAGAIN);
  struct net_counters c = counters(&d);
  CHECK(c.tx_frames == 2 && c.tx_bytes == 42 + 1514);
  teardown(&d, peer);
}

/* Tx chains too short for a header or past a 64 KiB frame are dropped (counted), and still returned to the guest. */
static void test_tx_drops(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  uint32_t big = NET_HDR_LEN + NET_MAX_FRAME + 1;
  struct fd_buf s = {fd_alloc(&d, 8, 8), 8, false}, b = {fd_alloc(&d, big, 8), big, false};
  CHECK(fd_add(&d, NET_QUEUE_TX, &s, 1) >= 0 && fd_add(&d, NET_QUEUE_TX, &b, 1) >= 0);
  fd_kick(&d, NET_QUEUE_TX);
  uint32_t id, len;
  CHECK(fd_used(&d, NET_QUEUE_TX, &id, &len) && fd_used(&d, NET_QUEUE_TX, &id, &len));
  struct net_counters c = counters(&d);
  CHECK(c.tx_dropped_short == 1 && c.tx_dropped_oversized == 1 && c.tx_frames == 0);
  CHECK(recv(peer, (uint8_t[16]){0}, 16, 0) < 0 && errno == EAGAIN);
  /* A writable tx buffer is a ring violation. */
  struct fd_buf w = {fd_alloc(&d, 64, 8), 64, true};
  CHECK(fd_add(&d, NET_QUEUE_TX, &w, 1) >= 0);
  fd_kick(&d, NET_QUEUE_TX);
  CHECK(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
  teardown(&d, peer);
}

/* Rx with mergeable buffers: a 5000-byte frame over three 2 KiB chains, num_buffers = 3 in the first. */
static void test_rx_mergeable(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  uint64_t first = post_rx(&d, 4, 2048);
  fd_kick(&d, NET_QUEUE_RX);
  static uint8_t frame[5000];
  fill(frame, sizeof frame, 3);
  struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_DATA_VALID};
  send_frame(peer, &h, frame, sizeof frame);
  uint32_t id[3], len[3], total = 0;
  for (int i = 0; i < 3; i++) {
    CHECK(wait_used(&d, NET_QUEUE_RX, &id[i], &len[i]));
    total += len[i];
  }
  CHECK(total == NET_HDR_LEN + sizeof frame && len[0] == 2048 && len[1] == 2048);
  struct virtio_net_hdr_v1 got;
  memcpy(&got, fd_ptr(&d, first), sizeof got);
  CHECK(got.num_buffers == 3 && got.flags == VIRTIO_NET_HDR_F_DATA_VALID);
  /* The three buffers were allocated back to back: the frame reads straight through them. */
  CHECK(!memcmp((uint8_t *)fd_ptr(&d, first) + NET_HDR_LEN, frame, sizeof frame));
  struct net_counters c = counters(&d);
  CHECK(c.rx_frames == 1 && c.rx_bytes == sizeof frame);
  teardown(&d, peer);
}

/* No rx buffers: the frame waits and the TAP is not watched (no busy loop); the guest's buffers + kick deliver it. */
static void test_rx_waits_for_buffers(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  uint8_t frame[100];
  fill(frame, sizeof frame, 9);
  struct virtio_net_hdr_v1 h = {0};
  send_frame(peer, &h, frame, sizeof frame);
  send_frame(peer, &h, frame, sizeof frame);
  usleep(50 * 1000);
  pthread_mutex_lock(&d.dev->lock);
  CHECK(!impl(&d)->polling && impl(&d)->pending_len == NET_HDR_LEN + sizeof frame);
  pthread_mutex_unlock(&d.dev->lock);
  uint64_t a = post_rx(&d, 1, 1024);
  CHECK(fd_kick_needed(&d, NET_QUEUE_RX)); /* EVENT_IDX: the empty pop asked for exactly this kick */
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && len == NET_HDR_LEN + sizeof frame);
  CHECK(!memcmp((uint8_t *)fd_ptr(&d, a) + NET_HDR_LEN, frame, sizeof frame));
  /* The second frame waits again for the next buffer. */
  usleep(20 * 1000);
  pthread_mutex_lock(&d.dev->lock);
  CHECK(!impl(&d)->polling && impl(&d)->pending_len);
  pthread_mutex_unlock(&d.dev->lock);
  post_rx(&d, 1, 1024);
  CHECK(fd_kick_needed(&d, NET_QUEUE_RX));
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len));
  teardown(&d, peer);
}

/* Oversized rx frames are dropped and counted, the buffers stay the guest's: without MRG_RXBUF a frame larger than
 * the chain; with it, a frame that needs more chains than the ring has. */
static void test_rx_oversized(struct evloop *loop) {
  for (int mrg = 0; mrg < 2; mrg++) {
    struct fake_driver d;
    int peer;
    uint64_t f = all_features();
    if (!mrg) f &= ~(1ull << VIRTIO_NET_F_MRG_RXBUF);
    setup(&d, loop, f, &peer);
    uint32_t size = mrg ? 64 : 512;
    post_rx(&d, QN, size);
    fd_kick(&d, NET_QUEUE_RX);
    static uint8_t frame[2000];
    struct virtio_net_hdr_v1 h = {0};
    send_frame(peer, &h, frame, mrg ? sizeof frame : 600); /* mrg: 2012 bytes need 32 chains of 64 > 16 */
    send_frame(peer, &h, frame, 40);
    uint32_t id, len;
    CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && len == NET_HDR_LEN + 40);
    struct net_counters c = counters(&d);
    CHECK(c.rx_dropped_oversized == 1 && c.rx_frames == 1);
    teardown(&d, peer);
  }
}

/* A readable rx buffer is a ring violation: NEEDS_RESET, and the TAP is not read until the reset and DRIVER_OK. */
static void test_rx_malformed(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  struct fd_buf ro = {fd_alloc(&d, 256, 8), 256, false};
  CHECK(fd_add(&d, NET_QUEUE_RX, &ro, 1) >= 0);
  fd_kick(&d, NET_QUEUE_RX);
  uint8_t frame[60] = {0};
  struct virtio_net_hdr_v1 h = {0};
  send_frame(peer, &h, frame, sizeof frame);
  for (int i = 0; i < 200 && !(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET); i++) usleep(1000);
  CHECK(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
  pthread_mutex_lock(&d.dev->lock);
  CHECK(!impl(&d)->polling);
  pthread_mutex_unlock(&d.dev->lock);
  /* Reset (the frame held for the old rings is dropped) and a new driver: the next frame reaches it. */
  d.bump = 0x200000;
  CHECK(fd_init(&d, all_features(), QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  post_rx(&d, 2, 2048);
  fd_kick(&d, NET_QUEUE_RX);
  send_frame(peer, &h, frame, sizeof frame);
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len));
  teardown(&d, peer);
}

/* A driver without GUEST_CSUM gets the checksum the TAP left partial filled in; one without GUEST_TSO4 gets no GSO
 * frames (dropped, counted). */
static void test_rx_offload_fallback(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  uint64_t f = all_features() & ~(1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_GUEST_TSO4 |
                                   1ull << VIRTIO_NET_F_GUEST_TSO6);
  setup(&d, loop, f, &peer);
  uint64_t a = post_rx(&d, 4, 2048);
  fd_kick(&d, NET_QUEUE_RX);
  uint8_t frame[200];
  fill(frame, sizeof frame, 1);
  frame[40] = 0x12; /* the "pseudo-header sum" the checksum field starts with */
  frame[41] = 0x34;
  struct virtio_net_hdr_v1 gso = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                  .gso_size = 100, .csum_start = 34, .csum_offset = 6};
  send_frame(peer, &gso, frame, sizeof frame);
  struct virtio_net_hdr_v1 partial = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
  send_frame(peer, &partial, frame, sizeof frame);
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && len == NET_HDR_LEN + sizeof frame);
  struct virtio_net_hdr_v1 got;
  memcpy(&got, fd_ptr(&d, a), sizeof got);
  CHECK(got.flags == 0 && got.num_buffers == 1);
  /* The one's-complement sum over [csum_start, end) with the stored checksum, plus the pseudo-header sum the field
   * held, is all ones. */
  const uint8_t *p = (uint8_t *)fd_ptr(&d, a) + NET_HDR_LEN;
  uint64_t s = 0x1234;
  for (size_t i = 34; i < sizeof frame; i += 2) s += (uint32_t)p[i] << 8 | (i + 1 < sizeof frame ? p[i + 1] : 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  CHECK(s == 0xffff);
  CHECK(!memcmp(p, frame, 40) && !memcmp(p + 42, frame + 42, sizeof frame - 42));
  struct net_counters c = counters(&d);
  CHECK(c.rx_dropped_offload == 1 && c.rx_frames == 1);
  teardown(&d, peer);
}

/* Posts n rx chains of two writable 2 KiB descriptors each, back to back from `pool` (chain i = pool + 4096 i), so a
 * frame spanning chains in ring order reads straight through guest memory. */
static void post_rx_pairs(struct fake_driver *d, uint64_t pool, int n) {
  for (int i = 0; i < n; i++) {
    struct fd_buf b[2] = {{pool + 4096ull * i, 2048, true}, {pool + 4096ull * i + 2048, 2048, true}};
    CHECK(fd_add(d, NET_QUEUE_RX, b, 2) >= 0);
  }
}

/* A burst queued on the TAP is read straight into the rx buffers (no copy through the device's buffer), one used
 * entry per buffer filled, and one interrupt decision for the whole burst: fewer interrupts than frames, in both
 * EVENT_IDX modes. The buffers reserved for a read but not filled go back to the ring: the next frame lands in the
 * next chain in ring order. */
static void test_rx_burst(struct evloop *loop) {
  for (int ev = 0; ev < 2; ev++) {
    struct fake_driver d;
    int peer;
    uint64_t f = all_features() & ~(ev ? 0 : 1ull << VIRTIO_F_EVENT_IDX);
    fd_setup(&d, MEM, loop);
    d.dev = make_dev(&d.env, MAC, &peer);
    CHECK(d.dev && (fd_init(&d, f, 128) & VIRTIO_CONFIG_S_FEATURES_OK)); /* 64 chains of two descriptors */
    enum { SMALL = 32, BIG = 60000, BIG_CHAINS = (NET_HDR_LEN + BIG + 4095) / 4096 };
    uint64_t pool = fd_alloc(&d, 64ull * 4096, 4096);
    static uint8_t frame[BIG];
    /* Held lock: the event loop sees the whole burst at once, as after a wakeup that found the TAP full. */
    pthread_mutex_lock(&d.dev->lock);
    post_rx_pairs(&d, pool, 64);
    for (int i = 0; i < SMALL; i++) {
      fill(frame, 1514, (uint8_t)i);
      struct virtio_net_hdr_v1 h = {.flags = VIRTIO_NET_HDR_F_DATA_VALID};
      send_frame(peer, &h, frame, 1514);
    }
    fill(frame, BIG, 77);
    struct virtio_net_hdr_v1 gso = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                    .gso_size = 1448, .csum_start = 34, .csum_offset = 16};
    send_frame(peer, &gso, frame, BIG);
    fd_irqs(&d);
    pthread_mutex_unlock(&d.dev->lock);
    fd_kick(&d, NET_QUEUE_RX);
    uint32_t id, len;
    for (int i = 0; i < SMALL; i++) {
      CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && id == (uint32_t)2 * i && len == NET_HDR_LEN + 1514);
      const uint8_t *b = fd_ptr(&d, pool + 4096ull * i);
      struct virtio_net_hdr_v1 got;
      memcpy(&got, b, sizeof got);
      fill(frame, 1514, (uint8_t)i);
      CHECK(got.num_buffers == 1 && got.flags == VIRTIO_NET_HDR_F_DATA_VALID && !memcmp(b + NET_HDR_LEN, frame, 1514));
    }
    uint32_t total = 0;
    for (int i = 0; i < BIG_CHAINS; i++) {
      CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && id == (uint32_t)2 * (SMALL + i));
      total += len;
    }
    CHECK(total == NET_HDR_LEN + BIG && !fd_used(&d, NET_QUEUE_RX, &id, &len));
    const uint8_t *b = fd_ptr(&d, pool + 4096ull * SMALL);
    struct virtio_net_hdr_v1 got;
    memcpy(&got, b, sizeof got);
    fill(frame, BIG, 77);
    CHECK(got.num_buffers == BIG_CHAINS && got.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && got.gso_size == 1448 &&
          got.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && !memcmp(b + NET_HDR_LEN, frame, BIG));
    uint64_t irqs = fd_irqs(&d);
    struct net_counters c = counters(&d);
    CHECK(c.rx_frames == SMALL + 1 && c.rx_bounced == 0);
    CHECK(irqs >= 1 && irqs < SMALL + 1);
    /* The next frame: the first chain nobody filled. */
    send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, 100);
    CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && id == (uint32_t)2 * (SMALL + BIG_CHAINS) && len == NET_HDR_LEN + 100);
    teardown(&d, peer);
  }
}

/* Read straight into the buffers, a frame that fills the read (may have been cut) and a GSO type the driver cannot
 * take are dropped and counted; the buffers they were read into stay the guest's for the next frame. Too few buffers
 * for a read of any frame: the copy path serves a frame that fits. */
static void test_rx_direct_drops(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  fd_setup(&d, MEM, loop);
  d.dev = make_dev(&d.env, MAC, &peer);
  CHECK(d.dev && (fd_init(&d, all_features(), 64) & VIRTIO_CONFIG_S_FEATURES_OK));
  uint64_t pool = fd_alloc(&d, 64ull * 4096, 4096);
  static uint8_t frame[NET_MAX_FRAME + 1];
  pthread_mutex_lock(&d.dev->lock);
  post_rx_pairs(&d, pool, 20); /* 80 KiB: room for a read of the largest frame */
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, NET_MAX_FRAME + 1);
  send_frame(peer, &(struct virtio_net_hdr_v1){.gso_type = 3 /* UDP */, .gso_size = 1000}, frame, 3000);
  fill(frame, 500, 5);
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, 500);
  pthread_mutex_unlock(&d.dev->lock);
  fd_kick(&d, NET_QUEUE_RX);
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && id == 0 && len == NET_HDR_LEN + 500);
  CHECK(!memcmp((uint8_t *)fd_ptr(&d, pool) + NET_HDR_LEN, frame, 500));
  struct net_counters c = counters(&d);
  CHECK(c.rx_dropped_oversized == 1 && c.rx_dropped_offload == 1 && c.rx_frames == 1 && c.rx_bounced == 0);
  /* 19 chains left (76 KiB): three more frames read straight in, which leaves 16 (64 KiB: one byte short of the
   * largest read)... */
  for (int i = 0; i < 3; i++) send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, 60);
  for (int i = 0; i < 3; i++) CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && id == 2u * (i + 1));
  /* ...so the next frame goes through the copy path, into the next chain. */
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, 3000);
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && id == 2 * 4 && len == NET_HDR_LEN + 3000);
  c = counters(&d);
  CHECK(c.rx_frames == 5 && c.rx_bounced == 1);
  teardown(&d, peer);
}

/* Restore keeps the snapshot's MAC, whatever the restoring command line gave; the clone serves its own socket. */
static void test_restore_mac(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  post_rx(&d, 2, 2048);
  fd_kick(&d, NET_QUEUE_RX);
  struct virtio_dev_state st;
  uint8_t own[VIRTIO_OWN_STATE_MAX];
  contract_save(d.dev, &st, own);
  uint8_t other[6] = {0x02, 1, 2, 3, 4, 5};
  int peer2;
  struct virtio_mmio_dev *clone = make_dev(&d.env, other, &peer2);
  CHECK(clone);
  char err[256];
  pthread_mutex_lock(&clone->lock);
  CHECK(clone->ops->restore(clone, &st, own, err, sizeof err) == 0);
  pthread_mutex_unlock(&clone->lock);
  virtio_mmio_destroy(d.dev);
  close(peer);
  d.dev = clone;
  uint8_t cfg[6];
  for (int i = 0; i < 6; i++) virtio_mmio_read(clone, VIRTIO_MMIO_CONFIG + i, &cfg[i], 1);
  CHECK(!memcmp(cfg, MAC, 6));
  /* The rx buffers posted before the snapshot take the first frame on the clone's own socket. */
  uint8_t frame[80] = {1};
  struct virtio_net_hdr_v1 h = {0};
  send_frame(peer2, &h, frame, sizeof frame);
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && len == NET_HDR_LEN + sizeof frame);
  teardown(&d, peer2);
}

/* A real TAP in a fresh network namespace (a child process: the namespace is the child's alone), prepared by
 * net_tap_prepare: a UDP datagram the host sends to the guest's address arrives as one frame in the rx buffers, and
 * a frame the guest transmits reaches a host UDP socket. */
static int real_tap_child(void) {
  if (unshare(CLONE_NEWNET) < 0) return 77;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return 77;
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "obxtest0");
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
  char err[256];
  if (net_tap_prepare(fd, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq r = {0};
  strcpy(r.ifr_name, "obxtest0");
  struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.1", &sin->sin_addr);
  CHECK(ioctl(s, SIOCSIFADDR, &r) == 0);
  inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
  CHECK(ioctl(s, SIOCSIFNETMASK, &r) == 0);
  r.ifr_flags = IFF_UP;
  CHECK(ioctl(s, SIOCSIFFLAGS, &r) == 0);
  CHECK(ioctl(s, SIOCGIFHWADDR, &r) == 0);
  uint8_t host_mac[6];
  memcpy(host_mac, r.ifr_hwaddr.sa_data, 6);
  struct arpreq arp = {.arp_flags = ATF_COM | ATF_PERM};
  struct sockaddr_in *pa = (struct sockaddr_in *)&arp.arp_pa;
  pa->sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.2", &pa->sin_addr);
  arp.arp_ha.sa_family = ARPHRD_ETHER;
  memcpy(arp.arp_ha.sa_data, MAC, 6);
  strcpy(arp.arp_dev, "obxtest0");
  CHECK(ioctl(s, SIOCSARP, &arp) == 0);

  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  struct fake_driver d;
  fd_setup(&d, MEM, loop);
  d.dev = virtio_net_create(&d.env, fd, MAC, err, sizeof err);
  CHECK(d.dev);
  CHECK(fd_init(&d, all_features(), QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint64_t rx = post_rx(&d, 8, 4096);
  fd_kick(&d, NET_QUEUE_RX);

  /* host -> guest: the host resolves 10.0.0.2 from the static ARP entry and sends out of the TAP. */
  const char msg[] = "hello from the host";
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
  inet_pton(AF_INET, "10.0.0.2", &to.sin_addr);
  uint32_t id, len;
  bool got = false;
  for (int tries = 0; tries < 50 && !got; tries++) { /* the first datagrams may precede IPv6 noise: look at each */
    CHECK(sendto(s, msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to) == sizeof msg);
    while (!got && wait_used(&d, NET_QUEUE_RX, &id, &len)) {
      const uint8_t *f = (uint8_t *)fd_ptr(&d, rx + 4096ull * id) + NET_HDR_LEN;
      got = len == NET_HDR_LEN + 42 + sizeof msg && !memcmp(f, MAC, 6) && !memcmp(f + 6, host_mac, 6) &&
            f[12] == 0x08 && f[13] == 0 && !memcmp(f + 42, msg, sizeof msg);
      struct fd_buf b = {rx + 4096ull * id, 4096, true};
      CHECK(fd_add(&d, NET_QUEUE_RX, &b, 1) >= 0);
      fd_kick(&d, NET_QUEUE_RX);
    }
  }
  CHECK(got);

  /* guest -> host: Ethernet + IPv4 + UDP (checksum 0) to 10.0.0.1:7777. */
  int in = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(7777)};
  inet_pton(AF_INET, "10.0.0.1", &at.sin_addr);
  CHECK(bind(in, (struct sockaddr *)&at, sizeof at) == 0);
  const char back[] = "hello from the guest";
  uint8_t fr[NET_HDR_LEN + 42 + sizeof back] = {0};
  uint8_t *e = fr + NET_HDR_LEN, *ip = e + 14, *udp = ip + 20;
  memcpy(e, host_mac, 6);
  memcpy(e + 6, MAC, 6);
  e[12] = 0x08;
  uint16_t iplen = (uint16_t)(20 + 8 + sizeof back);
  uint8_t iph[20] = {0x45, 0, (uint8_t)(iplen >> 8), (uint8_t)iplen, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1};
  uint64_t sum = csum_add_test(iph, 20);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  iph[10] = (uint8_t)(~sum >> 8);
  iph[11] = (uint8_t)~sum;
  memcpy(ip, iph, 20);
  uint16_t ul = (uint16_t)(8 + sizeof back);
  uint8_t uh[8] = {0x27, 0x0f, 0x1e, 0x61, (uint8_t)(ul >> 8), (uint8_t)ul, 0, 0};
  memcpy(udp, uh, 8);
  memcpy(udp + 8, back, sizeof back);
  uint64_t a = fd_alloc(&d, sizeof fr, 8);
  memcpy(fd_ptr(&d, a), fr, sizeof fr);
  struct fd_buf b = {a, sizeof fr, false};
  CHECK(fd_add(&d, NET_QUEUE_TX, &b, 1) >= 0);
  fd_kick(&d, NET_QUEUE_TX);
  struct pollfd p = {in, POLLIN, 0};
  CHECK(poll(&p, 1, 2000) == 1);
  char buf[128];
  CHECK(recv(in, buf, sizeof buf, 0) == sizeof back && !memcmp(buf, back, sizeof back));
  fd_teardown(&d);
  evloop_destroy(loop);
  return 0;
}

static void test_real_tap(void) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(real_tap_child());
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
  if (WEXITSTATUS(st) == 77) {
    printf("net_test: real TAP skipped (needs root: unshare -n and /dev/net/tun)\n");
    return;
  }
  CHECK(WEXITSTATUS(st) == 0);
  printf("net_test: real TAP ok\n");
}

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

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  if (argc > 1 && !strcmp(argv[1], "--bench")) {
    bench(loop);
    evloop_destroy(loop);
    return 0;
  }
  contract_run(&(struct contract_device){.name = "net", .device_id = VIRTIO_ID_NET, .num_queues = 2,
                                         .create = contract_create, .request_queue = NET_QUEUE_TX,
                                         .post_request = contract_request},
               loop);
  test_config(loop);
  test_tx(loop);
  test_tx_drops(loop);
  test_rx_mergeable(loop);
  test_rx_waits_for_buffers(loop);
  test_rx_oversized(loop);
  test_rx_malformed(loop);
  test_rx_offload_fallback(loop);
  test_rx_burst(loop);
  test_rx_direct_drops(loop);
  test_restore_mac(loop);
  test_real_tap();
  evloop_destroy(loop);
  for (int i = 0; i < npeers; i++) close(peers[i]);
  printf("net_test: ok\n");
  return 0;
}
