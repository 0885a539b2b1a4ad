// The machine assembler: builds one VM (memory, vCPUs, legacy devices, virtio devices, firmware tables, kernel).
#pragma once
#include "acpi.h"
#include "args.h"
#include "legacy.h"
#include "serial.h"
#include "vm.h"
#include "virtio/virtio.h"

#define MACHINE_MAX_VIRTIO ACPI_MAX_VIRTIO
/* virtio-mmio device n lives at VM_MMIO_BASE + n * VIRTIO_MMIO_WINDOW with IOAPIC pin MACHINE_VIRTIO_IRQ_BASE + n. */
#define MACHINE_VIRTIO_IRQ_BASE 5
#define MACHINE_MAX_IRQ 23 /* last IOAPIC pin of KVM's in-kernel IOAPIC */

struct machine {
  struct vm vm;
  struct serial serial;
  struct i8042 kbd;
  struct cmos cmos;
  struct virtio_mmio_dev *virtio[MACHINE_MAX_VIRTIO];
  struct irq_line virtio_irq[MACHINE_MAX_VIRTIO];
  int nvirtio;
  struct virtio_mmio_dev *vsock;
  char cmdline[4096];
};

/* Builds the whole machine from the arguments, ready to start. Returns 0 or -1 with err (what to fix). */
int machine_build(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen);
/* COM1 (with its IRQ line), i8042, CMOS and the power-off port. Returns 0 or -1 with err. */
int machine_add_legacy(struct machine *m, int console_fd, char *err, size_t errlen);
/* The virtio devices of the command line, in order: --disk..., --rng, --vsock (+ forwards). */
int machine_add_devices(struct machine *m, const struct vmm_args *a, char *err, size_t errlen);
/* Starts the event loop and the vCPU threads. */
int machine_start(struct machine *m, char *err, size_t errlen);
