// Boot CPU state: GDT, identity page tables and long-mode registers for the 64-bit boot protocol entry.
#pragma once
#include "vm.h"

/* Writes the GDT, an empty IDT and 4 GiB identity page tables into guest memory. */
int x86_boot_write_tables(struct vm *vm, char *err, size_t errlen);
/* Puts vCPU 0 in 64-bit mode at rip with RSI = rsi (boot_params GPA, or 0 for a test guest). */
int x86_boot_set_regs(struct vcpu *c, uint64_t rip, uint64_t rsi, char *err, size_t errlen);
