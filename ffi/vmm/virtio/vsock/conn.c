// virtio-vsock connections: table, guest packet state machine, credit accounting, guest->host buffering.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "vsock.h"

uint32_t vsock_conn_credit(const struct vsock_conn *c) {
  /* §5.10.6.3: the sender may have at most peer buf_alloc - (tx_cnt - peer fwd_cnt) bytes in flight.
   * Counters wrap (u32); a guest claiming more consumed than sent just gets buf_alloc. */
  uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

struct vsock_conn *vsock_conn_find(struct vsock *vs, uint32_t host_port, uint32_t guest_port) {
  for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
    struct vsock_conn *c = vs->slots[i].conn;
    if (c && c->host_port == host_port && c->guest_port == guest_port && c->state != CONN_HOST_LINE) return c;
  }
  return NULL;
}

static bool host_port_used(struct vsock *vs, uint32_t port) {
  for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
    if (vs->slots[i].conn && vs->slots[i].conn->host_port == port) return true;
  return false;
}

/* Fresh host-side port for a connection (Firecracker's hybrid vsock does the same from 1<<30). */
static uint32_t host_port_alloc(struct vsock *vs) {
  for (;;) {
    uint32_t p = vs->next_host_port++;
    if (vs->next_host_port == 0) vs->next_host_port = VSOCK_HOST_PORT_FIRST;
    if (p >= VSOCK_HOST_PORT_FIRST && !host_port_used(vs, p)) return p; /* < VSOCK_MAX_CONNS in use */
  }
}

void vsock_conn_update_events(struct vsock_conn *c) {
  if (c->fd < 0) return;
  struct vsock *vs = c->slot->vs;
  uint32_t want = 0;
  if (c->state == CONN_HOST_LINE) want |= EPOLLIN;
  if (c->state == CONN_ESTABLISHED && !c->host_eof && !c->guest_no_rcv && c->prefix_len == 0 && !c->rx_wait &&
      vsock_conn_credit(c) > 0)
    want |= EPOLLIN;
  if (c->out_len) want |= EPOLLOUT;
  /* A hung-up socket reports EPOLLHUP whatever the mask (level-triggered): while it has nothing for us
   * to do, take it out of the loop instead of spinning. */
  bool reg = !c->hup || (want & (EPOLLIN | EPOLLOUT));
  if (reg && !c->registered) {
    if (evloop_add(vs->dev->env.loop, c->fd, want, vsock_host_event, c->slot) == 0) c->registered = true;
    c->events = want;
  } else if (!reg && c->registered) {
    evloop_del(vs->dev->env.loop, c->fd);
    c->registered = false;
  } else if (reg && want != c->events) {
    evloop_mod(vs->dev->env.loop, c->fd, want);
    c->events = want;
  }
}

struct vsock_conn *vsock_conn_new(struct vsock *vs, int fd, uint32_t fwd_tcp_port) {
  if (vs->n_conns == VSOCK_MAX_CONNS) return NULL;
  struct vsock_slot *slot = NULL;
  for (uint32_t i = 0; i < VSOCK_MAX_CONNS && !slot; i++)
    if (!vs->slots[i].conn) slot = &vs->slots[i];
  struct vsock_conn *c = calloc(1, sizeof *c);
  if (!slot || !c) {
    free(c);
    return NULL;
  }
  c->slot = slot;
  c->fd = fd;
  c->fwd_tcp_port = fwd_tcp_port;
  c->state = CONN_HOST_LINE;
  slot->conn = c;
  vs->n_conns++;
  if (fwd_tcp_port) vsock_conn_connect(c, ONEBOX_VSOCK_FORWARD_PORT);
  vsock_conn_update_events(c);
  if (!c->registered) { /* could not watch the fd: give it back */
    c->fd = -1;
    slot->conn = NULL;
    vs->n_conns--;
    free(c);
    return NULL;
  }
  return c;
}

void vsock_conn_connect(struct vsock_conn *c, uint32_t guest_port) {
  struct vsock *vs = c->slot->vs;
  c->guest_port = guest_port;
  c->host_port = host_port_alloc(vs);
  c->state = CONN_CONNECTING;
  c->pending |= PEND_REQUEST;
  vs->pending_dirty = true;
}

static void close_fd(struct vsock_conn *c) {
  if (c->fd < 0) return;
  if (c->registered) evloop_del(c->slot->vs->dev->env.loop, c->fd);
  close(c->fd);
  c->fd = -1;
  c->registered = false;
  vsock_listeners_resume(c->slot->vs);
  free(c->out);
  c->out = NULL;
  c->out_len = 0;
}

void vsock_conn_close(struct vsock_conn *c, bool send_rst) {
  struct vsock *vs = c->slot->vs;
  close_fd(c);
  /* A host connection the guest never heard of (still reading CONNECT) needs no RST. */
  if (send_rst && c->state != CONN_HOST_LINE && c->state != CONN_CLOSED) {
    c->state = CONN_CLOSED;
    c->pending = PEND_RST;
    c->prefix_len = c->prefix_off = 0;
    vs->pending_dirty = true;
    return;
  }
  c->slot->conn = NULL;
  vs->n_conns--;
  free(c);
}

void vsock_conn_free_all(struct vsock *vs) {
  for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
    if (vs->slots[i].conn) vsock_conn_close(vs->slots[i].conn, false);
}

static void maybe_credit_update(struct vsock_conn *c) {
  if (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_CREDIT_THRESHOLD) {
    c->pending |= PEND_CREDIT_UPDATE;
    c->slot->vs->pending_dirty = true;
  }
}

/* Closes once both directions are finished: the guest sent SHUTDOWN(SEND) and everything it sent reached
 * the host, and either the host hit EOF or the guest will not receive any more. The guest gets an RST, the
 * way a Linux host closes a finished vsock stream. Returns false if c was closed. */
static bool finish_if_done(struct vsock_conn *c) {
  if (c->state != CONN_ESTABLISHED || !c->guest_no_send || c->out_len) return true;
  if (!c->host_shut_wr && c->fd >= 0) {
    shutdown(c->fd, SHUT_WR); /* the host reads EOF */
    c->host_shut_wr = true;
  }
  if (c->host_eof || c->guest_no_rcv) {
    vsock_conn_close(c, true);
    return false;
  }
  return true;
}

/* Moves buffered guest bytes to the host. Returns false if c was closed (error or finished). */
bool vsock_conn_drain_out(struct vsock_conn *c) {
  while (c->out_len) {
    uint32_t first = VSOCK_BUF_ALLOC - c->out_head;
    struct iovec iov[2] = {{c->out + c->out_head, c->out_len < first ? c->out_len : first},
                           {c->out, c->out_len > first ? c->out_len - first : 0}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1};
    ssize_t n = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      vsock_conn_close(c, true);
      return false;
    }
    c->out_head = (c->out_head + (uint32_t)n) % VSOCK_BUF_ALLOC;
    c->out_len -= (uint32_t)n;
    c->fwd_cnt += (uint32_t)n;
  }
  if (!c->out_len) { /* give the memory back while the host keeps up */
    free(c->out);
    c->out = NULL;
    c->out_head = 0;
  }
  maybe_credit_update(c);
  return finish_if_done(c);
}

/* Guest payload for the host: written straight through if the host keeps up, else buffered (bounded by
 * the buf_alloc we advertised, so a guest that honours credit never overflows it). */
static bool to_host(struct vsock_conn *c, const struct virtq_chain *ch, uint64_t off, uint32_t len) {
  if (c->guest_no_send || c->fd < 0 || c->host_shut_wr) { /* nothing can go there any more: drop, */
    c->fwd_cnt += len;                                        /* but keep the credit flowing */
    return true;
  }
  if (c->out_len + (uint64_t)len > VSOCK_BUF_ALLOC) {
    fprintf(stderr, "virtio-vsock: guest port %u overran its credit; resetting the connection\n", c->guest_port);
    vsock_conn_close(c, true);
    return false;
  }
  uint32_t sent = 0;
  if (!c->out_len) {
    struct iovec iov[VIRTQ_MAX_SIZE];
    int n_iov = virtq_chain_out_iov(ch, off, len, iov, VIRTQ_MAX_SIZE);
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    ssize_t n;
    do n = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      vsock_conn_close(c, true); /* host went away (EPIPE, ECONNRESET) */
      return false;
    }
    if (n > 0) sent = (uint32_t)n;
    c->fwd_cnt += sent;
  }
  if (sent < len) {
    if (!c->out && !(c->out = malloc(VSOCK_BUF_ALLOC))) {
      vsock_conn_close(c, true);
      return false;
    }
    uint32_t rest = len - sent, tail = (c->out_head + c->out_len) % VSOCK_BUF_ALLOC;
    uint32_t first = VSOCK_BUF_ALLOC - tail < rest ? VSOCK_BUF_ALLOC - tail : rest;
    virtq_chain_read(ch, off + sent, c->out + tail, first);
    virtq_chain_read(ch, off + sent + first, c->out, rest - first);
    c->out_len += rest;
  }
  maybe_credit_update(c);
  return true;
}

/* Forward connections: consume the guest forwarder's reply line; `OK` establishes, anything else closes. */
static bool forward_reply(struct vsock_conn *c, const struct virtq_chain *ch, uint64_t *off, uint32_t *len) {
  while (*len && c->state == CONN_FWD_AWAIT_OK) {
    char ch1;
    virtq_chain_read(ch, *off, &ch1, 1);
    (*off)++;
    (*len)--;
    c->fwd_cnt++; /* consumed by us */
    if (ch1 != '\n') {
      if (c->line_len + 1 >= VSOCK_LINE_MAX) break;
      c->line[c->line_len++] = ch1;
      continue;
    }
    c->line[c->line_len] = 0;
    if (strcmp(c->line, "OK") != 0) break; /* `ERR <message>`: the host connection closes without data */
    c->state = CONN_ESTABLISHED;
    c->line_len = 0;
    return true;
  }
  if (c->state == CONN_FWD_AWAIT_OK && (*len || c->line_len + 1 >= VSOCK_LINE_MAX)) {
    vsock_conn_close(c, true);
    return false;
  }
  return true;
}

static bool on_response(struct vsock *vs, struct vsock_conn *c) {
  if (c->fwd_tcp_port) {
    c->prefix_len = (uint32_t)snprintf((char *)c->prefix, sizeof c->prefix, "TCP %u\n", c->fwd_tcp_port);
    c->prefix_off = 0;
    c->state = CONN_FWD_AWAIT_OK;
    vs->pending_dirty = true;
    return true;
  }
  char ok[32];
  int n = snprintf(ok, sizeof ok, "OK %u\n", c->host_port);
  /* A fresh socket always has room for a line this short; if not, the host is gone. */
  if (send(c->fd, ok, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n) {
    vsock_conn_close(c, true);
    return false;
  }
  c->state = CONN_ESTABLISHED;
  if (c->prefix_len) vs->pending_dirty = true; /* bytes the host sent right after its CONNECT line */
  return true;
}

void vsock_conn_guest_packet(struct vsock *vs, struct vsock_conn *c, const struct virtio_vsock_hdr *h,
                             const struct virtq_chain *ch) {
  if (c->state == CONN_CLOSED) return; /* an RST is on its way */
  if (h->type != VIRTIO_VSOCK_TYPE_STREAM) {
    vsock_conn_close(c, true);
    return;
  }
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  switch (h->op) {
  case VIRTIO_VSOCK_OP_RESPONSE:
    if (c->state != CONN_CONNECTING || (c->pending & PEND_REQUEST)) {
      vsock_conn_close(c, true);
      return;
    }
    if (!on_response(vs, c)) return;
    break;
  case VIRTIO_VSOCK_OP_RW: {
    uint64_t off = sizeof *h;
    uint32_t len = h->len;
    /* The header's len is guest-controlled: it must match what the chain really holds. */
    if (c->state < CONN_FWD_AWAIT_OK || (uint64_t)len > ch->out_len - off) {
      vsock_conn_close(c, true);
      return;
    }
    c->rx_cnt += len;
    if (c->state == CONN_FWD_AWAIT_OK && !forward_reply(c, ch, &off, &len)) return;
    if (len && !to_host(c, ch, off, len)) return;
    break;
  }
  case VIRTIO_VSOCK_OP_SHUTDOWN:
    if (h->flags & VIRTIO_VSOCK_SHUTDOWN_RCV) c->guest_no_rcv = true;
    if (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND) c->guest_no_send = true;
    if (c->state != CONN_ESTABLISHED) { /* shut before the stream was up: nothing to finish */
      vsock_conn_close(c, true);
      return;
    }
    if (!finish_if_done(c)) return;
    break;
  case VIRTIO_VSOCK_OP_RST:
    vsock_conn_close(c, false); /* refused (nothing listening) or reset by the guest */
    return;
  case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
    break; /* credit taken from the header above */
  case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
    c->pending |= PEND_CREDIT_UPDATE;
    vs->pending_dirty = true;
    break;
  default: /* REQUEST on a live connection, INVALID, unknown */
    vsock_conn_close(c, true);
    return;
  }
  vsock_conn_update_events(c);
}
