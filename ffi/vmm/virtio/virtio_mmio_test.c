// Native test of the virtio-mmio transport, the split virtqueue checks and virtio-rng, through a fake driver.
#include <stdint.h>
#include "rng/rng.h"
#include "test_driver.h"

#define MEM_SIZE (4u << 20)
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)
#define QN 16

static int failed_count;

static void rng_new(struct fake_driver *d) {
  char err[256];
  fd_setup(d, MEM_SIZE, NULL);
  d->dev = virtio_rng_create(&d->env, err, sizeof err);
  CHECK(d->dev);
}

static bool needs_reset(struct fake_driver *d) { return fd_rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET; }

/* A good request must be served: used length = bytes filled, random-looking, interrupt raised. */
static void rng_roundtrip(struct fake_driver *d) {
  uint64_t a = fd_alloc(d, 4096, 8), b = fd_alloc(d, 100, 8);
  struct fd_buf bufs[] = {{a, 4096, true}, {b, 100, true}};
  fd_irqs(d);
  int head = fd_add(d, 0, bufs, 2);
  CHECK(head >= 0);
  fd_kick(d, 0);
  uint32_t id, len;
  CHECK(fd_used(d, 0, &id, &len));
  CHECK(id == (uint32_t)head && len == 4196);
  CHECK(fd_irqs(d) >= 1);
  CHECK(fd_rd(d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
  fd_wr(d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
  CHECK(fd_rd(d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
  const uint8_t *p = fd_ptr(d, a);
  int zeros = 0;
  for (int i = 0; i < 4096; i++) zeros += p[i] == 0;
  CHECK(zeros < 100); /* ~16 expected from uniform bytes */
}

static void test_registers_and_features(void) {
  struct fake_driver d;
  rng_new(&d);
  CHECK(fd_rd(&d, VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC);
  CHECK(fd_rd(&d, VIRTIO_MMIO_VERSION) == 2);
  CHECK(fd_rd(&d, VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_ENTROPY);
  CHECK(fd_device_features(&d) == (V1 | EVENT_IDX)); /* no indirect descriptors */
  uint8_t b[2] = {0xff, 0xff};
  virtio_mmio_read(d.dev, VIRTIO_MMIO_MAGIC_VALUE, b, 2); /* registers need 32-bit accesses */
  CHECK(b[0] == 0 && b[1] == 0);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
  CHECK(fd_rd(&d, VIRTIO_MMIO_QUEUE_NUM_MAX) == 64);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 1);
  CHECK(fd_rd(&d, VIRTIO_MMIO_QUEUE_NUM_MAX) == 0); /* no such queue */
  /* Legacy driver (no VERSION_1) and unoffered bits are refused at FEATURES_OK. */
  CHECK(!(fd_init(&d, 0, QN) & VIRTIO_CONFIG_S_FEATURES_OK));
  CHECK(!(fd_init(&d, V1 | (1ull << VIRTIO_F_INDIRECT_DESC), QN) & VIRTIO_CONFIG_S_FEATURES_OK));
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  CHECK(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
  rng_roundtrip(&d);
  /* Reset clears status and queues. */
  fd_wr(&d, VIRTIO_MMIO_STATUS, 0);
  CHECK(fd_rd(&d, VIRTIO_MMIO_STATUS) == 0);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
  CHECK(fd_rd(&d, VIRTIO_MMIO_QUEUE_READY) == 0);
  fd_teardown(&d);
}

/* Each breaks the ring after a clean init; the device must enter NEEDS_RESET, raise a config interrupt,
 * stop serving, and work again after a reset. */
enum breakage { BAD_HEAD, BAD_NEXT, ADDR_BEYOND, ADDR_OVERFLOW, LOOP, READ_AFTER_WRITE, READABLE_FOR_RNG,
                INDIRECT, AVAIL_JUMP, N_BREAKAGE };
static const char *breakage_names[] = {"head index", "next index", "address beyond memory", "64-bit overflow",
                                       "loop", "readable after writable", "readable buffer for rng",
                                       "indirect", "avail idx jump"};

static void test_malformed(enum breakage kind) {
  struct fake_driver d;
  rng_new(&d);
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint64_t a = fd_alloc(&d, 64, 8);
  struct fd_buf two[] = {{a, 32, true}, {a + 32, 32, true}};
  int head = fd_add(&d, 0, two, 2);
  CHECK(head >= 0);
  struct virtq_desc *h = fd_desc(&d, 0, (uint16_t)head);
  struct virtq_desc *t = fd_desc(&d, 0, h->next);
  uint16_t *ring = fd_ptr(&d, d.q[0].avail + VIRTQ_AVAIL_RING_OFF);
  switch (kind) {
  case BAD_HEAD: ring[0] = QN + 3; break;
  case BAD_NEXT: h->next = 0xffff; break;
  case ADDR_BEYOND: t->addr = MEM_SIZE - 16; break; /* len 32 crosses the end */
  case ADDR_OVERFLOW: t->addr = UINT64_MAX - 8; break;
  case LOOP: t->flags |= VIRTQ_DESC_F_NEXT; t->next = (uint16_t)head; break;
  case READ_AFTER_WRITE: t->flags &= ~VIRTQ_DESC_F_WRITE; break;
  case READABLE_FOR_RNG: h->flags &= ~VIRTQ_DESC_F_WRITE; break;
  case INDIRECT: h->flags |= VIRTQ_DESC_F_INDIRECT; break;
  case AVAIL_JUMP: *(uint16_t *)fd_ptr(&d, d.q[0].avail + VIRTQ_AVAIL_IDX_OFF) = QN + 5; break;
  default: break;
  }
  fd_irqs(&d);
  fd_kick(&d, 0);
  uint32_t id, len;
  if (!needs_reset(&d)) {
    fprintf(stderr, "malformed ring (%s) not detected\n", breakage_names[kind]);
    failed_count++;
  }
  CHECK(!fd_used(&d, 0, &id, &len));
  CHECK(fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
  CHECK(fd_irqs(&d) >= 1);
  /* Stays stopped: a further kick is ignored. */
  fd_kick(&d, 0);
  CHECK(!fd_used(&d, 0, &id, &len));
  /* Reset and a clean init bring it back. */
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  CHECK(!needs_reset(&d));
  rng_roundtrip(&d);
  fd_teardown(&d);
}

static void test_bad_queue_layouts(void) {
  struct fake_driver d;
  rng_new(&d);
  uint16_t bad_nums[] = {100, 128 /* > max 64 */, 0};
  for (unsigned i = 0; i < sizeof bad_nums / sizeof bad_nums[0]; i++) {
    CHECK(fd_init(&d, V1, bad_nums[i]) == 0); /* QueueReady reads back 0 */
    CHECK(needs_reset(&d));
  }
  /* Ring placed past the end of guest memory. */
  fd_init(&d, V1, QN);
  fd_wr(&d, VIRTIO_MMIO_STATUS, 0);
  fd_wr(&d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_NUM, QN);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, MEM_SIZE - 64);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1);
  CHECK(fd_rd(&d, VIRTIO_MMIO_QUEUE_READY) == 0 && needs_reset(&d));
  /* High half of a 64-bit address. */
  fd_wr(&d, VIRTIO_MMIO_STATUS, 0);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0xffffffff);
  fd_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1);
  CHECK(fd_rd(&d, VIRTIO_MMIO_QUEUE_READY) == 0 && needs_reset(&d));
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  CHECK(!needs_reset(&d));
  rng_roundtrip(&d);
  fd_teardown(&d);
}

/* Found by the ring fuzzer: a driver that cleared FEATURES_OK behind a running device (§2.1.2 forbids clearing
 * status bits) could rewrite its features to bits never offered, which also made the VM's snapshot unrestorable.
 * Now clearing any bit is a driver error: NEEDS_RESET, and the features stay frozen. */
static void test_status_bit_cleared(void) {
  struct fake_driver d;
  rng_new(&d);
  uint32_t st = fd_init(&d, V1, QN);
  CHECK(st & VIRTIO_CONFIG_S_FEATURES_OK);
  fd_wr(&d, VIRTIO_MMIO_STATUS, (st | VIRTIO_CONFIG_S_DRIVER_OK) & ~VIRTIO_CONFIG_S_FEATURES_OK);
  fd_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  fd_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_F_INDIRECT_DESC);
  if (!needs_reset(&d) || (d.dev->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC))) {
    fprintf(stderr, "clearing FEATURES_OK on a running device was accepted (status %#x, features %#llx)\n",
            fd_rd(&d, VIRTIO_MMIO_STATUS), (unsigned long long)d.dev->driver_features);
    failed_count++;
  }
  /* A reset clears it; the device works again. */
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  CHECK(!needs_reset(&d));
  rng_roundtrip(&d);
  fd_teardown(&d);
}

/* One rng request; returns the number of interrupts it raised. */
static uint64_t rng_once(struct fake_driver *d) {
  uint64_t a = fd_alloc(d, 64, 8);
  struct fd_buf b = {a, 64, true};
  fd_irqs(d);
  CHECK(fd_add(d, 0, &b, 1) >= 0);
  fd_kick(d, 0);
  uint32_t id, len;
  CHECK(fd_used(d, 0, &id, &len) && len == 64);
  return fd_irqs(d);
}

/* §2.7.10 notification suppression, both ways. */
static void test_notification_suppression(void) {
  struct fake_driver d;
  rng_new(&d);
  /* Without EVENT_IDX: VIRTQ_AVAIL_F_NO_INTERRUPT silences used-buffer interrupts. */
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  CHECK(rng_once(&d) == 1);
  *(uint16_t *)fd_ptr(&d, d.q[0].avail + VIRTQ_AVAIL_FLAGS_OFF) = VIRTQ_AVAIL_F_NO_INTERRUPT;
  CHECK(rng_once(&d) == 0);
  /* With EVENT_IDX: the flag is ignored; used_event decides, avail_event follows what was consumed. */
  CHECK(fd_init(&d, V1 | EVENT_IDX, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  *(uint16_t *)fd_ptr(&d, d.q[0].avail + VIRTQ_AVAIL_FLAGS_OFF) = VIRTQ_AVAIL_F_NO_INTERRUPT;
  CHECK(rng_once(&d) == 1); /* the first one always interrupts */
  uint16_t *avail_event = fd_ptr(&d, d.q[0].used + VIRTQ_USED_RING_OFF + 8ull * QN);
  CHECK(*avail_event == 1);
  fd_set_used_event(&d, 0, 5); /* interrupt when used idx passes 5: not for entries 2..5 */
  CHECK(rng_once(&d) == 0);
  CHECK(*avail_event == 2);
  CHECK(rng_once(&d) == 0 && rng_once(&d) == 0 && rng_once(&d) == 0);
  CHECK(rng_once(&d) == 1); /* used idx 5 -> 6 crosses used_event */
  fd_set_used_event(&d, 0, d.q[0].used_seen);
  CHECK(rng_once(&d) == 1);
  /* The driver kicks only when needed, and the device still sees every buffer. */
  for (int i = 0; i < 3; i++) {
    uint64_t a = fd_alloc(&d, 16, 8);
    struct fd_buf b = {a, 16, true};
    CHECK(fd_add(&d, 0, &b, 1) >= 0);
    d.q[0].kick_old = d.q[0].avail_idx - 1;
    CHECK(fd_kick_needed(&d, 0)); /* avail_event == the index just added */
    uint32_t id, len;
    CHECK(fd_used(&d, 0, &id, &len) && len == 16);
  }
  fd_teardown(&d);
}

int main(void) {
  test_registers_and_features();
  for (int k = 0; k < N_BREAKAGE; k++) test_malformed((enum breakage)k);
  test_bad_queue_layouts();
  test_status_bit_cleared();
  test_notification_suppression();
  if (failed_count) return 1;
  printf("virtio_mmio_test: ok\n");
  return 0;
}
