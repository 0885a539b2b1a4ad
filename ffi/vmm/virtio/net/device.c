// virtio-net device (virtio v1.2 §5.1) on a TAP fd: tx chains are written to the TAP as they are kicked, one frame per
// write, on the event loop thread (kick eventfds, ioeventfd.c); the TAP's events, lifecycle and counters. The rx path
// (TAP -> rx buffers) is rx.c.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>
#include "net.h"
#include "snapshot/format.h"

void net_warn_once(struct net *nt, uint32_t kind, const char *fmt, long long v) {
  if (nt->warned & kind) return;
  nt->warned |= kind;
  fprintf(stderr, "virtio-net: ");
  fprintf(stderr, fmt, v);
  fprintf(stderr, " (counted; further ones are not logged)\n");
}

/* Watches the TAP for frames only while they can go somewhere: no busy loop while the guest posts no rx buffers. */
void net_set_polling(struct net *nt, bool on) {
  if (!nt->registered || nt->polling == on) return;
  if (evloop_mod(nt->dev->env.loop, nt->fd, on ? EPOLLIN : 0) == 0) nt->polling = on;
}

/* The TAP is gone (link deleted: reads fail, epoll reports EPOLLERR forever): stop watching it. */
void net_tap_gone(struct net *nt, int err) {
  if (!nt->registered) return;
  evloop_del(nt->dev->env.loop, nt->fd);
  nt->registered = nt->polling = false;
  net_warn_once(nt, NET_WARN_TAP_GONE, "the TAP fd failed (errno %lld); no more frames reach the guest", err);
}

static void tap_event(void *ctx, uint32_t events) {
  struct net *nt = ctx;
  pthread_mutex_lock(&nt->dev->lock);
  if (nt->registered) {
    if (events & (EPOLLERR | EPOLLHUP))
      net_tap_gone(nt, EPIPE);
    else
      net_rx_process(nt);
  }
  pthread_mutex_unlock(&nt->dev->lock);
}

void net_process_tx(struct net *nt) {
  struct virtio_mmio_dev *dev = nt->dev;
  struct virtq_chain *c = &nt->chain;
  while (virtio_dev_pop(dev, NET_QUEUE_TX, c) == 1) {
    /* §5.1.6.2: tx buffers are device-readable only. */
    if (c->n_in) {
      virtio_dev_fail(dev, "net tx buffer is device-writable");
      return;
    }
    if (c->out_len < NET_HDR_LEN) {
      nt->n.tx_dropped_short++;
    } else if (c->out_len > NET_HDR_LEN + NET_MAX_FRAME) {
      nt->n.tx_dropped_oversized++;
      net_warn_once(nt, NET_WARN_TX_OVERSIZED, "dropped a %lld-byte tx frame", (long long)c->out_len - NET_HDR_LEN);
    } else {
      /* Straight from guest memory: header and frame in one writev, one frame (the TAP takes the header as its
       * vnet header: same 12-byte layout). */
      ssize_t w;
      do w = writev(nt->fd, c->iov, c->n_out);
      while (w < 0 && errno == EINTR);
      if (w < 0) {
        nt->n.tx_dropped_error++;
        net_warn_once(nt, NET_WARN_TX_ERROR, "the TAP refused a tx frame (errno %lld)", errno);
      } else {
        nt->n.tx_frames++;
        nt->n.tx_bytes += c->out_len - NET_HDR_LEN;
      }
    }
    virtio_dev_push(dev, NET_QUEUE_TX, c->head, 0);
  }
  virtio_dev_signal(dev, NET_QUEUE_TX);
}

static void net_notify(struct virtio_mmio_dev *dev, uint16_t qi) {
  struct net *nt = dev->impl;
  if (qi == NET_QUEUE_TX)
    net_process_tx(nt);
  else if (qi == NET_QUEUE_RX)
    net_rx_process(nt); /* new rx buffers: the waiting frame first, then the TAP again */
}

/* Guest reset (§2.1.2): a frame held for the old rings is dropped; the TAP is not read until DRIVER_OK. */
static void net_reset(struct virtio_mmio_dev *dev) {
  struct net *nt = dev->impl;
  nt->pending_len = 0;
  net_set_polling(nt, false);
}

static void net_destroy(struct virtio_mmio_dev *dev) {
  struct net *nt = dev->impl;
  if (!nt) return;
  pthread_mutex_lock(&dev->lock);
  if (nt->registered) evloop_del(dev->env.loop, nt->fd);
  nt->registered = false;
  pthread_mutex_unlock(&dev->lock);
  /* A tap_event already picked up has finished. Also when the TAP was unwatched earlier: net_tap_gone on a vCPU
   * thread (a failed read on an rx kick) may have raced the loop thread into tap_event for this nt. */
  evloop_barrier(dev->env.loop);
  close(nt->fd);
  free(nt);
  dev->impl = NULL;
}

void virtio_net_counters(struct virtio_mmio_dev *dev, struct net_counters *out) {
  pthread_mutex_lock(&dev->lock);
  *out = ((struct net *)dev->impl)->n;
  pthread_mutex_unlock(&dev->lock);
}

/* Lock held (restore): a running device starts reading the TAP (rx buffers the guest posted before the snapshot) and
 * sends what the tx ring holds: a kick the snapshotted VM's loop had not served yet is not lost (the guest, with
 * EVENT_IDX, would not kick again for those chains). */
void net_resume(struct virtio_mmio_dev *dev) {
  struct net *nt = dev->impl;
  if (!virtio_dev_running(dev)) return;
  net_set_polling(nt, true);
  if (dev->queues[NET_QUEUE_TX].ready) net_process_tx(nt);
}

static const struct virtio_device_ops net_ops = {
    .name = "net", .notify = net_notify, .reset = net_reset, .destroy = net_destroy,
    .state_section = SNAP_SEC_NET, .state_len = sizeof(struct net_state), .save = net_save, .restore = net_restore};

void net_set_mac(struct virtio_mmio_dev *dev, const uint8_t mac[6]) {
  memcpy(((struct net *)dev->impl)->mac, mac, 6);
  memcpy(dev->config, mac, 6);
}

struct virtio_mmio_dev *virtio_net_create(const struct virtio_env *env, int tap_fd, const uint8_t mac[6], char *err,
                                          size_t errlen) {
  if (!env->loop) {
    snprintf(err, errlen, "virtio-net: needs the event loop");
    close(tap_fd);
    return NULL;
  }
  uint64_t features = 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MAC |
                      1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 |
                      1ull << VIRTIO_NET_F_HOST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO6 |
                      1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS;
  struct virtio_mmio_dev *dev = virtio_dev_alloc(env, VIRTIO_ID_NET, features, 2, NET_QUEUE_SIZE);
  struct net *nt = calloc(1, sizeof *nt);
  if (!dev || !nt) {
    snprintf(err, errlen, "virtio-net: out of memory");
    free(nt);
    virtio_dev_free(dev);
    close(tap_fd);
    return NULL;
  }
  nt->dev = dev;
  nt->fd = tap_fd;
  dev->impl = nt;
  dev->ops = &net_ops;
  /* §5.1.4 config: mac[6], le16 status. */
  net_set_mac(dev, mac);
  dev->config[6] = VIRTIO_NET_S_LINK_UP;
  dev->config[7] = 0;
  dev->config_len = 8;
  /* Watched with no events until the driver is ready (set_polling). */
  int rc = evloop_add(env->loop, tap_fd, 0, tap_event, nt);
  if (rc < 0) {
    snprintf(err, errlen, "virtio-net: cannot watch the TAP fd: %s", strerror(-rc));
    virtio_mmio_destroy(dev);
    return NULL;
  }
  nt->registered = true;
  /* Kicks arrive on the loop thread that also reads the TAP: a guest's ACK is written to the TAP without the vCPU
   * leaving the guest, and while the loop thread holds the device lock for rx no vCPU waits on it to kick. */
  if (virtio_ioeventfds_init(dev, err, errlen) < 0) {
    virtio_mmio_destroy(dev);
    return NULL;
  }
  return dev;
}
