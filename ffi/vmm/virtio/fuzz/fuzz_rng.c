// Virtio ring fuzzer adapter for virtio-rng: device-writable buffers of any size, up to and past the fill cap.
#include "../rng/rng.h"
#include "fuzz.h"

static struct virtio_mmio_dev *rng_create(struct fz *f, char *err, size_t errlen) {
  return virtio_rng_create(&f->d.env, err, errlen);
}

static int rng_build(struct fz *f, uint16_t qi, struct fz_buf *bufs) {
  int n = 1 + (int)fz_below(&f->rng, 4);
  for (int i = 0; i < n; i++) {
    uint32_t len = fz_chance(&f->rng, 5) ? 60000 + fz_below(&f->rng, 20000) : fz_below(&f->rng, 4096);
    bufs[i] = (struct fz_buf){fz_alloc(f, len, 8), len, !fz_chance(&f->rng, 3)};
  }
  return n;
}

/* §5.4.6.2: entropy requests are device-writable only (rng.c enforces it). */
static const char *rng_rejects(uint16_t qi, const struct fz_chain_info *ci) {
  return ci->n_out ? "entropy request has a device-readable buffer" : NULL;
}
static bool rng_synchronous(uint16_t qi) { return true; }

const struct fz_adapter fz_rng_dev = {
    .name = "rng", .create = rng_create, .build = rng_build, .rejects = rng_rejects, .synchronous = rng_synchronous};
