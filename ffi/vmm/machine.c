// Assembles a machine: KVM VM, devices on the buses, then for a cold boot ACPI, kernel and boot state, or for a
// restore the snapshot's state (read, checked and applied by snapshot/restore.c).
#include "machine.h"
#include <stdio.h>
#include <string.h>
#include "layout.h"
#include "loader.h"
#include "snapshot/format.h"
#include "snapshot/snapshot.h"
#include "vcpu.h"
#include "virtio/blk/blk.h"
#include "virtio/net/net.h"
#include "virtio/rng/rng.h"
#include "virtio/vsock/vsock.h"
#include "x86_boot.h"

/* Adds a created virtio device to the MMIO bus at the next window and records it for ACPI and the cmdline. */
static int machine_add_virtio(struct machine *m, struct virtio_mmio_dev *dev, char *err, size_t errlen) {
  int n = m->nvirtio;
  uint64_t base = VM_MMIO_BASE + (uint64_t)n * VIRTIO_MMIO_WINDOW;
  if (bus_register(&m->vm.mmio, (struct bus_device){.base = base, .size = VIRTIO_MMIO_WINDOW,
                                                    .read = virtio_mmio_read, .write = virtio_mmio_write,
                                                    .ctx = dev}) < 0) {
    snprintf(err, errlen, "cannot map virtio device %d", n);
    return -1;
  }
  m->virtio[n] = dev;
  m->nvirtio++;
  /* A device's ioeventfds (virtio/ioeventfd.c): the guest's QueueNotify write of a queue's index, and its InterruptACK
   * of the used-buffer bit, signal them in the kernel. Set at build, so a restore (which builds the machine anew) has
   * them too; the driver writes 32 bits (§4.2.2). */
  for (uint16_t qi = 0; qi < VIRTIO_MAX_QUEUES; qi++) {
    int fd = virtio_mmio_kick_fd(dev, qi);
    if (fd >= 0 && vm_ioeventfd(&m->vm, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, qi, fd, err, errlen) < 0) return -1;
  }
  int ack = virtio_mmio_ack_fd(dev);
  if (ack >= 0 && vm_ioeventfd(&m->vm, base + VIRTIO_MMIO_INTERRUPT_ACK, 4, VIRTIO_MMIO_INT_VRING, ack, err, errlen) < 0)
    return -1;
  return 0;
}

/* The env of the next device: its IRQ line is wired to KVM before the device exists. */
static int machine_next_env(struct machine *m, struct virtio_env *env, char *err, size_t errlen) {
  int n = m->nvirtio;
  if (n >= MACHINE_MAX_VIRTIO || MACHINE_VIRTIO_IRQ_BASE + n > MACHINE_MAX_IRQ) {
    snprintf(err, errlen, "too many virtio devices (at most %d)", MACHINE_MAX_IRQ - MACHINE_VIRTIO_IRQ_BASE + 1);
    return -1;
  }
  if (vm_irq_line_init(&m->vm, (uint32_t)(MACHINE_VIRTIO_IRQ_BASE + n), &m->virtio_irq[n], err, errlen) < 0) return -1;
  *env = (struct virtio_env){.mem = &m->vm.mem, .irq = m->virtio_irq[n], .loop = m->vm.loop};
  return 0;
}

/* The virtio devices of the command line, in order: --disk..., --rng, --vsock (+ forwards), --net. */
static int add_devices(struct machine *m, const struct vmm_args *a, char *err, size_t errlen) {
  struct virtio_env env;
  struct virtio_mmio_dev *dev;
  for (int i = 0; i < a->ndisks; i++) {
    if (machine_next_env(m, &env, err, errlen) < 0) return -1;
    if (!(dev = virtio_blk_create(&env, a->disks[i].path, a->disks[i].read_only, err, errlen))) return -1;
    if (machine_add_virtio(m, dev, err, errlen) < 0) return -1;
  }
  if (a->rng) {
    if (machine_next_env(m, &env, err, errlen) < 0) return -1;
    if (!(dev = virtio_rng_create(&env, err, errlen))) return -1;
    if (machine_add_virtio(m, dev, err, errlen) < 0) return -1;
  }
  if (a->vsock) {
    if (machine_next_env(m, &env, err, errlen) < 0) return -1;
    if (!(dev = virtio_vsock_create(&env, a->cid, a->vsock, err, errlen))) return -1;
    if (machine_add_virtio(m, dev, err, errlen) < 0) return -1;
    for (int i = 0; i < a->nforwards; i++)
      if (virtio_vsock_add_forward(dev, a->forwards[i].port, a->forwards[i].path, err, errlen) < 0) return -1;
  }
  if (a->net_fd >= 0) {
    /* Last: snapshots taken before virtio-net existed keep their bus slots. The device owns the fd from here. */
    if (machine_next_env(m, &env, err, errlen) < 0) return -1;
    if (net_tap_prepare(a->net_fd, err, errlen) < 0) return -1;
    if (!(dev = virtio_net_create(&env, a->net_fd, a->net_mac, err, errlen))) return -1;
    if (machine_add_virtio(m, dev, err, errlen) < 0) return -1;
  }
  return 0;
}

/* COM1 (with its IRQ line), i8042, CMOS and the power-off port. */
static int add_legacy(struct machine *m, int console_fd, char *err, size_t errlen) {
  serial_init(&m->serial, &m->vm, console_fd);
  if (vm_irq_line_init(&m->vm, SERIAL_COM1_IRQ, &m->serial.irq, err, errlen) < 0) return -1;
  if (bus_register(&m->vm.pio, (struct bus_device){.base = SERIAL_COM1_BASE, .size = SERIAL_PORTS,
                                                   .read = serial_pio_read, .write = serial_pio_write,
                                                   .ctx = &m->serial}) < 0 ||
      legacy_register(&m->vm, &m->kbd, &m->cmos) < 0) {
    snprintf(err, errlen, "cannot register legacy devices");
    return -1;
  }
  return 0;
}

struct virtio_mmio_dev *machine_vsock(const struct machine *m) {
  for (int i = 0; i < m->nvirtio; i++)
    if (m->virtio[i]->device_id == VIRTIO_ID_VSOCK) return m->virtio[i];
  return NULL;
}

int machine_build_shape(struct machine *m, const struct vmm_args *a, uint32_t nvcpus, uint64_t mem_bytes, int console_fd,
                        char *err, size_t errlen) {
  if (vm_create(&m->vm, mem_bytes, (int)nvcpus, err, errlen) < 0) return -1;
  if (vcpus_create(&m->vm, err, errlen) < 0) return -1;
  if (add_legacy(m, console_fd, err, errlen) < 0) return -1;
  return add_devices(m, a, err, errlen);
}

int machine_build_for_boot(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen) {
  if (machine_build_shape(m, a, a->vcpus, (uint64_t)a->mem_mib << 20, console_fd, err, errlen) < 0) return -1;
  struct acpi_virtio_dev adevs[MACHINE_MAX_VIRTIO];
  for (int i = 0; i < m->nvirtio; i++)
    adevs[i] = (struct acpi_virtio_dev){.base = VM_MMIO_BASE + (uint64_t)i * VIRTIO_MMIO_WINDOW,
                                        .size = VIRTIO_MMIO_WINDOW,
                                        .gsi = (uint32_t)(MACHINE_VIRTIO_IRQ_BASE + i)};
  uint64_t rsdp = acpi_write_tables(&m->vm, adevs, m->nvirtio, err, errlen);
  if (!rsdp) return -1;
  if (x86_boot_write_tables(&m->vm, err, errlen) < 0) return -1;

  struct loader_result lr;
  if (a->test_guest) {
    if (loader_load_flat(&m->vm, a->test_guest, &lr, err, errlen) < 0) return -1;
  } else {
    /* docs/architecture.md: one virtio_mmio.device=<size>@<addr>:<irq> per device, in creation order. */
    size_t len = (size_t)snprintf(m->cmdline, sizeof m->cmdline, "%s", a->cmdline);
    for (int i = 0; i < m->nvirtio && len < sizeof m->cmdline; i++)
      len += (size_t)snprintf(m->cmdline + len, sizeof m->cmdline - len, " virtio_mmio.device=4K@0x%llx:%u",
                              (unsigned long long)adevs[i].base, adevs[i].gsi);
    if (len >= sizeof m->cmdline) {
      snprintf(err, errlen, "command line too long");
      return -1;
    }
    if (loader_load_linux(&m->vm, a->kernel, a->initrd, m->cmdline, rsdp, &lr, err, errlen) < 0) return -1;
  }
  return x86_boot_set_regs(&m->vm.vcpus[0], lr.entry, lr.boot_params, err, errlen);
}

int machine_build_from_snapshot(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen) {
  struct restore_plan p;
  struct restore_timings t = {0};
  if (snapshot_restore_read(a->restore, a->restore_base, &p, &t, err, errlen) < 0) return -1;
  /* The shape (vCPUs, RAM) is the snapshot's; the devices are the command line's, checked against it. */
  if (machine_build_shape(m, a, p.reader.hdr.nvcpus, p.reader.hdr.mem_bytes, console_fd, err, errlen) < 0 ||
      snapshot_restore_check(m, &p, &t, err, errlen) < 0) {
    restore_plan_free(&p);
    return -1;
  }
  return snapshot_restore_apply(m, &p, &t, err, errlen);
}

int machine_build(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < MACHINE_MAX_VIRTIO; i++) m->virtio_irq[i].eventfd = -1;
  snap_host_kind(); /* looked up now: `snapshot DIR` runs under seccomp */
  /* Pooled: the snapshot comes later (`restore DIR`, pool.c); its shape must be the one given now. */
  if (a->pool) return machine_build_shape(m, a, a->vcpus, (uint64_t)a->mem_mib << 20, console_fd, err, errlen);
  if (a->restore) return machine_build_from_snapshot(m, a, console_fd, err, errlen);
  return machine_build_for_boot(m, a, console_fd, err, errlen);
}

int machine_start(struct machine *m, char *err, size_t errlen) {
  int rc = evloop_start(m->vm.loop);
  if (rc < 0) {
    snprintf(err, errlen, "starting the event loop: %s", strerror(-rc));
    return -1;
  }
  return vcpus_start(&m->vm, err, errlen);
}
