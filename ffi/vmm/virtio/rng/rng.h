// virtio-rng (virtio v1.2 §5.4): what the machine and the tests use (create), and what device.c and persist.c share.
#pragma once
#include <stddef.h>
#include "../device.h"
#include "../persist.h"

struct virtio_mmio_dev *virtio_rng_create(const struct virtio_env *env, char *err, size_t errlen);

/* persist.c: the ops' save/restore. */
void rng_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own);
int rng_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                size_t errlen);
