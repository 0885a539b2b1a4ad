// The device contract (docs/virtio.md "Adding a device"): what every virtio device must do, checked through the
// MMIO transport and its virtio_device_ops by one driver. Each device's <dev>_test.c runs contract_run() first.
#pragma once
#include "persist.h"
#include "test_driver.h"

#define CONTRACT_MEM (1u << 20)
#define CONTRACT_QN 16

struct contract_device {
  const char *name;
  uint32_t device_id;
  uint16_t num_queues;
  /* A fresh device on env, a new one on every call (two may exist at once); NULL fails the contract. */
  struct virtio_mmio_dev *(*create)(const struct virtio_env *env, void *ctx);
  void *ctx;
  /* The queue a driver's kick makes the device read (blk, rng: the request queue; vsock: tx). */
  uint16_t request_queue;
  /* Posts one well-formed request on request_queue that the device completes within the kick. */
  void (*post_request)(struct fake_driver *d);
};

#define CONTRACT_CHECK(cd, cond)                                                                     \
  do {                                                                                              \
    if (!(cond)) {                                                                                  \
      fprintf(stderr, "%s contract: %s:%d: check failed: %s\n", (cd)->name, __FILE__, __LINE__, #cond); \
      exit(1);                                                                                      \
    }                                                                                               \
  } while (0)

static inline uint32_t contract_status(struct fake_driver *d) { return fd_rd(d, VIRTIO_MMIO_STATUS); }

static inline void contract_new(const struct contract_device *cd, struct fake_driver *d, struct evloop *loop) {
  fd_setup(d, CONTRACT_MEM, loop);
  d->dev = cd->create(&d->env, cd->ctx);
  CONTRACT_CHECK(cd, d->dev);
  CONTRACT_CHECK(cd, d->dev->ops && d->dev->ops->save && d->dev->ops->restore && d->dev->ops->notify &&
                         d->dev->ops->destroy && d->dev->ops->state_len <= VIRTIO_OWN_STATE_MAX);
}

static inline void contract_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *st, uint8_t *own) {
  memset(st, 0, sizeof *st);
  memset(own, 0, VIRTIO_OWN_STATE_MAX);
  pthread_mutex_lock(&dev->lock);
  dev->ops->save(dev, st, own);
  pthread_mutex_unlock(&dev->lock);
}

/* A request is served: posted, kicked, used within the kick, with an interrupt. */
static inline void contract_serve(const struct contract_device *cd, struct fake_driver *d) {
  uint32_t id, len;
  fd_irqs(d);
  cd->post_request(d);
  if (d->event_idx) fd_set_used_event(d, cd->request_queue, d->q[cd->request_queue].used_seen); /* want the irq */
  fd_kick(d, cd->request_queue);
  CONTRACT_CHECK(cd, fd_used(d, cd->request_queue, &id, &len));
  CONTRACT_CHECK(cd, fd_irqs(d) >= 1);
}

/* Identity (§4.2.2): magic, version 2, its device id, VERSION_1 offered, a queue size for each queue and none past. */
static inline void contract_identity(const struct contract_device *cd, struct evloop *loop) {
  struct fake_driver d;
  contract_new(cd, &d, loop);
  CONTRACT_CHECK(cd, fd_rd(&d, VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC);
  CONTRACT_CHECK(cd, fd_rd(&d, VIRTIO_MMIO_VERSION) == VIRTIO_MMIO_VERSION_1X);
  CONTRACT_CHECK(cd, fd_rd(&d, VIRTIO_MMIO_DEVICE_ID) == cd->device_id);
  CONTRACT_CHECK(cd, fd_device_features(&d) & (1ull << VIRTIO_F_VERSION_1));
  CONTRACT_CHECK(cd, d.dev->num_queues == cd->num_queues);
  for (uint16_t q = 0; q <= cd->num_queues; q++) {
    fd_wr(&d, VIRTIO_MMIO_QUEUE_SEL, q);
    uint32_t max = fd_rd(&d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    CONTRACT_CHECK(cd, q < cd->num_queues ? max >= CONTRACT_QN && max <= VIRTQ_MAX_SIZE : max == 0);
  }
  CONTRACT_CHECK(cd, contract_status(&d) == 0);
  fd_teardown(&d);
}

/* Feature negotiation (§3.1.1, §2.2): only a subset of the offer with VERSION_1 gets FEATURES_OK; the features are
 * frozen once accepted; a driver clearing a status bit without a reset puts the device in NEEDS_RESET. */
static inline void contract_features(const struct contract_device *cd, struct evloop *loop) {
  struct fake_driver d;
  contract_new(cd, &d, loop);
  uint64_t offered = fd_device_features(&d);
  uint64_t unoffered = 0;
  for (int b = 63; b >= 0 && !unoffered; b--)
    if (!(offered & (1ull << b))) unoffered = 1ull << b;
  CONTRACT_CHECK(cd, unoffered);
  CONTRACT_CHECK(cd, !(fd_init(&d, offered | unoffered, CONTRACT_QN) & VIRTIO_CONFIG_S_FEATURES_OK));
  CONTRACT_CHECK(cd, !(fd_init(&d, offered & ~(1ull << VIRTIO_F_VERSION_1), CONTRACT_QN) & VIRTIO_CONFIG_S_FEATURES_OK));
  CONTRACT_CHECK(cd, fd_init(&d, offered, CONTRACT_QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  CONTRACT_CHECK(cd, contract_status(&d) & VIRTIO_CONFIG_S_DRIVER_OK);
  fd_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  fd_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 0);
  struct virtio_dev_state st;
  uint8_t own[VIRTIO_OWN_STATE_MAX];
  contract_save(d.dev, &st, own);
  CONTRACT_CHECK(cd, st.driver_features == offered);
  fd_wr(&d, VIRTIO_MMIO_STATUS, contract_status(&d) & ~VIRTIO_CONFIG_S_FEATURES_OK);
  CONTRACT_CHECK(cd, contract_status(&d) & VIRTIO_CONFIG_S_NEEDS_RESET);
  fd_teardown(&d);
}

/* A malformed ring (§2.1.1): a descriptor outside guest memory puts the device in DEVICE_NEEDS_RESET with a
 * configuration-change interrupt, and it serves nothing more until a reset (§2.1.2): the reset clears status,
 * features, queues and interrupts, and a re-initialised driver is served again. */
static inline void contract_malformed_and_reset(const struct contract_device *cd, struct evloop *loop) {
  struct fake_driver d;
  contract_new(cd, &d, loop);
  CONTRACT_CHECK(cd, fd_init(&d, fd_device_features(&d), CONTRACT_QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  contract_serve(cd, &d);
  struct fd_buf bad = {CONTRACT_MEM - 8, 64, cd->request_queue == 0};
  CONTRACT_CHECK(cd, fd_add(&d, cd->request_queue, &bad, 1) >= 0);
  fd_irqs(&d);
  fd_kick(&d, cd->request_queue);
  CONTRACT_CHECK(cd, contract_status(&d) & VIRTIO_CONFIG_S_NEEDS_RESET);
  CONTRACT_CHECK(cd, fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
  CONTRACT_CHECK(cd, fd_irqs(&d) >= 1);
  uint32_t id, len;
  CONTRACT_CHECK(cd, !fd_used(&d, cd->request_queue, &id, &len));
  cd->post_request(&d);
  fd_kick(&d, cd->request_queue);
  CONTRACT_CHECK(cd, !fd_used(&d, cd->request_queue, &id, &len)); /* stopped until reset */

  fd_wr(&d, VIRTIO_MMIO_STATUS, 0);
  CONTRACT_CHECK(cd, contract_status(&d) == 0 && fd_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
  for (uint16_t q = 0; q < cd->num_queues; q++) {
    fd_wr(&d, VIRTIO_MMIO_QUEUE_SEL, q);
    CONTRACT_CHECK(cd, fd_rd(&d, VIRTIO_MMIO_QUEUE_READY) == 0);
  }
  struct virtio_dev_state st;
  uint8_t own[VIRTIO_OWN_STATE_MAX];
  contract_save(d.dev, &st, own);
  CONTRACT_CHECK(cd, st.driver_features == 0 && st.status == 0);
  d.bump = 0x1000; /* a fresh driver lays its rings out anew */
  CONTRACT_CHECK(cd, fd_init(&d, fd_device_features(&d), CONTRACT_QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  contract_serve(cd, &d);
  fd_teardown(&d);
}

/* Save/restore round trip (Firecracker's test_persistence): a device saved after serving a request and restored
 * into a fresh device saves the same state again and continues the same rings; a snapshot of another device type
 * is refused. */
static inline void contract_save_restore(const struct contract_device *cd, struct evloop *loop) {
  struct fake_driver d;
  char err[256];
  contract_new(cd, &d, loop);
  CONTRACT_CHECK(cd, fd_init(&d, fd_device_features(&d), CONTRACT_QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  contract_serve(cd, &d);
  struct virtio_dev_state st, st2;
  uint8_t own[VIRTIO_OWN_STATE_MAX], own2[VIRTIO_OWN_STATE_MAX];
  contract_save(d.dev, &st, own);
  CONTRACT_CHECK(cd, st.queues[cd->request_queue].used_idx == 1);

  struct virtio_mmio_dev *fresh = cd->create(&d.env, cd->ctx);
  CONTRACT_CHECK(cd, fresh);
  struct virtio_dev_state wrong = st;
  wrong.device_id ^= 0x40;
  pthread_mutex_lock(&fresh->lock);
  CONTRACT_CHECK(cd, fresh->ops->restore(fresh, &wrong, own, err, sizeof err) < 0 && err[0]);
  int rc = fresh->ops->restore(fresh, &st, own, err, sizeof err);
  pthread_mutex_unlock(&fresh->lock);
  if (rc) fprintf(stderr, "%s contract: restore: %s\n", cd->name, err);
  CONTRACT_CHECK(cd, rc == 0);
  contract_save(fresh, &st2, own2);
  CONTRACT_CHECK(cd, !memcmp(&st, &st2, sizeof st));
  CONTRACT_CHECK(cd, !memcmp(own, own2, fresh->ops->state_len));

  virtio_mmio_destroy(d.dev);
  d.dev = fresh;
  CONTRACT_CHECK(cd, contract_status(&d) & VIRTIO_CONFIG_S_DRIVER_OK);
  contract_serve(cd, &d);
  contract_save(fresh, &st2, own2);
  CONTRACT_CHECK(cd, st2.queues[cd->request_queue].used_idx == 2);
  fd_teardown(&d);
}

/* Runs every case; prints `<name> contract: ok` (virtio.test.ts looks for it in every device's test). */
static inline void contract_run(const struct contract_device *cd, struct evloop *loop) {
  contract_identity(cd, loop);
  contract_features(cd, loop);
  contract_malformed_and_reset(cd, loop);
  contract_save_restore(cd, loop);
  printf("%s contract: ok\n", cd->name);
}
