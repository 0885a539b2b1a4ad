// Restore: validate DIR/state, map DIR/memory (or a diff over its base) copy-on-write, rebuild the machine and set its state in KVM's order.
#include "snapshot/snapshot.h"
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "snapshot/devices.h"
#include "snapshot/diff.h"
#include "snapshot/format.h"
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

static int vm_state_restore(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen) {
  for (uint16_t chip = IRQCHIP_PIC_MASTER; chip <= IRQCHIP_IOAPIC; chip++) {
    const struct kvm_irqchip *ic = snap_reader_find(r, SNAP_SEC_VM_IRQCHIP, chip, sizeof *ic, NULL);
    if (!ic || ic->chip_id != chip) {
      snprintf(err, errlen, "snapshot lacks irqchip %u", chip);
      return -1;
    }
    if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, ic) < 0) return fail(err, errlen, "KVM_SET_IRQCHIP", NULL);
  }
  const struct kvm_pit_state2 *pit = snap_reader_find(r, SNAP_SEC_VM_PIT2, 0, sizeof *pit, NULL);
  if (!pit) {
    snprintf(err, errlen, "snapshot lacks the PIT state");
    return -1;
  }
  if (ioctl(vm->vm_fd, KVM_SET_PIT2, pit) < 0) return fail(err, errlen, "KVM_SET_PIT2", NULL);
  return 0;
}

/* kvmclock continues from the snapshot's value: the guest sees no jump; wall time is fixed by clone hygiene. */
static int clock_restore(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen) {
  const struct kvm_clock_data *saved = snap_reader_find(r, SNAP_SEC_VM_CLOCK, 0, sizeof *saved, NULL);
  if (!saved) {
    snprintf(err, errlen, "snapshot lacks the kvm clock");
    return -1;
  }
  struct kvm_clock_data clock = {.clock = saved->clock};
  if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0) return fail(err, errlen, "KVM_SET_CLOCK", NULL);
  return 0;
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

/* Guest RAM: DIR/memory mapped MAP_PRIVATE (a full snapshot), or BASE/memory with DIR/memory's pages mapped over it (a
 * diff, docs/snapshot.md "Diff snapshots"); creates the VM and its memslot. Then remembers the base, so that this VM
 * can later write a diff of its own. */
static int memory_map(struct machine *m, const char *dir, const struct snap_reader *r, char *err, size_t errlen) {
  char path[4200], real[PATH_MAX];
  struct stat st, dst;
  struct snap_diff_base base;
  const struct snap_diff_run *runs = NULL;
  size_t nruns = 0, runs_len = 0;
  bool diff = r->hdr.version == SNAP_VERSION_DIFF;
  if (diff) {
    const struct snap_diff_base *b = snap_reader_find(r, SNAP_SEC_DIFF_BASE, 0, sizeof base, NULL);
    runs = snap_reader_find(r, SNAP_SEC_DIFF_RUNS, 0, 0, &runs_len);
    if (!b || !runs || runs_len % sizeof *runs || b->path_len < 2 || b->path_len > sizeof b->path ||
        b->path[b->path_len - 1] || b->path[0] != '/') {
      snprintf(err, errlen, "diff snapshot lacks a valid base or page list");
      return -1;
    }
    base = *b;
    nruns = runs_len / sizeof *runs;
    if (snap_diff_runs_check(runs, nruns, r->hdr.mem_bytes / PAGE, err, errlen) < 0) return -1;
  }
  snprintf(path, sizeof path, "%s/memory", diff ? base.path : dir);
  int fd = open_memory(path, r->hdr.mem_bytes, &st, err, errlen);
  if (fd < 0) return -1;
  if (diff && snap_diff_base_check(&base, &st, err, errlen) < 0) goto bad;
  if (!diff && (!realpath(dir, real) || snap_diff_base_set(&base, real, &st) < 0)) {
    snprintf(err, errlen, "%s: cannot resolve to an absolute path under %zu bytes", dir, sizeof base.path);
    goto bad;
  }
  if (vm_create_mem(&m->vm, r->hdr.mem_bytes, (int)r->hdr.nvcpus, fd, err, errlen) < 0) goto bad;
  close(fd); /* the mapping keeps the file */
  if (diff) {
    snprintf(path, sizeof path, "%s/memory", dir);
    int dfd = open_memory(path, r->hdr.mem_bytes, &dst, err, errlen);
    if (dfd < 0) return -1;
    int rc = snap_diff_overlay(&m->vm.mem, dfd, runs, nruns, err, errlen);
    close(dfd);
    if (rc < 0) return -1;
  }
  return snap_diff_track(&base, runs, nruns, r->hdr.mem_bytes, err, errlen);
bad:
  close(fd);
  return -1;
}

#define DEV_STATE(kind, type, var)                                    \
  const type *var = snap_reader_find(&r, kind, 0, sizeof(type), NULL); \
  if (!var) {                                                         \
    snprintf(err, errlen, "snapshot lacks %s", #kind);                \
    goto out;                                                         \
  }

int snapshot_restore(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen) {
  char path[4200];
  snprintf(path, sizeof path, "%s/state", a->restore);
  size_t len;
  uint8_t *buf = read_capped(path, SNAP_MAX_FILE, &len, err, errlen);
  if (!buf) return -1;
  struct snap_reader r;
  int rc = -1;
  if (snap_reader_open(&r, buf, len, snap_host_kind(), err, errlen) < 0) goto out;
  if (r.hdr.nvcpus < 1 || r.hdr.nvcpus > VM_MAX_VCPUS || r.hdr.mem_bytes < (16ull << 20) ||
      r.hdr.mem_bytes > ((uint64_t)VM_MAX_MEM_MIB << 20) || r.hdr.mem_bytes % PAGE) {
    snprintf(err, errlen, "snapshot has %u vCPUs and %llu bytes of memory: out of range", r.hdr.nvcpus,
             (unsigned long long)r.hdr.mem_bytes);
    goto out;
  }
  if (memory_map(m, a->restore, &r, err, errlen) < 0) goto out;
  if (vcpus_create(&m->vm, err, errlen) < 0) goto out;
  if (machine_add_legacy(m, console_fd, err, errlen) < 0) goto out;
  if (machine_add_devices(m, a, err, errlen) < 0) goto out;
  if (vm_state_restore(&m->vm, &r, err, errlen) < 0) goto out;
  for (int i = 0; i < m->vm.nvcpus; i++)
    if (vcpu_state_restore(&m->vm.vcpus[i], &r, err, errlen) < 0) goto out;
  if (clock_restore(&m->vm, &r, err, errlen) < 0) goto out;
  DEV_STATE(SNAP_SEC_SERIAL, struct serial_state, ss);
  DEV_STATE(SNAP_SEC_I8042, struct i8042_state, ks);
  DEV_STATE(SNAP_SEC_CMOS, struct cmos_state, cs);
  DEV_STATE(SNAP_SEC_MACHINE, struct snap_machine_state, ms);
  if (ms->nvirtio != (uint32_t)m->nvirtio) {
    snprintf(err, errlen, "the snapshot has %u virtio devices, this command line %d (give the same --disk/--rng/--vsock)",
             ms->nvirtio, m->nvirtio);
    goto out;
  }
  for (int i = 0; i < m->nvirtio; i++) {
    const struct virtio_dev_state *vs = snap_reader_find(&r, SNAP_SEC_VIRTIO, (uint16_t)i, sizeof *vs, NULL);
    if (!vs) {
      snprintf(err, errlen, "snapshot lacks virtio device %d", i);
      goto out;
    }
    if (virtio_dev_restore(m->virtio[i], vs, err, errlen) < 0) goto out;
  }
  if (m->vsock) {
    const struct snap_vsock_state *vss = snap_reader_find(&r, SNAP_SEC_VSOCK, 0, sizeof *vss, NULL);
    if (!vss) {
      snprintf(err, errlen, "snapshot lacks the vsock state");
      goto out;
    }
    virtio_vsock_restore_next_port(m->vsock, vss->next_host_port);
  }
  /* Live vsock connections were not saved: the guest must drop its side of them. */
  if (m->vsock && virtio_vsock_transport_reset(m->vsock) < 0)
    fprintf(stderr, "onebox-vmm: vsock: no event buffer for TRANSPORT_RESET (driver not ready at snapshot time)\n");
  serial_restore(&m->serial, ss);
  i8042_restore(&m->kbd, ks);
  cmos_restore(&m->cmos, cs);
  rc = 0;
out:
  snap_reader_free(&r);
  return rc;
}
