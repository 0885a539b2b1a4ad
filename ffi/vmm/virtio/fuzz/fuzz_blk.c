// Virtio ring fuzzer adapter for virtio-blk: requests of every type on a small sparse disk, sectors at its edges.
#include <fcntl.h>
#include "../blk/blk.h"
#include "fuzz.h"

#define DISK_SECTORS 128

static struct virtio_mmio_dev *blk_create(struct fz *f, char *err, size_t errlen) {
  char path[] = "/tmp/virtio-fuzz-disk.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || ftruncate(fd, DISK_SECTORS * 512) < 0) {
    snprintf(err, errlen, "cannot create a disk image in /tmp");
    return NULL;
  }
  close(fd);
  struct virtio_mmio_dev *dev = virtio_blk_create(&f->d.env, path, fz_chance(&f->rng, 20), err, errlen);
  unlink(path); /* the device keeps its fd */
  return dev;
}

static uint64_t pick_sector(struct fz *f) {
  switch (fz_below(&f->rng, 6)) {
  case 0: return DISK_SECTORS - fz_below(&f->rng, 3);
  case 1: return UINT64_MAX - fz_below(&f->rng, 4);
  case 2: return fz_next(&f->rng);
  default: return fz_below(&f->rng, DISK_SECTORS);
  }
}

static uint32_t pick_len(struct fz *f) {
  if (fz_chance(&f->rng, 80)) return 512u * (1 + fz_below(&f->rng, 8));
  return fz_below(&f->rng, 5000);
}

static int blk_build(struct fz *f, uint16_t qi, struct fz_buf *bufs) {
  static const uint32_t types[] = {0, 0, 0, 1, 1, 1, 4, 8, 99, 0x80000000u};
  uint32_t type = types[fz_below(&f->rng, sizeof types / sizeof types[0])];
  struct { uint32_t type, reserved; uint64_t sector; } h = {type, 0, pick_sector(f)};
  int n = 0;
  if (fz_chance(&f->rng, 10)) { /* header split over two descriptors */
    uint64_t a = fz_alloc(f, 8, 8), b = fz_alloc(f, 8, 8);
    fz_put(f, a, &h, 8);
    fz_put(f, b, (uint8_t *)&h + 8, 8);
    bufs[n++] = (struct fz_buf){a, 8, false};
    bufs[n++] = (struct fz_buf){b, 8, false};
  } else {
    uint64_t a = fz_alloc(f, 16, 8);
    fz_put(f, a, &h, 16);
    bufs[n++] = (struct fz_buf){a, fz_chance(&f->rng, 3) ? fz_below(&f->rng, 16) : 16, false};
  }
  bool data_in = type != 1;
  if (fz_chance(&f->rng, 5)) data_in = !data_in;
  uint32_t segs = type == 4 ? fz_below(&f->rng, 2) : fz_below(&f->rng, 4);
  for (uint32_t i = 0; i < segs && n < FZ_MAX_BUFS - 1; i++) {
    uint32_t len = pick_len(f);
    bufs[n++] = (struct fz_buf){fz_alloc(f, len, 512), len, data_in};
  }
  if (!fz_chance(&f->rng, 3)) bufs[n++] = (struct fz_buf){fz_alloc(f, 1, 1), 1, true}; /* status byte */
  return n;
}

static const char *blk_rejects(uint16_t qi, const struct fz_chain_info *ci) { return NULL; }
static bool blk_synchronous(uint16_t qi) { return true; }

const struct fz_adapter fz_blk = {
    .name = "blk", .create = blk_create, .build = blk_build, .rejects = blk_rejects, .synchronous = blk_synchronous};
