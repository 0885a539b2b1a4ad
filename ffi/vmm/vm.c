// KVM VM creation: /dev/kvm, guest memory slot, in-kernel irqchip + PIT, irqfd lines, and exit requests.
#include "vm.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(errno));
  return -1;
}

int vm_create(struct vm *vm, uint64_t mem_bytes, int nvcpus, char *err, size_t errlen) {
  memset(vm, 0, sizeof *vm);
  vm->kvm_fd = vm->vm_fd = vm->exit_efd = -1;
  for (int i = 0; i < VM_MAX_VCPUS; i++) vm->vcpus[i].fd = -1;
  pthread_mutex_init(&vm->lock, NULL);
  pthread_cond_init(&vm->cond, NULL);
  vm->nvcpus = nvcpus;

  vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (vm->exit_efd < 0) return fail(err, errlen, "eventfd");
  vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (vm->kvm_fd < 0) return fail(err, errlen, "open /dev/kvm (is KVM available and are you root?)");
  int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    snprintf(err, errlen, "KVM API version %d, need %d", version, KVM_API_VERSION);
    return -1;
  }
  vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
  if (vm->vm_fd < 0) return fail(err, errlen, "KVM_CREATE_VM");

  /* Intel VMX needs these for real-mode emulation; other hosts (AMD, PVM) may refuse, which is harmless. */
  ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR);
  uint64_t identity = VM_TSS_ADDR + 3 * 4096;
  ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity);

  /* Anonymous RAM; a restore later maps the snapshot's memory file over this same range (vm_mem_map_file), so the
   * memslot registered here stays valid and is never changed after the irqchip exists. */
  void *host = mmap(NULL, mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (host == MAP_FAILED) return fail(err, errlen, "mmap guest memory");
  vm->mem.host = host;
  vm->mem.size = mem_bytes;
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = mem_bytes, .userspace_addr = (uint64_t)(uintptr_t)host};
  if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return fail(err, errlen, "KVM_SET_USER_MEMORY_REGION");

  /* The irqchip comes after the memslot: on this host a memslot change after KVM_CREATE_IRQCHIP costs ~7 ms (an
   * SRCU grace period), before it ~0.1 ms (measured with ffi/tests/bench/floor.c, docs/snapshot.md). */
  if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) return fail(err, errlen, "KVM_CREATE_IRQCHIP");
  /* flags 0: KVM also emulates port 0x61 (PIT channel 2 gate/output), which Linux uses to calibrate the TSC. */
  struct kvm_pit_config pit = {.flags = 0};
  if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) return fail(err, errlen, "KVM_CREATE_PIT2");

  vm->loop = evloop_create();
  if (!vm->loop) return fail(err, errlen, "evloop_create");
  return 0;
}

int vm_mem_map_file(struct vm *vm, int fd, char *err, size_t errlen) {
  /* MAP_FIXED replaces the untouched anonymous pages under the memslot; KVM looks guest pages up by host address at
   * fault time (and its MMU notifier drops anything mapped from the old pages), so the slot needs no change.
   * MAP_PRIVATE: clones share the file's unwritten pages in the page cache; a write copies one page. */
  void *host = mmap(vm->mem.host, vm->mem.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, 0);
  if (host == MAP_FAILED) return fail(err, errlen, "mmap the snapshot memory");
  return 0;
}

int vm_irq_line_init(struct vm *vm, uint32_t gsi, struct irq_line *line, char *err, size_t errlen) {
  line->gsi = gsi;
  line->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (line->eventfd < 0) return fail(err, errlen, "eventfd for irq");
  struct kvm_irqfd irqfd = {.fd = (uint32_t)line->eventfd, .gsi = gsi};
  if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
    int e = errno;
    close(line->eventfd);
    line->eventfd = -1;
    errno = e;
    return fail(err, errlen, "KVM_IRQFD");
  }
  return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, uint64_t datamatch, int fd, char *err, size_t errlen) {
  struct kvm_ioeventfd io = {.datamatch = datamatch, .addr = addr, .len = len, .fd = fd,
                             .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
  if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) return fail(err, errlen, "KVM_IOEVENTFD");
  return 0;
}

void vm_destroy(struct vm *vm) {
  if (vm->loop) evloop_destroy(vm->loop);
  for (int i = 0; i < VM_MAX_VCPUS; i++) {
    struct vcpu *c = &vm->vcpus[i];
    if (c->run) munmap(c->run, c->run_size);
    if (c->fd >= 0) close(c->fd);
  }
  if (vm->mem.host) munmap(vm->mem.host, vm->mem.size);
  if (vm->vm_fd >= 0) close(vm->vm_fd);
  if (vm->kvm_fd >= 0) close(vm->kvm_fd);
  if (vm->exit_efd >= 0) close(vm->exit_efd);
  vm->loop = NULL;
  vm->mem.host = NULL;
  vm->vm_fd = vm->kvm_fd = vm->exit_efd = -1;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...) {
  int expected = VM_EXIT_NONE;
  if (!atomic_compare_exchange_strong(&vm->exit_reason, &expected, (int)reason)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(vm->exit_detail, sizeof vm->exit_detail, fmt, ap);
  va_end(ap);
  uint64_t one = 1;
  if (write(vm->exit_efd, &one, sizeof one) < 0) { /* counter overflow only: already signalled */
  }
}

uint64_t vm_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *vm_exit_reason_name(enum vm_exit_reason reason) {
  switch (reason) {
    case VM_EXIT_POWEROFF: return "poweroff";
    case VM_EXIT_REBOOT: return "reboot";
    case VM_EXIT_PANIC: return "panic";
    case VM_EXIT_INTERNAL_ERROR: return "internal-error";
    case VM_EXIT_STOPPED: return "stopped";
    case VM_EXIT_ERROR: return "error";
    default: return "none";
  }
}
