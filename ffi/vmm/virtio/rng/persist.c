// virtio-rng snapshot: the transport and its queue are the whole state (a request is filled within its notify).
#include "rng.h"

void rng_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own) {
  virtio_dev_save(dev, transport);
}

int rng_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                size_t errlen) {
  return virtio_dev_restore(dev, transport, err, errlen);
}
