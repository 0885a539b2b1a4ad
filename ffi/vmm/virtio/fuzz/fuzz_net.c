// Virtio ring fuzzer adapter for virtio-net: rx buffers of any size, tx frames of any size and header, host-side
// frames (any vnet header: GSO types, checksum offsets past the frame, sizes past 64 KiB) on a SOCK_SEQPACKET pair.
#include <inttypes.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../net/net.h"
#include "fuzz.h"

struct net_fz { int peer; };
static uint64_t host_frames, host_bytes_out, rx_used;
static const uint8_t MAC[6] = {0x02, 0, 0xa9, 0xfe, 0x44, 0x06};

static struct virtio_mmio_dev *net_create(struct fz *f, char *err, size_t errlen) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    snprintf(err, errlen, "socketpair failed");
    return NULL;
  }
  int big = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  struct net_fz *s = calloc(1, sizeof *s);
  s->peer = sv[1];
  f->adapter_state = s;
  return virtio_net_create(&f->d.env, sv[0], MAC, err, errlen);
}

static void net_teardown(struct fz *f) {
  struct net_fz *s = f->adapter_state;
  if (!s) return;
  close(s->peer);
  free(s);
  f->adapter_state = NULL;
}

static int net_build(struct fz *f, uint16_t qi, struct fz_buf *bufs) {
  if (qi == NET_QUEUE_RX) {
    int n = 1 + (int)fz_below(&f->rng, 3);
    for (int i = 0; i < n; i++) {
      uint32_t len = fz_chance(&f->rng, 5) ? fz_below(&f->rng, NET_HDR_LEN) : NET_HDR_LEN + fz_below(&f->rng, 4096);
      bufs[i] = (struct fz_buf){fz_alloc(f, len, 8), len, !fz_chance(&f->rng, 3)};
    }
    return n;
  }
  /* tx: a header (random offload fields, sometimes cut short) and a frame, sometimes past 64 KiB. */
  struct virtio_net_hdr_v1 h = {.flags = (uint8_t)fz_below(&f->rng, 4), .gso_type = (uint8_t)fz_next(&f->rng),
                                .gso_size = (uint16_t)fz_next(&f->rng), .csum_start = (uint16_t)fz_below(&f->rng, 80),
                                .csum_offset = (uint16_t)fz_below(&f->rng, 20)};
  if (fz_chance(&f->rng, 70)) h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
  uint32_t hl = fz_chance(&f->rng, 5) ? fz_below(&f->rng, NET_HDR_LEN) : NET_HDR_LEN;
  uint64_t a = fz_alloc(f, NET_HDR_LEN, 8);
  fz_put(f, a, &h, NET_HDR_LEN);
  bufs[0] = (struct fz_buf){a, hl, false};
  uint32_t len = fz_chance(&f->rng, 3) ? 65000 + fz_below(&f->rng, 2000) : 14 + fz_below(&f->rng, 1500);
  bufs[1] = (struct fz_buf){fz_alloc(f, len, 8), len, fz_chance(&f->rng, 3)};
  return 2;
}

/* §5.1.6.2/3: tx buffers are device-readable; rx buffers device-writable, the first of a frame at least a header
 * (rx is filled later, on the event loop: the model then only relaxes its checks, so "short" may be over-strict). */
static const char *net_rejects(uint16_t qi, const struct fz_chain_info *ci) {
  if (qi == NET_QUEUE_RX && (ci->n_out || ci->in_len < NET_HDR_LEN)) return "rx buffer readable or short";
  if (qi == NET_QUEUE_TX && ci->n_in) return "tx buffer is device-writable";
  return NULL;
}
static bool net_synchronous(uint16_t qi) { return qi == NET_QUEUE_TX; }

/* The host side: frames with any vnet header toward the guest; tx output drained. */
static void net_host_op(struct fz *f) {
  struct net_fz *s = f->adapter_state;
  static uint8_t buf[NET_HDR_LEN + 70000];
  int n = 1 + (int)fz_below(&f->rng, 3);
  for (int i = 0; i < n; i++) {
    struct virtio_net_hdr_v1 h = {.flags = (uint8_t)fz_below(&f->rng, 4),
                                  .gso_type = fz_chance(&f->rng, 60) ? 0 : (uint8_t)fz_next(&f->rng),
                                  .gso_size = (uint16_t)fz_next(&f->rng),
                                  .csum_start = (uint16_t)(fz_chance(&f->rng, 80) ? fz_below(&f->rng, 100) : fz_next(&f->rng)),
                                  .csum_offset = (uint16_t)(fz_chance(&f->rng, 80) ? fz_below(&f->rng, 20) : fz_next(&f->rng))};
    uint32_t len = fz_chance(&f->rng, 5) ? fz_below(&f->rng, 70000) : fz_below(&f->rng, 3000);
    memcpy(buf, &h, sizeof h);
    memset(buf + NET_HDR_LEN, (int)fz_below(&f->rng, 256), len);
    uint32_t total = fz_chance(&f->rng, 3) ? fz_below(&f->rng, NET_HDR_LEN) : NET_HDR_LEN + len;
    if (send(s->peer, buf, total, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) host_frames++;
  }
  ssize_t r;
  while ((r = recv(s->peer, buf, sizeof buf, MSG_DONTWAIT)) > 0) host_bytes_out += (uint64_t)r;
}

static void net_on_used(struct fz *f, uint16_t qi, uint32_t id, uint32_t len) {
  if (qi == NET_QUEUE_RX) rx_used++;
}

static void net_report(struct fz *f, char *buf, size_t len) {
  snprintf(buf, len, " host-frames-sent %" PRIu64 " rx-buffers-filled %" PRIu64 " host-bytes-received %" PRIu64, host_frames,
           rx_used, host_bytes_out);
}

const struct fz_adapter fz_net = {.name = "net", .create = net_create, .build = net_build, .rejects = net_rejects,
                                  .synchronous = net_synchronous, .on_used = net_on_used, .host_op = net_host_op, .teardown = net_teardown,
                                  .report = net_report};
