// The guest physical memory map shared by the loader, the boot CPU state and the firmware tables (docs/vmm.md).
#pragma once

/* Linux x86 boot protocol (Documentation/x86/boot.rst) and what the 64-bit entry needs. */
#define LAYOUT_GDT 0x500ULL
#define LAYOUT_IDT 0x520ULL
#define LAYOUT_BOOT_PARAMS 0x7000ULL   /* the "zero page", struct boot_params */
#define LAYOUT_BOOT_STACK 0x8ff0ULL    /* initial RSP, below the page tables */
#define LAYOUT_PML4 0x9000ULL          /* identity page tables: PML4, PDPT, 4 PDs = 4 GiB in 2 MiB pages */
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL            /* 4 pages: 0xb000..0xefff */
#define LAYOUT_PD_COUNT 4
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 4096
#define LAYOUT_EBDA 0x9fc00ULL         /* end of conventional memory: legacy BIOS area starts here */
#define LAYOUT_BIOS_START 0xa0000ULL
#define LAYOUT_ACPI 0xe0000ULL         /* RSDP and tables: Linux scans 0xe0000..0xfffff for "RSD PTR " */
#define LAYOUT_ACPI_END 0x100000ULL
#define LAYOUT_HIGH_MEM 0x100000ULL    /* kernel (protected-mode part or ELF PT_LOADs), test guests */
#define LAYOUT_MIN_MEM (16ULL << 20)   /* below this nothing useful fits */
