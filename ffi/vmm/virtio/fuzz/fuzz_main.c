// Virtio ring fuzzer: random and mutated rings, registers and resets against every device, with a spec model as oracle.
//
// Each iteration is one driver session on a device: an init (by the book, or steps out of order), then a
// sequence of operations (good and mutated chains, kicks on any queue, bogus available indices, raw ring
// writes, register and config-space accesses at any offset and width, resets and queue toggles mid-flight,
// index wrap through save/restore, host-side traffic for vsock). After every kick on a queue the device
// serves synchronously, an independent model of §2.7 predicts how many chains are served and whether the
// device must enter DEVICE_NEEDS_RESET; the fuzzer fails (exit 1) on any disagreement, and ASan/UBSan plus
// guard pages around guest RAM abort on any access outside it. Deterministic from --seed (vsock host-side
// timing aside). Usage: virtio_fuzz [--seed N] [--iterations N | --seconds N] [--device blk,rng,vsock] [-v]
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <time.h>
#include "../persist.h"
#include "fuzz.h"

#if defined(__has_include)
#if __has_include(<sanitizer/common_interface_defs.h>) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FZ_HAVE_SANITIZER 1
#endif
#endif

static const struct fz_adapter *const adapters[] = {&fz_blk, &fz_rng_dev, &fz_vsock, &fz_net};
#define N_ADAPTERS (sizeof adapters / sizeof adapters[0])

/* The device reports why it failed on stderr; those lines go to a memfd and are counted here, so that a long
 * run does not flood the terminal (sanitizer reports still go to the real stderr, fd err_fd). */
#define MAX_REASONS 48
static struct {
  char text[96];
  uint64_t n;
} reasons[MAX_REASONS];
static int n_reasons, cap_fd = -1, err_fd = 2;
/* The last ops, printed when a check fails (for debugging a reproduced seed). */
static char trace[32][48];
static unsigned trace_n;
#define TRACE(...) snprintf(trace[trace_n++ % 32], sizeof trace[0], __VA_ARGS__)
static uint64_t other_lines;
static bool verbose;

/* On a failed check: show what the device last said (its NEEDS_RESET reasons), then exit 1. */
static void fz_fail_exit(void) {
  fflush(stdout);
  fflush(stderr);
  dprintf(err_fd, "virtio_fuzz: last operations:");
  for (unsigned i = trace_n > 32 ? trace_n - 32 : 0; i < trace_n; i++) dprintf(err_fd, " %s", trace[i % 32]);
  dprintf(err_fd, "\n");
  if (cap_fd >= 0) {
    off_t end = lseek(cap_fd, 0, SEEK_CUR);
    char tail[2048];
    off_t from = end > (off_t)sizeof tail ? end - (off_t)sizeof tail : 0;
    ssize_t n = pread(cap_fd, tail, (size_t)(end - from), from);
    if (n > 0) {
      dprintf(err_fd, "virtio_fuzz: last device messages:\n");
      if (write(err_fd, tail, (size_t)n) < 0) _exit(1);
    }
  }
  _exit(1);
}

#define FZ_CHECK(f, cond, ...)                                                                              \
  do {                                                                                                      \
    if (!(cond)) {                                                                                          \
      dprintf(err_fd, "virtio_fuzz: %s: check failed at %s:%d: %s: ", (f)->ad->name, __FILE__, __LINE__,    \
              #cond);                                                                                       \
      dprintf(err_fd, __VA_ARGS__);                                                                         \
      dprintf(err_fd, "\n(reproduce with the same --seed; iteration %" PRIu64 ")\n", (f)->st.iterations);   \
      fz_fail_exit();                                                                                       \
    }                                                                                                       \
  } while (0)

static void count_reason(const char *line) {
  const char *p = strstr(line, "needs reset: ");
  if (!p) {
    other_lines++;
    if (verbose) dprintf(err_fd, "%s\n", line);
    return;
  }
  p += strlen("needs reset: ");
  for (int i = 0; i < n_reasons; i++)
    if (!strncmp(reasons[i].text, p, sizeof reasons[i].text - 1)) {
      reasons[i].n++;
      return;
    }
  if (n_reasons < MAX_REASONS) {
    snprintf(reasons[n_reasons].text, sizeof reasons[n_reasons].text, "%s", p);
    reasons[n_reasons++].n = 1;
  }
}

static void drain_stderr(void) {
  if (cap_fd < 0) return;
  fflush(stderr);
  off_t end = lseek(cap_fd, 0, SEEK_CUR);
  if (end <= 0) return;
  char *buf = malloc((size_t)end + 1);
  ssize_t n = pread(cap_fd, buf, (size_t)end, 0);
  buf[n > 0 ? n : 0] = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) count_reason(line);
  free(buf);
  if (ftruncate(cap_fd, 0) == 0) lseek(cap_fd, 0, SEEK_SET);
}

static void capture_stderr(void) {
  err_fd = dup(2);
  cap_fd = memfd_create("virtio-fuzz-stderr", MFD_CLOEXEC);
  if (err_fd < 0 || cap_fd < 0 || dup2(cap_fd, 2) < 0) {
    err_fd = 2;
    cap_fd = -1;
    return;
  }
#ifdef FZ_HAVE_SANITIZER
  __sanitizer_set_report_fd((void *)(intptr_t)err_fd);
#endif
}

/* ---- guest memory helpers ---- */

uint64_t fz_alloc(struct fz *f, uint32_t len, uint32_t align) {
  if (!align) align = 1;
  uint64_t a = (f->data_bump + align - 1) & ~((uint64_t)align - 1);
  if (a + len > FZ_DATA_END) a = FZ_DATA_AREA; /* wraps: old buffers get reused, as a real guest might */
  f->data_bump = a + len;
  return a;
}

bool fz_put(struct fz *f, uint64_t gpa, const void *src, uint64_t len) {
  void *p = guest_mem_ptr(&f->d.mem, gpa, len);
  if (p) memcpy(p, src, len);
  return p != NULL;
}

bool fz_get(struct fz *f, uint64_t gpa, void *dst, uint64_t len) {
  void *p = guest_mem_ptr(&f->d.mem, gpa, len);
  if (p) memcpy(dst, p, len);
  return p != NULL;
}

static void put16(struct fz *f, uint64_t gpa, uint16_t v) { fz_put(f, gpa, &v, 2); }
static uint16_t get16(struct fz *f, uint64_t gpa) {
  uint16_t v = 0;
  fz_get(f, gpa, &v, 2);
  return v;
}

/* ---- the model: §2.7 as the device must apply it, computed from guest memory and the device's queue ---- */

struct fz_qview {
  bool ready;
  uint16_t num, last_avail, used_idx;
  uint64_t desc, avail, used; /* GPAs the device uses */
};

static struct fz_qview qview(struct virtio_mmio_dev *dev, uint16_t qi) {
  struct virtq *q = &dev->queues[qi];
  return (struct fz_qview){q->ready, q->num, q->last_avail, q->used_idx, q->desc_gpa, q->avail_gpa, q->used_gpa};
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

/* Walks the chain at head as virtq_pop must; *touches_rings: a writable buffer overlaps this queue's rings
 * (the device's own writes could then change what it reads next, so the outcome is not predicted). */
static struct fz_chain_info walk(struct fz *f, const struct fz_qview *v, uint16_t head, bool *touches_rings) {
  struct fz_chain_info ci = {0};
  uint16_t idx = head;
  for (uint32_t count = 0;; count++) {
    if (idx >= v->num) {
      ci.malformed = "descriptor index out of range";
      return ci;
    }
    if (count >= v->num) {
      ci.malformed = "chain longer than the queue (loop)";
      return ci;
    }
    struct virtq_desc d;
    fz_get(f, v->desc + 16ull * idx, &d, sizeof d);
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      ci.malformed = "indirect descriptor";
      return ci;
    }
    if (!guest_mem_ptr(&f->d.mem, d.addr, d.len)) {
      ci.malformed = "buffer outside guest memory";
      return ci;
    }
    if (d.flags & VIRTQ_DESC_F_WRITE) {
      ci.n_in++;
      ci.in_len += d.len;
      if (touches_rings && (overlaps(d.addr, d.len, v->desc, virtq_desc_bytes(v->num)) ||
                            overlaps(d.addr, d.len, v->avail, virtq_avail_bytes(v->num)) ||
                            overlaps(d.addr, d.len, v->used, virtq_used_bytes(v->num))))
        *touches_rings = true;
    } else {
      if (ci.n_in) {
        ci.malformed = "readable descriptor after a writable one";
        return ci;
      }
      ci.n_out++;
      ci.out_len += d.len;
    }
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) return ci;
    idx = d.next;
  }
}

struct fz_prediction {
  uint32_t serve;   /* chains completed before the first bad one */
  const char *why;  /* the device must enter NEEDS_RESET, and why; NULL: it must not */
  bool unknown;     /* a buffer overlaps the rings: no prediction */
};

static struct fz_prediction predict(struct fz *f, uint16_t qi, const struct fz_qview *v) {
  struct fz_prediction p = {0};
  uint16_t pending = (uint16_t)(get16(f, v->avail + VIRTQ_AVAIL_IDX_OFF) - v->last_avail);
  if (pending > v->num) {
    p.why = "available index ran more than a queue size ahead";
    return p;
  }
  for (uint16_t i = 0; i < pending; i++) {
    uint16_t slot = (uint16_t)(v->last_avail + i) & (v->num - 1);
    uint16_t head = get16(f, v->avail + VIRTQ_AVAIL_RING_OFF + 2ull * slot);
    bool touches = false;
    struct fz_chain_info ci = walk(f, v, head, &touches);
    if (touches) p.unknown = true;
    const char *why = ci.malformed ? ci.malformed : f->ad->rejects(qi, &ci);
    if (why) {
      p.why = why;
      return p;
    }
    p.serve++;
  }
  return p;
}

/* ---- the fake guest's side of the rings ---- */

static bool needs_reset(struct fz *f) { return fd_rd(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET; }

/* Takes new used elements of qi: ids must be in range, and the used length within the chain's writable bytes. */
static void consume_used(struct fz *f, uint16_t qi) {
  struct fake_queue *q = &f->d.q[qi];
  if (!f->q_usable[qi]) return;
  pthread_mutex_lock(&f->d.dev->lock);
  struct fz_qview v = qview(f->d.dev, qi);
  uint16_t idx = __atomic_load_n((uint16_t *)fd_ptr(&f->d, q->used + VIRTQ_USED_IDX_OFF), __ATOMIC_ACQUIRE);
  pthread_mutex_unlock(&f->d.dev->lock);
  bool same_rings = v.ready && v.num == q->num && v.desc == q->desc && v.avail == q->avail && v.used == q->used;
  if (same_rings && !f->aliased)
    FZ_CHECK(f, idx == v.used_idx, "queue %u: used idx in guest memory %u, device's %u", qi, idx, v.used_idx);
  uint16_t n = (uint16_t)(idx - q->used_seen);
  if (n > q->num) { /* the guest posted bogus indices; the device followed them: skip to the newest */
    q->used_seen = (uint16_t)(idx - q->num);
    n = q->num;
  }
  for (uint16_t k = 0; k < n; k++) {
    struct virtq_used_elem e;
    fz_get(f, q->used + VIRTQ_USED_RING_OFF + 8ull * (q->used_seen % q->num), &e, sizeof e);
    q->used_seen++;
    f->st.served++;
    /* Only for a driver that kept its own books straight: otherwise a descriptor may have been rewritten or
     * reused between the device's pop and this read, and the chain walked here is not the one it served. */
    if (same_rings && !f->aliased && !f->tainted && !(f->desc_dirty & (1u << qi))) {
      FZ_CHECK(f, e.id < q->num, "used id %u on queue %u of size %u", e.id, qi, q->num);
      struct fz_chain_info ci = walk(f, &v, (uint16_t)e.id, NULL);
      if (!ci.malformed && e.len > ci.in_len && verbose) { /* the chain as the guest sees it now */
        for (uint16_t i = (uint16_t)e.id, g = 0; i < q->num && g < 8; g++) {
          struct virtq_desc *dd = fd_desc(&f->d, qi, i);
          dprintf(err_fd, "desc %u: addr %#llx len %u flags %#x next %u busy %u\n", i, (unsigned long long)dd->addr,
                  dd->len, dd->flags, dd->next, q->busy[i]);
          if (!(dd->flags & VIRTQ_DESC_F_NEXT)) break;
          i = dd->next;
        }
        dprintf(err_fd, "used_seen %u idx %u avail_idx %u dev last_avail %u used_idx %u num %u\n", q->used_seen, idx,
                q->avail_idx, v.last_avail, v.used_idx, v.num);
      }
      if (!ci.malformed)
        FZ_CHECK(f, e.len <= ci.in_len, "queue %u: used len %u > writable bytes %" PRIu64, qi, e.len, ci.in_len);
    }
    for (uint16_t i = (uint16_t)e.id, guard = 0; i < q->num && guard < q->num; guard++) {
      q->busy[i] = 0;
      struct virtq_desc *dd = fd_desc(&f->d, qi, i);
      if (!(dd->flags & VIRTQ_DESC_F_NEXT)) break;
      i = dd->next;
    }
    if (f->ad->on_used && e.id < q->num) f->ad->on_used(f, qi, e.id, e.len);
  }
  f->desc_dirty &= ~(1u << qi);
}

static void consume_all(struct fz *f) {
  for (uint16_t i = 0; i < f->d.dev->num_queues; i++) consume_used(f, i);
}

enum layout { LAYOUT_GOOD, LAYOUT_AT_END, LAYOUT_MISALIGNED, LAYOUT_BEYOND, LAYOUT_HIGH, LAYOUT_OVERLAP, N_LAYOUT };

/* Programs queue qi (§4.2.3.2) with rings placed per `lay`; returns what QueueReady reads back. */
static uint32_t setup_queue(struct fz *f, uint16_t qi, uint16_t num, enum layout lay, uint64_t *ring_bump) {
  struct fake_queue *q = &f->d.q[qi];
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_SEL, qi);
  bool was_ready = fd_rd(&f->d, VIRTIO_MMIO_QUEUE_READY); /* then the layout writes below are ignored */
  memset(q, 0, sizeof *q);
  q->num = num;
  uint64_t n1 = num ? num : 1;
  uint64_t need = 16 * n1 + 16 + 6 + 2 * n1 + 8 + 6 + 8 * n1 + 8;
  uint64_t base = (*ring_bump + 15) & ~15ull;
  if (lay == LAYOUT_AT_END) base = (FZ_MEM_SIZE - need) & ~15ull;
  else *ring_bump = base + need;
  q->desc = base;
  q->avail = (q->desc + 16 * n1 + 1) & ~1ull;
  q->used = (q->avail + 6 + 2 * n1 + 3) & ~3ull;
  switch (lay) {
  case LAYOUT_MISALIGNED: q->desc += 8; q->used += 2; break;
  case LAYOUT_BEYOND: q->used = FZ_MEM_SIZE - 4; break;
  case LAYOUT_HIGH: q->avail |= (uint64_t)(1 + fz_below(&f->rng, 0xffffffffu)) << 32; break;
  case LAYOUT_OVERLAP: q->avail = q->desc + 16ull * fz_below(&f->rng, (uint32_t)n1); break;
  default: break;
  }
  f->q_usable[qi] = num && !(num & (num - 1)) && num <= VIRTQ_MAX_SIZE &&
                    guest_mem_ptr(&f->d.mem, q->desc, 16ull * num) &&
                    guest_mem_ptr(&f->d.mem, q->avail, virtq_avail_bytes(num) + 2) &&
                    guest_mem_ptr(&f->d.mem, q->used, virtq_used_bytes(num) + 2) && lay != LAYOUT_OVERLAP;
  if (f->q_usable[qi]) {
    memset(fd_ptr(&f->d, q->desc), 0, 16ull * num);
    memset(fd_ptr(&f->d, q->avail), 0, virtq_avail_bytes(num) + 2);
    memset(fd_ptr(&f->d, q->used), 0, virtq_used_bytes(num) + 2);
  }
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_SEL, qi);
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_NUM, num);
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)q->desc);
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(q->desc >> 32));
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)q->avail);
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(q->avail >> 32));
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)q->used);
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(q->used >> 32));
  fd_wr(&f->d, VIRTIO_MMIO_QUEUE_READY, 1);
  uint32_t ready = fd_rd(&f->d, VIRTIO_MMIO_QUEUE_READY);
  bool valid_layout = lay == LAYOUT_GOOD || lay == LAYOUT_AT_END || lay == LAYOUT_OVERLAP;
  bool valid_num = num && !(num & (num - 1)) && num <= f->d.dev->queue_num_max;
  if (was_ready) {
    f->q_usable[qi] = false;
    return ready;
  }
  if (!valid_layout || !valid_num) {
    f->st.bad_layouts++;
    FZ_CHECK(f, ready == 0 && needs_reset(f), "queue %u accepted a bad layout %d (num %u)", qi, lay, num);
  }
  if (!ready) f->q_usable[qi] = false;
  return ready;
}

static uint16_t pick_num(struct fz *f) {
  uint16_t max = f->d.dev->queue_num_max;
  if (fz_chance(&f->rng, 5)) return (uint16_t)fz_below(&f->rng, 600); /* mostly invalid */
  uint16_t n = 1;
  uint32_t shift = fz_below(&f->rng, 9);
  for (uint32_t i = 0; i < shift && n < max; i++) n <<= 1;
  return n;
}

static bool reset_seen; /* the driver wrote Status 0 during the current op */

static void status(struct fz *f, uint32_t v) {
  if (!v) reset_seen = true;
  fd_wr(&f->d, VIRTIO_MMIO_STATUS, v);
}

/* Transport invariants that hold whatever the driver did, checked after every op. */
static void check_invariants(struct fz *f, bool needs_reset_before) {
  pthread_mutex_lock(&f->d.dev->lock);
  uint32_t st = f->d.dev->status;
  uint64_t drv = f->d.dev->driver_features, offered = f->d.dev->device_features;
  pthread_mutex_unlock(&f->d.dev->lock);
  if ((st & VIRTIO_CONFIG_S_DRIVER_OK) && !(st & VIRTIO_CONFIG_S_NEEDS_RESET))
    FZ_CHECK(f, st & VIRTIO_CONFIG_S_FEATURES_OK, "running with status %#x (no FEATURES_OK)", st);
  /* §3.1.1: FEATURES_OK stands only for a subset of the offer with VERSION_1 (features are frozen after it). */
  if (st & VIRTIO_CONFIG_S_FEATURES_OK)
    FZ_CHECK(f, !(drv & ~offered) && (drv & (1ull << VIRTIO_F_VERSION_1)),
             "FEATURES_OK with driver features %#" PRIx64 " (offered %#" PRIx64 ")", drv, offered);
  /* §2.1.2: NEEDS_RESET stays until the driver resets the device. */
  if (needs_reset_before && !reset_seen)
    FZ_CHECK(f, st & VIRTIO_CONFIG_S_NEEDS_RESET, "NEEDS_RESET cleared without a reset (status %#x)", st);
}

static void write_features(struct fz *f, uint64_t features) {
  fd_wr(&f->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  fd_wr(&f->d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
  fd_wr(&f->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  fd_wr(&f->d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

static void after_reset(struct fz *f) {
  memset(f->q_usable, 0, sizeof f->q_usable);
  f->aliased = f->tainted = false;
  for (int i = 0; i < VIRTIO_MAX_QUEUES; i++) memset(&f->d.q[i], 0, sizeof f->d.q[i]);
  f->desc_dirty = 0;
  if (f->ad->on_reset) f->ad->on_reset(f);
}

/* §3.1.1 by the book (mostly), with random features, sizes and layouts. */
static void init_by_the_book(struct fz *f) {
  uint64_t offered = fd_device_features(&f->d);
  uint64_t features = (offered & fz_next(&f->rng)) | (1ull << VIRTIO_F_VERSION_1);
  if (fz_chance(&f->rng, 5)) features |= 1ull << fz_below(&f->rng, 64); /* maybe not offered */
  if (fz_chance(&f->rng, 3)) features &= ~(1ull << VIRTIO_F_VERSION_1);
  status(f, 0);
  after_reset(f);
  f->st.resets++;
  status(f, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  status(f, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  write_features(f, features);
  uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
  status(f, st);
  bool accepted = fd_rd(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK;
  bool acceptable = !(features & ~offered) && (features & (1ull << VIRTIO_F_VERSION_1));
  FZ_CHECK(f, accepted == acceptable, "features %#" PRIx64 " (offered %#" PRIx64 ") accepted=%d", features, offered,
           accepted);
  if (!accepted) return;
  f->d.event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
  uint64_t ring_bump = FZ_RING_AREA;
  bool end_taken = false;
  for (uint16_t i = 0; i < f->d.dev->num_queues; i++) {
    enum layout lay = fz_chance(&f->rng, 90) ? LAYOUT_GOOD : (enum layout)fz_below(&f->rng, N_LAYOUT);
    if (lay == LAYOUT_AT_END && end_taken) lay = LAYOUT_GOOD; /* one queue at the end; two would share rings */
    end_taken |= lay == LAYOUT_AT_END;
    uint16_t num = fz_chance(&f->rng, 95) ? pick_num(f) : (uint16_t)fz_below(&f->rng, 0x10000);
    setup_queue(f, i, num, lay, &ring_bump);
  }
  status(f, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Steps of the init sequence in random order, with random values. */
static void init_chaotic(struct fz *f) {
  uint64_t ring_bump = FZ_RING_AREA;
  /* Without a reset first, a queue set up here may land on the rings of one still live: rings shared across
   * queues are the guest's right to try, but the used rings then say nothing the checks could rely on. */
  f->tainted = f->aliased = true;
  if (fz_chance(&f->rng, 70)) {
    status(f, 0);
    after_reset(f);
    f->st.resets++;
  }
  uint32_t steps = 1 + fz_below(&f->rng, 12);
  for (uint32_t s = 0; s < steps; s++) {
    switch (fz_below(&f->rng, 7)) {
    case 0: status(f, (uint32_t)fz_next(&f->rng) & 0x1ff); break;
    case 1: status(f, fd_rd(&f->d, VIRTIO_MMIO_STATUS) | (1u << fz_below(&f->rng, 8))); break;
    case 2:
      fd_wr(&f->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, fz_below(&f->rng, 4));
      fd_wr(&f->d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)fz_next(&f->rng));
      break;
    case 3: write_features(f, fd_device_features(&f->d)); break;
    case 4: setup_queue(f, (uint16_t)fz_below(&f->rng, f->d.dev->num_queues), pick_num(f), LAYOUT_GOOD, &ring_bump); break;
    case 5: fd_wr(&f->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, fz_below(&f->rng, 3)); fd_rd(&f->d, VIRTIO_MMIO_DEVICE_FEATURES); break;
    default: fd_wr(&f->d, VIRTIO_MMIO_QUEUE_READY, fz_below(&f->rng, 2)); break;
    }
  }
  /* The queues the driver set up by the book above are ours; any queue it did not is unusable to post on. */
  pthread_mutex_lock(&f->d.dev->lock);
  for (uint16_t i = 0; i < f->d.dev->num_queues; i++) {
    struct fz_qview v = qview(f->d.dev, i);
    struct fake_queue *q = &f->d.q[i];
    if (!v.ready || v.num != q->num || v.desc != q->desc) f->q_usable[i] = false;
  }
  pthread_mutex_unlock(&f->d.dev->lock);
}

enum mutation { M_ADDR, M_LEN, M_LOOP, M_NEXT, M_INDIRECT, M_FLIP_WRITE, M_HEAD, M_TRUNCATE, M_FLAGS, M_INTO_RING,
                N_MUT };

static uint64_t wild_addr(struct fz *f) {
  switch (fz_below(&f->rng, 6)) {
  case 0: return FZ_MEM_SIZE - fz_below(&f->rng, 64);
  case 1: return FZ_MEM_SIZE + fz_below(&f->rng, FZ_GUARD * 2);
  case 2: return UINT64_MAX - fz_below(&f->rng, 4096);
  case 3: return (uint64_t)fz_below(&f->rng, 0xffffffffu) << 32;
  case 4: return fz_below(&f->rng, FZ_MEM_SIZE);
  default: return fz_next(&f->rng);
  }
}

/* Writes a chain on queue qi (random free descriptors), mutates it if asked, publishes it. */
static bool post(struct fz *f, uint16_t qi, bool mutate) {
  struct fake_queue *q = &f->d.q[qi];
  if (!f->q_usable[qi]) return false;
  struct fz_buf bufs[FZ_MAX_BUFS];
  int n = f->ad->build(f, qi, bufs);
  if (n <= 0 || n > q->num) return false;
  /* n distinct free descriptors, at random places in the table. */
  uint16_t idx[FZ_MAX_BUFS], free_idx[VIRTQ_MAX_SIZE];
  int n_free = 0;
  for (uint16_t i = 0; i < q->num; i++)
    if (!q->busy[i]) free_idx[n_free++] = i;
  if (n_free < n) return false;
  for (int j = 0; j < n; j++) {
    int k = j + (int)fz_below(&f->rng, (uint32_t)(n_free - j));
    uint16_t t = free_idx[j];
    free_idx[j] = free_idx[k];
    free_idx[k] = t;
    idx[j] = free_idx[j];
  }
  for (int j = 0; j < n; j++) {
    q->busy[idx[j]] = 1;
    *fd_desc(&f->d, qi, idx[j]) = (struct virtq_desc){
        bufs[j].gpa, bufs[j].len,
        (uint16_t)((bufs[j].write ? VIRTQ_DESC_F_WRITE : 0) | (j + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
        j + 1 < n ? idx[j + 1] : 0};
  }
  uint16_t head = idx[0];
  if (mutate) {
    uint32_t k = 1 + fz_below(&f->rng, 3);
    for (uint32_t m = 0; m < k; m++) {
      struct virtq_desc *d = fd_desc(&f->d, qi, idx[fz_below(&f->rng, (uint32_t)n)]);
      switch ((enum mutation)fz_below(&f->rng, N_MUT)) {
      case M_ADDR: d->addr = wild_addr(f); break;
      case M_LEN: d->len = fz_chance(&f->rng, 50) ? UINT32_MAX - fz_below(&f->rng, 16) : (uint32_t)fz_next(&f->rng) % (2 * FZ_MEM_SIZE); break;
      case M_LOOP: d->flags |= VIRTQ_DESC_F_NEXT; d->next = idx[fz_below(&f->rng, (uint32_t)n)]; break;
      case M_NEXT: d->flags |= VIRTQ_DESC_F_NEXT; d->next = (uint16_t)(q->num + fz_below(&f->rng, 0x10000 - q->num)); break;
      case M_INDIRECT: d->flags |= VIRTQ_DESC_F_INDIRECT; break;
      case M_FLIP_WRITE: d->flags ^= VIRTQ_DESC_F_WRITE; break;
      case M_HEAD: head = (uint16_t)(q->num + fz_below(&f->rng, 0x10000 - q->num)); break;
      case M_TRUNCATE: d->flags &= ~VIRTQ_DESC_F_NEXT; break;
      case M_FLAGS: d->flags ^= (uint16_t)(1u << (3 + fz_below(&f->rng, 13))); break;
      default: d->addr = q->desc + fz_below(&f->rng, 16u * q->num); d->len = 1 + fz_below(&f->rng, 64); break;
      }
    }
    f->st.posted_mutated++;
    f->tainted = true;
  } else {
    f->st.posted_good++;
  }
  /* A writable buffer over any ring lets the device scribble on it (the guest's own doing): from then on the
   * used ring may hold garbage, so its elements are no longer checked. */
  for (int j = 0; j < n; j++) {
    struct virtq_desc *d = fd_desc(&f->d, qi, idx[j]);
    for (int r = 0; r < VIRTIO_MAX_QUEUES && (d->flags & VIRTQ_DESC_F_WRITE); r++) {
      struct fake_queue *o = &f->d.q[r];
      if (o->num && (overlaps(d->addr, d->len, o->desc, virtq_desc_bytes(o->num)) ||
                     overlaps(d->addr, d->len, o->avail, virtq_avail_bytes(o->num) + 2) ||
                     overlaps(d->addr, d->len, o->used, virtq_used_bytes(o->num) + 2)))
        f->aliased = true;
    }
  }
  put16(f, q->avail + VIRTQ_AVAIL_RING_OFF + 2ull * (q->avail_idx % q->num), head);
  q->avail_idx++;
  __atomic_store_n((uint16_t *)fd_ptr(&f->d, q->avail + VIRTQ_AVAIL_IDX_OFF), q->avail_idx, __ATOMIC_RELEASE);
  return true;
}

/* Notifies queue qi (any value, also unready or nonexistent queues) and checks the outcome against the model. */
static void kick(struct fz *f, uint32_t qi) {
  struct virtio_mmio_dev *dev = f->d.dev;
  bool valid_q = qi < dev->num_queues;
  pthread_mutex_lock(&dev->lock);
  bool running = virtio_dev_running(dev);
  struct fz_qview v = valid_q ? qview(dev, (uint16_t)qi) : (struct fz_qview){0};
  struct fz_prediction p = {0};
  bool sync = valid_q && f->ad->synchronous((uint16_t)qi);
  /* A queue with a kick eventfd (KVM_IOEVENTFD in a real VM): sometimes kicked through it, served on the event loop
   * thread while this thread goes on (no prediction then; the race with MMIO kicks and destroy is the point). */
  int kfd = valid_q ? virtio_mmio_kick_fd(dev, (uint16_t)qi) : -1;
  bool via_fd = kfd >= 0 && fz_chance(&f->rng, 30);
  if (via_fd) sync = false;
  if (running && v.ready && sync) p = predict(f, (uint16_t)qi, &v);
  /* vsock answers a tx packet on rx: a bad rx chain may fail the device too. */
  bool other_may_fail = false;
  for (uint16_t i = 0; i < dev->num_queues; i++) {
    struct fz_qview o = qview(dev, i);
    if (i != qi && o.ready && !f->ad->synchronous(i) && predict(f, i, &o).why) other_may_fail = true;
  }
  pthread_mutex_unlock(&dev->lock);
  f->st.kicks++;
  if (via_fd) {
    uint64_t one = 1;
    FZ_CHECK(f, write(kfd, &one, sizeof one) == sizeof one, "queue %u: kick eventfd write failed", qi);
  } else {
    fd_wr(&f->d, VIRTIO_MMIO_QUEUE_NOTIFY, qi);
  }
  pthread_mutex_lock(&dev->lock);
  uint32_t st = dev->status;
  uint16_t used_after = valid_q ? dev->queues[qi].used_idx : 0;
  pthread_mutex_unlock(&dev->lock);
  if (!valid_q) return;
  uint16_t served = (uint16_t)(used_after - v.used_idx);
  if (!running || !v.ready) {
    if (sync) FZ_CHECK(f, served == 0, "queue %u served %u chains while not running/ready", qi, served);
    return;
  }
  if (!sync || p.unknown || f->aliased) return; /* the device may have written over a ring: no prediction */
  bool nr = st & VIRTIO_CONFIG_S_NEEDS_RESET;
  if (p.why) {
    f->st.predicted_rejects++;
    FZ_CHECK(f, nr, "queue %u: model rejects a chain (%s) but the device did not enter NEEDS_RESET", qi, p.why);
    if (!other_may_fail)
      FZ_CHECK(f, served == p.serve, "queue %u: served %u chains before the bad one, model %u", qi, served, p.serve);
  } else if (!other_may_fail) {
    FZ_CHECK(f, !nr, "queue %u: device entered NEEDS_RESET on chains the model accepts", qi);
    FZ_CHECK(f, served == p.serve, "queue %u: served %u chains, model %u", qi, served, p.serve);
  }
}

/* MMIO access at any offset and width (config space included); config space must stay read-only. */
static void mmio_random(struct fz *f, bool write) {
  static const uint32_t lens[] = {1, 2, 3, 4, 4, 4, 8, 16};
  uint64_t off = fz_chance(&f->rng, 50) ? VIRTIO_MMIO_CONFIG + fz_below(&f->rng, 0x100) : fz_below(&f->rng, 0x1000);
  if (fz_chance(&f->rng, 2)) off = fz_next(&f->rng);
  uint32_t len = lens[fz_below(&f->rng, sizeof lens / sizeof lens[0])];
  uint8_t buf[16];
  if (!write) {
    virtio_mmio_read(f->d.dev, off, buf, len);
    f->st.mmio_reads++;
    return;
  }
  /* Writes that would only re-run init are skipped: those are ops of their own. */
  if (off == VIRTIO_MMIO_STATUS && len == 4) return;
  uint64_t r = fz_next(&f->rng), r2 = fz_next(&f->rng);
  memcpy(buf, &r, 8);
  memcpy(buf + 8, &r2, 8);
  if (off == VIRTIO_MMIO_QUEUE_NOTIFY) return;
  /* An InterruptACK the way KVM_IOEVENTFD hands it over (device with an ACK eventfd): no exit, taken later. */
  int ack = virtio_mmio_ack_fd(f->d.dev);
  if (ack >= 0 && fz_chance(&f->rng, 20)) {
    FZ_CHECK(f, eventfd_write(ack, 1) == 0, "InterruptACK eventfd write failed");
    f->st.mmio_writes++;
    return;
  }
  uint8_t cfg_before[VIRTIO_CONFIG_MAX], cfg_after[VIRTIO_CONFIG_MAX];
  memcpy(cfg_before, f->d.dev->config, sizeof cfg_before);
  virtio_mmio_write(f->d.dev, off, buf, len);
  memcpy(cfg_after, f->d.dev->config, sizeof cfg_after);
  f->st.mmio_writes++;
  FZ_CHECK(f, !memcmp(cfg_before, cfg_after, sizeof cfg_before), "config space changed by a write at %#" PRIx64, off);
  /* Queue registers of the selected queue may have changed while it was not ready: our layout is stale. */
  for (int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
    if (!f->q_usable[i]) continue;
    pthread_mutex_lock(&f->d.dev->lock);
    struct fz_qview v = qview(f->d.dev, (uint16_t)i);
    pthread_mutex_unlock(&f->d.dev->lock);
    if (v.desc != f->d.q[i].desc || v.avail != f->d.q[i].avail || v.used != f->d.q[i].used || v.num != f->d.q[i].num)
      f->q_usable[i] = false;
  }
}

/* Every offset of the window and past it at every width: reads never fault, config writes change nothing. */
static void sweep_registers(struct fz *f) {
  uint8_t buf[16];
  for (uint64_t off = 0; off < 0x210; off++)
    for (uint32_t len = 1; len <= 9; len++) {
      virtio_mmio_read(f->d.dev, off, buf, len);
      if (off >= VIRTIO_MMIO_CONFIG) {
        memset(buf, 0xa5, sizeof buf);
        virtio_mmio_write(f->d.dev, off, buf, len);
      }
    }
  uint8_t cfg[VIRTIO_CONFIG_MAX] = {0};
  memcpy(cfg, f->d.dev->config, f->d.dev->config_len);
  for (uint32_t off = 0; off < f->d.dev->config_len; off++) {
    virtio_mmio_read(f->d.dev, VIRTIO_MMIO_CONFIG + off, buf, 1);
    FZ_CHECK(f, buf[0] == cfg[off], "config byte %u reads %#x, not %#x", off, buf[0], cfg[off]);
  }
}

/* Save + restore with the indices moved near 2^16 (as a restored, long-running device has them): the next
 * chains cross the wrap. Only on an idle queue, so the indices stay consistent with the ring. */
static void wrap_indices(struct fz *f, uint16_t qi) {
  struct fake_queue *q = &f->d.q[qi];
  if (!f->q_usable[qi]) return;
  struct virtio_mmio_dev *dev = f->d.dev;
  pthread_mutex_lock(&dev->lock);
  struct virtio_dev_state s;
  virtio_dev_save(dev, &s);
  struct virtio_queue_state *qs = &s.queues[qi];
  bool idle = qs->ready && qs->last_avail == q->avail_idx && qs->used_idx == q->used_seen &&
              qs->num == q->num && qs->desc_gpa == q->desc;
  if (idle) {
    uint16_t to = (uint16_t)(0x10000 - 1 - fz_below(&f->rng, 8));
    qs->last_avail = qs->used_idx = qs->signalled_used = to;
    q->avail_idx = q->used_seen = q->kick_old = to;
    put16(f, q->avail + VIRTQ_AVAIL_IDX_OFF, to);
    put16(f, q->used + VIRTQ_USED_IDX_OFF, to);
    char err[256];
    FZ_CHECK(f, virtio_dev_restore(dev, &s, err, sizeof err) == 0, "restore of a saved state failed: %s", err);
  }
  pthread_mutex_unlock(&dev->lock);
}

enum op { OP_POST, OP_POST_MUT, OP_KICK, OP_KICK_ANY, OP_AVAIL_IDX, OP_RAW, OP_READ, OP_WRITE, OP_RESET,
          OP_READY_TOGGLE, OP_REINIT, OP_WRAP, OP_USED_EVENT, OP_HOST, N_OP };
static const uint8_t op_weight[N_OP] = {30, 12, 22, 3, 2, 3, 4, 4, 1, 1, 2, 1, 2, 8};

static enum op pick_op(struct fz *f) {
  uint32_t total = 0;
  for (int i = 0; i < N_OP; i++) total += op_weight[i];
  uint32_t r = fz_below(&f->rng, total);
  for (int i = 0; i < N_OP; i++) {
    if (r < op_weight[i]) return (enum op)i;
    r -= op_weight[i];
  }
  return OP_KICK;
}

static uint16_t some_queue(struct fz *f) { return (uint16_t)fz_below(&f->rng, f->d.dev->num_queues); }

bool fz_post(struct fz *f, uint16_t qi, bool mutate) { return post(f, qi, mutate); }
void fz_kick(struct fz *f, uint32_t qi) { kick(f, qi); }
void fz_consume(struct fz *f) { consume_all(f); }

static void one_op(struct fz *f) {
  uint16_t qi = some_queue(f);
  struct fake_queue *q = &f->d.q[qi];
  f->st.ops++;
  enum op op = pick_op(f);
  static const char *op_names[N_OP] = {"post", "post-mutated", "kick", "kick-any", "avail-idx", "raw", "read",
                                       "write", "reset", "ready-toggle", "reinit", "wrap", "used-event", "host"};
  TRACE("%s(q%u)", op_names[op], qi);
  switch (op) {
  case OP_POST:
    for (uint32_t n = 1 + fz_below(&f->rng, 4); n; n--) post(f, qi, false);
    if (fz_chance(&f->rng, 60)) kick(f, qi);
    break;
  case OP_POST_MUT:
    post(f, qi, true);
    if (fz_chance(&f->rng, 80)) kick(f, qi);
    break;
  case OP_KICK: kick(f, qi); break;
  case OP_KICK_ANY: kick(f, fz_chance(&f->rng, 50) ? f->d.dev->num_queues + fz_below(&f->rng, 4) : (uint32_t)fz_next(&f->rng)); break;
  case OP_AVAIL_IDX:
    if (f->q_usable[qi]) {
      uint16_t v = fz_chance(&f->rng, 50) ? (uint16_t)(q->avail_idx + q->num + 1 + fz_below(&f->rng, 100)) : (uint16_t)fz_next(&f->rng);
      put16(f, q->avail + VIRTQ_AVAIL_IDX_OFF, v);
      q->avail_idx = v;
      f->tainted = true;
      kick(f, qi);
    }
    break;
  case OP_RAW:
    if (f->q_usable[qi]) {
      uint64_t span = 16ull * q->num + virtq_avail_bytes(q->num);
      uint64_t at = q->desc + fz_below(&f->rng, (uint32_t)span);
      if (at >= q->desc + 16ull * q->num) at = q->avail + (at - q->desc - 16ull * q->num);
      uint8_t b = (uint8_t)fz_next(&f->rng);
      fz_put(f, at, &b, 1);
      f->desc_dirty |= 1u << qi;
      f->tainted = true;
      if (fz_chance(&f->rng, 70)) kick(f, qi);
    }
    break;
  case OP_READ: mmio_random(f, false); break;
  case OP_WRITE:
    mmio_random(f, true);
    f->tainted = true;
    break;
  case OP_RESET: {
    status(f, 0);
    after_reset(f);
    f->st.resets++;
    FZ_CHECK(f, fd_rd(&f->d, VIRTIO_MMIO_STATUS) == 0, "status not 0 after reset");
    for (uint16_t i = 0; i < f->d.dev->num_queues; i++) {
      fd_wr(&f->d, VIRTIO_MMIO_QUEUE_SEL, i);
      FZ_CHECK(f, fd_rd(&f->d, VIRTIO_MMIO_QUEUE_READY) == 0, "queue %u still ready after reset", i);
    }
    break;
  }
  case OP_READY_TOGGLE:
    f->tainted = true;
    fd_wr(&f->d, VIRTIO_MMIO_QUEUE_SEL, qi);
    fd_wr(&f->d, VIRTIO_MMIO_QUEUE_READY, 0);
    if (fz_chance(&f->rng, 50)) kick(f, qi); /* notify on an unready queue: ignored */
    /* The rings are made consistent before QueueReady, as a driver does: a kick through an eventfd may be served on
     * the event loop the moment the queue is ready again. */
    if (f->q_usable[qi]) {
      q->used_seen = 0;
      put16(f, q->used + VIRTQ_USED_IDX_OFF, 0);
    }
    fd_wr(&f->d, VIRTIO_MMIO_QUEUE_READY, 1); /* re-activation starts the indices at 0 again */
    if (!fd_rd(&f->d, VIRTIO_MMIO_QUEUE_READY)) f->q_usable[qi] = false;
    kick(f, qi);
    break;
  case OP_REINIT:
    if (fz_chance(&f->rng, 70)) init_by_the_book(f);
    else init_chaotic(f);
    break;
  case OP_WRAP: wrap_indices(f, qi); break;
  case OP_USED_EVENT:
    if (f->q_usable[qi]) {
      put16(f, q->avail + VIRTQ_AVAIL_RING_OFF + 2ull * q->num, (uint16_t)fz_next(&f->rng));
      put16(f, q->avail + VIRTQ_AVAIL_FLAGS_OFF, (uint16_t)fz_below(&f->rng, 4));
    }
    break;
  case OP_HOST:
    if (f->ad->host_op) {
      f->ad->host_op(f);
      f->st.host_ops++;
    }
    break;
  default: break;
  }
  /* NEEDS_RESET is sticky until the driver resets (§2.1.2); the guest side takes what was used. */
  consume_all(f);
}

static void iteration(struct fz *f, uint32_t ops) {
  f->st.iterations++;
  TRACE("|iteration %" PRIu64, f->st.iterations);
  if (fz_chance(&f->rng, 85)) init_by_the_book(f);
  else init_chaotic(f);
  bool nr = false;
  for (uint32_t i = 0; i < ops; i++) {
    reset_seen = false;
    if (nr && fz_chance(&f->rng, 25)) { /* a driver that recovers, as Linux does not */
      TRACE("reinit");
      init_by_the_book(f);
    }
    else one_op(f);
    check_invariants(f, nr);
    pthread_mutex_lock(&f->d.dev->lock);
    bool now = f->d.dev->status & VIRTIO_CONFIG_S_NEEDS_RESET;
    pthread_mutex_unlock(&f->d.dev->lock);
    if (now && (!nr || reset_seen)) f->st.needs_reset++;
    nr = now;
  }
  drain_stderr();
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Guest RAM between two PROT_NONE guard regions. */
static void map_guest(struct fz *f) {
  uint8_t *p = mmap(NULL, FZ_MEM_SIZE + 2ull * FZ_GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  CHECK(mprotect(p + FZ_GUARD, FZ_MEM_SIZE, PROT_READ | PROT_WRITE) == 0);
  f->d.mem = (struct guest_mem){p + FZ_GUARD, FZ_MEM_SIZE};
  f->d.env.mem = &f->d.mem;
  f->d.env.irq = (struct irq_line){eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), 5};
  CHECK(f->d.env.irq.eventfd >= 0);
}

static void new_device(struct fz *f) {
  char err[512] = "";
  f->d.dev = f->ad->create(f, err, sizeof err);
  if (!f->d.dev) {
    dprintf(err_fd, "virtio_fuzz: cannot create %s: %s\n", f->ad->name, err);
    fz_fail_exit();
  }
  after_reset(f);
  sweep_registers(f);
}

static void destroy_device(struct fz *f) {
  virtio_mmio_destroy(f->d.dev);
  f->d.dev = NULL;
  if (f->ad->teardown) f->ad->teardown(f);
}

static void run_device(struct fz *f, uint64_t iterations, double seconds, uint32_t ops, uint64_t recreate_every) {
  double end = now_s() + seconds;
  new_device(f);
  for (uint64_t i = 0; seconds > 0 ? now_s() < end : i < iterations; i++) {
    if (i && i % recreate_every == 0) {
      destroy_device(f);
      new_device(f);
      f->st.recreated++;
    }
    uint64_t ext = fz_next(&f->rng); /* keep the per-iteration stream stable whatever the ops consumed */
    struct fz_rng saved = f->rng;
    f->rng.s ^= ext;
    iteration(f, 1 + fz_below(&f->rng, ops));
    f->rng = saved;
    uint64_t n; /* interrupts raised: drained so the eventfd counter never saturates */
    if (read(f->d.env.irq.eventfd, &n, sizeof n) < 0 && errno != EAGAIN) break;
  }
  destroy_device(f);
  drain_stderr();
}

static void usage(void) {
  fprintf(stdout, "usage: virtio_fuzz [--seed N] [--iterations N | --seconds N] [--ops N] [--device blk,rng,vsock] [-v]\n"
                  "  --iterations N  driver sessions per device (default 300)\n"
                  "  --seconds N     run this long in total instead (split between the devices)\n"
                  "  --ops N         at most N operations per session (default 48)\n");
}

int main(int argc, char **argv) {
  uint64_t seed = 1, iterations = 300;
  double seconds = 0;
  uint32_t ops = 48;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--seed") && v) seed = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--iterations") && v) iterations = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--seconds") && v) seconds = strtod(v, NULL), i++;
    else if (!strcmp(a, "--ops") && v) ops = (uint32_t)strtoul(v, NULL, 0), i++;
    else if (!strcmp(a, "--device") && v) only = v, i++;
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = true;
    else {
      usage();
      return !strcmp(a, "--help") || !strcmp(a, "-h") ? 0 : 2;
    }
  }
  if (!ops) ops = 1;
  capture_stderr();
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  int n_run = 0;
  for (size_t a = 0; a < N_ADAPTERS; a++) n_run += !only || strstr(only, adapters[a]->name) != NULL;
  if (!n_run) {
    usage();
    return 2;
  }
  printf("virtio_fuzz: seed %" PRIu64 ", %s %g per device, up to %u ops per iteration\n", seed,
         seconds > 0 ? "seconds" : "iterations", seconds > 0 ? seconds / n_run : (double)iterations, ops);
  double t0 = now_s();
  uint64_t total_iter = 0;
  for (size_t a = 0; a < N_ADAPTERS; a++) {
    if (only && !strstr(only, adapters[a]->name)) continue;
    struct fz *f = calloc(1, sizeof *f);
    CHECK(f);
    f->ad = adapters[a];
    f->rng.s = seed * 0x100000001b3ull + a;
    map_guest(f);
    f->d.env.loop = loop;
    f->d.bump = FZ_DATA_AREA;
    f->data_bump = FZ_DATA_AREA;
    /* Unused guest RAM holds random bytes: whatever the device reads by mistake is not all zeros. */
    struct fz_rng fill = {seed};
    for (uint64_t o = 0; o < FZ_MEM_SIZE; o += 8) *(uint64_t *)(f->d.mem.host + o) = fz_next(&fill);
    double t = now_s();
    run_device(f, iterations, seconds > 0 ? seconds / n_run : 0, ops, 100);
    const struct fz_stats *s = &f->st;
    char extra[256] = "";
    if (f->ad->report) f->ad->report(f, extra, sizeof extra);
    total_iter += s->iterations;
    printf("virtio_fuzz: %-5s iterations %" PRIu64 " ops %" PRIu64 " kicks %" PRIu64 " chains good %" PRIu64
           " mutated %" PRIu64 " served %" PRIu64 " predicted-rejects %" PRIu64 " needs-reset %" PRIu64
           " resets %" PRIu64 " bad-layouts %" PRIu64 " mmio r/w %" PRIu64 "/%" PRIu64 " host-ops %" PRIu64
           " devices %" PRIu64 "%s (%.1f s)\n",
           f->ad->name, s->iterations, s->ops, s->kicks, s->posted_good, s->posted_mutated, s->served,
           s->predicted_rejects, s->needs_reset, s->resets, s->bad_layouts, s->mmio_reads, s->mmio_writes,
           s->host_ops, s->recreated + 1, extra, now_s() - t);
    munmap(f->d.mem.host - FZ_GUARD, FZ_MEM_SIZE + 2ull * FZ_GUARD);
    close(f->d.env.irq.eventfd);
    free(f);
  }
  evloop_destroy(loop);
  printf("virtio_fuzz: %d distinct NEEDS_RESET reasons:", n_reasons);
  for (int i = 0; i < n_reasons; i++) printf("%s %s (%" PRIu64 ")", i ? ";" : "", reasons[i].text, reasons[i].n);
  printf("\nvirtio_fuzz: other device messages %" PRIu64 "\n", other_lines);
  printf("virtio_fuzz: ok, %" PRIu64 " iterations in %.1f s\n", total_iter, now_s() - t0);
  return 0;
}
