// Virtio 1.x constants and ring layouts (virtio v1.2 §2.1 status, §2.7 split rings, §4.2.2 MMIO registers, §6).
#pragma once
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio 1.x rings are little-endian; this code reads them natively"
#endif

/* §4.2.2 MMIO device register layout (offsets from the window base). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC        0x74726976u /* "virt" */
#define VIRTIO_MMIO_VERSION_1X   2u          /* §4.2.2: version 2 = virtio 1.x (no legacy) */
#define VIRTIO_MMIO_VENDOR_ONEBOX 0x584f424fu /* "OBOX": any value is allowed (§4.2.2) */

/* §4.2.2 InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING  1u /* Used Buffer Notification */
#define VIRTIO_MMIO_INT_CONFIG 2u /* Configuration Change Notification */

/* §2.1 Device status field. */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE 1u
#define VIRTIO_CONFIG_S_DRIVER      2u
#define VIRTIO_CONFIG_S_DRIVER_OK   4u
#define VIRTIO_CONFIG_S_FEATURES_OK 8u
#define VIRTIO_CONFIG_S_NEEDS_RESET 64u
#define VIRTIO_CONFIG_S_FAILED      128u

/* §6 Reserved feature bits. Indirect descriptors are not offered; EVENT_IDX is. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* §5 device IDs. */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_ENTROPY 4
#define VIRTIO_ID_VSOCK   19

/* §2.7.5 The Virtqueue Descriptor Table. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

/* §2.7.6 The Virtqueue Available Ring: le16 flags, le16 idx, le16 ring[size], le16 used_event. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_AVAIL_FLAGS_OFF 0
#define VIRTQ_AVAIL_IDX_OFF   2
#define VIRTQ_AVAIL_RING_OFF  4
/* §2.7.8 The Virtqueue Used Ring: le16 flags, le16 idx, {le32 id, le32 len} ring[size], le16 avail_event. */
#define VIRTQ_USED_FLAGS_OFF 0
#define VIRTQ_USED_IDX_OFF   2
#define VIRTQ_USED_RING_OFF  4

struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};

/* §2.7 alignment requirements of the three parts. */
#define VIRTQ_DESC_ALIGN  16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN  4

static inline uint64_t virtq_desc_bytes(uint16_t num) { return 16ull * num; }
static inline uint64_t virtq_avail_bytes(uint16_t num) { return 6ull + 2ull * num; }
static inline uint64_t virtq_used_bytes(uint16_t num) { return 6ull + 8ull * num; }
