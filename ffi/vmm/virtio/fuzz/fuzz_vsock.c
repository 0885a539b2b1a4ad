// Virtio ring fuzzer adapter for virtio-vsock: rx/event buffers, tx packets with any header, host-side clients.
#include <fcntl.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "../vsock/packet.h"
#include "../vsock/vsock.h"
#include "fuzz.h"

#define FZ_CID 3
#define MAX_HOST_FDS 8
#define MAX_KNOWN 16
#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))

struct vsock_fz {
  char dir[64], sock[108], fwd[108];
  int fds[MAX_HOST_FDS];
  int n_fds;
  struct { uint32_t host_port, guest_port; bool answered; } known[MAX_KNOWN]; /* the device's REQUESTs */
  int n_known;
};

/* Coverage across device instances (the per-device state above is freed at teardown). */
static uint64_t rx_by_op[8], rx_other, tx_to_known, host_connects;

static struct vsock_fz *st(struct fz *f) { return f->adapter_state; }

static struct virtio_mmio_dev *vsock_create(struct fz *f, char *err, size_t errlen) {
  if (!f->adapter_state) {
    struct vsock_fz *s = calloc(1, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/virtio-fuzz.XXXXXX");
    if (!mkdtemp(s->dir)) {
      snprintf(err, errlen, "cannot create a directory in /tmp");
      return NULL;
    }
    snprintf(s->sock, sizeof s->sock, "%s/v.sock", s->dir);
    snprintf(s->fwd, sizeof s->fwd, "%s/v.sock.tcp-80", s->dir);
    f->adapter_state = s;
  }
  struct vsock_fz *s = st(f);
  s->n_fds = s->n_known = 0;
  struct virtio_mmio_dev *dev = virtio_vsock_create(&f->d.env, FZ_CID, s->sock, err, errlen);
  if (dev && virtio_vsock_add_forward(dev, 80, s->fwd, err, errlen) < 0) {
    virtio_mmio_destroy(dev);
    return NULL;
  }
  return dev;
}

static void vsock_teardown(struct fz *f) {
  struct vsock_fz *s = st(f);
  for (int i = 0; i < s->n_fds; i++) close(s->fds[i]);
  s->n_fds = s->n_known = 0;
  rmdir(s->dir); /* empty once the device removed its sockets; re-created by the next vsock_create */
  free(s);
  f->adapter_state = NULL;
}

static void vsock_on_reset(struct fz *f) {
  if (f->adapter_state) st(f)->n_known = 0; /* a reset closes every connection */
}

static int build_rx(struct fz *f, struct fz_buf *bufs) {
  if (fz_chance(&f->rng, 60)) {
    uint32_t len = fz_below(&f->rng, 4097);
    bufs[0] = (struct fz_buf){fz_alloc(f, HDR_LEN, 8), HDR_LEN, true};
    bufs[1] = (struct fz_buf){fz_alloc(f, len, 8), len, true};
    return 2;
  }
  uint32_t len = fz_chance(&f->rng, 10) ? fz_below(&f->rng, HDR_LEN) : HDR_LEN + fz_below(&f->rng, 200);
  bufs[0] = (struct fz_buf){fz_alloc(f, len, 8), len, !fz_chance(&f->rng, 3)};
  return 1;
}

static int build_tx(struct fz *f, struct fz_buf *bufs) {
  struct vsock_fz *s = st(f);
  static const uint16_t ops[] = {VIRTIO_VSOCK_OP_RESPONSE, VIRTIO_VSOCK_OP_RW, VIRTIO_VSOCK_OP_RW, VIRTIO_VSOCK_OP_RW,
                                 VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_CREDIT_UPDATE,
                                 VIRTIO_VSOCK_OP_CREDIT_REQUEST, VIRTIO_VSOCK_OP_REQUEST, VIRTIO_VSOCK_OP_INVALID};
  uint32_t payload = fz_chance(&f->rng, 50) ? fz_below(&f->rng, 300) : 0;
  if (fz_chance(&f->rng, 3)) payload = 60000 + fz_below(&f->rng, 10000);
  struct virtio_vsock_hdr h = {
      .src_cid = fz_chance(&f->rng, 90) ? FZ_CID : fz_next(&f->rng),
      .dst_cid = fz_chance(&f->rng, 90) ? VSOCK_CID_HOST : fz_next(&f->rng),
      .src_port = (uint32_t)fz_next(&f->rng),
      .dst_port = (uint32_t)fz_next(&f->rng),
      .len = fz_chance(&f->rng, 85) ? payload : (uint32_t)fz_next(&f->rng),
      .type = fz_chance(&f->rng, 90) ? VIRTIO_VSOCK_TYPE_STREAM : (uint16_t)fz_next(&f->rng),
      .op = fz_chance(&f->rng, 95) ? ops[fz_below(&f->rng, sizeof ops / sizeof ops[0])] : (uint16_t)fz_next(&f->rng),
      .flags = (uint32_t)fz_below(&f->rng, 4),
      .buf_alloc = fz_chance(&f->rng, 80) ? 65536 : (uint32_t)fz_next(&f->rng),
      .fwd_cnt = fz_chance(&f->rng, 50) ? 0 : (uint32_t)fz_next(&f->rng),
  };
  if (s->n_known && fz_chance(&f->rng, 80)) {
    int k = (int)fz_below(&f->rng, (uint32_t)s->n_known);
    h.src_port = s->known[k].guest_port;
    h.dst_port = s->known[k].host_port;
    tx_to_known++;
    if (!s->known[k].answered && fz_chance(&f->rng, 80)) { /* mostly accept, so the stream gets going */
      h.op = VIRTIO_VSOCK_OP_RESPONSE;
      h.len = payload = 0;
      s->known[k].answered = true;
    }
  }
  int n = 0;
  if (fz_chance(&f->rng, 10)) { /* header split over two descriptors */
    uint32_t cut = 1 + fz_below(&f->rng, HDR_LEN - 1);
    uint64_t a = fz_alloc(f, cut, 1), b = fz_alloc(f, HDR_LEN - cut, 1);
    fz_put(f, a, &h, cut);
    fz_put(f, b, (uint8_t *)&h + cut, HDR_LEN - cut);
    bufs[n++] = (struct fz_buf){a, cut, false};
    bufs[n++] = (struct fz_buf){b, HDR_LEN - cut, false};
  } else {
    uint64_t a = fz_alloc(f, HDR_LEN, 8);
    fz_put(f, a, &h, HDR_LEN);
    bufs[n++] = (struct fz_buf){a, fz_chance(&f->rng, 3) ? fz_below(&f->rng, HDR_LEN) : HDR_LEN, false};
  }
  if (payload) {
    uint64_t p = fz_alloc(f, payload, 8);
    if (h.op == VIRTIO_VSOCK_OP_RW && fz_chance(&f->rng, 50)) { /* a forwarder's answer line */
      static const char *lines[] = {"OK\n", "ERR refused\n", "OK", "\n\n\n"};
      const char *l = lines[fz_below(&f->rng, 4)];
      fz_put(f, p, l, strlen(l) < payload ? strlen(l) : payload);
    }
    bufs[n++] = (struct fz_buf){p, payload, fz_chance(&f->rng, 3)};
  }
  return n;
}

static int vsock_build(struct fz *f, uint16_t qi, struct fz_buf *bufs) {
  if (qi == VSOCK_QUEUE_RX) return build_rx(f, bufs);
  if (qi == VSOCK_QUEUE_TX) return build_tx(f, bufs);
  bufs[0] = (struct fz_buf){fz_alloc(f, 8, 8), fz_chance(&f->rng, 90) ? 8 : fz_below(&f->rng, 64), true};
  return 1;
}

/* §5.10.6.1/2: rx buffers are device-writable and hold a header; tx buffers are device-readable (device.c). */
static const char *vsock_rejects(uint16_t qi, const struct fz_chain_info *ci) {
  if (qi == VSOCK_QUEUE_RX && (ci->n_out || ci->in_len < HDR_LEN)) return "rx buffer readable or short";
  if (qi == VSOCK_QUEUE_TX && ci->n_in) return "tx buffer is device-writable";
  return NULL;
}

/* tx is served in the kick; rx and event buffers wait for something to send. */
static bool vsock_synchronous(uint16_t qi) { return qi == VSOCK_QUEUE_TX; }

/* The guest reads a packet the device sent: a REQUEST tells it a connection the fuzzer can then talk on. */
static void vsock_on_used(struct fz *f, uint16_t qi, uint32_t id, uint32_t len) {
  struct vsock_fz *s = st(f);
  if (qi != VSOCK_QUEUE_RX || len < HDR_LEN) return;
  struct virtq_desc d;
  struct virtio_vsock_hdr h;
  if (!fz_get(f, f->d.q[qi].desc + 16ull * id, &d, sizeof d) || d.len < HDR_LEN || !fz_get(f, d.addr, &h, HDR_LEN))
    return;
  if (h.op < 8) rx_by_op[h.op]++;
  else rx_other++;
  if (h.op == VIRTIO_VSOCK_OP_REQUEST && s->n_known < MAX_KNOWN) {
    s->known[s->n_known].host_port = h.src_port;
    s->known[s->n_known].answered = false;
    s->known[s->n_known++].guest_port = h.dst_port;
  }
}

static void host_op_once(struct fz *f, struct vsock_fz *s);

static int connect_to(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* One host-side action: connect (hybrid CONNECT line, or the forward socket), send, drain, half-close, close. */
/* Lets the event loop act on what the host side just did (it runs on its own thread). */
static void settle(void) { usleep(100); }

/* A whole exchange, randomised at every step: host CONNECT -> REQUEST on rx -> guest RESPONSE (or not) ->
 * host data -> RW on rx -> guest packets of any op on that connection -> close. */
static void stream(struct fz *f, struct vsock_fz *s) {
  for (int i = 0; i < 4; i++) fz_post(f, VSOCK_QUEUE_RX, fz_chance(&f->rng, 5));
  fz_kick(f, VSOCK_QUEUE_RX);
  int fd = connect_to(s->sock);
  if (fd < 0) return;
  s->fds[s->n_fds++] = fd;
  host_connects++;
  char line[32];
  int n = snprintf(line, sizeof line, "CONNECT %u\n", fz_chance(&f->rng, 80) ? 5000 : 1024);
  if (send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0) return;
  int known_before = s->n_known;
  for (int t = 0; t < 50 && s->n_known == known_before; t++) {
    settle();
    fz_consume(f);
  }
  for (int round = 0; round < 6; round++) {
    fz_post(f, VSOCK_QUEUE_TX, fz_chance(&f->rng, 5));
    fz_kick(f, VSOCK_QUEUE_TX);
    char buf[4096];
    uint32_t len = fz_below(&f->rng, sizeof buf);
    memset(buf, 'x', len);
    if (send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
    fz_post(f, VSOCK_QUEUE_RX, fz_chance(&f->rng, 5));
    fz_kick(f, VSOCK_QUEUE_RX);
    settle();
    fz_consume(f);
    while (read(fd, buf, sizeof buf) > 0) {
    }
  }
}

static void vsock_host_op(struct fz *f) {
  struct vsock_fz *s = st(f);
  if (s->n_fds < MAX_HOST_FDS && fz_chance(&f->rng, 30)) stream(f, s);
  else host_op_once(f, s);
  settle();
}

static void host_op_once(struct fz *f, struct vsock_fz *s) {
  uint32_t what = fz_below(&f->rng, 6);
  if (!s->n_fds || (what == 0 && s->n_fds < MAX_HOST_FDS)) {
    if (s->n_fds == MAX_HOST_FDS) return;
    bool fwd = fz_chance(&f->rng, 25);
    int fd = connect_to(fwd ? s->fwd : s->sock);
    if (fd < 0) return;
    s->fds[s->n_fds++] = fd;
    host_connects++;
    if (!fwd) {
      static const char *lines[] = {"CONNECT 1024\n", "CONNECT 5000\n", "CONNECT 4294967295\n", "CONNECT -1\n",
                                    "CONNECT 1024", "connect 1024\n", "CONNECT 1024\nTCP 80\nextra bytes"};
      char line[200];
      if (fz_chance(&f->rng, 10)) {
        memset(line, 'A', sizeof line); /* longer than any line the device accepts */
        if (send(fd, line, sizeof line, MSG_NOSIGNAL) < 0) return;
      } else {
        const char *l = lines[fz_below(&f->rng, sizeof lines / sizeof lines[0])];
        if (send(fd, l, strlen(l), MSG_NOSIGNAL) < 0) return;
      }
    }
    return;
  }
  int i = (int)fz_below(&f->rng, (uint32_t)s->n_fds);
  char buf[8192];
  switch (what) {
  case 1:
  case 2: {
    uint32_t n = fz_below(&f->rng, sizeof buf);
    memset(buf, (int)fz_below(&f->rng, 256), n);
    if (send(s->fds[i], buf, n, MSG_NOSIGNAL) < 0) break;
    break;
  }
  case 3:
    while (read(s->fds[i], buf, sizeof buf) > 0) {
    }
    break;
  case 4: shutdown(s->fds[i], fz_chance(&f->rng, 50) ? SHUT_WR : SHUT_RDWR); break;
  default:
    close(s->fds[i]);
    s->fds[i] = s->fds[--s->n_fds];
    break;
  }
}

static void vsock_report(struct fz *f, char *buf, size_t len) {
  snprintf(buf, len,
           " host-connects %" PRIu64 " rx-packets request %" PRIu64 " rst %" PRIu64 " shutdown %" PRIu64 " rw %" PRIu64
           " credit %" PRIu64 " tx-on-known-connections %" PRIu64,
           host_connects, rx_by_op[VIRTIO_VSOCK_OP_REQUEST], rx_by_op[VIRTIO_VSOCK_OP_RST],
           rx_by_op[VIRTIO_VSOCK_OP_SHUTDOWN], rx_by_op[VIRTIO_VSOCK_OP_RW],
           rx_by_op[VIRTIO_VSOCK_OP_CREDIT_UPDATE] + rx_by_op[VIRTIO_VSOCK_OP_CREDIT_REQUEST], tx_to_known);
}

const struct fz_adapter fz_vsock = {.name = "vsock", .create = vsock_create, .build = vsock_build,
                                    .rejects = vsock_rejects, .synchronous = vsock_synchronous,
                                    .on_used = vsock_on_used, .host_op = vsock_host_op,
                                    .teardown = vsock_teardown, .on_reset = vsock_on_reset,
                                    .report = vsock_report};
