// Kernel loading: bzImage or ELF vmlinux, initrd, command line and boot_params (the zero page) with e820.
#pragma once
#include "vm.h"

struct loader_result {
  uint64_t entry;        /* 64-bit entry point (RIP) */
  uint64_t boot_params;  /* GPA for RSI, 0 for a flat test guest */
};

/* Loads kernel (+ optional initrd) and writes boot_params with cmdline, e820 and acpi_rsdp_addr. */
int loader_load_linux(struct vm *vm, const char *kernel, const char *initrd, const char *cmdline,
                      uint64_t acpi_rsdp, struct loader_result *out, char *err, size_t errlen);
/* Loads a flat binary at LAYOUT_HIGH_MEM; execution starts at its first byte in 64-bit mode. */
int loader_load_flat(struct vm *vm, const char *path, struct loader_result *out, char *err, size_t errlen);
