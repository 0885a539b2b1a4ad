// virtio-vsock (virtio v1.2 §5.10): what the machine and the tests use, and the internals shared by the device
// (queues), persist (snapshot), connection (state machine), host (Unix sockets) and reset-hold parts.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include "../device.h"
#include "../persist.h"
#include "packet.h"

/* uds_path: host-side Unix socket (Firecracker hybrid vsock, docs/architecture.md). NULL with err. */
struct virtio_mmio_dev *virtio_vsock_create(const struct virtio_env *env, uint64_t guest_cid, const char *uds_path,
                                            char *err, size_t errlen);
/* Listen on uds_path; each accepted connection is bridged to guest TCP tcp_port through the guest forwarder
 * (vsock port ONEBOX_VSOCK_FORWARD_PORT, `TCP <port>\n`, reply `OK\n` consumed). Callable at any time. */
int virtio_vsock_add_forward(struct virtio_mmio_dev *dev, uint32_t tcp_port, const char *uds_path, char *err,
                             size_t errlen);
/* Removes the socket files of every listener (the VM is ending; the listeners stay open). */
void virtio_vsock_unlink_sockets(struct virtio_mmio_dev *dev);
/* Tells the guest its connections are gone (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue, §5.10.6.7; the
 * guest re-reads guest_cid then); restore does it. Takes the lock. 0, or -1 if the driver posted no event buffer. */
int virtio_vsock_transport_reset(struct virtio_mmio_dev *dev);

/* The device's own snapshot state (persist.c; section SNAP_SEC_VSOCK): the next host-side port. A clone continues
 * from it so a new connection never reuses the tuple of one the guest still holds from before the snapshot (the
 * guest would answer it with RST). Live connections are not saved: restore sends TRANSPORT_RESET. */
struct vsock_state { uint32_t next_host_port, reserved; };
void vsock_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own);
int vsock_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                  size_t errlen);

#define VSOCK_QUEUE_SIZE 256
#define VSOCK_MAX_CONNS 1024        /* host-side connections at once; more are refused at accept */
#define VSOCK_MAX_FORWARDS 32       /* forward listeners (--forward / `forward PORT`) */
#define VSOCK_BUF_ALLOC (256 * 1024) /* our receive buffer per connection, advertised as buf_alloc */
/* Tell the guest about freed space once this much was forwarded unreported (§5.10.6.3 credit update). */
#define VSOCK_CREDIT_THRESHOLD (VSOCK_BUF_ALLOC / 4)
#define VSOCK_LINE_MAX 64            /* `CONNECT <port>\n`, `TCP <port>\n`, `OK\n` lines */
#define VSOCK_MAX_PAYLOAD (64 * 1024) /* bytes per RW packet we build */
#define VSOCK_READ_BURST 16          /* packets per host-readable event, for fairness between connections */
#define VSOCK_RST_QUEUE 64           /* RSTs for unknown connections waiting for rx buffers */
#define ONEBOX_VSOCK_FORWARD_PORT 1024 /* guest forwarder; guest/protocol.ts, checked by guest/protocol.test.ts */
#define VSOCK_HOST_PORT_FIRST (1u << 30) /* host-side ephemeral ports, as Firecracker's hybrid vsock */
/* After a restore, REQUESTs wait at most this long for the guest to handle TRANSPORT_RESET (reset_hold.c). */
#define VSOCK_RESET_HOLD_MS 5000

enum vsock_conn_state {
  CONN_HOST_LINE,    /* hybrid: reading `CONNECT <port>\n` from the host */
  CONN_CONNECTING,   /* OP_REQUEST queued or sent, waiting for OP_RESPONSE */
  CONN_FWD_AWAIT_OK, /* forward: `TCP <port>\n` queued, waiting for the guest forwarder's `OK\n` */
  CONN_ESTABLISHED,
  CONN_CLOSED,       /* host fd closed; only a queued RST is left to deliver */
};

/* Control packets owed to the guest, sent as soon as rx buffers allow. */
#define PEND_REQUEST       1u
#define PEND_CREDIT_UPDATE 2u
#define PEND_SHUTDOWN      4u
#define PEND_RST           8u

struct vsock;

/* Stable per-slot context handed to the event loop: a callback may still fire after its connection is
 * gone, so it looks the connection up under the device lock instead of holding a pointer to it. */
struct vsock_slot {
  struct vsock *vs;
  struct vsock_conn *conn;
};

struct vsock_conn {
  struct vsock_slot *slot;
  int fd;
  enum vsock_conn_state state;
  uint32_t host_port, guest_port;
  uint32_t fwd_tcp_port; /* 0 for hybrid CONNECT connections */
  uint32_t pending;      /* PEND_* */
  uint32_t shutdown_flags;
  /* host -> guest */
  uint32_t tx_cnt;                        /* payload bytes sent to the guest */
  uint32_t peer_buf_alloc, peer_fwd_cnt;  /* the guest's credit (§5.10.6.3) */
  uint8_t prefix[VSOCK_LINE_MAX];         /* bytes to send the guest before reading the host fd */
  uint32_t prefix_len, prefix_off;
  bool host_eof, guest_no_rcv, guest_no_send, host_shut_wr;
  bool rx_wait;  /* stopped reading the host because the rx queue was empty */
  /* guest -> host */
  uint32_t rx_cnt, fwd_cnt, fwd_cnt_sent;
  uint8_t *out;  /* ring of VSOCK_BUF_ALLOC bytes the host has not taken yet, allocated on demand */
  uint32_t out_head, out_len;
  char line[VSOCK_LINE_MAX];
  uint32_t line_len;
  /* event loop registration */
  uint32_t events;
  bool registered, hup;
};

struct vsock_listener {
  struct vsock *vs;
  int fd;
  uint32_t fwd_tcp_port;
  bool paused; /* accept failed for lack of fds: not watched until a connection closes */
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct vsock {
  struct virtio_mmio_dev *dev;
  uint64_t guest_cid;
  struct vsock_listener main;
  struct vsock_listener fwd[VSOCK_MAX_FORWARDS];
  int n_fwd;
  struct vsock_slot slots[VSOCK_MAX_CONNS];
  uint32_t n_conns;
  uint32_t next_host_port;
  bool listeners_paused;
  bool pending_dirty; /* some connection has PEND_* bits or prefix bytes waiting */
  /* reset_hold.c: after TRANSPORT_RESET, REQUESTs wait until the guest re-posted an event buffer. */
  bool reset_hold;
  uint16_t reset_avail;     /* event queue available index when the reset event was delivered */
  uint32_t reset_hold_ms;   /* VSOCK_RESET_HOLD_MS (tests shorten it) */
  int hold_timer;           /* timerfd, armed while holding: a guest that never re-arms gets the held closed */
  struct virtio_vsock_hdr rst_queue[VSOCK_RST_QUEUE];
  uint32_t rst_head, rst_count;
  struct virtq_chain rx_chain, tx_chain;
};

/* All with dev->lock held. */
/* conn.c */
struct vsock_conn *vsock_conn_new(struct vsock *vs, int fd, uint32_t fwd_tcp_port);
/* Host side asked for guest_port: queue OP_REQUEST from a fresh host port. */
void vsock_conn_connect(struct vsock_conn *c, uint32_t guest_port);
/* Buffered guest bytes -> host fd; false if the connection was closed. */
bool vsock_conn_drain_out(struct vsock_conn *c);
struct vsock_conn *vsock_conn_find(struct vsock *vs, uint32_t host_port, uint32_t guest_port);
void vsock_conn_guest_packet(struct vsock *vs, struct vsock_conn *c, const struct virtio_vsock_hdr *h,
                             const struct virtq_chain *chain);
void vsock_conn_close(struct vsock_conn *c, bool send_rst);
void vsock_conn_update_events(struct vsock_conn *c);
void vsock_conn_free_all(struct vsock *vs);
uint32_t vsock_conn_credit(const struct vsock_conn *c);
/* device.c */
void vsock_fill_hdr(struct vsock *vs, struct vsock_conn *c, uint16_t op, uint32_t len, uint32_t flags,
                    struct virtio_vsock_hdr *h);
/* 1 = rx chain in vs->rx_chain, 0 = none, -1 = device failed. */
int vsock_rx_pop(struct vsock *vs);
/* Sends pending control packets and prefixes while rx buffers last; raises the rx interrupt. */
void vsock_flush_pending(struct vsock *vs);
void vsock_queue_rst(struct vsock *vs, const struct virtio_vsock_hdr *to_reply);
/* reset_hold.c */
/* Creates the hold timer (before seccomp; the loop watches it). 0 or -errno. */
int vsock_reset_hold_init(struct vsock *vs);
void vsock_reset_hold_destroy(struct vsock *vs);
/* The reset event was just delivered; the event queue's available index was `avail` before the guest reacted. */
void vsock_reset_hold_begin(struct vsock *vs, uint16_t avail);
/* True while REQUESTs must wait; ends the hold once the guest re-posted an event buffer. */
bool vsock_reset_hold_active(struct vsock *vs);
void vsock_reset_hold_end(struct vsock *vs);
/* host.c */
int vsock_listen(struct vsock *vs, struct vsock_listener *l, const char *path, uint32_t fwd_tcp_port, char *err,
                 size_t errlen);
void vsock_listener_close(struct vsock *vs, struct vsock_listener *l);
/* A connection went away: listeners paused for lack of fds may accept again. */
void vsock_listeners_resume(struct vsock *vs);
void vsock_host_event(void *slot, uint32_t events);
