// What the machine assembler needs from a virtio device: create it, map its virtio-mmio window, wire its IRQ.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../evloop.h"
#include "../guest_mem.h"
#include "../irq.h"

/* Size of one virtio-mmio register window (virtio spec 4.2.2); devices are placed 4 KiB apart. */
#define VIRTIO_MMIO_WINDOW 0x1000

struct virtio_mmio_dev;  /* transport + device, opaque to the assembler */

/* Everything a device may touch: guest memory, its interrupt and the event loop. Nothing else. */
struct virtio_env {
  const struct guest_mem *mem;
  struct irq_line irq;
  struct evloop *loop;
};

/* Creation: on failure return NULL and write a message that says what to fix into err. */
struct virtio_mmio_dev *virtio_blk_create(const struct virtio_env *env, const char *path, bool read_only,
                                          char *err, size_t errlen);
struct virtio_mmio_dev *virtio_rng_create(const struct virtio_env *env, char *err, size_t errlen);
/* uds_path: host-side Unix socket (Firecracker hybrid vsock, docs/architecture.md). */
struct virtio_mmio_dev *virtio_vsock_create(const struct virtio_env *env, uint64_t guest_cid, const char *uds_path,
                                            char *err, size_t errlen);

/* MMIO accesses to the device's window (offset from its base). Thread-safe (two vCPUs). */
void virtio_mmio_read(void *dev, uint64_t offset, uint8_t *data, uint32_t len);
void virtio_mmio_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len);

void virtio_mmio_destroy(struct virtio_mmio_dev *dev);

/* vsock only: listen on uds_path; each accepted connection is bridged to guest TCP tcp_port through the
 * guest forwarder (vsock port 1024, `TCP <port>\n`, reply `OK\n` consumed). Callable at any time. */
int virtio_vsock_add_forward(struct virtio_mmio_dev *dev, uint32_t tcp_port, const char *uds_path,
                             char *err, size_t errlen);
/* vsock only: removes the socket files of every listener (the VM is ending; the listeners stay open). */
void virtio_vsock_unlink_sockets(struct virtio_mmio_dev *dev);
