// Virtio-MMIO transport (virtio v1.2 §4.2): register file, feature negotiation, status/reset, queue setup.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "device.h"

struct virtio_mmio_dev *virtio_dev_alloc(const struct virtio_env *env, uint32_t device_id, uint64_t features,
                                         uint16_t num_queues, uint16_t queue_num_max) {
  if (num_queues > VIRTIO_MAX_QUEUES || queue_num_max > VIRTQ_MAX_SIZE) return NULL;
  struct virtio_mmio_dev *dev = calloc(1, sizeof *dev);
  if (!dev) return NULL;
  pthread_mutex_init(&dev->lock, NULL);
  pthread_mutex_init(&dev->irq_lock, NULL);
  dev->env = *env;
  dev->device_id = device_id;
  /* Every device offers EVENT_IDX (§2.7.10): fewer exits and interrupts; the queue code does both modes. */
  dev->device_features = features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX);
  dev->num_queues = num_queues;
  dev->queue_num_max = queue_num_max;
  for (uint16_t i = 0; i < num_queues; i++) virtq_reset(&dev->queues[i], queue_num_max);
  for (uint16_t i = 0; i < VIRTIO_MAX_QUEUES; i++) dev->kick[i] = (struct virtio_kick){.dev = dev, .qi = i, .fd = -1};
  dev->ack_fd = -1;
  return dev;
}

void virtio_dev_free(struct virtio_mmio_dev *dev) {
  if (!dev) return;
  pthread_mutex_destroy(&dev->lock);
  pthread_mutex_destroy(&dev->irq_lock);
  free(dev);
}

bool virtio_dev_running(const struct virtio_mmio_dev *dev) {
  return (dev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void raise_irq(struct virtio_mmio_dev *dev, uint32_t bit) {
  pthread_mutex_lock(&dev->irq_lock);
  virtio_ack_take(dev); /* an ACK written before this raise must not clear its bit later */
  dev->interrupt_status |= bit;
  pthread_mutex_unlock(&dev->irq_lock);
  irq_line_trigger(&dev->env.irq);
}

/* InterruptStatus and InterruptACK: irq_lock only (not the device lock). */
static uint32_t irq_status_read(struct virtio_mmio_dev *dev) {
  pthread_mutex_lock(&dev->irq_lock);
  virtio_ack_take(dev);
  uint32_t v = dev->interrupt_status;
  pthread_mutex_unlock(&dev->irq_lock);
  return v;
}

static void irq_status_ack(struct virtio_mmio_dev *dev, uint32_t v) {
  pthread_mutex_lock(&dev->irq_lock);
  virtio_ack_take(dev);
  dev->interrupt_status &= ~v;
  pthread_mutex_unlock(&dev->irq_lock);
}

void virtio_dev_fail(struct virtio_mmio_dev *dev, const char *why) {
  if (dev->status & VIRTIO_CONFIG_S_NEEDS_RESET) return;
  fprintf(stderr, "virtio-%s: driver error, device needs reset: %s\n", dev->ops ? dev->ops->name : "?", why);
  dev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
  /* §2.1.2: "the device SHOULD send a device configuration change notification to the driver". */
  raise_irq(dev, VIRTIO_MMIO_INT_CONFIG);
}

int virtio_dev_pop(struct virtio_mmio_dev *dev, uint16_t qi, struct virtq_chain *c) {
  if (qi >= dev->num_queues || !virtio_dev_running(dev)) return 0;
  const char *why = NULL;
  int r = virtq_pop(&dev->queues[qi], dev->env.mem, c, &why);
  if (r < 0) virtio_dev_fail(dev, why);
  return r;
}

void virtio_dev_push(struct virtio_mmio_dev *dev, uint16_t qi, uint16_t head, uint32_t len) {
  if (qi < dev->num_queues && dev->queues[qi].ready) virtq_push(&dev->queues[qi], head, len);
}

void virtio_dev_signal(struct virtio_mmio_dev *dev, uint16_t qi) {
  if (qi < dev->num_queues && dev->queues[qi].ready && virtq_take_irq(&dev->queues[qi]))
    raise_irq(dev, VIRTIO_MMIO_INT_VRING);
}

void virtio_dev_kick(struct virtio_mmio_dev *dev, uint16_t qi) {
  if (qi < dev->num_queues && dev->queues[qi].ready && virtio_dev_running(dev) && dev->ops && dev->ops->notify)
    dev->ops->notify(dev, qi);
}

/* §2.1.2 / §4.2.3.1: writing 0 to Status resets the device and every queue. */
static void dev_reset(struct virtio_mmio_dev *dev) {
  if (dev->ops && dev->ops->reset) dev->ops->reset(dev);
  dev->status = 0;
  dev->device_features_sel = dev->driver_features_sel = dev->queue_sel = 0;
  dev->driver_features = 0;
  pthread_mutex_lock(&dev->irq_lock);
  virtio_ack_take(dev); /* an ACK of the old driver's interrupt is not carried over */
  dev->interrupt_status = 0;
  pthread_mutex_unlock(&dev->irq_lock);
  for (uint16_t i = 0; i < dev->num_queues; i++) virtq_reset(&dev->queues[i], dev->queue_num_max);
}

static void status_write(struct virtio_mmio_dev *dev, uint32_t v) {
  if (v == 0) {
    dev_reset(dev);
    return;
  }
  uint32_t old = dev->status;
  /* §2.1.2: "The driver MUST NOT clear a device status bit" (only a reset does). Clearing FEATURES_OK would
   * unfreeze the driver features behind a running device (unoffered bits, a snapshot that cannot be restored). */
  if (old & ~v & 0xff & ~VIRTIO_CONFIG_S_NEEDS_RESET) {
    virtio_dev_fail(dev, "driver cleared a status bit without a reset");
    return;
  }
  uint32_t next = (v & 0xff & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
  if ((next & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
    /* §3.1.1 step 5-6: accept only a subset of what we offered, and require VERSION_1 (no legacy). */
    bool ok = !(dev->driver_features & ~dev->device_features) &&
              (dev->driver_features & (1ull << VIRTIO_F_VERSION_1));
    if (!ok) next &= ~VIRTIO_CONFIG_S_FEATURES_OK; /* the driver re-reads Status and gives up */
  }
  dev->status = next;
  if ((next & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
    if (!(next & VIRTIO_CONFIG_S_FEATURES_OK)) {
      virtio_dev_fail(dev, "DRIVER_OK without FEATURES_OK");
      return;
    }
    /* Buffers may have been made available before DRIVER_OK: look at every ready queue once. */
    for (uint16_t i = 0; i < dev->num_queues; i++)
      if (dev->queues[i].ready && dev->ops && dev->ops->notify) dev->ops->notify(dev, i);
  }
}

static struct virtq *selected_queue(struct virtio_mmio_dev *dev) {
  return dev->queue_sel < dev->num_queues ? &dev->queues[dev->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_mmio_dev *dev, uint64_t off) {
  struct virtq *q = selected_queue(dev);
  switch (off) {
  case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
  case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_1X;
  case VIRTIO_MMIO_DEVICE_ID: return dev->device_id;
  case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR_ONEBOX;
  case VIRTIO_MMIO_DEVICE_FEATURES:
    return dev->device_features_sel < 2 ? (uint32_t)(dev->device_features >> (32 * dev->device_features_sel)) : 0;
  case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? dev->queue_num_max : 0;
  case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
  case VIRTIO_MMIO_STATUS: return dev->status;
  case VIRTIO_MMIO_CONFIG_GENERATION: return dev->config_generation;
  default: return 0; /* write-only or reserved registers read as 0 */
  }
}

static void set_half(uint64_t *v, int high, uint32_t val) {
  *v = high ? (*v & 0xffffffffull) | ((uint64_t)val << 32) : (*v & ~0xffffffffull) | val;
}

static void reg_write(struct virtio_mmio_dev *dev, uint64_t off, uint32_t v) {
  struct virtq *q = selected_queue(dev);
  /* §4.2.2: queue layout registers may only change while QueueReady is 0. */
  bool q_writable = q && !q->ready;
  switch (off) {
  case VIRTIO_MMIO_DEVICE_FEATURES_SEL: dev->device_features_sel = v; break;
  case VIRTIO_MMIO_DRIVER_FEATURES:
    if (dev->driver_features_sel < 2 && !(dev->status & VIRTIO_CONFIG_S_FEATURES_OK))
      set_half(&dev->driver_features, dev->driver_features_sel == 1, v);
    break;
  case VIRTIO_MMIO_DRIVER_FEATURES_SEL: dev->driver_features_sel = v; break;
  case VIRTIO_MMIO_QUEUE_SEL: dev->queue_sel = v; break;
  case VIRTIO_MMIO_QUEUE_NUM:
    if (q_writable) q->num = v > 0xffff ? 0 : (uint16_t)v; /* checked when QueueReady is set */
    break;
  case VIRTIO_MMIO_QUEUE_READY:
    if (!q) break;
    if (v == 0) {
      q->ready = false;
    } else if (!q->ready) {
      const char *why = virtq_activate(q, dev->env.mem, dev->queue_num_max,
                                       dev->driver_features & (1ull << VIRTIO_F_EVENT_IDX));
      if (why) virtio_dev_fail(dev, why);
    }
    break;
  case VIRTIO_MMIO_QUEUE_NOTIFY:
    if (v < dev->num_queues) virtio_dev_kick(dev, (uint16_t)v);
    break;
  case VIRTIO_MMIO_STATUS: status_write(dev, v); break;
  case VIRTIO_MMIO_QUEUE_DESC_LOW: if (q_writable) set_half(&q->desc_gpa, 0, v); break;
  case VIRTIO_MMIO_QUEUE_DESC_HIGH: if (q_writable) set_half(&q->desc_gpa, 1, v); break;
  case VIRTIO_MMIO_QUEUE_DRIVER_LOW: if (q_writable) set_half(&q->avail_gpa, 0, v); break;
  case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: if (q_writable) set_half(&q->avail_gpa, 1, v); break;
  case VIRTIO_MMIO_QUEUE_DEVICE_LOW: if (q_writable) set_half(&q->used_gpa, 0, v); break;
  case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: if (q_writable) set_half(&q->used_gpa, 1, v); break;
  default: break; /* read-only or reserved: ignored */
  }
}

void virtio_mmio_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len) {
  struct virtio_mmio_dev *dev = opaque;
  memset(data, 0, len);
  if (len > 8) return;
  if (offset == VIRTIO_MMIO_INTERRUPT_STATUS && len == 4) {
    uint32_t v = irq_status_read(dev);
    memcpy(data, &v, 4);
    return;
  }
  pthread_mutex_lock(&dev->lock);
  if (offset >= VIRTIO_MMIO_CONFIG) {
    /* §4.2.2: device-specific configuration space; any access width. Outside it reads as zero. */
    uint64_t co = offset - VIRTIO_MMIO_CONFIG;
    if (co < dev->config_len && len <= dev->config_len - co) memcpy(data, dev->config + co, len);
  } else if (len == 4 && offset % 4 == 0) {
    /* §4.2.2: registers are 32 bits wide and must be accessed with 32-bit aligned accesses. */
    uint32_t v = reg_read(dev, offset);
    memcpy(data, &v, 4);
  }
  pthread_mutex_unlock(&dev->lock);
}

void virtio_mmio_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len) {
  struct virtio_mmio_dev *dev = opaque;
  if (offset >= VIRTIO_MMIO_CONFIG || len != 4 || offset % 4) return; /* config space is read-only here */
  uint32_t v;
  memcpy(&v, data, 4);
  if (offset == VIRTIO_MMIO_INTERRUPT_ACK) {
    irq_status_ack(dev, v);
    return;
  }
  pthread_mutex_lock(&dev->lock);
  reg_write(dev, offset, v);
  pthread_mutex_unlock(&dev->lock);
}

void virtio_mmio_destroy(struct virtio_mmio_dev *dev) {
  if (!dev) return;
  /* No kick callback runs from here on; the device's destroy hook drops in-flight state itself (it may need to sync
   * with the event loop for its own fds). */
  virtio_ioeventfds_close(dev);
  if (dev->ops && dev->ops->destroy) dev->ops->destroy(dev);
  virtio_dev_free(dev);
}
