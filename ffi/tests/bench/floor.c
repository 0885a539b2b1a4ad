// The restore floor on this host (DESIGN.md §2): create VM + memslot + one vCPU + set regs + run to the first exit,
// nothing else. Prints one latency per line in µs. Built and run by scripts/bench-restore.ts.
// Usage: floor N [irqchip|irqchip-first|split]
//   irqchip: KVM_CREATE_IRQCHIP after the memslot (as onebox-vmm does); irqchip-first: before it (a memslot change
//   after the irqchip waits for an SRCU grace period, ~7 ms here); split: KVM_CAP_SPLIT_IRQCHIP (userspace IOAPIC).
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (2u << 20)
#define GDT 0x500
#define PML4 0x9000

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* 64-bit mode from the first instruction, like onebox's test guests (ffi/vmm/x86_boot.c; PVM runs only
 * long-mode guests): one identity-mapped 2 MiB page, GDT with flat code/data and a busy TSS. The guest executes
 * `out %al, $0x80`. */
static void setup_long_mode(int vcpu, uint8_t *mem) {
  uint64_t *pml4 = (uint64_t *)(mem + PML4), *pdpt = (uint64_t *)(mem + PML4 + 0x1000);
  uint64_t *pd = (uint64_t *)(mem + PML4 + 0x2000);
  pml4[0] = (PML4 + 0x1000) | 3;
  pdpt[0] = (PML4 + 0x2000) | 3;
  pd[0] = 0x83; /* present, writable, 2 MiB page */
  uint64_t *gdt = (uint64_t *)(mem + GDT);
  gdt[2] = 0x00af9b000000ffffull; /* 0x10: 64-bit code */
  gdt[3] = 0x00cf93000000ffffull; /* 0x18: data */
  gdt[4] = 0x00808b0000000fffull; /* 0x20: busy TSS */
  struct kvm_sregs s;
  if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
  struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11, .present = 1, .dpl = 0,
                             .db = 0, .s = 1, .l = 1, .g = 1};
  struct kvm_segment data = code;
  data.type = 3, data.selector = 0x18, data.l = 0, data.db = 1;
  s.gdt.base = GDT;
  s.gdt.limit = 5 * 8 - 1;
  s.tr = (struct kvm_segment){.base = 0, .limit = 0xfff, .selector = 0x20, .type = 11, .present = 1};
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.cr3 = PML4;
  s.cr4 = 1u << 5;              /* PAE */
  s.cr0 = 0x80000001u | 0x10u;  /* PG, PE, ET */
  s.efer = 0x500;               /* LME, LMA */
  if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
  struct kvm_regs r = {.rip = 0x1000, .rflags = 2, .rsp = 0x8000};
  if (ioctl(vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100;
  int irqchip = argc > 2 && !strcmp(argv[2], "irqchip");
  int irqchip_first = argc > 2 && !strcmp(argv[2], "irqchip-first");
  int split = argc > 2 && !strcmp(argv[2], "split");
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_us();
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    if (irqchip_first && ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    /* 24 IOAPIC routes reserved for the userspace IOAPIC, as QEMU/Firecracker-style split setups do. */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {24}};
    if (split && ioctl(vm, KVM_ENABLE_CAP, &cap) < 0) die("KVM_CAP_SPLIT_IRQCHIP");
    uint8_t *mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    static const uint8_t code[] = {0xe6, 0x80, 0xf4}; /* out %al, $0x80; hlt */
    memcpy(mem + 0x1000, code, sizeof code);
    struct kvm_userspace_memory_region region = {.slot = 0, .memory_size = MEM, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
    if (irqchip && ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    setup_long_mode(vcpu, mem);
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    uint64_t t1 = now_us();
    if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x80) {
      fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
      return 1;
    }
    printf("%llu\n", (unsigned long long)(t1 - t0));
    munmap(run, (size_t)run_size);
    close(vcpu);
    close(vm);
    munmap(mem, MEM);
  }
  return 0;
}
