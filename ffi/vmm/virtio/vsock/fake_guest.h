// Fake guest vsock stack for native tests: fills rx like Linux 6.1 (header + 4 KiB descriptors), answers
// REQUESTs, echoes streams within the host's credit, checks that the device never exceeds the guest's credit.
#pragma once
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include "../test_driver.h"
#include "packet.h"
#include "vsock.h"

#define FG_CID 3
#define FG_RX_BUFS 96
#define FG_TX_SLOTS 96
#define FG_PAYLOAD 4096
#define FG_BUF_ALLOC (64 * 1024) /* what the fake guest advertises */
#define FG_MAX_CONNS 256
#define FG_ECHO_PORT 5000
#define FG_SLOW_PORT 5001   /* small buf_alloc, consumes nothing until told */
#define FG_SINK_PORT 5002   /* accepts and never answers data */
#define FG_FORWARD_PORT ONEBOX_VSOCK_FORWARD_PORT
#define FG_FORWARD_OK_TCP 80 /* the fake forwarder "connects" only to TCP 80, and then echoes */
#define FG_SLOW_BUF_ALLOC 8192
#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))

struct fg_conn {
  bool used;
  uint32_t port, peer_port; /* guest port, host port */
  uint32_t buf_alloc;
  uint32_t rx_cnt, fwd_cnt, tx_cnt, peer_buf_alloc, peer_fwd_cnt;
  uint8_t *buf; /* FG_BUF_ALLOC ring of received, not yet echoed bytes */
  uint32_t head, len;
  bool forwarder, fwd_ok, peer_shut_send, sent_shutdown, reset;
  char line[64];
  uint32_t line_len;
  uint64_t received_total;
};

struct fake_guest {
  struct fake_driver d;
  uint64_t rx_hdr[FG_RX_BUFS], rx_data[FG_RX_BUFS];
  int rx_by_head[VIRTQ_MAX_SIZE];
  uint64_t tx_mem[FG_TX_SLOTS];
  int tx_slot_by_head[VIRTQ_MAX_SIZE];
  bool tx_busy[FG_TX_SLOTS];
  struct fg_conn conns[FG_MAX_CONNS];
  /* observations */
  int credit_violations, requests, rsts_received, resets_sent;
  int ops[8]; /* packets received per op */
  int kicks, kicks_saved; /* notifications sent / skipped thanks to EVENT_IDX */
  struct virtio_vsock_hdr last_rst;
};

static inline void fg_post_rx(struct fake_guest *g, int i) {
  struct fd_buf b[2] = {{g->rx_hdr[i], HDR_LEN, true}, {g->rx_data[i], FG_PAYLOAD, true}};
  int head = fd_add(&g->d, VSOCK_QUEUE_RX, b, 2);
  CHECK(head >= 0);
  g->rx_by_head[head] = i;
}

static inline void fg_start(struct fake_guest *g) {
  for (int i = 0; i < FG_RX_BUFS; i++) {
    g->rx_hdr[i] = fd_alloc(&g->d, HDR_LEN, 8);
    g->rx_data[i] = fd_alloc(&g->d, FG_PAYLOAD, 8);
    fg_post_rx(g, i);
  }
  for (int i = 0; i < FG_TX_SLOTS; i++) g->tx_mem[i] = fd_alloc(&g->d, HDR_LEN + FG_PAYLOAD, 8);
  fd_kick_needed(&g->d, VSOCK_QUEUE_RX);
}

static inline void fg_reclaim_tx(struct fake_guest *g) {
  uint32_t id, len;
  while (fd_used(&g->d, VSOCK_QUEUE_TX, &id, &len)) g->tx_busy[g->tx_slot_by_head[id]] = false;
}

/* Sends one packet (header + optional payload, two descriptors like Linux 6.1); false if no tx slot. */
static inline bool fg_send(struct fake_guest *g, struct fg_conn *c, uint16_t op, uint32_t flags, const void *data,
                           uint32_t len) {
  fg_reclaim_tx(g);
  int s = -1;
  for (int i = 0; i < FG_TX_SLOTS && s < 0; i++)
    if (!g->tx_busy[i]) s = i;
  if (s < 0) return false;
  struct virtio_vsock_hdr h = {.src_cid = FG_CID, .dst_cid = VSOCK_CID_HOST, .src_port = c->port,
                               .dst_port = c->peer_port, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
                               .flags = flags, .buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt};
  memcpy(fd_ptr(&g->d, g->tx_mem[s]), &h, HDR_LEN);
  if (len) memcpy(fd_ptr(&g->d, g->tx_mem[s] + HDR_LEN), data, len);
  struct fd_buf b[2] = {{g->tx_mem[s], HDR_LEN, false}, {g->tx_mem[s] + HDR_LEN, len, false}};
  int head = fd_add(&g->d, VSOCK_QUEUE_TX, b, len ? 2 : 1);
  if (head < 0) return false;
  g->tx_busy[s] = true;
  g->tx_slot_by_head[head] = s;
  if (op == VIRTIO_VSOCK_OP_RW) c->tx_cnt += len;
  if (fd_kick_needed(&g->d, VSOCK_QUEUE_TX)) g->kicks++;
  else g->kicks_saved++;
  return true;
}

static inline struct fg_conn *fg_find(struct fake_guest *g, uint32_t port, uint32_t peer_port) {
  for (int i = 0; i < FG_MAX_CONNS; i++)
    if (g->conns[i].used && g->conns[i].port == port && g->conns[i].peer_port == peer_port) return &g->conns[i];
  return NULL;
}

static inline void fg_drop(struct fg_conn *c) {
  free(c->buf);
  memset(c, 0, sizeof *c);
}

static inline void fg_append(struct fg_conn *c, const uint8_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) c->buf[(c->head + c->len + i) % FG_BUF_ALLOC] = p[i];
  c->len += n;
}

static inline void fg_packet(struct fake_guest *g, const struct virtio_vsock_hdr *h, const uint8_t *data) {
  CHECK(h->dst_cid == FG_CID && h->src_cid == VSOCK_CID_HOST && h->type == VIRTIO_VSOCK_TYPE_STREAM);
  struct fg_conn *c = fg_find(g, h->dst_port, h->src_port);
  if (h->op < 8) g->ops[h->op]++;
  if (h->op == VIRTIO_VSOCK_OP_RST) {
    g->rsts_received++;
    g->last_rst = *h;
    if (c) fg_drop(c);
    return;
  }
  if (h->op == VIRTIO_VSOCK_OP_REQUEST) {
    g->requests++;
    struct fg_conn tmp = {.port = h->dst_port, .peer_port = h->src_port};
    bool listening = h->dst_port == FG_ECHO_PORT || h->dst_port == FG_SLOW_PORT || h->dst_port == FG_SINK_PORT ||
                     h->dst_port == FG_FORWARD_PORT;
    if (c || !listening) { /* nothing listening: refuse like Linux does */
      tmp.buf_alloc = 0;
      CHECK(fg_send(g, &tmp, VIRTIO_VSOCK_OP_RST, 0, NULL, 0));
      return;
    }
    for (int i = 0; i < FG_MAX_CONNS && !c; i++)
      if (!g->conns[i].used) c = &g->conns[i];
    CHECK(c);
    *c = tmp;
    c->used = true;
    c->buf = malloc(FG_BUF_ALLOC);
    c->buf_alloc = h->dst_port == FG_SLOW_PORT ? FG_SLOW_BUF_ALLOC : FG_BUF_ALLOC;
    c->forwarder = h->dst_port == FG_FORWARD_PORT;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0));
    return;
  }
  if (!c) return;
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  if (h->op == VIRTIO_VSOCK_OP_SHUTDOWN && (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)) c->peer_shut_send = true;
  if (h->op != VIRTIO_VSOCK_OP_RW) return;
  c->rx_cnt += h->len;
  c->received_total += h->len;
  /* The check this whole fake exists for: the device must stay within our credit (§5.10.6.3). */
  if (c->rx_cnt - c->fwd_cnt > c->buf_alloc) g->credit_violations++;
  uint32_t off = 0;
  if (c->forwarder && !c->fwd_ok) { /* onebox forwarder protocol: `TCP <port>\n` -> `OK\n` | `ERR ...\n` */
    while (off < h->len && c->line_len < sizeof c->line - 1) {
      char ch = (char)data[off++];
      c->fwd_cnt++;
      if (ch != '\n') {
        c->line[c->line_len++] = ch;
        continue;
      }
      c->line[c->line_len] = 0;
      char want[32];
      snprintf(want, sizeof want, "TCP %d", FG_FORWARD_OK_TCP);
      if (strcmp(c->line, want) == 0) {
        c->fwd_ok = true;
        CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_RW, 0, "OK\n", 3));
      } else {
        CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_RW, 0, "ERR connection refused\n", 23));
        CHECK(fg_send(g, c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND,
                      NULL, 0));
        c->sent_shutdown = true;
      }
      break;
    }
  }
  if (h->len - off <= FG_BUF_ALLOC - c->len) fg_append(c, data + off, h->len - off);
}

/* Echo what was received, within the host's credit; close once the host has shut its sending side. */
static inline void fg_echo(struct fake_guest *g) {
  for (int i = 0; i < FG_MAX_CONNS; i++) {
    struct fg_conn *c = &g->conns[i];
    if (!c->used || c->port == FG_SLOW_PORT || c->port == FG_SINK_PORT || c->sent_shutdown) continue;
    while (c->len) {
      uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
      uint32_t credit = in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
      uint32_t n = c->len < FG_PAYLOAD ? c->len : FG_PAYLOAD;
      if (n > credit) n = credit;
      if (n > FG_BUF_ALLOC - c->head) n = FG_BUF_ALLOC - c->head;
      if (!n) break;
      c->fwd_cnt += n; /* consumed: the packet below carries it back as our credit */
      if (!fg_send(g, c, VIRTIO_VSOCK_OP_RW, 0, c->buf + c->head, n)) {
        c->fwd_cnt -= n;
        break;
      }
      c->head = (c->head + n) % FG_BUF_ALLOC;
      c->len -= n;
    }
    if (c->peer_shut_send && !c->len &&
        fg_send(g, c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0))
      c->sent_shutdown = true;
  }
}

/* One round of the guest: take rx packets, re-post their buffers, echo. */
static inline int fg_poll(struct fake_guest *g) {
  uint32_t id, len;
  int n = 0;
  while (fd_used(&g->d, VSOCK_QUEUE_RX, &id, &len)) {
    CHECK(id < VIRTQ_MAX_SIZE && len >= HDR_LEN && len <= HDR_LEN + FG_PAYLOAD);
    int i = g->rx_by_head[id];
    struct virtio_vsock_hdr h;
    memcpy(&h, fd_ptr(&g->d, g->rx_hdr[i]), HDR_LEN);
    CHECK(h.len == len - HDR_LEN);
    fg_packet(g, &h, fd_ptr(&g->d, g->rx_data[i]));
    fg_post_rx(g, i);
    n++;
  }
  if (n && !fd_kick_needed(&g->d, VSOCK_QUEUE_RX)) g->kicks_saved++;
  fd_set_used_event(&g->d, VSOCK_QUEUE_RX, g->d.q[VSOCK_QUEUE_RX].used_seen); /* like virtqueue_enable_cb */
  fg_echo(g);
  fg_reclaim_tx(g);
  return n;
}

static inline double fg_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the guest for `seconds` or until *done becomes true. */
static inline void fg_run(struct fake_guest *g, double seconds, int *done) {
  double end = fg_now() + seconds;
  while (fg_now() < end && !(done && __atomic_load_n(done, __ATOMIC_ACQUIRE))) {
    if (!fg_poll(g)) usleep(200);
  }
}

/* Host-side read that keeps the guest running meanwhile: stops at `until` (if given), a full buffer, EOF
 * (*eof = true) or after `seconds`. Returns bytes read. */
static inline size_t fg_read(struct fake_guest *g, int fd, char *buf, size_t cap, const char *until, double seconds,
                             bool *eof) {
  size_t got = 0;
  double end = fg_now() + seconds;
  *eof = false;
  while (got < cap && fg_now() < end) {
    fg_poll(g);
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 1) <= 0) continue;
    ssize_t n = read(fd, buf + got, cap - got);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      *eof = true;
      break;
    }
    if (n > 0) got += (size_t)n;
    if (until && memmem(buf, got, until, strlen(until))) break;
  }
  return got;
}

/* Runs the guest until cond() holds or `seconds` pass; returns whether it held. */
#define FG_WAIT(g, cond, seconds)                                     \
  ({                                                                  \
    double end_ = fg_now() + (seconds);                               \
    while (!(cond) && fg_now() < end_)                                \
      if (!fg_poll(g)) usleep(100);                                   \
    (bool)(cond);                                                     \
  })

/* A host client of the device's hybrid vsock (or forward) socket at path. */
static inline int fg_host_connect(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, path);
  CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

/* Connections the device tracks, read under its lock (the event loop thread changes them). */
static inline uint32_t fg_device_conns(struct fake_guest *g) {
  pthread_mutex_lock(&g->d.dev->lock);
  uint32_t n = ((struct vsock *)g->d.dev->impl)->n_conns;
  pthread_mutex_unlock(&g->d.dev->lock);
  return n;
}
