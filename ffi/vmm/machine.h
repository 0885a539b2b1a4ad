// The machine assembler (Firecracker's builder.rs): the one place a VM is put together, for a cold boot, from a
// snapshot, or ahead of a snapshot (pooled). snapshot/ only reads, checks and applies state to what this built.
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
  char cmdline[4096];
};

/* Builds the machine the arguments ask for: machine_build_for_boot (--kernel, --test-guest), machine_build_from_snapshot
 * (--restore DIR), or for --pool only its shape (machine_build_shape; pool.c restores into it later). Returns 0 or -1
 * with err (what to fix). */
int machine_build(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen);
/* Cold boot: the shape, then firmware tables, kernel (or flat test guest) and boot registers. */
int machine_build_for_boot(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen);
/* --restore DIR: reads DIR (snapshot/restore.c), builds the shape it was taken of, checks it against that shape and
 * applies it (memory, KVM state, devices). */
int machine_build_from_snapshot(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen);
/* The part every path shares: VM with nvcpus vCPUs and mem_bytes of RAM, legacy devices, the command line's virtio
 * devices, created but without contents (no kernel, firmware tables or register state). */
int machine_build_shape(struct machine *m, const struct vmm_args *a, uint32_t nvcpus, uint64_t mem_bytes, int console_fd,
                        char *err, size_t errlen);
/* The vsock device, or NULL (the control socket's `forward PORT` and the exit's socket cleanup use it). */
struct virtio_mmio_dev *machine_vsock(const struct machine *m);
/* Starts the event loop and the vCPU threads. */
int machine_start(struct machine *m, char *err, size_t errlen);
