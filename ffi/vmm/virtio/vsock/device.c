// virtio-vsock device (virtio v1.2 §5.10): queues, guest packet dispatch, control packets owed to the guest.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "snapshot/format.h"
#include "vsock.h"

void vsock_fill_hdr(struct vsock *vs, struct vsock_conn *c, uint16_t op, uint32_t len, uint32_t flags,
                    struct virtio_vsock_hdr *h) {
  *h = (struct virtio_vsock_hdr){
      .src_cid = VSOCK_CID_HOST,
      .dst_cid = vs->guest_cid,
      .src_port = c->host_port,
      .dst_port = c->guest_port,
      .len = len,
      .type = VIRTIO_VSOCK_TYPE_STREAM,
      .op = op,
      .flags = flags,
      .buf_alloc = VSOCK_BUF_ALLOC,
      .fwd_cnt = c->fwd_cnt,
  };
  c->fwd_cnt_sent = c->fwd_cnt; /* every packet carries our credit (§5.10.6.3) */
}

int vsock_rx_pop(struct vsock *vs) {
  int r = virtio_dev_pop(vs->dev, VSOCK_QUEUE_RX, &vs->rx_chain);
  if (r != 1) return r;
  /* §5.10.6.1: rx buffers are device-writable and must hold at least a header. */
  if (vs->rx_chain.n_out || vs->rx_chain.in_len < sizeof(struct virtio_vsock_hdr)) {
    virtio_dev_fail(vs->dev, "vsock rx buffer is not device-writable or shorter than a packet header");
    return -1;
  }
  return 1;
}

/* Puts a header-only packet into an rx buffer; false if there is no rx buffer now. */
static bool rx_send_hdr(struct vsock *vs, const struct virtio_vsock_hdr *h) {
  if (vsock_rx_pop(vs) != 1) return false;
  virtq_chain_write(&vs->rx_chain, 0, h, sizeof *h);
  virtio_dev_push(vs->dev, VSOCK_QUEUE_RX, vs->rx_chain.head, sizeof *h);
  return true;
}

void vsock_queue_rst(struct vsock *vs, const struct virtio_vsock_hdr *in) {
  if (in->op == VIRTIO_VSOCK_OP_RST) return; /* never answer a reset with a reset */
  if (vs->rst_count == VSOCK_RST_QUEUE) return; /* bounded: the guest times the connection out instead */
  struct virtio_vsock_hdr *h = &vs->rst_queue[(vs->rst_head + vs->rst_count++) % VSOCK_RST_QUEUE];
  *h = (struct virtio_vsock_hdr){.src_cid = VSOCK_CID_HOST, .dst_cid = vs->guest_cid, .src_port = in->dst_port,
                                 .dst_port = in->src_port, .type = VIRTIO_VSOCK_TYPE_STREAM,
                                 .op = VIRTIO_VSOCK_OP_RST};
  vs->pending_dirty = true;
}

/* Sends prefix bytes (hybrid leftovers after CONNECT, or the forward's `TCP <port>\n`) as RW packets. */
static bool flush_prefix(struct vsock *vs, struct vsock_conn *c) {
  while (c->prefix_off < c->prefix_len) {
    uint32_t credit = vsock_conn_credit(c);
    if (!credit) return true; /* resumes when the guest's credit update arrives */
    if (vsock_rx_pop(vs) != 1) return false;
    uint64_t room = vs->rx_chain.in_len - sizeof(struct virtio_vsock_hdr);
    uint32_t n = c->prefix_len - c->prefix_off;
    if (n > credit) n = credit;
    if (n > room) n = (uint32_t)room;
    struct virtio_vsock_hdr h;
    vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_RW, n, 0, &h);
    virtq_chain_write(&vs->rx_chain, 0, &h, sizeof h);
    virtq_chain_write(&vs->rx_chain, sizeof h, c->prefix + c->prefix_off, n);
    virtio_dev_push(vs->dev, VSOCK_QUEUE_RX, vs->rx_chain.head, (uint32_t)sizeof h + n);
    c->prefix_off += n;
    c->tx_cnt += n;
  }
  if (c->prefix_len) {
    c->prefix_len = c->prefix_off = 0;
    vsock_conn_update_events(c); /* host reads may start now */
  }
  return true;
}

/* Returns false when rx buffers ran out (the rest stays pending). */
static bool flush_conn(struct vsock *vs, struct vsock_conn *c) {
  struct virtio_vsock_hdr h;
  if (c->pending & PEND_RST) {
    vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_RST, 0, 0, &h);
    if (!rx_send_hdr(vs, &h)) return false;
    c->pending = 0;
    vsock_conn_close(c, false); /* frees c */
    return true;
  }
  if (c->pending & PEND_REQUEST) {
    if (vsock_reset_hold_active(vs)) return true; /* just restored: waits for the guest's reset (reset_hold.c) */
    vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_REQUEST, 0, 0, &h);
    if (!rx_send_hdr(vs, &h)) return false;
    c->pending &= ~PEND_REQUEST;
  }
  if (c->state == CONN_FWD_AWAIT_OK || c->state == CONN_ESTABLISHED)
    if (!flush_prefix(vs, c)) return false;
  if (c->pending & PEND_CREDIT_UPDATE) {
    vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0, &h);
    if (!rx_send_hdr(vs, &h)) return false;
    c->pending &= ~PEND_CREDIT_UPDATE;
  }
  if (c->pending & PEND_SHUTDOWN) {
    vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_SHUTDOWN, 0, c->shutdown_flags, &h);
    if (!rx_send_hdr(vs, &h)) return false;
    c->pending &= ~PEND_SHUTDOWN;
  }
  return true;
}

void vsock_flush_pending(struct vsock *vs) {
  if (vs->pending_dirty && virtio_dev_running(vs->dev)) {
    bool done = true;
    while (vs->rst_count) {
      if (!rx_send_hdr(vs, &vs->rst_queue[vs->rst_head])) {
        done = false;
        break;
      }
      vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_QUEUE;
      vs->rst_count--;
    }
    for (uint32_t i = 0; done && i < VSOCK_MAX_CONNS; i++) {
      struct vsock_conn *c = vs->slots[i].conn;
      if (!c || !(c->pending || c->prefix_off < c->prefix_len)) continue;
      if (!flush_conn(vs, c))
        done = false;
      else if (vs->slots[i].conn == c && (c->pending || c->prefix_off < c->prefix_len))
        done = false; /* waiting for the guest's credit */
    }
    vs->pending_dirty = !done;
  }
  virtio_dev_signal(vs->dev, VSOCK_QUEUE_RX);
}

static void process_tx(struct vsock *vs) {
  struct virtq_chain *ch = &vs->tx_chain;
  while (virtio_dev_pop(vs->dev, VSOCK_QUEUE_TX, ch) == 1) {
    /* §5.10.6.2: tx buffers are device-readable only. */
    if (ch->n_in) {
      virtio_dev_fail(vs->dev, "vsock tx buffer is device-writable");
      return;
    }
    struct virtio_vsock_hdr h;
    if (virtq_chain_read(ch, 0, &h, sizeof h) == sizeof h) {
      struct vsock_conn *c = NULL;
      /* Only packets from the guest's own CID to the host are ours; others are dropped (§5.10.6.4). */
      if (h.src_cid == vs->guest_cid && h.dst_cid == VSOCK_CID_HOST) {
        c = vsock_conn_find(vs, h.dst_port, h.src_port);
        if (c)
          vsock_conn_guest_packet(vs, c, &h, ch);
        else
          vsock_queue_rst(vs, &h); /* no such connection, or a guest->host REQUEST: refused */
      }
    }
    virtio_dev_push(vs->dev, VSOCK_QUEUE_TX, ch->head, 0);
  }
  virtio_dev_signal(vs->dev, VSOCK_QUEUE_TX);
}

static void vsock_notify(struct virtio_mmio_dev *dev, uint16_t qi) {
  struct vsock *vs = dev->impl;
  if (qi == VSOCK_QUEUE_TX) {
    process_tx(vs);
  } else if (qi == VSOCK_QUEUE_RX) {
    /* New rx buffers: connections that stopped reading the host for lack of them may go on. */
    for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
      struct vsock_conn *c = vs->slots[i].conn;
      if (c && c->rx_wait) {
        c->rx_wait = false;
        vsock_conn_update_events(c);
      }
    }
  }
  /* The event queue is only used for TRANSPORT_RESET after a snapshot restore (persist.c); its kick is the guest
   * saying it handled the reset, which ends the REQUEST hold (checked in flush_conn, reset_hold.c). */
  vsock_flush_pending(vs);
}

/* Guest reset (§2.1.2): every connection is gone for the guest, so the host side is closed too. */
static void vsock_reset(struct virtio_mmio_dev *dev) {
  struct vsock *vs = dev->impl;
  vsock_conn_free_all(vs);
  vsock_reset_hold_end(vs); /* a re-initialised driver has no pre-snapshot sockets */
  vs->rst_count = 0;
  vs->pending_dirty = false;
}

static void vsock_destroy(struct virtio_mmio_dev *dev) {
  struct vsock *vs = dev->impl;
  if (!vs) return;
  pthread_mutex_lock(&dev->lock);
  vsock_conn_free_all(vs);
  vsock_reset_hold_destroy(vs);
  vsock_listener_close(vs, &vs->main);
  for (int i = 0; i < vs->n_fwd; i++) vsock_listener_close(vs, &vs->fwd[i]);
  pthread_mutex_unlock(&dev->lock);
  evloop_barrier(dev->env.loop);
  free(vs);
  dev->impl = NULL;
}

static const struct virtio_device_ops vsock_ops = {
    .name = "vsock", .notify = vsock_notify, .reset = vsock_reset, .destroy = vsock_destroy,
    .state_section = SNAP_SEC_VSOCK, .state_len = sizeof(struct vsock_state), .save = vsock_save,
    .restore = vsock_restore};

struct virtio_mmio_dev *virtio_vsock_create(const struct virtio_env *env, uint64_t guest_cid, const char *uds_path,
                                            char *err, size_t errlen) {
  /* §5.10.4: CIDs 0-2 are reserved and the upper 32 bits must be 0; 0xffffffff is VMADDR_CID_ANY. */
  if (guest_cid <= VSOCK_CID_HOST || guest_cid >= 0xffffffffull) {
    snprintf(err, errlen, "virtio-vsock: guest CID %llu is reserved; use 3..4294967294",
             (unsigned long long)guest_cid);
    return NULL;
  }
  if (!env->loop) {
    snprintf(err, errlen, "virtio-vsock: needs the event loop");
    return NULL;
  }
  struct virtio_mmio_dev *dev = virtio_dev_alloc(env, VIRTIO_ID_VSOCK, 0, 3, VSOCK_QUEUE_SIZE);
  struct vsock *vs = calloc(1, sizeof *vs);
  if (!dev || !vs) {
    snprintf(err, errlen, "virtio-vsock: out of memory");
    free(vs);
    virtio_dev_free(dev);
    return NULL;
  }
  vs->dev = dev;
  vs->guest_cid = guest_cid;
  vs->next_host_port = VSOCK_HOST_PORT_FIRST;
  vs->main.fd = -1;
  vs->hold_timer = -1;
  for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) vs->slots[i].vs = vs;
  memcpy(dev->config + VIRTIO_VSOCK_CFG_GUEST_CID, &guest_cid, 8);
  dev->config_len = VIRTIO_VSOCK_CFG_LEN;
  dev->impl = vs;
  dev->ops = &vsock_ops;
  if (vsock_reset_hold_init(vs) < 0) {
    snprintf(err, errlen, "virtio-vsock: cannot create the reset hold timer: %s", strerror(errno));
    virtio_mmio_destroy(dev);
    return NULL;
  }
  pthread_mutex_lock(&dev->lock);
  int rc = vsock_listen(vs, &vs->main, uds_path, 0, err, errlen);
  pthread_mutex_unlock(&dev->lock);
  if (rc < 0) {
    virtio_mmio_destroy(dev);
    return NULL;
  }
  return dev;
}

int virtio_vsock_add_forward(struct virtio_mmio_dev *dev, uint32_t tcp_port, const char *uds_path, char *err,
                             size_t errlen) {
  if (!dev || dev->device_id != VIRTIO_ID_VSOCK) {
    snprintf(err, errlen, "virtio-vsock: forward needs a vsock device");
    return -1;
  }
  if (tcp_port == 0 || tcp_port > 65535) {
    snprintf(err, errlen, "virtio-vsock: forward port %u is not a TCP port (1..65535)", tcp_port);
    return -1;
  }
  struct vsock *vs = dev->impl;
  pthread_mutex_lock(&dev->lock);
  int rc = -1;
  for (int i = 0; i < vs->n_fwd; i++)
    if (uds_path && vs->fwd[i].fd >= 0 && vs->fwd[i].fwd_tcp_port == tcp_port &&
        !strcmp(vs->fwd[i].path, uds_path)) {
      pthread_mutex_unlock(&dev->lock);
      return 0; /* already forwarded there: asking twice is not an error */
    }
  if (vs->n_fwd == VSOCK_MAX_FORWARDS)
    snprintf(err, errlen, "virtio-vsock: at most %d forward sockets", VSOCK_MAX_FORWARDS);
  else if ((rc = vsock_listen(vs, &vs->fwd[vs->n_fwd], uds_path, tcp_port, err, errlen)) == 0)
    vs->n_fwd++;
  pthread_mutex_unlock(&dev->lock);
  return rc;
}
