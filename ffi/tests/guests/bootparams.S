// Test guest for the Linux boot protocol path (linked as an ELF "vmlinux" by the test): prints what the loader
// put in boot_params (RSI): the command line via cmd_line_ptr (0x228), the e820 entry count (0x1e8) and
// acpi_rsdp_addr (0x070), then powers off.
#include "guest.h"
.code64
  mov %rsi, %r12                 /* boot_params, kept across calls */
  PUTS cmdline
  mov 0x228(%r12), %esi          /* hdr.cmd_line_ptr */
  call guest_puts
  PUTS e820
  movzbl 0x1e8(%r12), %eax       /* e820_entries */
  call guest_print_hex32
  PUTS rsdp
  mov 0x070(%r12), %eax          /* acpi_rsdp_addr (low half) */
  call guest_print_hex32
  PUTS newline
  POWEROFF
  GUEST_LIB
cmdline: .asciz "cmdline="
e820: .asciz "\ne820="
rsdp: .asciz " rsdp="
newline: .asciz "\n"
