// Native test of virtio-net rx (rx.c) through a fake driver (net_test_util.h): mergeable buffers, no reading while the
// guest has no buffers, oversized frames, a malformed ring, offloads for a driver that declines them, a burst read
// straight into the buffers with one interrupt decision, and the drops of the direct read.
#include <signal.h>
#include "net_test_util.h"

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

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  test_rx_mergeable(loop);
  test_rx_waits_for_buffers(loop);
  test_rx_oversized(loop);
  test_rx_malformed(loop);
  test_rx_offload_fallback(loop);
  test_rx_burst(loop);
  test_rx_direct_drops(loop);
  evloop_destroy(loop);
  printf("net_rx_test: ok\n");
  return 0;
}
