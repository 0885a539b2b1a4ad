// virtio-net rx (virtio v1.2 §5.1.6.3-4): frames from the TAP into the guest's rx buffers, one frame per read. A frame
// is read straight into the buffers when the driver took MRG_RXBUF and the offloads (no copy in the device); otherwise
// into the device's buffer and copied (offload fallbacks, big-packets mode, a ring short of buffers).
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "net.h"

/* The largest read: header + NET_MAX_FRAME (a read that fills it may have been cut: dropped as oversized). */
#define RX_READ_MAX (NET_HDR_LEN + NET_MAX_FRAME)

/* RFC 1071 sum of p[0..len), not folded. */
static uint64_t csum_add(const uint8_t *p, size_t len, uint64_t sum) {
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)p[0] << 8 | p[1];
  if (len) sum += (uint32_t)p[0] << 8;
  return sum;
}

/* A GSO type the driver can take (TUN_F_TSO_ECN is not set, so the ECN bit is only informative). */
static bool gso_accepted(const struct virtio_mmio_dev *dev, uint8_t gso_type) {
  uint8_t gso = gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
  return gso == VIRTIO_NET_HDR_GSO_NONE || (gso == VIRTIO_NET_HDR_GSO_TCPV4 && net_has(dev, VIRTIO_NET_F_GUEST_TSO4)) ||
         (gso == VIRTIO_NET_HDR_GSO_TCPV6 && net_has(dev, VIRTIO_NET_F_GUEST_TSO6));
}

static void drop_offload(struct net *nt, uint8_t gso_type) {
  nt->n.rx_dropped_offload++;
  net_warn_once(nt, NET_WARN_RX_OFFLOAD, "dropped a GSO frame of type %lld the driver did not accept", gso_type);
}

/* What a driver that did not accept an offload cannot take: the checksum is filled in here (as the kernel's
 * skb_checksum_help does), a GSO frame it cannot take is dropped. false = drop. */
static bool rx_fix_offloads(struct net *nt, uint32_t len) {
  struct virtio_mmio_dev *dev = nt->dev;
  struct virtio_net_hdr_v1 h;
  memcpy(&h, nt->buf, sizeof h);
  if (!gso_accepted(dev, h.gso_type)) {
    drop_offload(nt, h.gso_type);
    return false;
  }
  if (!net_has(dev, VIRTIO_NET_F_GUEST_CSUM)) {
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

/* Puts the pending frame (in nt->buf) into rx buffers: one chain, or with MRG_RXBUF as many as it takes (§5.1.6.4).
 * 1 = delivered, 0 = not enough buffers yet (nothing consumed), 2 = dropped (no buffers the driver could post would
 * hold it), -1 = ring violation (NEEDS_RESET). */
static int rx_deliver(struct net *nt) {
  struct virtio_mmio_dev *dev = nt->dev;
  struct virtq *q = &dev->queues[NET_QUEUE_RX];
  bool mrg = net_has(dev, VIRTIO_NET_F_MRG_RXBUF);
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
  nt->n.rx_bounced++;
  return 1;
drop:
  for (uint16_t i = 0; i < n; i++) virtq_unpop(q);
  nt->n.rx_dropped_oversized++;
  net_warn_once(nt, NET_WARN_RX_OVERSIZED, "dropped a %lld-byte rx frame larger than the driver's rx buffers", total);
  return 2;
}

/* Copies len bytes between buf and the iovec list at byte offset off (to_iov: into the list). */
static void iov_copy(const struct iovec *v, uint32_t n, size_t off, void *buf, size_t len, bool to_iov) {
  uint8_t *b = buf;
  for (uint32_t i = 0; i < n && len; i++) {
    if (off >= v[i].iov_len) {
      off -= v[i].iov_len;
      continue;
    }
    size_t k = v[i].iov_len - off < len ? v[i].iov_len - off : len;
    if (to_iov) memcpy((uint8_t *)v[i].iov_base + off, b, k);
    else memcpy(b, (uint8_t *)v[i].iov_base + off, k);
    b += k;
    len -= k;
    off = 0;
  }
}

/* Reading straight into guest buffers needs nothing of the frame changed but num_buffers: mergeable buffers (a frame
 * spans as many as it fills) and every offload the TAP may hand over accepted (no checksum to fill in). */
static bool rx_direct_ok(const struct virtio_mmio_dev *dev) {
  return net_has(dev, VIRTIO_NET_F_MRG_RXBUF) && net_has(dev, VIRTIO_NET_F_GUEST_CSUM) &&
         net_has(dev, VIRTIO_NET_F_GUEST_TSO4) && net_has(dev, VIRTIO_NET_F_GUEST_TSO6);
}

/* Gives every reserved chain back to the ring (they were popped last, in order: unpopped from the end). */
static void rx_release(struct net *nt) {
  struct virtq *q = &nt->dev->queues[NET_QUEUE_RX];
  for (uint16_t i = 0; i < nt->rsv.n; i++) virtq_unpop(q);
  nt->rsv.n = 0;
  nt->rsv.niov = 0;
  nt->rsv.bytes = 0;
}

/* Pops rx chains until they hold the largest frame. 1 = they do, 0 = the ring has too few (or too many pieces for
 * one readv), -1 = ring violation (NEEDS_RESET). */
static int rx_reserve(struct net *nt) {
  struct virtio_mmio_dev *dev = nt->dev;
  struct net_rx_reserve *r = &nt->rsv;
  struct virtq_chain *c = &nt->chain;
  while (r->bytes < RX_READ_MAX) {
    if (r->n >= NET_QUEUE_SIZE) return 0;
    int p = virtio_dev_pop(dev, NET_QUEUE_RX, c);
    if (p <= 0) return p;
    /* §5.1.6.3.1: device-writable only; with MRG_RXBUF every buffer holds at least the header. */
    if (c->n_out || c->in_len < NET_HDR_LEN) {
      virtio_dev_fail(dev, "net rx buffer is not device-writable or shorter than the header");
      return -1;
    }
    if (r->niov + c->n_in > NET_RX_IOV_MAX) {
      virtq_unpop(&dev->queues[NET_QUEUE_RX]);
      return 0;
    }
    memcpy(r->iov + r->niov, c->iov, c->n_in * sizeof *c->iov); /* writable only: n_out is 0 */
    r->head[r->n] = c->head;
    r->chain_niov[r->n] = c->n_in;
    r->chain_len[r->n] = c->in_len > RX_READ_MAX ? RX_READ_MAX : (uint32_t)c->in_len;
    r->niov += c->n_in;
    r->bytes += r->chain_len[r->n];
    r->n++;
  }
  return 1;
}

/* The first `len` bytes of the reserve went to one frame: push the chains it filled, keep the rest reserved. */
static void rx_consume(struct net *nt, uint32_t len) {
  struct net_rx_reserve *r = &nt->rsv;
  uint16_t used = 0;
  uint32_t iovs = 0;
  for (uint32_t left = len; left; used++) {
    uint32_t take = r->chain_len[used] < left ? r->chain_len[used] : left;
    virtio_dev_push(nt->dev, NET_QUEUE_RX, r->head[used], take);
    left -= take;
    iovs += r->chain_niov[used];
    r->bytes -= r->chain_len[used];
  }
  r->n -= used;
  r->niov -= iovs;
  memmove(r->head, r->head + used, r->n * sizeof *r->head);
  memmove(r->chain_niov, r->chain_niov + used, r->n * sizeof *r->chain_niov);
  memmove(r->chain_len, r->chain_len + used, r->n * sizeof *r->chain_len);
  memmove(r->iov, r->iov + iovs, r->niov * sizeof *r->iov);
}

/* Reads one frame straight into reserved rx buffers. 1 = a frame was taken (delivered or dropped), 0 = the TAP is
 * empty or gone, 2 = too few buffers for a read of any frame (the caller reads into its own buffer and waits),
 * -1 = ring violation. */
static int rx_read_direct(struct net *nt) {
  int rc = rx_reserve(nt);
  if (rc <= 0) {
    rx_release(nt);
    return rc < 0 ? -1 : 2;
  }
  struct net_rx_reserve *r = &nt->rsv;
  /* The read is capped at RX_READ_MAX: the pieces that reach it, the last one cut there (restored after). */
  uint32_t k = 0;
  size_t sum = 0;
  while (sum + r->iov[k].iov_len < RX_READ_MAX) sum += r->iov[k++].iov_len;
  size_t last_len = r->iov[k].iov_len;
  r->iov[k].iov_len = RX_READ_MAX - sum;
  ssize_t got;
  do got = readv(nt->fd, r->iov, (int)k + 1);
  while (got < 0 && errno == EINTR);
  int err = errno;
  r->iov[k].iov_len = last_len;
  if (got < 0 && (err == EAGAIN || err == EWOULDBLOCK)) return 0;
  if (got <= 0) {
    net_tap_gone(nt, got < 0 ? err : 0);
    return 0;
  }
  if (got < NET_HDR_LEN) return 1; /* not a frame; the buffers stay reserved, nothing of them is used */
  if (got >= RX_READ_MAX) {        /* may have been cut: past NET_MAX_FRAME */
    nt->n.rx_dropped_oversized++;
    net_warn_once(nt, NET_WARN_RX_OVERSIZED, "dropped a rx frame of %lld bytes or more", got);
    return 1;
  }
  struct virtio_net_hdr_v1 h;
  iov_copy(r->iov, r->niov, 0, &h, sizeof h, false);
  if (!gso_accepted(nt->dev, h.gso_type)) {
    drop_offload(nt, h.gso_type);
    return 1;
  }
  /* §5.1.6.4: num_buffers = the chains this frame fills (each at least a header long, so < 2^16 here). */
  uint16_t count = 0;
  for (uint32_t left = (uint32_t)got; left; count++) left -= r->chain_len[count] < left ? r->chain_len[count] : left;
  uint8_t le[2] = {(uint8_t)count, (uint8_t)(count >> 8)};
  iov_copy(r->iov, r->niov, offsetof(struct virtio_net_hdr_v1, num_buffers), le, sizeof le, true);
  rx_consume(nt, (uint32_t)got);
  nt->n.rx_frames++;
  nt->n.rx_bytes += (uint64_t)got - NET_HDR_LEN;
  return 1;
}

/* Reads one frame into nt->buf (bounced). 1 = a frame is pending, 0 = the TAP is empty or gone, 2 = a read that was
 * no frame for this driver (dropped; read on). */
static int rx_read_bounce(struct net *nt) {
  ssize_t r;
  do r = read(nt->fd, nt->buf, sizeof nt->buf);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (r <= 0) {
    net_tap_gone(nt, r < 0 ? errno : 0);
    return 0;
  }
  if (r < NET_HDR_LEN) return 2; /* not a frame */
  if ((size_t)r >= sizeof nt->buf) { /* may have been cut: past NET_MAX_FRAME */
    nt->n.rx_dropped_oversized++;
    net_warn_once(nt, NET_WARN_RX_OVERSIZED, "dropped a rx frame of %lld bytes or more", r);
    return 2;
  }
  if (!rx_fix_offloads(nt, (uint32_t)r)) return 2;
  nt->pending_len = (uint32_t)r;
  return 1;
}

/* Moves frames from the TAP into the guest while it has buffers, at most a burst, then makes one interrupt decision
 * for all of them (§2.7.10); lock held. */
void net_rx_process(struct net *nt) {
  struct virtio_mmio_dev *dev = nt->dev;
  if (!virtio_dev_running(dev) || !dev->queues[NET_QUEUE_RX].ready) {
    net_set_polling(nt, false); /* the guest's DRIVER_OK (or queue setup and kick) starts it again */
    return;
  }
  bool direct = rx_direct_ok(dev);
  for (int i = 0; i < NET_RX_BURST && nt->registered; i++) {
    if (direct && !nt->pending_len) {
      int d = rx_read_direct(nt);
      if (d == 1) continue;
      if (d == 0) break;
      if (d < 0) goto wait; /* NEEDS_RESET */
      /* d == 2: the ring is short of buffers for a frame of any size; this one may still fit (or wait). */
    }
    if (!nt->pending_len) {
      int b = rx_read_bounce(nt);
      if (b == 0) break;
      if (b == 2) continue;
    }
    int d = rx_deliver(nt);
    if (d <= 0) goto wait;
    nt->pending_len = 0;
  }
  rx_release(nt);
  net_set_polling(nt, true); /* level-triggered: a burst that left frames in the TAP comes back at once */
  virtio_dev_signal(dev, NET_QUEUE_RX);
  return;
wait:
  /* No buffers: stop reading the TAP until the guest kicks rx (with EVENT_IDX the empty pop asked for it). On a ring
   * violation the device waits for a reset. */
  rx_release(nt);
  net_set_polling(nt, false);
  virtio_dev_signal(dev, NET_QUEUE_RX);
}
