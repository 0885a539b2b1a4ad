// What the machine assembler needs from any virtio device: its env, its virtio-mmio window, its end.
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

/* Each device's create function is in its own header (virtio/<dev>/<dev>.h): on failure it returns NULL and writes
 * a message that says what to fix into err. */

/* MMIO accesses to the device's window (offset from its base). Thread-safe (two vCPUs). */
void virtio_mmio_read(void *dev, uint64_t offset, uint8_t *data, uint32_t len);
void virtio_mmio_write(void *dev, uint64_t offset, const uint8_t *data, uint32_t len);

/* Queue qi's kick eventfd, or -1 (the device takes its kicks as MMIO writes only). The machine registers it with
 * KVM_IOEVENTFD on the window's QueueNotify register, datamatch qi (ioeventfd.c). */
int virtio_mmio_kick_fd(const struct virtio_mmio_dev *dev, uint16_t qi);
/* The InterruptACK eventfd, or -1: registered on the InterruptACK register, datamatch VIRTIO_MMIO_INT_VRING (what
 * Linux's handler writes back for a used-buffer interrupt; other values still exit and are applied at once). */
int virtio_mmio_ack_fd(const struct virtio_mmio_dev *dev);

void virtio_mmio_destroy(struct virtio_mmio_dev *dev);
