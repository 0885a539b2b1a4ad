// virtio-net (virtio v1.2 §5.1): what the machine and the tests use, and what device.c, persist.c and tap.c share.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../device.h"
#include "../persist.h"

/* tap_fd: a frame-preserving fd whose every read and write is one frame behind a 12-byte virtio_net_hdr_v1 (a TAP
 * opened IFF_TAP|IFF_NO_PI|IFF_VNET_HDR and prepared by net_tap_prepare, or a SOCK_SEQPACKET socket in tests). The
 * device owns it from here (closed at destroy, also on failure). mac: the guest's MAC in config space. */
struct virtio_mmio_dev *virtio_net_create(const struct virtio_env *env, int tap_fd, const uint8_t mac[6], char *err,
                                          size_t errlen);

/* tap.c: checks that fd is a TAP with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, sets the 12-byte vnet header, the offloads
 * the device offers its guest (TUN_F_CSUM|TSO4|TSO6) and O_NONBLOCK. Setup only (before seccomp): the running vmm
 * issues no ioctl on the TAP. 0, or -1 with err. */
int net_tap_prepare(int fd, char *err, size_t errlen);
/* Parses "aa:bb:cc:dd:ee:ff"; 0 or -1. */
int net_parse_mac(const char *s, uint8_t mac[6]);

/* Counters (read under the lock; the tests look at them, stderr gets one line per kind the first time). */
struct net_counters {
  uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
  uint64_t rx_dropped_oversized; /* a frame no posted buffers could ever hold (or past NET_MAX_FRAME) */
  uint64_t rx_dropped_offload;   /* a GSO frame for a driver that did not accept that GUEST_TSO */
  uint64_t tx_dropped_oversized; /* a tx chain past NET_MAX_FRAME + header */
  uint64_t tx_dropped_short;     /* a tx chain shorter than the header */
  uint64_t tx_dropped_error;     /* the TAP refused the write (EAGAIN, EINVAL for a bad GSO header, ...) */
  uint64_t rx_bounced;           /* frames read into the device's buffer and copied (not read into guest memory) */
};
void virtio_net_counters(struct virtio_mmio_dev *dev, struct net_counters *out);

/* device.c, for persist.c (lock held): the MAC into config space; if the device runs, start reading the TAP and send
 * what the tx ring holds. */
void net_set_mac(struct virtio_mmio_dev *dev, const uint8_t mac[6]);
void net_resume(struct virtio_mmio_dev *dev);

/* The device's own snapshot state (persist.c; section SNAP_SEC_NET): the MAC the guest was given. Every clone keeps
 * it (the host's eBPF tells clones apart by their TAP), so a restore applies the snapshot's, not the command line's. */
struct net_state { uint8_t mac[6]; uint16_t reserved; uint32_t reserved2; };
void net_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own);
int net_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                size_t errlen);

/* §5.1.2 queues: receiveq1, transmitq1 (no control queue, no multiqueue). */
#define NET_QUEUE_RX 0
#define NET_QUEUE_TX 1
#define NET_QUEUE_SIZE 256
/* §5.1.6: struct virtio_net_hdr with num_buffers, always 12 bytes under VIRTIO_F_VERSION_1. */
#define NET_HDR_LEN 12
/* Largest frame after the header either way: a 64 KiB GSO packet plus its Ethernet header (what TSO makes). */
#define NET_MAX_FRAME (65535 + 14)
/* Frames moved per event before the loop looks at other fds (fairness). */
#define NET_RX_BURST 64
/* At most this many buffers in one readv (UIO_MAXIOV). */
#define NET_RX_IOV_MAX 1024

/* §5.1.3 feature bits. */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

/* §5.1.6 header. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80
struct virtio_net_hdr_v1 {
  uint8_t flags, gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr_v1) == NET_HDR_LEN, "virtio_net_hdr_v1 is 12 bytes");

/* Rx buffers popped ahead of a read (rx.c): the TAP is read straight into them once they hold any frame. */
struct net_rx_reserve {
  uint16_t n;                     /* chains popped and not yet pushed, in ring order */
  uint32_t niov;                  /* their writable buffers in iov, chain after chain */
  uint64_t bytes;                 /* their writable bytes */
  uint16_t head[NET_QUEUE_SIZE];
  uint16_t chain_niov[NET_QUEUE_SIZE];
  uint32_t chain_len[NET_QUEUE_SIZE];
  struct iovec iov[NET_RX_IOV_MAX];
};

struct net {
  struct virtio_mmio_dev *dev;
  int fd;
  bool polling;       /* the TAP fd is watched for EPOLLIN (off while the guest has no rx buffers) */
  bool registered;
  uint32_t pending_len; /* a frame read from the TAP, waiting for rx buffers (header + frame in buf) */
  struct net_counters n;
  uint32_t warned;    /* one stderr line per kind of drop */
  uint8_t mac[6];
  struct virtq_chain chain; /* scratch, used under the lock only */
  uint16_t heads[NET_QUEUE_SIZE];
  uint32_t lens[NET_QUEUE_SIZE];
  struct net_rx_reserve rsv; /* empty outside net_rx_process */
  uint8_t buf[NET_HDR_LEN + NET_MAX_FRAME];
};

/* device.c, shared with rx.c (lock held). */
#define NET_WARN_RX_OVERSIZED 1u
#define NET_WARN_RX_OFFLOAD 2u
#define NET_WARN_TX_OVERSIZED 4u
#define NET_WARN_TX_ERROR 8u
#define NET_WARN_TAP_GONE 16u
static inline bool net_has(const struct virtio_mmio_dev *dev, int bit) { return dev->driver_features & (1ull << bit); }
/* One stderr line per kind of drop. */
void net_warn_once(struct net *nt, uint32_t kind, const char *fmt, long long v);
/* Watch the TAP for EPOLLIN or not. */
void net_set_polling(struct net *nt, bool on);
/* The TAP failed: unwatch it for good. */
void net_tap_gone(struct net *nt, int err);
/* Tx chains the guest made available, each written to the TAP (one frame per write); one interrupt decision. */
void net_process_tx(struct net *nt);
/* rx.c: frames from the TAP into the guest's rx buffers while it has some, at most a burst; one interrupt decision. */
void net_rx_process(struct net *nt);
