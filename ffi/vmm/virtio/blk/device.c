// virtio-blk (virtio v1.2 §5.2 Block Device): a file-backed disk served with pread/pwrite on the vCPU thread.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blk.h"

#define BLK_QUEUE_REQUESTQ 0 /* §5.2.2: one queue without VIRTIO_BLK_F_MQ */
#define BLK_QUEUE_SIZE 256
#define BLK_SECTOR_SIZE 512  /* §5.2.4: capacity and sector are always in 512-byte units */
#define BLK_LOGICAL_SIZE 512 /* blk_size we report */

/* §5.2.3 feature bits. */
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

/* §5.2.4 struct virtio_blk_config offsets. */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX  12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_LEN      24

/* §5.2.6 request types and status values. */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20

struct virtio_blk_req_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

struct blk {
  int fd;
  bool read_only;
  uint64_t capacity; /* sectors */
  char id[32]; /* first VIRTIO_BLK_ID_BYTES are served */
  struct virtq_chain chain;
  struct iovec iov[VIRTQ_MAX_SIZE];
};

/* Whole-range positional I/O that survives short transfers; returns false on error or EOF. */
static bool blk_xfer(int fd, struct iovec *iov, int n, off_t off, bool write) {
  while (n > 0) {
    ssize_t r = write ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    off += r;
    while (n > 0 && (size_t)r >= iov->iov_len) {
      r -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + r;
      iov->iov_len -= (size_t)r;
    }
  }
  return true;
}

static bool blk_range_ok(const struct blk *b, uint64_t sector, uint64_t bytes) {
  if (bytes % BLK_SECTOR_SIZE) return false;
  return sector <= b->capacity && bytes / BLK_SECTOR_SIZE <= b->capacity - sector;
}

/* Serves one request; returns bytes written into the chain's device-writable part (data + status). */
static uint32_t blk_serve(struct blk *b, const struct virtq_chain *c) {
  struct virtio_blk_req_hdr h;
  /* §5.2.6: header (device-readable) ... status byte (last device-writable byte). Without room for
   * both there is nothing to answer into: the chain is returned unused. */
  if (c->in_len < 1 || virtq_chain_read(c, 0, &h, sizeof h) != sizeof h) return 0;
  uint64_t status_off = c->in_len - 1;
  uint8_t status = VIRTIO_BLK_S_OK;
  uint32_t written = 0;
  switch (h.type) {
  case VIRTIO_BLK_T_IN: {
    uint64_t len = status_off;
    int n = virtq_chain_in_iov(c, 0, len, b->iov, VIRTQ_MAX_SIZE);
    if (c->out_len != sizeof h || len >= UINT32_MAX || !blk_range_ok(b, h.sector, len) ||
        !blk_xfer(b->fd, b->iov, n, (off_t)(h.sector * BLK_SECTOR_SIZE), false))
      status = VIRTIO_BLK_S_IOERR;
    else
      written = (uint32_t)len;
    break;
  }
  case VIRTIO_BLK_T_OUT: {
    uint64_t len = c->out_len - sizeof h;
    int n = virtq_chain_out_iov(c, sizeof h, len, b->iov, VIRTQ_MAX_SIZE);
    if (b->read_only || c->in_len != 1 || !blk_range_ok(b, h.sector, len) ||
        !blk_xfer(b->fd, b->iov, n, (off_t)(h.sector * BLK_SECTOR_SIZE), true))
      status = VIRTIO_BLK_S_IOERR;
    break;
  }
  case VIRTIO_BLK_T_FLUSH:
    if (!b->read_only && fdatasync(b->fd) < 0) status = VIRTIO_BLK_S_IOERR;
    break;
  case VIRTIO_BLK_T_GET_ID: {
    /* §5.2.6.1: a 20-byte id string, not NUL-terminated if it fills the buffer. */
    uint64_t len = status_off < VIRTIO_BLK_ID_BYTES ? status_off : VIRTIO_BLK_ID_BYTES;
    written = (uint32_t)virtq_chain_write(c, 0, b->id, len);
    break;
  }
  default: status = VIRTIO_BLK_S_UNSUPP; break;
  }
  virtq_chain_write(c, status_off, &status, 1);
  return written + 1;
}

static void blk_notify(struct virtio_mmio_dev *dev, uint16_t qi) {
  struct blk *b = dev->impl;
  if (qi != BLK_QUEUE_REQUESTQ) return;
  while (virtio_dev_pop(dev, qi, &b->chain) == 1) virtio_dev_push(dev, qi, b->chain.head, blk_serve(b, &b->chain));
  virtio_dev_signal(dev, qi);
}

static void blk_destroy(struct virtio_mmio_dev *dev) {
  struct blk *b = dev->impl;
  if (!b) return;
  close(b->fd);
  free(b);
}

static const struct virtio_device_ops blk_ops = {
    .name = "blk", .notify = blk_notify, .reset = NULL, .destroy = blk_destroy, .save = blk_save,
    .restore = blk_restore};

struct virtio_mmio_dev *virtio_blk_create(const struct virtio_env *env, const char *path, bool read_only,
                                          char *err, size_t errlen) {
  int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "virtio-blk: cannot open %s%s: %s", path, read_only ? " read-only" : " read-write",
             strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "virtio-blk: %s is not a regular file (disk images must be files)", path);
    close(fd);
    return NULL;
  }
  uint64_t features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH);
  if (read_only) features |= 1ull << VIRTIO_BLK_F_RO;
  struct virtio_mmio_dev *dev = virtio_dev_alloc(env, VIRTIO_ID_BLOCK, features, 1, BLK_QUEUE_SIZE);
  struct blk *b = calloc(1, sizeof *b);
  if (!dev || !b) {
    snprintf(err, errlen, "virtio-blk: out of memory");
    free(b);
    virtio_dev_free(dev);
    close(fd);
    return NULL;
  }
  b->fd = fd;
  b->read_only = read_only;
  b->capacity = (uint64_t)st.st_size / BLK_SECTOR_SIZE;
  snprintf(b->id, sizeof b->id, "onebox-%" PRIx64, (uint64_t)st.st_ino); /* stable per image file */
  /* seg_max: a request is header + data segments + status in one chain of at most the queue size. */
  uint32_t seg_max = BLK_QUEUE_SIZE - 2, blk_size = BLK_LOGICAL_SIZE;
  memcpy(dev->config + VIRTIO_BLK_CFG_CAPACITY, &b->capacity, 8);
  memcpy(dev->config + VIRTIO_BLK_CFG_SEG_MAX, &seg_max, 4);
  memcpy(dev->config + VIRTIO_BLK_CFG_BLK_SIZE, &blk_size, 4);
  dev->config_len = VIRTIO_BLK_CFG_LEN;
  dev->impl = b;
  dev->ops = &blk_ops;
  return dev;
}
