// The machine: KVM VM fd, guest memory, buses, vCPUs, and the shared run/pause/exit state.
#pragma once
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "bus.h"
#include "evloop.h"
#include "guest_mem.h"
#include "irq.h"

#define VM_MAX_VCPUS 2
/* RAM ends below the MMIO hole; the virtio windows start at VM_MMIO_BASE (docs/vmm.md). */
#define VM_MAX_MEM_MIB 3072
#define VM_MMIO_BASE 0xd0000000ULL
/* x86 architectural addresses (Intel SDM vol. 3, 10.4.1 / 82093AA IOAPIC datasheet). */
#define VM_IOAPIC_ADDR 0xfec00000ULL
#define VM_LAPIC_ADDR 0xfee00000ULL
/* Intel VMX needs a 3-page TSS region and an identity-map page outside RAM (KVM_SET_TSS_ADDR docs). */
#define VM_TSS_ADDR 0xfffbd000ULL

enum vm_exit_reason {
  VM_EXIT_NONE = 0,
  VM_EXIT_POWEROFF,
  VM_EXIT_REBOOT,
  VM_EXIT_PANIC,
  VM_EXIT_INTERNAL_ERROR,
  VM_EXIT_STOPPED,
  VM_EXIT_ERROR,
};

struct vm;

struct vcpu {
  struct vm *vm;
  int index;
  int fd;
  struct kvm_run *run;
  size_t run_size;
  pthread_t thread;
  bool thread_started;
  _Atomic uint64_t cpu_ns; /* thread CPU time, sampled by the thread itself */
};

struct vm {
  int kvm_fd;
  int vm_fd;
  struct guest_mem mem;
  struct bus pio;
  struct bus mmio;
  struct evloop *loop;
  int nvcpus;
  struct vcpu vcpus[VM_MAX_VCPUS];

  /* Pause protocol: the control thread sets pause_requested and kicks; each vCPU thread parks and counts. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool pause_requested;
  int parked;
  int running_threads;

  /* First exit reason wins; exit_efd wakes the control loop. */
  _Atomic int exit_reason;
  char exit_detail[256];
  int exit_efd;
  _Atomic bool reset_requested; /* i8042 reset pulse seen: the following triple fault/shutdown is a reboot */
  _Atomic bool panic_seen;      /* "Kernel panic - not syncing" seen on the console */

  /* CLOCK_MONOTONIC ns: process start (main; a pooled vmm: the `restore` request), the first KVM_RUN entry and the
   * first KVM_RUN return of any vCPU (bench:restore splits thread wake-up from the guest's first run with them). */
  uint64_t start_ns;
  _Atomic uint64_t first_enter_ns;
  _Atomic uint64_t first_exit_ns;
};

uint64_t vm_now_ns(void);

/* Opens /dev/kvm, creates the VM with memory, in-kernel irqchip and PIT. Returns 0 or -1 with err set. */
int vm_create(struct vm *vm, uint64_t mem_bytes, int nvcpus, char *err, size_t errlen);
/* Maps fd (a snapshot's memory file, vm->mem.size bytes) MAP_PRIVATE over guest RAM, in place: the memslot stays. */
int vm_mem_map_file(struct vm *vm, int fd, char *err, size_t errlen);
/* Wires line to KVM_IRQFD for gsi (eventfd created here). */
int vm_irq_line_init(struct vm *vm, uint32_t gsi, struct irq_line *line, char *err, size_t errlen);
/* A guest write of `len` bytes equal to datamatch at MMIO address addr signals fd in the kernel (KVM_IOEVENTFD): no
 * exit to the vmm. Other writes there exit as before. Dropped with the VM fd. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, uint64_t datamatch, int fd, char *err, size_t errlen);
/* Frees everything vm_create made (safe on a partially created vm). */
void vm_destroy(struct vm *vm);

/* Records the exit reason (the first call wins) and wakes the control loop. Any thread. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *vm_exit_reason_name(enum vm_exit_reason reason);
