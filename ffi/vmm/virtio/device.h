// What a virtio device implementation sees of the MMIO transport: its state, the device lock, queue helpers.
#pragma once
#include <pthread.h>
#include "queue.h"
#include "virtio.h"

#define VIRTIO_MAX_QUEUES 3
#define VIRTIO_CONFIG_MAX 64

struct virtio_dev_state; /* the transport's part of a snapshot (persist.h) */

/* What every device implements (docs/virtio.md "Adding a device"): device.c has notify/reset/destroy, persist.c
 * has save/restore. The transport (mmio.c) and the machine (machine.c, snapshot/) call only these. */
struct virtio_device_ops {
  const char *name;  /* for diagnostics on stderr */
  /* Queue `qi` was notified, or the driver just set DRIVER_OK (called for every ready queue).
   * Called with dev->lock held. */
  void (*notify)(struct virtio_mmio_dev *dev, uint16_t qi);
  /* Status was written 0 (§2.1.2 reset) or the device is being destroyed: drop in-flight state. Lock held.
   * NULL: the device keeps nothing between notifies. */
  void (*reset)(struct virtio_mmio_dev *dev);
  /* Drops all in-flight state and frees impl. The lock is not held; vCPUs no longer access the device,
   * but the event loop may still be running. */
  void (*destroy)(struct virtio_mmio_dev *dev);

  /* Snapshot (Firecracker's devices/virtio/<dev>/persist.rs). A device's state is the transport's (virtio/persist.h,
   * section SNAP_SEC_VIRTIO, index = its place on the bus) plus, if state_len > 0, state_len bytes of its own (a
   * plain struct, section state_section of snapshot/format.h, index = its ordinal among devices of its kind).
   * save: lock held, the device quiescent (vCPUs paused); fills both. Never NULL. */
  uint16_t state_section;
  uint32_t state_len;
  void (*save)(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own);
  /* restore: into a device just created from the same command line, before any vCPU runs; lock held. Checks both
   * parts against this device (refusing a snapshot of another device or shape), then applies them. 0, or -1 with
   * err. Never NULL. */
  int (*restore)(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                 size_t errlen);
};

/* The largest own state a device may have (snapshot sections are capped far above it). */
#define VIRTIO_OWN_STATE_MAX 256

/* A queue's kick eventfd (ioeventfd.c): the machine ties it to QueueNotify with KVM_IOEVENTFD, the event loop serves it. */
struct virtio_kick {
  struct virtio_mmio_dev *dev;
  uint16_t qi;
  int fd; /* -1: this queue's kicks come only as MMIO writes (on the vCPU thread) */
};

struct virtio_mmio_dev {
  pthread_mutex_t lock; /* guards everything below and the device's impl state (not kick[]: set at create) */
  const struct virtio_device_ops *ops;
  void *impl;
  struct virtio_env env;

  uint32_t device_id;
  uint64_t device_features; /* offered; always includes VIRTIO_F_VERSION_1 */
  uint16_t num_queues, queue_num_max;
  uint8_t config[VIRTIO_CONFIG_MAX]; /* device configuration space (little-endian), read-only to the driver */
  uint32_t config_len;

  uint32_t status;
  uint32_t device_features_sel, driver_features_sel, queue_sel;
  uint64_t driver_features;
  /* InterruptStatus has a lock of its own, taken after `lock` where both are: the guest's read of it in every interrupt
   * handler (a vCPU exit) then never waits for the event loop's rx burst under `lock`. */
  pthread_mutex_t irq_lock;
  uint32_t interrupt_status; /* irq_lock; with ack_fd an ACK may wait in it (virtio_ack_take before every look) */
  int ack_fd;                 /* InterruptACK = VIRTIO_MMIO_INT_VRING written through KVM_IOEVENTFD, or -1 */
  uint32_t config_generation;
  struct virtq queues[VIRTIO_MAX_QUEUES];
  struct virtio_kick kick[VIRTIO_MAX_QUEUES];
};

/* Allocates the transport part; the device fills config, then sets ops/impl. NULL on ENOMEM. */
struct virtio_mmio_dev *virtio_dev_alloc(const struct virtio_env *env, uint32_t device_id, uint64_t features,
                                         uint16_t num_queues, uint16_t queue_num_max);
/* Frees the transport part only (for device create failure paths, before ops is set). */
void virtio_dev_free(struct virtio_mmio_dev *dev);

/* Lock held by the caller for all of these. */
/* True while the driver has finished setup and the device is not in NEEDS_RESET. */
bool virtio_dev_running(const struct virtio_mmio_dev *dev);
/* Driver error (§2.1.1): set DEVICE_NEEDS_RESET, notify the driver, stop processing until reset. */
void virtio_dev_fail(struct virtio_mmio_dev *dev, const char *why);
/* Pop from queue qi: 1 = chain, 0 = nothing (or device not running), -1 = ring violation (already failed). */
int virtio_dev_pop(struct virtio_mmio_dev *dev, uint16_t qi, struct virtq_chain *c);
void virtio_dev_push(struct virtio_mmio_dev *dev, uint16_t qi, uint16_t head, uint32_t len);
/* Raises the used-buffer interrupt if anything was pushed on qi and the driver did not suppress it. */
void virtio_dev_signal(struct virtio_mmio_dev *dev, uint16_t qi);
/* The driver notified queue qi (QueueNotify written, or its kick eventfd fired): ops->notify if the queue can serve. */
void virtio_dev_kick(struct virtio_mmio_dev *dev, uint16_t qi);

/* ioeventfd.c. Called by a device's create once ops/impl are set, lock not held: one eventfd per queue, watched by the
 * event loop, whose callback kicks the queue under the lock (the vCPU's MMIO exit never runs the device), and one for
 * InterruptACK (virtio_ack_take). The MMIO write paths stay (a write that did not match the ioeventfd, or no KVM: the
 * tests). 0, or -1 with err. */
int virtio_ioeventfds_init(struct virtio_mmio_dev *dev, char *err, size_t errlen);
/* irq_lock held: applies an InterruptACK the guest wrote through the eventfd (clears VIRTIO_MMIO_INT_VRING). */
void virtio_ack_take(struct virtio_mmio_dev *dev);
/* virtio_mmio_destroy, before ops->destroy: unwatches the eventfds, waits out a callback in flight, closes them. */
void virtio_ioeventfds_close(struct virtio_mmio_dev *dev);
