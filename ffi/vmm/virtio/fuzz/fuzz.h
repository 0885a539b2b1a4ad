// Virtio ring fuzzer: what the driver (fuzz_main.c) shares with the per-device adapters (fuzz_<dev>.c).
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "../test_driver.h"

/* Guest RAM is small so that random addresses hit its edges often; PROT_NONE guard pages on both sides
 * turn any device access outside it into a SIGSEGV that ASan reports. */
#define FZ_MEM_SIZE (1u << 20)
#define FZ_GUARD (64u << 10)
#define FZ_RING_AREA 0x10000u /* [FZ_RING_AREA, FZ_DATA_AREA): ring placement; above it: buffers */
#define FZ_DATA_AREA 0x40000u
#define FZ_DATA_END (FZ_MEM_SIZE - 0x4000u) /* the top is kept for rings placed at the very end of RAM */
#define FZ_MAX_BUFS 8

/* Deterministic PRNG (splitmix64): the whole run is a function of --seed (host-side timing aside). */
struct fz_rng {
  uint64_t s;
};
static inline uint64_t fz_next(struct fz_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline uint32_t fz_below(struct fz_rng *r, uint32_t n) { return n ? (uint32_t)(fz_next(r) % n) : 0; }
static inline bool fz_chance(struct fz_rng *r, uint32_t percent) { return fz_below(r, 100) < percent; }

struct fz_buf {
  uint64_t gpa;
  uint32_t len;
  bool write; /* device-writable */
};

/* What the model saw walking one chain (§2.7.5): the device must agree on it. */
struct fz_chain_info {
  const char *malformed; /* why the generic split-ring rules reject it, or NULL */
  uint16_t n_out, n_in;
  uint64_t out_len, in_len;
};

struct fz;

struct fz_adapter {
  const char *name;
  /* Creates the device on f->d.env (NULL: message in err). */
  struct virtio_mmio_dev *(*create)(struct fz *f, char *err, size_t errlen);
  /* Builds a well-formed request for queue qi (buffers from fz_alloc); returns the buffer count, 0 for none. */
  int (*build)(struct fz *f, uint16_t qi, struct fz_buf *bufs);
  /* Device-specific rule: why the device must go to NEEDS_RESET on this (generically well-formed) chain. */
  const char *(*rejects)(uint16_t qi, const struct fz_chain_info *ci);
  /* True if a kick on qi pops and completes every pending chain before it returns (the oracle then predicts
   * the outcome exactly); false for queues the device fills later (vsock rx, event). */
  bool (*synchronous)(uint16_t qi);
  /* Optional: the guest read a used element of queue qi (vsock parses packets to learn connections). */
  void (*on_used)(struct fz *f, uint16_t qi, uint32_t id, uint32_t len);
  /* Optional: one host-side action (vsock: connect, send, close). */
  void (*host_op)(struct fz *f);
  /* Optional: called before the device is destroyed / after it was reset by the driver. */
  void (*teardown)(struct fz *f);
  /* Optional: device-specific coverage, appended to the device's summary line. */
  void (*report)(struct fz *f, char *buf, size_t len);
  void (*on_reset)(struct fz *f);
};

struct fz_stats {
  uint64_t iterations, ops, kicks, posted_good, posted_mutated, served, predicted_rejects, needs_reset,
      resets, bad_layouts, mmio_reads, mmio_writes, host_ops, recreated;
};

struct fz {
  struct fake_driver d;
  struct fz_rng rng;
  const struct fz_adapter *ad;
  void *adapter_state;
  uint64_t data_bump;                 /* next free buffer address in the data area (wraps) */
  bool q_usable[VIRTIO_MAX_QUEUES];   /* our own ring layout for the queue lies in guest RAM */
  uint64_t desc_dirty;                /* bit per queue: raw ring mutation since the last used check */
  bool aliased;                       /* a writable buffer overlaps some ring: used elements may be garbage */
  bool tainted;                       /* the driver broke its own ring bookkeeping since the last reset (mutated
                                         or raw-written descriptors, bogus indices, re-activated queues) */
  struct fz_stats st;
};

/* A fresh buffer of len bytes in the data area (contents random); never fails. */
uint64_t fz_alloc(struct fz *f, uint32_t len, uint32_t align);
/* Copies into guest RAM if [gpa, gpa+len) lies in it (the fuzzer's own writes must never fault). */
bool fz_put(struct fz *f, uint64_t gpa, const void *src, uint64_t len);
bool fz_get(struct fz *f, uint64_t gpa, void *dst, uint64_t len);

/* For adapters that script a longer exchange: post a chain built by the adapter (mutated or not) and kick with
 * the model's check; take what the device used on every queue. */
bool fz_post(struct fz *f, uint16_t qi, bool mutate);
void fz_kick(struct fz *f, uint32_t qi);
void fz_consume(struct fz *f);

extern const struct fz_adapter fz_blk, fz_rng_dev, fz_vsock, fz_net;
