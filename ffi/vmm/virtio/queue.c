// Split virtqueue (virtio v1.2 §2.7): every guest-controlled index, address and length is checked here.
#include "queue.h"
#include <string.h>

void virtq_reset(struct virtq *q, uint16_t num_max) {
  memset(q, 0, sizeof *q);
  q->num = num_max;
}

static bool is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

const char *virtq_activate(struct virtq *q, const struct guest_mem *m, uint16_t num_max, bool event_idx) {
  /* §2.7: "Queue Size value is always a power of 2"; §4.2.2: QueueNum <= QueueNumMax. */
  if (!is_pow2(q->num) || q->num > num_max) return "queue size is not a power of two <= QueueNumMax";
  if (q->desc_gpa % VIRTQ_DESC_ALIGN || q->avail_gpa % VIRTQ_AVAIL_ALIGN || q->used_gpa % VIRTQ_USED_ALIGN)
    return "ring address misaligned (§2.7)";
  uint8_t *d = guest_mem_ptr(m, q->desc_gpa, virtq_desc_bytes(q->num));
  uint8_t *a = guest_mem_ptr(m, q->avail_gpa, virtq_avail_bytes(q->num));
  uint8_t *u = guest_mem_ptr(m, q->used_gpa, virtq_used_bytes(q->num));
  if (!d || !a || !u) return "ring outside guest memory";
  q->desc = d;
  q->avail = a;
  q->used = u;
  q->last_avail = 0;
  q->used_idx = 0;
  q->owe_irq = false;
  q->event_idx = event_idx;
  q->signalled_valid = false;
  q->ready = true;
  return NULL;
}

static uint16_t load_le16_acquire(const uint8_t *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); }

/* §2.7.10: with EVENT_IDX the driver notifies only once the available index passes avail_event. */
static void set_avail_event(struct virtq *q, uint16_t v) {
  __atomic_store_n((uint16_t *)(q->used + VIRTQ_USED_RING_OFF + 8u * q->num), v, __ATOMIC_RELEASE);
}

uint16_t virtq_avail_idx(const struct virtq *q) { return q->ready ? load_le16_acquire(q->avail + VIRTQ_AVAIL_IDX_OFF) : 0; }

void virtq_notify_past(struct virtq *q, uint16_t idx) {
  if (!q->ready || !q->event_idx) return;
  set_avail_event(q, idx);
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* before the caller looks at the available index again */
}

int virtq_pop(struct virtq *q, const struct guest_mem *m, struct virtq_chain *c, const char **why) {
  if (!q->ready) return 0;
  uint16_t avail_idx = load_le16_acquire(q->avail + VIRTQ_AVAIL_IDX_OFF);
  uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
  if (pending == 0 && q->event_idx) {
    /* Ring drained: ask for a notification on the next buffer, then look again, since the driver may
     * have added one before it could see the new avail_event (§2.7.10, like vring_need_event users). */
    set_avail_event(q, q->last_avail);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    avail_idx = load_le16_acquire(q->avail + VIRTQ_AVAIL_IDX_OFF);
    pending = (uint16_t)(avail_idx - q->last_avail);
  }
  if (pending == 0) return 0;
  /* §2.7.13.3: the driver cannot have more than the queue size outstanding. */
  if (pending > q->num) {
    *why = "available index ran more than a queue size ahead";
    return -1;
  }
  uint16_t slot = q->last_avail & (q->num - 1);
  uint16_t head;
  memcpy(&head, q->avail + VIRTQ_AVAIL_RING_OFF + 2u * slot, sizeof head);
  memset(c, 0, offsetof(struct virtq_chain, iov));
  c->head = head;
  uint16_t idx = head;
  for (uint32_t count = 0;; count++) {
    if (idx >= q->num) {
      *why = "descriptor index out of range";
      return -1;
    }
    if (count >= q->num) {
      *why = "descriptor chain longer than the queue (loop)";
      return -1;
    }
    struct virtq_desc d; /* read once: the guest may change the table under us */
    memcpy(&d, q->desc + 16u * idx, sizeof d);
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      *why = "indirect descriptor (VIRTIO_F_INDIRECT_DESC not offered)";
      return -1;
    }
    void *p = guest_mem_ptr(m, d.addr, d.len);
    if (!p) {
      *why = "buffer outside guest memory";
      return -1;
    }
    if (d.flags & VIRTQ_DESC_F_WRITE) {
      c->iov[c->n_out + c->n_in++] = (struct iovec){p, d.len};
      c->in_len += d.len;
    } else {
      /* §2.7.4.2: device-readable descriptors come before all device-writable ones. */
      if (c->n_in) {
        *why = "device-readable descriptor after a device-writable one";
        return -1;
      }
      c->iov[c->n_out++] = (struct iovec){p, d.len};
      c->out_len += d.len;
    }
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
    idx = d.next;
  }
  q->last_avail++;
  return 1;
}

void virtq_unpop(struct virtq *q) { q->last_avail--; }

void virtq_push(struct virtq *q, uint16_t head, uint32_t len) {
  struct virtq_used_elem e = {head, len};
  uint16_t slot = q->used_idx & (q->num - 1);
  memcpy(q->used + VIRTQ_USED_RING_OFF + 8u * slot, &e, sizeof e);
  q->used_idx++;
  /* §2.7.8: the element must be visible before the index that publishes it. */
  __atomic_store_n((uint16_t *)(q->used + VIRTQ_USED_IDX_OFF), q->used_idx, __ATOMIC_RELEASE);
  q->owe_irq = true;
}

bool virtq_take_irq(struct virtq *q) {
  if (!q->owe_irq) return false;
  q->owe_irq = false;
  /* Order the used index store before reading the driver's suppression fields (§2.7.10). */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (q->event_idx) {
    /* §2.7.10: interrupt only if used_event lies in [old, new) of what was pushed since the last one. */
    uint16_t used_event = __atomic_load_n((uint16_t *)(q->avail + VIRTQ_AVAIL_RING_OFF + 2u * q->num),
                                          __ATOMIC_ACQUIRE);
    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    return !valid || (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
  }
  uint16_t flags;
  memcpy(&flags, q->avail + VIRTQ_AVAIL_FLAGS_OFF, sizeof flags);
  return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Walks iov[first, first+n) skipping `off` bytes, calling back with each piece of [off, off+len). */
static int chain_ranges(const struct iovec *iov, int n, uint64_t off, uint64_t len, struct iovec *out, int max) {
  int k = 0;
  for (int i = 0; i < n && len && k < max; i++) {
    uint64_t l = iov[i].iov_len;
    if (off >= l) {
      off -= l;
      continue;
    }
    uint64_t take = l - off < len ? l - off : len;
    out[k++] = (struct iovec){(uint8_t *)iov[i].iov_base + off, take};
    len -= take;
    off = 0;
  }
  return k;
}

int virtq_chain_in_iov(const struct virtq_chain *c, uint64_t off, uint64_t len, struct iovec *iov, int max) {
  return chain_ranges(c->iov + c->n_out, c->n_in, off, len, iov, max);
}

int virtq_chain_out_iov(const struct virtq_chain *c, uint64_t off, uint64_t len, struct iovec *iov, int max) {
  return chain_ranges(c->iov, c->n_out, off, len, iov, max);
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, size_t len) {
  struct iovec v[VIRTQ_MAX_SIZE];
  int n = virtq_chain_out_iov(c, off, len, v, VIRTQ_MAX_SIZE);
  size_t done = 0;
  for (int i = 0; i < n; i++) {
    memcpy((uint8_t *)dst + done, v[i].iov_base, v[i].iov_len);
    done += v[i].iov_len;
  }
  return done;
}

size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, size_t len) {
  struct iovec v[VIRTQ_MAX_SIZE];
  int n = virtq_chain_in_iov(c, off, len, v, VIRTQ_MAX_SIZE);
  size_t done = 0;
  for (int i = 0; i < n; i++) {
    memcpy(v[i].iov_base, (const uint8_t *)src + done, v[i].iov_len);
    done += v[i].iov_len;
  }
  return done;
}
