// Snapshot a paused machine to DIR (state + memory), and read, check and apply one to a machine that machine.c built
// (docs/snapshot.md).
#pragma once
#include "machine.h"
#include "snapshot/diff.h"
#include "snapshot/format.h"
#include "virtio/persist.h"

/* Writes DIR/state and DIR/memory. The vCPUs must be paused. Returns 0 or -1 with err. */
int snapshot_save(struct machine *m, const char *dir, char *err, size_t errlen);
/* The same, but DIR/memory holds only the pages changed since the VM's restore (a diff over the snapshot it was
 * restored from, or that snapshot's base: diffs are flattened). A full snapshot if the changes are too scattered.
 * Refused for a VM that was cold-booted. */
int snapshot_save_diff(struct machine *m, const char *dir, char *err, size_t errlen);

/* Restore is split so that a pooled vmm (docs/snapshot.md "Pooled restore") can build the machine ahead:
 *   read:    DIR/state (format, checksum, host kind, caps) and DIR/memory (opened, size checked);
 *   (build:  machine.c's machine_build_shape: VM, memslot, irqchip, vCPUs, devices, without contents);
 *   check:   the snapshot against that machine (shape, device count, every section present), changing nothing;
 *   apply:   map the memory, set KVM and device state. A failure here leaves the machine half restored.
 * `--restore DIR` is machine_build_from_snapshot: read, build, check, apply; a pooled vmm builds first (pool.c). */

/* Nanoseconds spent per stage of check + apply (the `restore` reply, bench:restore). */
struct restore_timings {
  uint64_t read_ns;     /* open + read DIR/state */
  uint64_t validate_ns; /* magic, version, checksum, caps, host kind, shape, sections, DIR/memory size */
  uint64_t mmap_ns;     /* DIR/memory mapped MAP_PRIVATE over guest RAM */
  uint64_t vm_ns;       /* KVM_SET_IRQCHIP x3, KVM_SET_PIT2 */
  uint64_t vcpu_ns;     /* every vCPU's registers, FPU, MSRs, LAPIC, events */
  uint64_t devices_ns;  /* KVM_SET_CLOCK, COM1/i8042/CMOS, virtio transports, vsock */
};

/* The sections apply needs, found and size-checked by check; pointers into reader. */
struct restore_plan {
  struct snap_reader reader;
  int mem_fd;  /* DIR/memory, or BASE/memory for a diff */
  int diff_fd; /* a diff's DIR/memory, else -1 */
  struct snap_diff_base base; /* the base this VM's own diffs will lie over */
  const struct snap_diff_run *runs; /* a diff's page runs, else NULL */
  size_t nruns;
  const struct kvm_irqchip *irqchip[3];
  const struct kvm_pit_state2 *pit;
  const struct kvm_clock_data *clock;
  const struct serial_state *serial;
  const struct i8042_state *kbd;
  const struct cmos_state *cmos;
  const struct virtio_dev_state *virtio[MACHINE_MAX_VIRTIO]; /* each device's transport */
  const void *virtio_own[MACHINE_MAX_VIRTIO];                /* and its own state (ops->state_len bytes), or NULL */
};

/* The section index of device i's own state: its ordinal among the machine's devices of the same kind. */
static inline uint16_t snap_device_ordinal(const struct machine *m, int i) {
  uint16_t n = 0;
  for (int j = 0; j < i; j++) n += m->virtio[j]->device_id == m->virtio[i]->device_id;
  return n;
}

/* Reads DIR/state into p and opens DIR/memory (a diff: BASE/memory too, where BASE must be `base`, the caller's
 * own record of it: DIR/state was written by a vmm, so its base path is never opened unless it is that one). Returns 0, or -1 with err (p is then already freed). On 0 the
 * caller owns p: snapshot_restore_apply or restore_plan_free. */
int snapshot_restore_read(const char *dir, const char *base, struct restore_plan *p, struct restore_timings *t, char *err,
                          size_t errlen);
/* Checks p against m and finds every section apply needs. Touches nothing. Returns 0 or -1 with err. */
int snapshot_restore_check(const struct machine *m, struct restore_plan *p, struct restore_timings *t, char *err,
                           size_t errlen);
/* Maps the memory and sets all state from p, then frees p. Returns 0 or -1 with err. */
int snapshot_restore_apply(struct machine *m, struct restore_plan *p, struct restore_timings *t, char *err,
                           size_t errlen);
void restore_plan_free(struct restore_plan *p);
