// virtio-vsock after a snapshot restore: the guest is told its connections are gone (TRANSPORT_RESET event).
#include <string.h>
#include "../persist.h"
#include "vsock.h"

/* struct virtio_vsock_event (§5.10.6.7): one le32 id. */
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0

int virtio_vsock_transport_reset(struct virtio_mmio_dev *dev) {
  pthread_mutex_lock(&dev->lock);
  int rc = -1;
  struct vsock *vs = dev->impl;
  struct virtq_chain *c = &vs->rx_chain; /* scratch chain, free between locked calls */
  if (virtio_dev_running(dev) && virtio_dev_pop(dev, VSOCK_QUEUE_EVENT, c) == 1) {
    /* Read before the guest can see the event: it re-posts a buffer only after handling it. */
    uint16_t avail = virtq_avail_idx(&dev->queues[VSOCK_QUEUE_EVENT]);
    uint32_t id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET;
    size_t n = virtq_chain_write(c, 0, &id, sizeof id);
    virtio_dev_push(dev, VSOCK_QUEUE_EVENT, c->head, (uint32_t)n);
    rc = n == sizeof id ? 0 : -1;
    if (rc == 0) vsock_reset_hold_begin(vs, avail); /* host REQUESTs wait for that (reset_hold.c) */
    virtio_dev_signal(dev, VSOCK_QUEUE_EVENT);
  }
  pthread_mutex_unlock(&dev->lock);
  return rc;
}

/* Caller holds dev->lock (snapshot_save holds every device lock while it saves). */
uint32_t virtio_vsock_save_next_port(struct virtio_mmio_dev *dev) { return ((struct vsock *)dev->impl)->next_host_port; }

void virtio_vsock_restore_next_port(struct virtio_mmio_dev *dev, uint32_t port) {
  pthread_mutex_lock(&dev->lock);
  /* Same range as conn.c allocates from: [VSOCK_HOST_PORT_FIRST, 2^32). */
  ((struct vsock *)dev->impl)->next_host_port = port >= VSOCK_HOST_PORT_FIRST ? port : VSOCK_HOST_PORT_FIRST;
  pthread_mutex_unlock(&dev->lock);
}
