// Placeholder until the vsock device lands: creation reports that vsock is not available yet.
#include <stdio.h>
#include "../virtio.h"

struct virtio_mmio_dev *virtio_vsock_create(const struct virtio_env *env, uint64_t guest_cid, const char *uds_path,
                                            char *err, size_t errlen) {
  snprintf(err, errlen, "virtio-vsock: not implemented in this build yet");
  return NULL;
}

int virtio_vsock_add_forward(struct virtio_mmio_dev *dev, uint32_t tcp_port, const char *uds_path, char *err,
                             size_t errlen) {
  snprintf(err, errlen, "virtio-vsock: not implemented in this build yet");
  return -1;
}
