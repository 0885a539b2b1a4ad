// virtio-blk snapshot: the transport and its queue are the whole state (requests complete within a notify; the disk
// is the file the command line names again, and its read-only offer is checked with the features).
#include "blk.h"

void blk_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own) {
  virtio_dev_save(dev, transport);
}

int blk_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                size_t errlen) {
  return virtio_dev_restore(dev, transport, err, errlen);
}
