// virtio-vsock snapshot: transport + the next host port; after a restore the guest is told its connections are gone
// (TRANSPORT_RESET event), and host REQUESTs wait until it has handled that (reset_hold.c).
#include <stdio.h>
#include <string.h>
#include "vsock.h"

/* struct virtio_vsock_event (§5.10.6.7): one le32 id. */
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0

/* Lock held. */
static int transport_reset(struct virtio_mmio_dev *dev) {
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
  return rc;
}

int virtio_vsock_transport_reset(struct virtio_mmio_dev *dev) {
  pthread_mutex_lock(&dev->lock);
  int rc = transport_reset(dev);
  pthread_mutex_unlock(&dev->lock);
  return rc;
}

void vsock_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own) {
  virtio_dev_save(dev, transport);
  struct vsock_state st = {.next_host_port = ((struct vsock *)dev->impl)->next_host_port};
  memcpy(own, &st, sizeof st);
}

int vsock_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                  size_t errlen) {
  if (virtio_dev_restore(dev, transport, err, errlen) < 0) return -1;
  struct vsock_state st;
  memcpy(&st, own, sizeof st);
  /* Same range as conn.c allocates from: [VSOCK_HOST_PORT_FIRST, 2^32). */
  ((struct vsock *)dev->impl)->next_host_port =
      st.next_host_port >= VSOCK_HOST_PORT_FIRST ? st.next_host_port : VSOCK_HOST_PORT_FIRST;
  /* Live vsock connections were not saved: the guest must drop its side of them. */
  if (transport_reset(dev) < 0)
    fprintf(stderr, "onebox-vmm: vsock: no event buffer for TRANSPORT_RESET (driver not ready at snapshot time)\n");
  return 0;
}
