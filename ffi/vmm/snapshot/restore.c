// Restore: read and check DIR/state, check it against a machine machine.c built, map DIR/memory (or a diff over its
// base) copy-on-write, set its state. Builds nothing: the machine is machine.c's (machine_build_from_snapshot, pool.c).
#include "snapshot/snapshot.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "snapshot/diff.h"
#include "snapshot/vcpu_state.h"
#include "vcpu.h"
#include "virtio/persist.h"

#define PAGE 4096u
#define IRQCHIP_PIC_MASTER 0
#define IRQCHIP_IOAPIC 2

static int fail(char *err, size_t errlen, const char *what, const char *path) {
  snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "", strerror(errno));
  return -1;
}

static uint8_t *read_capped(const char *path, size_t cap, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail(err, errlen, "open", path);
    return NULL;
  }
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > cap) {
    snprintf(err, errlen, "%s: size %lld is over the cap of %zu bytes", path, (long long)st.st_size, cap);
    goto out;
  }
  buf = malloc(st.st_size ? (size_t)st.st_size : 1);
  size_t done = 0;
  while (buf && done < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
    if (n <= 0) break;
    done += (size_t)n;
  }
  if (!buf || done != (size_t)st.st_size) {
    fail(err, errlen, "read", path);
    free(buf);
    buf = NULL;
  }
  *len = done;
out:
  close(fd);
  return buf;
}

static uint64_t lap(uint64_t *since) {
  uint64_t now = vm_now_ns(), d = now - *since;
  *since = now;
  return d;
}

void restore_plan_free(struct restore_plan *p) {
  if (p->mem_fd >= 0) close(p->mem_fd);
  if (p->diff_fd >= 0) close(p->diff_fd);
  p->mem_fd = p->diff_fd = -1;
  snap_reader_free(&p->reader);
}

/* Opens path read-only and checks that it is exactly mem_bytes long. Returns the fd or -1. */
static int open_memory(const char *path, uint64_t mem_bytes, struct stat *st, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, st) < 0) {
    fail(err, errlen, "open", path);
    if (fd >= 0) close(fd);
    return -1;
  }
  if ((uint64_t)st->st_size != mem_bytes) {
    snprintf(err, errlen, "%s is %lld bytes, the snapshot says %llu", path, (long long)st->st_size,
             (unsigned long long)mem_bytes);
    close(fd);
    return -1;
  }
  return fd;
}

/* Guest RAM files, opened and checked, not mapped yet: DIR/memory (a full snapshot), or BASE/memory and DIR/memory's
 * page runs (a diff, docs/snapshot.md "Diff snapshots"). Also the base this VM will later write diffs against. */
static int memory_open(const char *dir, const char *want_base, struct restore_plan *p, char *err, size_t errlen) {
  const struct snap_reader *r = &p->reader;
  char path[4200], real[PATH_MAX];
  struct stat st, dst;
  bool diff = r->hdr.version == SNAP_VERSION_DIFF;
  if (diff) {
    const struct snap_diff_base *b = snap_reader_find(r, SNAP_SEC_DIFF_BASE, 0, sizeof *b, NULL);
    size_t runs_len = 0;
    p->runs = snap_reader_find(r, SNAP_SEC_DIFF_RUNS, 0, 0, &runs_len);
    if (!b || !p->runs || runs_len % sizeof *p->runs || b->path_len < 2 || b->path_len > sizeof b->path ||
        b->path[b->path_len - 1] || b->path[0] != '/') {
      snprintf(err, errlen, "diff snapshot lacks a valid base or page list");
      return -1;
    }
    /* The base as the vmm recorded it: realpath of the dir it was restored from. */
    char want_real[PATH_MAX];
    if (!want_base || !realpath(want_base, want_real) || strcmp(want_real, b->path)) {
      snprintf(err, errlen, "diff snapshot %s lies over %s, not over --restore-base %s", dir, b->path,
               want_base ? want_base : "(none given)");
      return -1;
    }
    p->base = *b;
    p->nruns = runs_len / sizeof *p->runs;
    if (snap_diff_runs_check(p->runs, p->nruns, r->hdr.mem_bytes / PAGE, err, errlen) < 0) return -1;
  }
  snprintf(path, sizeof path, "%s/memory", diff ? p->base.path : dir);
  if ((p->mem_fd = open_memory(path, r->hdr.mem_bytes, &st, err, errlen)) < 0) return -1;
  if (diff) {
    if (snap_diff_base_check(&p->base, &st, err, errlen) < 0) return -1;
    snprintf(path, sizeof path, "%s/memory", dir);
    if ((p->diff_fd = open_memory(path, r->hdr.mem_bytes, &dst, err, errlen)) < 0) return -1;
  } else if (!realpath(dir, real) || snap_diff_base_set(&p->base, real, &st) < 0) {
    snprintf(err, errlen, "%s: cannot resolve to an absolute path under %zu bytes", dir, sizeof p->base.path);
    return -1;
  }
  return 0;
}

int snapshot_restore_read(const char *dir, const char *base, struct restore_plan *p, struct restore_timings *t, char *err,
                          size_t errlen) {
  memset(p, 0, sizeof *p);
  p->mem_fd = p->diff_fd = -1;
  uint64_t clock = vm_now_ns();
  char path[4200];
  snprintf(path, sizeof path, "%s/state", dir);
  size_t len;
  uint8_t *buf = read_capped(path, SNAP_MAX_FILE, &len, err, errlen);
  if (!buf) return -1;
  t->read_ns += lap(&clock);
  const struct snap_header *h = &p->reader.hdr;
  if (snap_reader_open(&p->reader, buf, len, snap_host_kind(), err, errlen) < 0) goto fail;
  if (h->nvcpus < 1 || h->nvcpus > VM_MAX_VCPUS || h->mem_bytes < (16ull << 20) ||
      h->mem_bytes > ((uint64_t)VM_MAX_MEM_MIB << 20) || h->mem_bytes % PAGE) {
    snprintf(err, errlen, "snapshot has %u vCPUs and %llu bytes of memory: out of range", h->nvcpus,
             (unsigned long long)h->mem_bytes);
    goto fail;
  }
  if (memory_open(dir, base, p, err, errlen) < 0) goto fail;
  t->validate_ns += lap(&clock);
  return 0;
fail:
  restore_plan_free(p);
  return -1;
}

#define FIND(field, kind, index, what)                                                    \
  if (!(p->field = snap_reader_find(r, kind, index, sizeof *p->field, NULL))) {            \
    snprintf(err, errlen, "snapshot lacks %s", what);                                     \
    return -1;                                                                            \
  }

int snapshot_restore_check(const struct machine *m, struct restore_plan *p, struct restore_timings *t, char *err,
                           size_t errlen) {
  uint64_t clock = vm_now_ns();
  const struct snap_reader *r = &p->reader;
  if (r->hdr.nvcpus != (uint32_t)m->vm.nvcpus || r->hdr.mem_bytes != m->vm.mem.size) {
    snprintf(err, errlen, "the snapshot is %u vCPUs and %llu MiB, this vmm was prepared for %d vCPUs and %llu MiB",
             r->hdr.nvcpus, (unsigned long long)(r->hdr.mem_bytes >> 20), m->vm.nvcpus,
             (unsigned long long)(m->vm.mem.size >> 20));
    return -1;
  }
  for (uint16_t chip = IRQCHIP_PIC_MASTER; chip <= IRQCHIP_IOAPIC; chip++) {
    FIND(irqchip[chip], SNAP_SEC_VM_IRQCHIP, chip, "an irqchip state");
    if (p->irqchip[chip]->chip_id != chip) {
      snprintf(err, errlen, "snapshot irqchip %u has id %u", chip, p->irqchip[chip]->chip_id);
      return -1;
    }
  }
  FIND(pit, SNAP_SEC_VM_PIT2, 0, "the PIT state");
  FIND(clock, SNAP_SEC_VM_CLOCK, 0, "the kvm clock");
  FIND(serial, SNAP_SEC_SERIAL, 0, "the COM1 state");
  FIND(kbd, SNAP_SEC_I8042, 0, "the i8042 state");
  FIND(cmos, SNAP_SEC_CMOS, 0, "the CMOS state");
  const struct snap_machine_state *ms;
  if (!(ms = snap_reader_find(r, SNAP_SEC_MACHINE, 0, sizeof *ms, NULL))) {
    snprintf(err, errlen, "snapshot lacks the machine state");
    return -1;
  }
  if (ms->nvirtio != (uint32_t)m->nvirtio) {
    snprintf(err, errlen, "the snapshot has %u virtio devices, this command line %d (give the same --disk/--rng/--vsock)",
             ms->nvirtio, m->nvirtio);
    return -1;
  }
  for (int i = 0; i < m->nvirtio; i++) {
    const struct virtio_device_ops *ops = m->virtio[i]->ops;
    FIND(virtio[i], SNAP_SEC_VIRTIO, (uint16_t)i, "a virtio device state");
    p->virtio_own[i] = NULL;
    if (ops->state_len &&
        !(p->virtio_own[i] = snap_reader_find(r, ops->state_section, snap_device_ordinal(m, i), ops->state_len, NULL))) {
      snprintf(err, errlen, "snapshot lacks the virtio-%s state", ops->name);
      return -1;
    }
  }
  t->validate_ns += lap(&clock);
  return 0;
}

static int vm_state_restore(struct vm *vm, const struct restore_plan *p, char *err, size_t errlen) {
  for (int chip = IRQCHIP_PIC_MASTER; chip <= IRQCHIP_IOAPIC; chip++)
    if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, p->irqchip[chip]) < 0) return fail(err, errlen, "KVM_SET_IRQCHIP", NULL);
  if (ioctl(vm->vm_fd, KVM_SET_PIT2, p->pit) < 0) return fail(err, errlen, "KVM_SET_PIT2", NULL);
  return 0;
}

static int devices_restore(struct machine *m, const struct restore_plan *p, char *err, size_t errlen) {
  /* kvmclock continues from the snapshot's value: the guest sees no jump; wall time is fixed by clone hygiene. */
  struct kvm_clock_data clock = {.clock = p->clock->clock};
  if (ioctl(m->vm.vm_fd, KVM_SET_CLOCK, &clock) < 0) return fail(err, errlen, "KVM_SET_CLOCK", NULL);
  /* Every device the same way: its own restore checks and applies its transport and own state (virtio_device_ops). */
  for (int i = 0; i < m->nvirtio; i++) {
    struct virtio_mmio_dev *dev = m->virtio[i];
    pthread_mutex_lock(&dev->lock);
    int rc = dev->ops->restore(dev, p->virtio[i], p->virtio_own[i], err, errlen);
    pthread_mutex_unlock(&dev->lock);
    if (rc < 0) return -1;
  }
  serial_restore(&m->serial, p->serial);
  i8042_restore(&m->kbd, p->kbd);
  cmos_restore(&m->cmos, p->cmos);
  return 0;
}

int snapshot_restore_apply(struct machine *m, struct restore_plan *p, struct restore_timings *t, char *err,
                           size_t errlen) {
  uint64_t clock = vm_now_ns();
  int rc = -1;
  if (vm_mem_map_file(&m->vm, p->mem_fd, err, errlen) < 0) goto out;
  if (p->diff_fd >= 0 && snap_diff_overlay(&m->vm.mem, p->diff_fd, p->runs, p->nruns, err, errlen) < 0) goto out;
  /* Remembers the base (and a parent diff's pages), so that this VM can later write a diff of its own. */
  if (snap_diff_track(&p->base, p->runs, p->nruns, p->reader.hdr.mem_bytes, err, errlen) < 0) goto out;
  t->mmap_ns += lap(&clock);
  if (vm_state_restore(&m->vm, p, err, errlen) < 0) goto out;
  t->vm_ns += lap(&clock);
  for (int i = 0; i < m->vm.nvcpus; i++)
    if (vcpu_state_restore(&m->vm.vcpus[i], &p->reader, err, errlen) < 0) goto out;
  t->vcpu_ns += lap(&clock);
  if (devices_restore(m, p, err, errlen) < 0) goto out;
  t->devices_ns += lap(&clock);
  rc = 0;
out:
  restore_plan_free(p); /* the mapping keeps the memory file */
  return rc;
}
