// virtio-mmio transport + split-queue state as plain data, for snapshots: save() -> state, restore(state).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "device.h"

struct virtio_queue_state {
  uint64_t desc_gpa, avail_gpa, used_gpa;
  uint16_t num, last_avail, used_idx, signalled_used;
  uint8_t ready, event_idx, owe_irq, signalled_valid;
  uint32_t reserved;
};

struct virtio_dev_state {
  uint32_t device_id, num_queues;
  uint64_t device_features, driver_features;
  uint32_t status, device_features_sel, driver_features_sel, queue_sel;
  uint32_t interrupt_status, config_generation;
  struct virtio_queue_state queues[VIRTIO_MAX_QUEUES];
};

/* The transport half of every device's ops->save/restore (its persist.c calls these). Both with dev->lock held by the
 * caller. Device back-ends keep no in-flight chains between locked sections, so the transport and queue indices are
 * the whole guest-visible ring state. */
void virtio_dev_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *out);
/* Checks st against the device as created from this command line (same device, same offers) and re-validates
 * every ready ring against guest memory. Returns 0, or -1 with err. */
int virtio_dev_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *st, char *err, size_t errlen);
