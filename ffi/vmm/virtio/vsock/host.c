// virtio-vsock host side: Unix listeners (hybrid `CONNECT <port>` and forward sockets) and host fd events.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vsock.h"

#define VSOCK_ACCEPT_BURST 32
#define VSOCK_LISTEN_BACKLOG 256

static void listener_event(void *ctx, uint32_t events) {
  struct vsock_listener *l = ctx;
  struct vsock *vs = l->vs;
  pthread_mutex_lock(&vs->dev->lock);
  for (int i = 0; i < VSOCK_ACCEPT_BURST && l->fd >= 0 && !l->paused; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      /* Out of fds or memory: the pending connection stays queued and the level-triggered listener
       * would fire again at once. Stop watching it until one of our connections goes away. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        l->paused = true;
        vs->listeners_paused = true;
        evloop_mod(vs->dev->env.loop, l->fd, 0);
      }
      break;
    }
    if (!vsock_conn_new(vs, fd, l->fwd_tcp_port)) close(fd); /* VSOCK_MAX_CONNS reached */
  }
  vsock_flush_pending(vs);
  pthread_mutex_unlock(&vs->dev->lock);
}

int vsock_listen(struct vsock *vs, struct vsock_listener *l, const char *path, uint32_t fwd_tcp_port, char *err,
                 size_t errlen) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  l->vs = vs;
  l->fd = -1;
  l->paused = false;
  l->fwd_tcp_port = fwd_tcp_port;
  if (!path || !*path || strlen(path) >= sizeof addr.sun_path) {
    snprintf(err, errlen, "virtio-vsock: socket path must be 1..%zu bytes", sizeof addr.sun_path - 1);
    return -1;
  }
  strcpy(addr.sun_path, path);
  /* A socket left by an earlier run of this VM is replaced; anything else at the path is not touched. */
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, VSOCK_LISTEN_BACKLOG) < 0) {
    snprintf(err, errlen, "virtio-vsock: cannot listen on %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  int rc = evloop_add(vs->dev->env.loop, fd, EPOLLIN, listener_event, l);
  if (rc < 0) {
    snprintf(err, errlen, "virtio-vsock: cannot watch %s: %s", path, strerror(-rc));
    close(fd);
    unlink(path);
    return -1;
  }
  strcpy(l->path, path);
  l->fd = fd;
  return 0;
}

static void listener_resume(struct vsock *vs, struct vsock_listener *l) {
  if (l->fd >= 0 && l->paused) {
    l->paused = false;
    evloop_mod(vs->dev->env.loop, l->fd, EPOLLIN);
  }
}

void vsock_listeners_resume(struct vsock *vs) {
  if (!vs->listeners_paused) return;
  vs->listeners_paused = false;
  listener_resume(vs, &vs->main);
  for (int i = 0; i < vs->n_fwd; i++) listener_resume(vs, &vs->fwd[i]);
}

void vsock_listener_close(struct vsock *vs, struct vsock_listener *l) {
  if (l->fd < 0) return;
  evloop_del(vs->dev->env.loop, l->fd);
  close(l->fd);
  l->fd = -1;
  unlink(l->path);
}

void virtio_vsock_unlink_sockets(struct virtio_mmio_dev *dev) {
  struct vsock *vs = dev->impl;
  pthread_mutex_lock(&dev->lock);
  if (vs->main.fd >= 0) unlink(vs->main.path);
  for (int i = 0; i < vs->n_fwd; i++)
    if (vs->fwd[i].fd >= 0) unlink(vs->fwd[i].path);
  pthread_mutex_unlock(&dev->lock);
}

/* Parses `CONNECT <port>` (decimal, no sign, fits u32). */
static bool parse_connect(const char *s, uint32_t *port) {
  if (strncmp(s, "CONNECT ", 8) != 0) return false;
  s += 8;
  uint64_t v = 0;
  if (!*s) return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > UINT32_MAX) return false;
  }
  *port = (uint32_t)v;
  return true;
}

/* Hybrid vsock: the first line from the host names the guest port. Returns false if c was closed. */
static bool read_connect_line(struct vsock_conn *c) {
  char buf[VSOCK_LINE_MAX];
  ssize_t n = recv(c->fd, buf, VSOCK_LINE_MAX - c->line_len, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) {
    vsock_conn_close(c, false);
    return false;
  }
  char *nl = memchr(buf, '\n', (size_t)n);
  size_t take = nl ? (size_t)(nl - buf) : (size_t)n;
  memcpy(c->line + c->line_len, buf, take);
  c->line_len += (uint32_t)take;
  uint32_t port;
  if (!nl) {
    if (c->line_len + 1 < VSOCK_LINE_MAX) return true;
    vsock_conn_close(c, false); /* no newline within the line limit */
    return false;
  }
  c->line[c->line_len] = 0;
  if (!parse_connect(c->line, &port)) {
    vsock_conn_close(c, false);
    return false;
  }
  /* Bytes after the newline belong to the stream: they go to the guest first. */
  size_t rest = (size_t)n - take - 1;
  memcpy(c->prefix, nl + 1, rest);
  c->prefix_len = (uint32_t)rest;
  c->prefix_off = 0;
  c->line_len = 0;
  vsock_conn_connect(c, port);
  return true;
}

/* Host bytes -> rx buffers, within the guest's credit. Returns false if c was closed. */
static bool host_to_guest(struct vsock *vs, struct vsock_conn *c) {
  for (int i = 0; i < VSOCK_READ_BURST; i++) {
    uint32_t credit = vsock_conn_credit(c);
    if (!credit || c->state != CONN_ESTABLISHED || c->host_eof || c->guest_no_rcv || c->prefix_len) return true;
    int r = vsock_rx_pop(vs);
    if (r <= 0) {
      c->rx_wait = true; /* resumes on the next rx notify */
      return true;
    }
    struct virtq_chain *ch = &vs->rx_chain;
    uint64_t room = ch->in_len - sizeof(struct virtio_vsock_hdr);
    uint32_t cap = credit < VSOCK_MAX_PAYLOAD ? credit : VSOCK_MAX_PAYLOAD;
    if (room < cap) cap = (uint32_t)room;
    struct iovec iov[VIRTQ_MAX_SIZE];
    int n_iov = virtq_chain_in_iov(ch, sizeof(struct virtio_vsock_hdr), cap, iov, VIRTQ_MAX_SIZE);
    ssize_t n = 0;
    if (cap) {
      struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
      do n = recvmsg(c->fd, &m, MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);
    } else {
      n = -1; /* a header-only rx buffer: keep it for control packets */
      errno = EAGAIN;
      c->rx_wait = true;
    }
    if (n < 0) {
      virtq_unpop(&vs->dev->queues[VSOCK_QUEUE_RX]);
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      vsock_conn_close(c, true);
      return false;
    }
    struct virtio_vsock_hdr h;
    if (n == 0) { /* host EOF: the guest will receive no more (§5.10.6.5 SHUTDOWN, SEND) */
      c->host_eof = true;
      vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_SHUTDOWN, 0, VIRTIO_VSOCK_SHUTDOWN_SEND, &h);
      virtq_chain_write(ch, 0, &h, sizeof h);
      virtio_dev_push(vs->dev, VSOCK_QUEUE_RX, ch->head, sizeof h);
      return true;
    }
    vsock_fill_hdr(vs, c, VIRTIO_VSOCK_OP_RW, (uint32_t)n, 0, &h);
    virtq_chain_write(ch, 0, &h, sizeof h);
    virtio_dev_push(vs->dev, VSOCK_QUEUE_RX, ch->head, (uint32_t)(sizeof h + (size_t)n));
    c->tx_cnt += (uint32_t)n;
  }
  return true;
}

void vsock_host_event(void *ctx, uint32_t events) {
  struct vsock_slot *slot = ctx;
  struct vsock *vs = slot->vs;
  pthread_mutex_lock(&vs->dev->lock);
  struct vsock_conn *c = slot->conn;
  /* The connection may be gone or replaced since the event was queued: act only on syscall results. */
  if (c && c->fd >= 0) {
    bool alive = true;
    if (events & (EPOLLHUP | EPOLLERR)) c->hup = true;
    if (c->out_len && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) alive = vsock_conn_drain_out(c);
    if (alive && (c->events & EPOLLIN) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
      if (c->state == CONN_HOST_LINE)
        alive = read_connect_line(c);
      else if (virtio_dev_running(vs->dev))
        alive = host_to_guest(vs, c);
      else
        c->rx_wait = true; /* device stopped (NEEDS_RESET): stop polling until the reset drops c */
    }
    if (alive && c->host_eof && c->guest_no_send) alive = vsock_conn_drain_out(c); /* may finish */
    if (alive) vsock_conn_update_events(c);
  }
  vsock_flush_pending(vs);
  pthread_mutex_unlock(&vs->dev->lock);
}
