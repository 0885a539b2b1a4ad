// virtio-blk (virtio v1.2 §5.2): what the machine and the tests use (create), and what device.c and persist.c share.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "../device.h"
#include "../persist.h"

/* A disk backed by the regular file at path (read-only: opened O_RDONLY, VIRTIO_BLK_F_RO offered). NULL with err. */
struct virtio_mmio_dev *virtio_blk_create(const struct virtio_env *env, const char *path, bool read_only, char *err,
                                          size_t errlen);

/* persist.c: the ops' save/restore. */
void blk_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own);
int blk_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                size_t errlen);
