// virtio-vsock wire format (virtio v1.2 §5.10.6): packet header, types, operations, shutdown flags.
#pragma once
#include <stdint.h>

/* §5.10.2 virtqueues. */
#define VSOCK_QUEUE_RX    0
#define VSOCK_QUEUE_TX    1
#define VSOCK_QUEUE_EVENT 2

/* §5.10.4 struct virtio_vsock_config: le64 guest_cid. */
#define VIRTIO_VSOCK_CFG_GUEST_CID 0
#define VIRTIO_VSOCK_CFG_LEN       8

/* Well-known CIDs (§5.10.4: 0-2 reserved; the host is VMADDR_CID_HOST = 2). */
#define VSOCK_CID_HOST 2

/* §5.10.6 struct virtio_vsock_hdr (little-endian, packed, 44 bytes). */
struct virtio_vsock_hdr {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes (§5.10.6)");

#define VIRTIO_VSOCK_TYPE_STREAM 1

#define VIRTIO_VSOCK_OP_INVALID        0
#define VIRTIO_VSOCK_OP_REQUEST        1
#define VIRTIO_VSOCK_OP_RESPONSE       2
#define VIRTIO_VSOCK_OP_RST            3
#define VIRTIO_VSOCK_OP_SHUTDOWN       4
#define VIRTIO_VSOCK_OP_RW             5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE  6
#define VIRTIO_VSOCK_OP_CREDIT_REQUEST 7

/* §5.10.6.5 SHUTDOWN flags. */
#define VIRTIO_VSOCK_SHUTDOWN_RCV  1
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2
