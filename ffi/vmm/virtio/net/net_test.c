// Native test of virtio-net through a fake driver (net_test_util.h): the device contract, config space, tx (one frame
// per chain, drops), kicks through the queues' eventfds (the KVM_IOEVENTFD path: served on the event loop thread),
// InterruptACK through its eventfd, InterruptStatus read without the device lock, and what a restore keeps (the snapshot's MAC, rx buffers, tx chains a kick had not served yet). Rx is net_rx_test.c, a
// real TAP net_tap_test.c, the device loop's frames/s net_bench_test.c.
#include <poll.h>
#include <signal.h>
#include "net_test_util.h"

static int peers[64], npeers;

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

/* Waits up to 2 s for one frame on the host side of the pair; its length, or -1. */
static ssize_t recv_frame(int peer, uint8_t *buf, size_t len) {
  struct pollfd p = {peer, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return -1;
  return recv(peer, buf, len, MSG_DONTWAIT);
}

/* Kicks through a queue's eventfd (what KVM_IOEVENTFD signals for the guest's QueueNotify write, never exiting to the
 * vmm): tx is written to the TAP by the event loop thread, and rx buffers posted after a frame waited take it. The
 * kicking thread only writes the eventfd: nothing is served before it returns, so the used element comes from the
 * loop. */
static void test_kick_eventfd(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  int txfd = virtio_mmio_kick_fd(d.dev, NET_QUEUE_TX), rxfd = virtio_mmio_kick_fd(d.dev, NET_QUEUE_RX);
  CHECK(txfd >= 0 && rxfd >= 0 && txfd != rxfd && virtio_mmio_kick_fd(d.dev, 2) < 0);
  uint64_t one = 1;
  for (int round = 0; round < 3; round++) {
    uint64_t a = fd_alloc(&d, NET_HDR_LEN + 60, 8);
    memset(fd_ptr(&d, a), 0, NET_HDR_LEN);
    fill((uint8_t *)fd_ptr(&d, a) + NET_HDR_LEN, 60, (uint8_t)round);
    struct fd_buf b = {a, NET_HDR_LEN + 60, false};
    /* Held lock: the loop cannot serve the chain before the kick (nor the kick before this check). */
    pthread_mutex_lock(&d.dev->lock);
    CHECK(fd_add(&d, NET_QUEUE_TX, &b, 1) >= 0);
    CHECK(write(txfd, &one, sizeof one) == sizeof one);
    uint32_t id, len;
    CHECK(!fd_used(&d, NET_QUEUE_TX, &id, &len));
    pthread_mutex_unlock(&d.dev->lock);
    uint8_t got[256], want[60];
    CHECK(recv_frame(peer, got, sizeof got) == NET_HDR_LEN + 60);
    fill(want, 60, (uint8_t)round);
    CHECK(!memcmp(got + NET_HDR_LEN, want, 60));
    CHECK(wait_used(&d, NET_QUEUE_TX, &id, &len) && len == 0);
  }
  CHECK(counters(&d).tx_frames == 3);
  /* rx: a frame waits for buffers (none posted); the buffers and an eventfd kick deliver it. */
  uint8_t frame[90];
  fill(frame, sizeof frame, 4);
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, sizeof frame);
  usleep(20 * 1000);
  uint64_t rx = post_rx(&d, 2, 2048);
  CHECK(write(rxfd, &one, sizeof one) == sizeof one);
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && len == NET_HDR_LEN + sizeof frame);
  CHECK(!memcmp((uint8_t *)fd_ptr(&d, rx) + NET_HDR_LEN, frame, sizeof frame));
  /* A kick of a queue that is not ready (after a reset) is ignored, and destroy right after a kick is safe. */
  fd_wr(&d, VIRTIO_MMIO_STATUS, 0);
  CHECK(write(txfd, &one, sizeof one) == sizeof one);
  teardown(&d, peer);
}

/* InterruptACK through its eventfd (what KVM_IOEVENTFD signals for the guest's write of VIRTIO_MMIO_INT_VRING, never
 * exiting to the vmm): the next InterruptStatus read no longer shows the bit; an ACK still waiting in the eventfd when
 * the device raises again does not clear the new interrupt's bit (the raise takes the ACK first); a snapshot has
 * the ACK applied. Other values still go through the MMIO write. */
static void test_ack_eventfd(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features() & ~(1ull << VIRTIO_F_EVENT_IDX), &peer); /* an interrupt for every used buffer */
  int ack = virtio_mmio_ack_fd(d.dev);
  CHECK(ack >= 0);
  uint64_t one = 1;
  post_rx(&d, 4, 2048);
  fd_kick(&d, NET_QUEUE_RX);
  uint8_t frame[60] = {0};
  uint32_t id, len;
  fd_irqs(&d);
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, sizeof frame);
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && fd_irqs(&d) >= 1);
  CHECK(fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
  CHECK(write(ack, &one, sizeof one) == sizeof one);
  CHECK(fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
  /* The guest read the status and ACKed (still in the eventfd) when the next frame's interrupt comes. */
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, sizeof frame);
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len));
  CHECK(write(ack, &one, sizeof one) == sizeof one);
  send_frame(peer, &(struct virtio_net_hdr_v1){0}, frame, sizeof frame);
  CHECK(wait_used(&d, NET_QUEUE_RX, &id, &len) && fd_irqs(&d) >= 1);
  CHECK(fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
  /* An ACK waiting at a snapshot is in the saved InterruptStatus. */
  CHECK(write(ack, &one, sizeof one) == sizeof one);
  struct virtio_dev_state st;
  uint8_t own[VIRTIO_OWN_STATE_MAX];
  contract_save(d.dev, &st, own);
  CHECK(st.interrupt_status == 0 && fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
  /* The MMIO path: a config-change bit is ACKed by a write that exits (no eventfd for that value). */
  pthread_mutex_lock(&d.dev->irq_lock);
  d.dev->interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
  pthread_mutex_unlock(&d.dev->irq_lock);
  fd_wr(&d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
  CHECK(fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
  teardown(&d, peer);
}

struct status_reader {
  struct fake_driver *d;
  _Atomic int done;
  uint32_t v;
};

static void *read_status(void *arg) {
  struct status_reader *r = arg;
  r->v = fd_rd(r->d, VIRTIO_MMIO_INTERRUPT_STATUS);
  r->done = 1;
  return NULL;
}

/* The guest's InterruptStatus read (every interrupt handler's first access, a vCPU exit) is answered while the device
 * lock is held, as it is while the event loop reads an rx burst: it takes the interrupt lock only. */
static void test_status_read_unlocked(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  pthread_mutex_lock(&d.dev->irq_lock);
  d.dev->interrupt_status |= VIRTIO_MMIO_INT_VRING;
  pthread_mutex_unlock(&d.dev->irq_lock);
  struct status_reader r = {.d = &d};
  pthread_mutex_lock(&d.dev->lock);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, read_status, &r) == 0);
  for (int i = 0; i < 1000 && !r.done; i++) usleep(1000);
  bool answered = r.done;
  pthread_mutex_unlock(&d.dev->lock);
  pthread_join(t, NULL);
  CHECK(answered && r.v == VIRTIO_MMIO_INT_VRING);
  fd_wr(&d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
  CHECK(fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
  teardown(&d, peer);
}

/* A snapshot taken after the guest made tx chains available and kicked, before the loop served the kick: the clone
 * sends them at restore (its guest, with EVENT_IDX, would not kick again for them), on its own TAP. */
static void test_restore_pending_tx(struct evloop *loop) {
  struct fake_driver d;
  int peer;
  setup(&d, loop, all_features(), &peer);
  uint64_t a = fd_alloc(&d, NET_HDR_LEN + 70, 8);
  memset(fd_ptr(&d, a), 0, NET_HDR_LEN);
  fill((uint8_t *)fd_ptr(&d, a) + NET_HDR_LEN, 70, 8);
  struct fd_buf b = {a, NET_HDR_LEN + 70, false};
  CHECK(fd_add(&d, NET_QUEUE_TX, &b, 1) >= 0); /* the kick is still in the eventfd: not served */
  struct virtio_dev_state st;
  uint8_t own[VIRTIO_OWN_STATE_MAX];
  contract_save(d.dev, &st, own);
  int peer2;
  struct virtio_mmio_dev *clone = make_dev(&d.env, MAC, &peer2);
  CHECK(clone);
  char err[256];
  pthread_mutex_lock(&clone->lock);
  CHECK(clone->ops->restore(clone, &st, own, err, sizeof err) == 0);
  pthread_mutex_unlock(&clone->lock);
  virtio_mmio_destroy(d.dev);
  close(peer);
  d.dev = clone;
  uint8_t got[256], want[70];
  CHECK(recv_frame(peer2, got, sizeof got) == NET_HDR_LEN + 70);
  fill(want, 70, 8);
  CHECK(!memcmp(got + NET_HDR_LEN, want, 70));
  uint32_t id, len;
  CHECK(wait_used(&d, NET_QUEUE_TX, &id, &len) && len == 0);
  teardown(&d, peer2);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  contract_run(&(struct contract_device){.name = "net", .device_id = VIRTIO_ID_NET, .num_queues = 2,
                                         .create = contract_create, .request_queue = NET_QUEUE_TX,
                                         .post_request = contract_request},
               loop);
  test_config(loop);
  test_tx(loop);
  test_tx_drops(loop);
  test_kick_eventfd(loop);
  test_ack_eventfd(loop);
  test_status_read_unlocked(loop);
  test_restore_mac(loop);
  test_restore_pending_tx(loop);
  evloop_destroy(loop);
  for (int i = 0; i < npeers; i++) close(peers[i]);
  printf("net_test: ok\n");
  return 0;
}
