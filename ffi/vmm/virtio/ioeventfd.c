// The guest's register writes that KVM completes in the kernel (KVM_IOEVENTFD) instead of exiting to the vmm: each
// queue's QueueNotify (the event loop thread serves the queue) and InterruptACK of the used-buffer bit (taken into
// InterruptStatus under the lock the next time anyone looks at it). The vCPU runs on through both.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "device.h"

static void kick_event(void *ctx, uint32_t events) {
  struct virtio_kick *k = ctx;
  uint64_t n;
  /* Kicks coalesce in the counter: one pass over the queue serves every one of them. EAGAIN: a spurious wake-up. */
  if (read(k->fd, &n, sizeof n) != sizeof n) return;
  pthread_mutex_lock(&k->dev->lock);
  virtio_dev_kick(k->dev, k->qi);
  pthread_mutex_unlock(&k->dev->lock);
}

int virtio_ioeventfds_init(struct virtio_mmio_dev *dev, char *err, size_t errlen) {
  if (!dev->env.loop) {
    snprintf(err, errlen, "virtio-%s: kick eventfds need the event loop", dev->ops->name);
    return -1;
  }
  dev->ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (dev->ack_fd < 0) {
    snprintf(err, errlen, "virtio-%s: InterruptACK eventfd: %s", dev->ops->name, strerror(errno));
    return -1;
  }
  for (uint16_t i = 0; i < dev->num_queues; i++) {
    struct virtio_kick *k = &dev->kick[i];
    k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = k->fd < 0 ? -errno : evloop_add(dev->env.loop, k->fd, EPOLLIN, kick_event, k);
    if (rc < 0) {
      snprintf(err, errlen, "virtio-%s: kick eventfd for queue %u: %s", dev->ops->name, i, strerror(-rc));
      return -1; /* the caller's destroy closes what was made (virtio_ioeventfds_close) */
    }
  }
  return 0;
}

/* irq_lock held. The driver wrote InterruptACK = VIRTIO_MMIO_INT_VRING since the last look: clear that bit now. Called
 * before InterruptStatus is read, written or raised and before a save, so an ACK never clears a bit raised after it
 * (the raise takes the ACK first), and a read sees every ACK written before it. */
void virtio_ack_take(struct virtio_mmio_dev *dev) {
  uint64_t n;
  if (dev->ack_fd >= 0 && read(dev->ack_fd, &n, sizeof n) == sizeof n) dev->interrupt_status &= ~VIRTIO_MMIO_INT_VRING;
}

void virtio_ioeventfds_close(struct virtio_mmio_dev *dev) {
  if (dev->ack_fd >= 0) {
    close(dev->ack_fd);
    dev->ack_fd = -1;
  }
  bool any = false;
  for (uint16_t i = 0; i < VIRTIO_MAX_QUEUES; i++)
    if (dev->kick[i].fd >= 0) {
      evloop_del(dev->env.loop, dev->kick[i].fd); /* -ENOENT if evloop_add failed: nothing to undo */
      any = true;
    }
  if (!any) return;
  /* A kick_event already picked up finishes before the device it points at goes away. */
  evloop_barrier(dev->env.loop);
  for (uint16_t i = 0; i < VIRTIO_MAX_QUEUES; i++)
    if (dev->kick[i].fd >= 0) {
      close(dev->kick[i].fd);
      dev->kick[i].fd = -1;
    }
}

int virtio_mmio_kick_fd(const struct virtio_mmio_dev *dev, uint16_t qi) {
  return qi < VIRTIO_MAX_QUEUES ? dev->kick[qi].fd : -1;
}

int virtio_mmio_ack_fd(const struct virtio_mmio_dev *dev) { return dev->ack_fd; }
