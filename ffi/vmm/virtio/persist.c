// virtio-mmio transport and queue persistence: copy out under the device lock, validate on the way back in.
#include "persist.h"
#include <stdio.h>
#include <string.h>

void virtio_dev_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *out) {
  pthread_mutex_lock(&dev->irq_lock);
  virtio_ack_take(dev); /* the snapshot's InterruptStatus has every ACK the guest wrote */
  uint32_t interrupt_status = dev->interrupt_status;
  pthread_mutex_unlock(&dev->irq_lock);
  memset(out, 0, sizeof *out);
  *out = (struct virtio_dev_state){
      .device_id = dev->device_id, .num_queues = dev->num_queues, .device_features = dev->device_features,
      .driver_features = dev->driver_features, .status = dev->status,
      .device_features_sel = dev->device_features_sel, .driver_features_sel = dev->driver_features_sel,
      .queue_sel = dev->queue_sel, .interrupt_status = interrupt_status,
      .config_generation = dev->config_generation};
  for (uint16_t i = 0; i < dev->num_queues && i < VIRTIO_MAX_QUEUES; i++) {
    const struct virtq *q = &dev->queues[i];
    out->queues[i] = (struct virtio_queue_state){
        .desc_gpa = q->desc_gpa, .avail_gpa = q->avail_gpa, .used_gpa = q->used_gpa, .num = q->num,
        .last_avail = q->last_avail, .used_idx = q->used_idx, .signalled_used = q->signalled_used,
        .ready = q->ready, .event_idx = q->event_idx, .owe_irq = q->owe_irq, .signalled_valid = q->signalled_valid};
  }
}

int virtio_dev_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *st, char *err, size_t errlen) {
  if (st->device_id != dev->device_id || st->num_queues != dev->num_queues ||
      st->device_features != dev->device_features) {
    snprintf(err, errlen, "virtio device %u in the snapshot does not match device %u on this command line "
             "(give the same --disk/--rng/--vsock as the snapshotted VM)", st->device_id, dev->device_id);
    return -1;
  }
  /* Before FEATURES_OK the driver may have written anything (§3.1.1 step 4: the device checks at FEATURES_OK);
   * a guest that stopped there must still be restorable. */
  if ((st->status & VIRTIO_CONFIG_S_FEATURES_OK) && (st->driver_features & ~st->device_features)) {
    snprintf(err, errlen, "virtio-%s: snapshot has driver features that were never offered", dev->ops->name);
    return -1;
  }
  dev->status = st->status & 0xff;
  dev->device_features_sel = st->device_features_sel;
  dev->driver_features_sel = st->driver_features_sel;
  dev->queue_sel = st->queue_sel;
  dev->driver_features = st->driver_features;
  pthread_mutex_lock(&dev->irq_lock);
  dev->interrupt_status = st->interrupt_status & 3; /* used-buffer and config-change bits (§4.2.2) */
  pthread_mutex_unlock(&dev->irq_lock);
  dev->config_generation = st->config_generation;
  for (uint16_t i = 0; i < dev->num_queues; i++) {
    const struct virtio_queue_state *s = &st->queues[i];
    struct virtq *q = &dev->queues[i];
    virtq_reset(q, dev->queue_num_max);
    q->num = s->num;
    q->desc_gpa = s->desc_gpa;
    q->avail_gpa = s->avail_gpa;
    q->used_gpa = s->used_gpa;
    if (!s->ready) continue;
    const char *why = virtq_activate(q, dev->env.mem, dev->queue_num_max, s->event_idx != 0);
    if (why) {
      snprintf(err, errlen, "virtio-%s queue %u in the snapshot: %s", dev->ops->name, i, why);
      return -1;
    }
    /* activate starts the indices at 0; the ring in guest memory is mid-flight, so continue where it was. */
    q->last_avail = s->last_avail;
    q->used_idx = s->used_idx;
    q->owe_irq = s->owe_irq != 0;
    q->signalled_used = s->signalled_used;
    q->signalled_valid = s->signalled_valid != 0;
  }
  return 0;
}
