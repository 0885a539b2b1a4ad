// virtio-rng (virtio v1.2 §5.4 Entropy Device): fills device-writable buffers with bytes from getrandom(2).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include "rng.h"

#define RNG_QUEUE_REQUESTQ 0 /* §5.4.2: one queue, requestq */
#define RNG_QUEUE_SIZE 64
/* Cap per request: the spec lets the device fill less than offered (§5.4.6.1 "MAY"); this bounds the
 * time a vCPU spends in one notify however large a buffer the guest posts. */
#define RNG_MAX_FILL (64 * 1024)

struct rng {
  struct virtq_chain chain;
};

static void rng_notify(struct virtio_mmio_dev *dev, uint16_t qi) {
  struct rng *r = dev->impl;
  if (qi != RNG_QUEUE_REQUESTQ) return;
  while (virtio_dev_pop(dev, qi, &r->chain) == 1) {
    struct virtq_chain *c = &r->chain;
    /* §5.4.6.2: requests are device-writable only. */
    if (c->n_out) {
      virtio_dev_fail(dev, "entropy request has a device-readable buffer");
      break;
    }
    uint32_t filled = 0;
    for (int i = 0; i < c->n_in && filled < RNG_MAX_FILL; i++) {
      size_t want = c->iov[i].iov_len;
      if (want > RNG_MAX_FILL - filled) want = RNG_MAX_FILL - filled;
      size_t got = 0;
      while (got < want) {
        ssize_t n = getrandom((uint8_t *)c->iov[i].iov_base + got, want - got, 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          break;
        }
        got += (size_t)n;
      }
      filled += (uint32_t)got;
      if (got < want) break;
    }
    virtio_dev_push(dev, qi, c->head, filled);
  }
  virtio_dev_signal(dev, qi);
}

static void rng_destroy(struct virtio_mmio_dev *dev) { free(dev->impl); }

static const struct virtio_device_ops rng_ops = {
    .name = "rng", .notify = rng_notify, .reset = NULL, .destroy = rng_destroy, .save = rng_save,
    .restore = rng_restore};

struct virtio_mmio_dev *virtio_rng_create(const struct virtio_env *env, char *err, size_t errlen) {
  struct virtio_mmio_dev *dev = virtio_dev_alloc(env, VIRTIO_ID_ENTROPY, 0, 1, RNG_QUEUE_SIZE);
  struct rng *r = calloc(1, sizeof *r);
  if (!dev || !r) {
    snprintf(err, errlen, "virtio-rng: out of memory");
    free(r);
    virtio_dev_free(dev);
    return NULL;
  }
  dev->impl = r;
  dev->ops = &rng_ops;
  return dev;
}
