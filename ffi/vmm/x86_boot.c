// Boot CPU state for the Linux x86 64-bit boot protocol: GDT with __BOOT_CS/__BOOT_DS, identity paging, long mode.
#include "x86_boot.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include "layout.h"

/* Selectors the 64-bit boot protocol requires (boot.rst, "64-bit BOOT PROTOCOL"): __BOOT_CS 0x10, __BOOT_DS 0x18. */
#define GDT_BOOT_CS 2
#define GDT_BOOT_DS 3
#define GDT_BOOT_TSS 4
#define GDT_ENTRIES 5
/* Control register and EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1). */
#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
/* Page table entry bits (SDM vol. 3, 4.5). */
#define PTE_PRESENT (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)
#define PAGE_2M (2ULL << 20)
#define X86_RFLAGS_RESERVED (1ULL << 1)
/* x87 and SSE reset values the kernel expects (SDM vol. 1, 8.1.5 and 10.2.3). */
#define FPU_FCW_DEFAULT 0x37f
#define MXCSR_DEFAULT 0x1f80

/* A GDT descriptor from flags (G, D/B, L, AVL, P, DPL, S, type), base and limit, as in the SDM figure 3-8. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
         ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) | (limit & 0x0000ffffu);
}

static struct kvm_segment segment_from_gdt(uint64_t entry, uint16_t index) {
  return (struct kvm_segment){
      .base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24),
      .limit = (uint32_t)((entry & 0xffff) | (((entry >> 48) & 0xf) << 16)),
      .selector = (uint16_t)(index * 8),
      .type = (entry >> 40) & 0xf,
      .present = (entry >> 47) & 1,
      .dpl = (entry >> 45) & 3,
      .db = (entry >> 54) & 1,
      .s = (entry >> 44) & 1,
      .l = (entry >> 53) & 1,
      .g = (entry >> 55) & 1,
      .avl = (entry >> 52) & 1,
      .unusable = !((entry >> 47) & 1),
  };
}

static uint64_t gdt[GDT_ENTRIES];

int x86_boot_write_tables(struct vm *vm, char *err, size_t errlen) {
  gdt[0] = 0;
  gdt[1] = 0;
  gdt[GDT_BOOT_CS] = gdt_entry(0xa09b, 0, 0xfffff);   /* 64-bit code, present, execute/read, accessed */
  gdt[GDT_BOOT_DS] = gdt_entry(0xc093, 0, 0xfffff);   /* 32-bit data, present, read/write, accessed */
  gdt[GDT_BOOT_TSS] = gdt_entry(0x808b, 0, 0xfffff);  /* busy TSS: VMX entry requires a usable TR */
  uint8_t *p = guest_mem_ptr(&vm->mem, LAYOUT_GDT, sizeof gdt);
  uint8_t *idt = guest_mem_ptr(&vm->mem, LAYOUT_IDT, 8);
  uint64_t *pml4 = guest_mem_ptr(&vm->mem, LAYOUT_PML4, 4096);
  uint64_t *pdpt = guest_mem_ptr(&vm->mem, LAYOUT_PDPT, 4096);
  uint64_t *pd = guest_mem_ptr(&vm->mem, LAYOUT_PD, 4096 * LAYOUT_PD_COUNT);
  if (!p || !idt || !pml4 || !pdpt || !pd) {
    snprintf(err, errlen, "guest memory too small for boot tables");
    return -1;
  }
  memcpy(p, gdt, sizeof gdt);
  memset(idt, 0, 8);
  memset(pml4, 0, 4096);
  memset(pdpt, 0, 4096);
  pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
  for (uint64_t i = 0; i < LAYOUT_PD_COUNT; i++) pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_PRESENT | PTE_RW;
  /* 4 GiB identity map in 2 MiB pages: covers RAM, the virtio windows at 0xd0000000 and the APIC pages. */
  for (uint64_t i = 0; i < 512 * LAYOUT_PD_COUNT; i++) pd[i] = (i * PAGE_2M) | PTE_PRESENT | PTE_RW | PTE_PS;
  return 0;
}

int x86_boot_set_regs(struct vcpu *c, uint64_t rip, uint64_t rsi, char *err, size_t errlen) {
  struct kvm_sregs sregs;
  if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0) goto fail;
  struct kvm_segment code = segment_from_gdt(gdt[GDT_BOOT_CS], GDT_BOOT_CS);
  struct kvm_segment data = segment_from_gdt(gdt[GDT_BOOT_DS], GDT_BOOT_DS);
  struct kvm_segment tss = segment_from_gdt(gdt[GDT_BOOT_TSS], GDT_BOOT_TSS);
  sregs.gdt.base = LAYOUT_GDT;
  sregs.gdt.limit = sizeof gdt - 1;
  sregs.idt.base = LAYOUT_IDT;
  sregs.idt.limit = 7;
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = tss;
  sregs.cr0 |= X86_CR0_PE | X86_CR0_PG | X86_CR0_ET;
  sregs.cr3 = LAYOUT_PML4;
  sregs.cr4 |= X86_CR4_PAE;
  sregs.efer |= EFER_LME | EFER_LMA;
  if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0) goto fail;

  struct kvm_regs regs = {0};
  regs.rflags = X86_RFLAGS_RESERVED;
  regs.rip = rip;
  regs.rsi = rsi;
  regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
  if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0) goto fail;

  struct kvm_fpu fpu = {0};
  fpu.fcw = FPU_FCW_DEFAULT;
  fpu.mxcsr = MXCSR_DEFAULT;
  if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0) goto fail;
  return 0;
fail:
  snprintf(err, errlen, "setting vcpu %d boot registers: %s", c->index, strerror(errno));
  return -1;
}
