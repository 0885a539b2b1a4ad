// virtio-net device (virtio v1.2 §5.1) on a TAP fd: tx chains are written to the TAP as they are kicked (vCPU thread),
// frames read from the TAP fill rx buffers (event loop thread; mergeable buffers), one frame per read and per write.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>
#include "net.h"
#include "snapshot/format.h"

#define WARN_RX_OVERSIZED 1u
#define WARN_RX_OFFLOAD 2u
#define WARN_TX_OVERSIZED 4u
#define WARN_TX_ERROR 8u
#define WARN_TAP_GONE 16u

static bool has(const struct virtio_mmio_dev *dev, int bit) { return dev->driver_features & (1ull << bit); }

static void warn_once(struct net *nt, uint32_t kind, const char *fmt, long long v) {
  if (nt->warned & kind) return;
  nt->warned |= kind;
  fprintf(stderr, "virtio-net: ");
  fprintf(stderr, fmt, v);
  fprintf(stderr, " (counted; further ones are not logged)\n");
}

/* Watches the TAP for frames only while they can go somewhere: no busy loop while the guest posts no rx buffers. */
static void set_polling(struct net *nt, bool on) {
  if (!nt->registered || nt->polling == on) return;
  if (evloop_mod(nt->dev->env.loop, nt->fd, on ? EPOLLIN : 0) == 0) nt->polling = on;
}

/* The TAP is gone (link deleted: reads fail, epoll reports EPOLLERR forever): stop watching it. */
static void tap_gone(struct net *nt, int err) {
  if (!nt->registered) return;
  evloop_del(nt->dev->env.loop, nt->fd);
  nt->registered = nt->polling = false;
  warn_once(nt, WARN_TAP_GONE, "the TAP fd failed (errno %lld); no more frames reach the guest", err);
}

/* RFC 1071 sum of p[0..len), not folded. */
static uint64_t csum_add(const uint8_t *p, size_t len, uint64_t sum) {
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (len) sum += (uint32_t)p[0] << 8;
  return sum;
}

/* What a driver that did not accept an offload cannot take: the checksum is filled in here (as the kernel's
 * skb_checksum_help does), a GSO frame it cannot take is dropped. false = drop. */
static bool rx_fix_offloads(struct net *nt, uint32_t len) {
  struct virtio_mmio_dev *dev = nt->dev;
  struct virtio_net_hdr_v1 h;
  memcpy(&h, nt->buf, sizeof h);
  uint8_t gso = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
  if (gso != VIRTIO_NET_HDR_GSO_NONE &&
      !((gso == VIRTIO_NET_HDR_GSO_TCPV4 && has(dev, VIRTIO_NET_F_GUEST_TSO4)) ||
        (gso == VIRTIO_NET_HDR_GSO_TCPV6 && has(dev, VIRTIO_NET_F_GUEST_TSO6)))) {
    nt->n.rx_dropped_offload++;
    warn_once(nt, WARN_RX_OFFLOAD, "dropped a GSO frame of type %lld the driver did not accept", gso);
    return false;
  }
  if (!has(dev, VIRTIO_NET_F_GUEST_CSUM)) {
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      uint8_t *f = nt->buf + NET_HDR_LEN;
      uint32_t flen = len - NET_HDR_LEN;
      if ((uint32_t)h.csum_start + h.csum_offset + 2 > flen) {
        nt->n.rx_dropped_offload++;
        return false;
      }
      uint64_t s = csum_add(f + h.csum_start, flen - h.csum_start, 0);
      while (s >> 16) s = (s & 0xffff) + (s >> 16);
      uint16_t c = (uint16_t)~s;
      if (!c) c = 0xffff; /* 0 and 0xffff are the same sum; 0 means "none" to UDP */
      f[h.csum_start + h.csum_offset] = (uint8_t)(c >> 8);
      f[h.csum_start + h.csum_offset + 1] = (uint8_t)c;
    }
    h.flags = 0; /* DATA_VALID too: only meaningful with GUEST_CSUM (§5.1.6.4.1) */
  }
  h.num_buffers = 1;
  memcpy(nt->buf, &h, sizeof h);
  return true;
}

/* Puts the pending frame into rx buffers: one chain, or with MRG_RXBUF as many as it takes (§5.1.6.4). 1 = delivered,
 * 0 = not enough buffers yet (nothing consumed), 2 = dropped (no buffers the driver could post would hold it), -1 =
 * ring violation (NEEDS_RESET). */
static int rx_deliver(struct net *nt) {
  struct virtio_mmio_dev *dev = nt->dev;
  struct virtq *q = &dev->queues[NET_QUEUE_RX];
  bool mrg = has(dev, VIRTIO_NET_F_MRG_RXBUF);
  uint32_t total = nt->pending_len, off = 0;
  struct iovec nb[2]; /* where num_buffers lies in the first chain */
  int nnb = 0;
  uint16_t n = 0;
  while (off < total) {
    if (n >= q->num) goto drop; /* more chains than the ring holds: never deliverable */
    int r = virtio_dev_pop(dev, NET_QUEUE_RX, &nt->chain);
    if (r < 0) return -1;
    if (r == 0) {
      for (uint16_t i = 0; i < n; i++) virtq_unpop(q);
      return 0;
    }
    struct virtq_chain *c = &nt->chain;
    /* §5.1.6.3.1: rx buffers are device-writable, and the first holds at least the header. */
    if (c->n_out || !c->in_len || (n == 0 && c->in_len < NET_HDR_LEN)) {
      virtio_dev_fail(dev, "net rx buffer is not device-writable or shorter than the header");
      return -1;
    }
    uint32_t take = c->in_len < total - off ? (uint32_t)c->in_len : total - off;
    virtq_chain_write(c, 0, nt->buf + off, take);
    if (n == 0) nnb = virtq_chain_in_iov(c, offsetof(struct virtio_net_hdr_v1, num_buffers), 2, nb, 2);
    nt->heads[n] = c->head;
    nt->lens[n] = take;
    n++;
    off += take;
    if (!mrg && off < total) {
      /* Without mergeable buffers a frame takes one chain; this one is too small (the driver posts small buffers
       * only when it did not accept GUEST_TSO, and then no GSO frames come). */
      n--;
      virtq_unpop(q);
      goto drop;
    }
  }
  uint16_t count = n;
  uint8_t le[2] = {(uint8_t)count, (uint8_t)(count >> 8)};
  for (int i = 0, k = 0; i < nnb; k += (int)nb[i].iov_len, i++) memcpy(nb[i].iov_base, le + k, nb[i].iov_len);
  for (uint16_t i = 0; i < n; i++) virtio_dev_push(dev, NET_QUEUE_RX, nt->heads[i], nt->lens[i]);
  nt->n.rx_frames++;
  nt->n.rx_bytes += total - NET_HDR_LEN;
  return 1;
drop:
  for (uint16_t i = 0; i < n; i++) virtq_unpop(q);
  nt->n.rx_dropped_oversized++;
  warn_once(nt, WARN_RX_OVERSIZED, "dropped a %lld-byte rx frame larger than the driver's rx buffers", total);
  return 2;
}

/* Moves frames from the TAP into the guest while it has buffers, at most a burst; lock held. */
static void rx_process(struct net *nt) {
  struct virtio_mmio_dev *dev = nt->dev;
  if (!virtio_dev_running(dev) || !dev->queues[NET_QUEUE_RX].ready) {
    set_polling(nt, false); /* the guest's DRIVER_OK (or queue setup and kick) starts it again */
    return;
  }
  for (int i = 0; i < NET_RX_BURST && nt->registered; i++) {
    if (!nt->pending_len) {
      ssize_t r = read(nt->fd, nt->buf, sizeof nt->buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (r <= 0) {
        tap_gone(nt, r < 0 ? errno : 0);
        break;
      }
      if (r < NET_HDR_LEN) continue; /* not a frame */
      if ((size_t)r >= sizeof nt->buf) { /* may have been cut: past NET_MAX_FRAME */
        nt->n.rx_dropped_oversized++;
        warn_once(nt, WARN_RX_OVERSIZED, "dropped a rx frame of %lld bytes or more", r);
        continue;
      }
      if (!rx_fix_offloads(nt, (uint32_t)r)) continue;
      nt->pending_len = (uint32_t)r;
    }
    int d = rx_deliver(nt);
    if (d <= 0) {
      /* No buffers: stop reading the TAP until the guest kicks rx (with EVENT_IDX the empty pop asked for it). On a
       * ring violation the device waits for a reset. */
      set_polling(nt, false);
      virtio_dev_signal(dev, NET_QUEUE_RX);
      return;
    }
    nt->pending_len = 0;
  }
  set_polling(nt, true); /* level-triggered: a burst that left frames in the TAP comes back at once */
  virtio_dev_signal(dev, NET_QUEUE_RX);
}

static void tap_event(void *ctx, uint32_t events) {
  struct net *nt = ctx;
  pthread_mutex_lock(&nt->dev->lock);
  if (nt->registered) {
    if (events & (EPOLLERR | EPOLLHUP))
      tap_gone(nt, EPIPE);
    else
      rx_process(nt);
  }
  pthread_mutex_unlock(&nt->dev->lock);
}

static void process_tx(struct net *nt) {
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
      warn_once(nt, WARN_TX_OVERSIZED, "dropped a %lld-byte tx frame", (long long)c->out_len - NET_HDR_LEN);
    } else {
      /* Straight from guest memory: header and frame in one writev, one frame (the TAP takes the header as its
       * vnet header: same 12-byte layout). */
      ssize_t w;
      do w = writev(nt->fd, c->iov, c->n_out);
      while (w < 0 && errno == EINTR);
      if (w < 0) {
        nt->n.tx_dropped_error++;
        warn_once(nt, WARN_TX_ERROR, "the TAP refused a tx frame (errno %lld)", errno);
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
    process_tx(nt);
  else if (qi == NET_QUEUE_RX)
    rx_process(nt); /* new rx buffers: the waiting frame first, then the TAP again */
}

/* Guest reset (§2.1.2): a frame held for the old rings is dropped; the TAP is not read until DRIVER_OK. */
static void net_reset(struct virtio_mmio_dev *dev) {
  struct net *nt = dev->impl;
  nt->pending_len = 0;
  set_polling(nt, false);
}

static void net_destroy(struct virtio_mmio_dev *dev) {
  struct net *nt = dev->impl;
  if (!nt) return;
  pthread_mutex_lock(&dev->lock);
  bool was = nt->registered;
  if (was) evloop_del(dev->env.loop, nt->fd);
  nt->registered = false;
  pthread_mutex_unlock(&dev->lock);
  if (was) evloop_barrier(dev->env.loop); /* a tap_event already picked up has finished */
  close(nt->fd);
  free(nt);
  dev->impl = NULL;
}

void virtio_net_counters(struct virtio_mmio_dev *dev, struct net_counters *out) {
  pthread_mutex_lock(&dev->lock);
  *out = ((struct net *)dev->impl)->n;
  pthread_mutex_unlock(&dev->lock);
}

/* Lock held (restore): a running device starts reading the TAP (rx buffers the guest posted before the snapshot). */
void net_resume_rx(struct virtio_mmio_dev *dev) {
  struct net *nt = dev->impl;
  if (virtio_dev_running(dev)) set_polling(nt, true);
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
  return dev;
}
