// Fake virtio driver for native tests: lays out split rings in a mmap'd guest_mem and programs the MMIO transport.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include "device.h"

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

struct fake_queue {
  uint16_t num;
  uint64_t desc, avail, used;
  uint16_t avail_idx, used_seen;
  uint16_t kick_old; /* avail_idx at the last kick decision (EVENT_IDX) */
  uint8_t busy[VIRTQ_MAX_SIZE]; /* descriptor in use */
};

struct fake_driver {
  struct virtio_mmio_dev *dev;
  struct guest_mem mem;
  struct virtio_env env;
  uint64_t bump; /* next free guest address for fd_alloc */
  bool event_idx; /* negotiated VIRTIO_F_EVENT_IDX */
  struct fake_queue q[VIRTIO_MAX_QUEUES];
};

/* Guest memory and an interrupt eventfd; the device is created by the test with &d->env. */
static inline void fd_setup(struct fake_driver *d, uint64_t mem_size, struct evloop *loop) {
  memset(d, 0, sizeof *d);
  void *p = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  d->mem = (struct guest_mem){p, mem_size};
  d->env.mem = &d->mem;
  d->env.irq = (struct irq_line){eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 5};
  CHECK(d->env.irq.eventfd >= 0);
  d->env.loop = loop;
  d->bump = 0x1000;
}

static inline void fd_teardown(struct fake_driver *d) {
  virtio_mmio_destroy(d->dev);
  d->dev = NULL;
  close(d->env.irq.eventfd);
  munmap(d->mem.host, d->mem.size);
}

static inline uint64_t fd_alloc(struct fake_driver *d, uint64_t size, uint64_t align) {
  uint64_t a = (d->bump + align - 1) & ~(align - 1);
  CHECK(a + size <= d->mem.size);
  d->bump = a + size;
  memset(d->mem.host + a, 0, size);
  return a;
}

static inline void *fd_ptr(struct fake_driver *d, uint64_t gpa) { return d->mem.host + gpa; }

static inline uint32_t fd_rd(struct fake_driver *d, uint64_t off) {
  uint32_t v;
  virtio_mmio_read(d->dev, off, (uint8_t *)&v, 4);
  return v;
}

static inline void fd_wr(struct fake_driver *d, uint64_t off, uint32_t v) {
  virtio_mmio_write(d->dev, off, (const uint8_t *)&v, 4);
}

/* Eventfd count since the last call (0 if no interrupt was raised). */
static inline uint64_t fd_irqs(struct fake_driver *d) {
  uint64_t n = 0;
  if (read(d->env.irq.eventfd, &n, sizeof n) != sizeof n) return 0;
  return n;
}

/* Programs queue qi with `num` entries at fresh addresses (§4.2.3.2); returns QueueReady as read back. */
static inline uint32_t fd_queue(struct fake_driver *d, uint16_t qi, uint16_t num) {
  struct fake_queue *q = &d->q[qi];
  memset(q, 0, sizeof *q);
  q->num = num;
  q->desc = fd_alloc(d, 16ull * (num ? num : 1), 16);
  q->avail = fd_alloc(d, 6ull + 2ull * num, 2);
  q->used = fd_alloc(d, 6ull + 8ull * num, 4);
  fd_wr(d, VIRTIO_MMIO_QUEUE_SEL, qi);
  fd_wr(d, VIRTIO_MMIO_QUEUE_NUM, num);
  fd_wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
  fd_wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc >> 32));
  fd_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q->avail);
  fd_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(q->avail >> 32));
  fd_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q->used);
  fd_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(q->used >> 32));
  fd_wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
  return fd_rd(d, VIRTIO_MMIO_QUEUE_READY);
}

/* §3.1.1 driver initialization: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK.
 * Returns the Status read back after FEATURES_OK (before queues), or 0 on queue setup failure. */
static inline uint32_t fd_init(struct fake_driver *d, uint64_t features, uint16_t num) {
  fd_wr(d, VIRTIO_MMIO_STATUS, 0);
  fd_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  fd_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  fd_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  fd_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
  fd_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  fd_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
  fd_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  uint32_t st = fd_rd(d, VIRTIO_MMIO_STATUS);
  if (!(st & VIRTIO_CONFIG_S_FEATURES_OK)) return st;
  d->event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
  for (uint16_t i = 0; i < d->dev->num_queues; i++)
    if (fd_queue(d, i, num) != 1) return 0;
  fd_wr(d, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
  return st;
}

static inline uint64_t fd_device_features(struct fake_driver *d) {
  fd_wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  uint64_t lo = fd_rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
  fd_wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  return lo | (uint64_t)fd_rd(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

struct fd_buf {
  uint64_t gpa;
  uint32_t len;
  bool write; /* device-writable */
};

static inline struct virtq_desc *fd_desc(struct fake_driver *d, uint16_t qi, uint16_t i) {
  return (struct virtq_desc *)fd_ptr(d, d->q[qi].desc + 16ull * i);
}

/* Writes a chain into free descriptors and publishes it (§2.7.13); returns the head, or -1 if full. */
static inline int fd_add(struct fake_driver *d, uint16_t qi, const struct fd_buf *bufs, int n) {
  struct fake_queue *q = &d->q[qi];
  uint16_t idx[VIRTQ_MAX_SIZE];
  int k = 0;
  for (uint16_t i = 0; i < q->num && k < n; i++)
    if (!q->busy[i]) idx[k++] = i;
  if (k < n) return -1;
  for (int j = 0; j < n; j++) {
    q->busy[idx[j]] = 1;
    *fd_desc(d, qi, idx[j]) = (struct virtq_desc){bufs[j].gpa, bufs[j].len,
                                                  (uint16_t)((bufs[j].write ? VIRTQ_DESC_F_WRITE : 0) |
                                                             (j + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
                                                  j + 1 < n ? idx[j + 1] : 0};
  }
  uint16_t *ring = fd_ptr(d, q->avail + VIRTQ_AVAIL_RING_OFF);
  ring[q->avail_idx % q->num] = idx[0];
  q->avail_idx++;
  __atomic_store_n((uint16_t *)fd_ptr(d, q->avail + VIRTQ_AVAIL_IDX_OFF), q->avail_idx, __ATOMIC_RELEASE);
  return idx[0];
}

static inline void fd_kick(struct fake_driver *d, uint16_t qi) { fd_wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, qi); }

/* Kicks the way Linux's virtqueue_kick_prepare does: with EVENT_IDX only if the device's avail_event lies
 * in what was added since the last decision (§2.7.10 vring_need_event). Returns whether it kicked. */
static inline bool fd_kick_needed(struct fake_driver *d, uint16_t qi) {
  struct fake_queue *q = &d->q[qi];
  if (!d->event_idx) {
    fd_kick(d, qi);
    return true;
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* avail idx store before the avail_event load */
  uint16_t ev = __atomic_load_n((uint16_t *)fd_ptr(d, q->used + VIRTQ_USED_RING_OFF + 8ull * q->num), __ATOMIC_ACQUIRE);
  uint16_t old = q->kick_old, now = q->avail_idx;
  q->kick_old = now;
  if ((uint16_t)(now - ev - 1) < (uint16_t)(now - old)) {
    fd_kick(d, qi);
    return true;
  }
  return false;
}

/* With EVENT_IDX: ask for an interrupt once the used index passes `idx` (the driver's used_event). */
static inline void fd_set_used_event(struct fake_driver *d, uint16_t qi, uint16_t idx) {
  __atomic_store_n((uint16_t *)fd_ptr(d, d->q[qi].avail + VIRTQ_AVAIL_RING_OFF + 2ull * d->q[qi].num), idx,
                   __ATOMIC_RELEASE);
}

/* Takes the next used element, frees its descriptors; returns false if there is none. */
static inline bool fd_used(struct fake_driver *d, uint16_t qi, uint32_t *id, uint32_t *len) {
  struct fake_queue *q = &d->q[qi];
  uint16_t idx = __atomic_load_n((uint16_t *)fd_ptr(d, q->used + VIRTQ_USED_IDX_OFF), __ATOMIC_ACQUIRE);
  if (idx == q->used_seen) return false;
  struct virtq_used_elem *e = fd_ptr(d, q->used + VIRTQ_USED_RING_OFF + 8ull * (q->used_seen % q->num));
  *id = e->id;
  *len = e->len;
  q->used_seen++;
  for (uint16_t i = (uint16_t)*id, guard = 0; i < q->num && guard < q->num; guard++) {
    q->busy[i] = 0;
    struct virtq_desc *dd = fd_desc(d, qi, i);
    if (!(dd->flags & VIRTQ_DESC_F_NEXT)) break;
    i = dd->next;
  }
  return true;
}
