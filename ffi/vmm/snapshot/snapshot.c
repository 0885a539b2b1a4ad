// Machine snapshot: vCPUs, in-kernel irqchip/PIT/clock, core devices into DIR/state; guest RAM into DIR/memory.
#include "snapshot/snapshot.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "snapshot/diff.h"
#include "snapshot/format.h"
#include "snapshot/vcpu_state.h"
#include "virtio/persist.h"
#include "vcpu.h"

#define PAGE 4096u
/* KVM_GET_IRQCHIP chip ids (KVM API docs). */
#define IRQCHIP_PIC_MASTER 0
#define IRQCHIP_PIC_SLAVE 1
#define IRQCHIP_IOAPIC 2

static int fail(char *err, size_t errlen, const char *what, const char *path) {
  snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "", strerror(errno));
  return -1;
}

static bool page_is_zero(const uint8_t *p) {
  const uint64_t *q = (const uint64_t *)p;
  for (unsigned i = 0; i < PAGE / 8; i++)
    if (q[i]) return false;
  return true;
}

static bool page_wanted(const uint64_t *pages, uint64_t off) {
  uint64_t p = off / PAGE;
  return !pages || (pages[p / 64] >> (p % 64) & 1);
}

/* Writes RAM as it is, or only the pages set in `pages` (a diff); zero pages stay holes (the file is ftruncated to
 * full size first, so a page is always at its own guest-physical offset). */
static int memory_write(const struct guest_mem *mem, const uint64_t *pages, const char *dir, char *err, size_t errlen) {
  char tmp[4200], path[4200];
  snprintf(tmp, sizeof tmp, "%s/memory.tmp", dir);
  snprintf(path, sizeof path, "%s/memory", dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(err, errlen, "open", tmp);
  if (ftruncate(fd, (off_t)mem->size) < 0) goto bad;
  for (uint64_t off = 0; off < mem->size;) {
    if (!page_wanted(pages, off) || page_is_zero(mem->host + off)) {
      off += PAGE;
      continue;
    }
    uint64_t end = off + PAGE;
    while (end < mem->size && end - off < (64u << 20) && page_wanted(pages, end) && !page_is_zero(mem->host + end))
      end += PAGE;
    for (uint64_t p = off; p < end;) {
      ssize_t n = pwrite(fd, mem->host + p, end - p, (off_t)p);
      if (n <= 0) goto bad;
      p += (uint64_t)n;
    }
    off = end;
  }
  if (fsync(fd) < 0 || rename(tmp, path) < 0) goto bad;
  close(fd);
  return 0;
bad:
  fail(err, errlen, "write", tmp);
  close(fd);
  unlink(tmp);
  return -1;
}

static int vm_state_save(struct vm *vm, struct snap_writer *w, char *err, size_t errlen) {
  for (uint32_t chip = IRQCHIP_PIC_MASTER; chip <= IRQCHIP_IOAPIC; chip++) {
    struct kvm_irqchip ic = {.chip_id = chip};
    if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &ic) < 0) return fail(err, errlen, "KVM_GET_IRQCHIP", NULL);
    snap_writer_add(w, SNAP_SEC_VM_IRQCHIP, (uint16_t)chip, &ic, sizeof ic);
  }
  struct kvm_pit_state2 pit;
  if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0) return fail(err, errlen, "KVM_GET_PIT2", NULL);
  snap_writer_add(w, SNAP_SEC_VM_PIT2, 0, &pit, sizeof pit);
  struct kvm_clock_data clock = {0};
  if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0) return fail(err, errlen, "KVM_GET_CLOCK", NULL);
  snap_writer_add(w, SNAP_SEC_VM_CLOCK, 0, &clock, sizeof clock);
  return 0;
}

/* The pages a diff must hold, as a bitmap and as runs (for the state file). Returns the number of runs, 0 when the
 * diff would be too fragmented (the caller then writes a full snapshot), or -1 with err. */
static long diff_pages(const struct guest_mem *mem, uint64_t **bitmap, struct snap_diff_run **runs, char *err,
                       size_t errlen) {
  uint64_t npages = mem->size / PAGE;
  *bitmap = calloc((npages + 63) / 64, sizeof **bitmap);
  *runs = calloc(SNAP_DIFF_MAX_RUNS, sizeof **runs);
  if (!*bitmap || !*runs) {
    snprintf(err, errlen, "out of memory for the diff page list");
    return -1;
  }
  if (snap_diff_dirty_pages(mem, *bitmap, err, errlen) < 0) return -1;
  size_t n = snap_diff_runs_from_bitmap(*bitmap, npages, *runs);
  if (n > SNAP_DIFF_MAX_RUNS) return 0;
  if (n == 0) { /* nothing changed: one page keeps the format simple (a diff always has runs) */
    (*bitmap)[0] |= 1;
    (*runs)[0] = (struct snap_diff_run){.first_page = 0, .npages = 1};
    n = 1;
  }
  return (long)n;
}

static int save(struct machine *m, const char *dir, const uint64_t *pages, const struct snap_diff_run *runs, long nruns,
                char *err, size_t errlen);

int snapshot_save(struct machine *m, const char *dir, char *err, size_t errlen) {
  return save(m, dir, NULL, NULL, 0, err, errlen);
}

int snapshot_save_diff(struct machine *m, const char *dir, char *err, size_t errlen) {
  const struct snap_diff_base *base = snap_diff_tracked_base();
  char mem_path[4200];
  struct stat st;
  /* Writing a diff into its own base would replace the file the diff lies over. (No realpath: seccomp forbids
   * readlink; the memory file's identity says the same.) */
  snprintf(mem_path, sizeof mem_path, "%s/memory", dir);
  if (base && stat(mem_path, &st) == 0 && st.st_dev == base->dev && st.st_ino == base->ino) {
    snprintf(err, errlen, "%s is this VM's base snapshot: write the diff to another directory", dir);
    return -1;
  }
  uint64_t *pages = NULL;
  struct snap_diff_run *runs = NULL;
  long nruns = diff_pages(&m->vm.mem, &pages, &runs, err, errlen);
  if (nruns == 0) {
    fprintf(stderr, "onebox-vmm: snapshot-diff: more than %u page runs, writing a full snapshot\n", SNAP_DIFF_MAX_RUNS);
    free(pages);
    pages = NULL;
  }
  int rc = nruns < 0 ? -1 : save(m, dir, pages, runs, nruns, err, errlen);
  free(pages);
  free(runs);
  return rc;
}

static int save(struct machine *m, const char *dir, const uint64_t *pages, const struct snap_diff_run *runs, long nruns,
                char *err, size_t errlen) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) return fail(err, errlen, "mkdir", dir);
  /* An older state file must not pair with the new memory file if this snapshot fails half-way. */
  char old_state[4200];
  snprintf(old_state, sizeof old_state, "%s/state", dir);
  if (unlink(old_state) < 0 && errno != ENOENT) return fail(err, errlen, "unlink", old_state);
  struct snap_writer w;
  snap_writer_init(&w, (uint32_t)m->vm.nvcpus, m->vm.mem.size, snap_host_kind());
  int rc = -1;
  for (int i = 0; i < m->vm.nvcpus; i++)
    if (vcpu_state_save(&m->vm.vcpus[i], &w, err, errlen) < 0) goto out;
  if (vm_state_save(&m->vm, &w, err, errlen) < 0) goto out;
  struct serial_state ss;
  struct i8042_state ks;
  struct cmos_state cs;
  serial_save(&m->serial, &ss);
  i8042_save(&m->kbd, &ks);
  cmos_save(&m->cmos, &cs);
  snap_writer_add(&w, SNAP_SEC_SERIAL, 0, &ss, sizeof ss);
  snap_writer_add(&w, SNAP_SEC_I8042, 0, &ks, sizeof ks);
  snap_writer_add(&w, SNAP_SEC_CMOS, 0, &cs, sizeof cs);
  struct snap_machine_state ms = {.nvirtio = (uint32_t)m->nvirtio};
  snap_writer_add(&w, SNAP_SEC_MACHINE, 0, &ms, sizeof ms);
  if (pages) {
    snap_writer_mark_diff(&w);
    snap_writer_add(&w, SNAP_SEC_DIFF_BASE, 0, snap_diff_tracked_base(), sizeof(struct snap_diff_base));
    snap_writer_add(&w, SNAP_SEC_DIFF_RUNS, 0, runs, (size_t)nruns * sizeof *runs);
  }
  /* Device locks stay held until RAM is written: the event loop (vsock host side) must not touch the rings
   * or guest buffers while their state and the memory image are taken. */
  for (int i = 0; i < m->nvirtio; i++) {
    struct virtio_mmio_dev *dev = m->virtio[i];
    struct virtio_dev_state vs;
    uint8_t own[VIRTIO_OWN_STATE_MAX] = {0};
    pthread_mutex_lock(&dev->lock);
    dev->ops->save(dev, &vs, own);
    snap_writer_add(&w, SNAP_SEC_VIRTIO, (uint16_t)i, &vs, sizeof vs);
    if (dev->ops->state_len) snap_writer_add(&w, dev->ops->state_section, snap_device_ordinal(m, i), own, dev->ops->state_len);
  }
  size_t len;
  const uint8_t *img = snap_writer_finish(&w, &len);
  if (!img) {
    for (int i = 0; i < m->nvirtio; i++) pthread_mutex_unlock(&m->virtio[i]->lock);
    snprintf(err, errlen, "snapshot state exceeds its caps or memory ran out");
    goto out;
  }
  /* Memory first, state last: a directory with a state file is complete. */
  int mrc = memory_write(&m->vm.mem, pages, dir, err, errlen);
  for (int i = 0; i < m->nvirtio; i++) pthread_mutex_unlock(&m->virtio[i]->lock);
  if (mrc < 0) goto out;
  char tmp[4200], path[4200];
  snprintf(tmp, sizeof tmp, "%s/state.tmp", dir);
  snprintf(path, sizeof path, "%s/state", dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail(err, errlen, "open", tmp);
    goto out;
  }
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, img + done, len - done);
    if (n <= 0) break;
    done += (size_t)n;
  }
  if (done != len || fsync(fd) < 0 || rename(tmp, path) < 0) {
    fail(err, errlen, "write", tmp);
    close(fd);
    unlink(tmp);
    goto out;
  }
  close(fd);
  rc = 0;
out:
  snap_writer_free(&w);
  return rc;
}

