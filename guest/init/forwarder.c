// The vsock forwarder: `TCP <port>\n` -> connect 127.0.0.1:<port> -> `OK\n` -> bytes both ways.
#include "forwarder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sockets.h"

/* A host that connects and never sends its request line must not pin a thread forever. */
#define FWD_REQUEST_TIMEOUT_MS 10000
#define FWD_BUF 16384

static atomic_int fwd_active;

int forwarder_active(void) { return atomic_load(&fwd_active); }

int fwd_line_parse(const char *line, size_t len, uint16_t *port) {
  if (len < 5 || len > FWD_LINE_MAX || memcmp(line, "TCP ", 4) != 0) return -1;
  const char *d = line + 4;
  size_t n = len - 4;
  if (n > 5 || d[0] == '0') return -1;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (d[i] < '0' || d[i] > '9') return -1;
    v = v * 10 + (unsigned)(d[i] - '0');
  }
  if (v < 1 || v > 65535) return -1;
  *port = (uint16_t)v;
  return 0;
}

int fwd_dial_tcp_loopback(uint16_t port, char *err, size_t errcap) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errcap, "socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    if (errno == EINTR) continue;
    snprintf(err, errcap, "connect 127.0.0.1:%u: %s", port, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

struct fwd_pair {
  int a, b;           /* a = host side (vsock), b = guest TCP */
  atomic_int refs;    /* the two pump threads; the last one out closes both */
};

static void pair_release(struct fwd_pair *p) {
  if (atomic_fetch_sub(&p->refs, 1) == 1) {
    close(p->a);
    close(p->b);
    free(p);
    atomic_fetch_sub(&fwd_active, 1);
  }
}

/* pump copies src -> dst until EOF (then half-closes dst) or an error (then tears both down so
 * the opposite pump wakes up too). At most one buffer is in flight: no unbounded buffering. */
static void pump(int src, int dst) {
  char buf[FWD_BUF];
  for (;;) {
    ssize_t n = read(src, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      shutdown(dst, SHUT_WR);
      return;
    }
    if (n < 0 || sock_write_all(dst, buf, (size_t)n) < 0) {
      shutdown(src, SHUT_RDWR);
      shutdown(dst, SHUT_RDWR);
      return;
    }
  }
}

static void *pump_back(void *arg) {
  struct fwd_pair *p = arg;
  pump(p->b, p->a);
  pair_release(p);
  return NULL;
}

struct fwd_conn {
  int fd;
  fwd_dial_fn dial;
};

static void reply_err(int fd, const char *why) {
  char line[160];
  int n = snprintf(line, sizeof line, "ERR %s\n", why);
  if (n > (int)sizeof line - 1) { n = (int)sizeof line - 1; line[n - 1] = '\n'; }
  sock_write_all(fd, line, (size_t)n);
}

static void *conn_main(void *arg) {
  struct fwd_conn c = *(struct fwd_conn *)arg;
  free(arg);
  char line[FWD_LINE_MAX + 2];
  uint16_t port;
  sock_set_rcvtimeo(c.fd, FWD_REQUEST_TIMEOUT_MS);
  long n = sock_read_line(c.fd, line, sizeof line);
  if (n < 0 || fwd_line_parse(line, (size_t)n, &port) < 0) {
    if (n >= 0) reply_err(c.fd, "bad request: expected TCP <port>");
    else reply_err(c.fd, "bad request: no line of at most 32 bytes");
    goto out_close;
  }
  char err[128];
  int t = c.dial(port, err, sizeof err);
  if (t < 0) {
    reply_err(c.fd, err);
    goto out_close;
  }
  sock_set_rcvtimeo(c.fd, 0);
  if (sock_write_all(c.fd, "OK\n", 3) < 0) {
    close(t);
    goto out_close;
  }
  struct fwd_pair *p = malloc(sizeof *p);
  if (!p) {
    close(t);
    goto out_close;
  }
  p->a = c.fd;
  p->b = t;
  atomic_init(&p->refs, 2);
  if (sock_spawn(pump_back, p) < 0) {
    log_errno("forwarder: thread");
    close(t);
    free(p);
    goto out_close;
  }
  pump(p->a, p->b);
  pair_release(p);
  return NULL;
out_close:
  close(c.fd);
  atomic_fetch_sub(&fwd_active, 1);
  return NULL;
}

void forwarder_run(int listen_fd, fwd_dial_fn dial) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
        usleep(10000);
        continue;
      }
      log_errno("forwarder: accept");
      return;
    }
    if (atomic_fetch_add(&fwd_active, 1) >= FWD_MAX_CONNS) {
      reply_err(fd, "busy: too many connections");
      close(fd);
      atomic_fetch_sub(&fwd_active, 1);
      continue;
    }
    struct fwd_conn *c = malloc(sizeof *c);
    if (!c || (c->fd = fd, c->dial = dial, sock_spawn(conn_main, c) < 0)) {
      free(c);
      close(fd);
      atomic_fetch_sub(&fwd_active, 1);
    }
  }
}
