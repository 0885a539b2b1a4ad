// Shared macros for the tiny 64-bit test guests (run by onebox-vmm --test-guest, loaded at 1 MiB, long mode,
// identity-mapped 4 GiB, no IDT). Code must be position independent: only RIP-relative references.
#define COM1 0x3f8
#define ONEBOX_PORT_POWEROFF 0x501 /* guest/protocol.ts */
#define ONEBOX_POWEROFF_VALUE 0x31
#define VIRTIO_MMIO_BASE 0xd0000000 /* first virtio-mmio window (docs/vmm.md) */

/* Writes the NUL-terminated string at label to COM1 with one OUT per byte. Clobbers rax, rdx, rsi. */
.macro PUTS label
  lea \label(%rip), %rsi
  call guest_puts
.endm

/* Writes the power-off value: the vmm ends the VM with reason poweroff. Then halts forever. */
.macro POWEROFF
  mov $ONEBOX_POWEROFF_VALUE, %al
  mov $ONEBOX_PORT_POWEROFF, %dx
  outb %al, %dx
1:
  cli
  hlt
  jmp 1b
.endm

/* Library routines; include once at the end of a guest with GUEST_LIB. */
.macro GUEST_LIB
guest_puts:
  mov $COM1, %dx
1:
  lodsb
  test %al, %al
  jz 2f
  outb %al, %dx
  jmp 1b
2:
  ret
/* Prints eax as 8 hex digits on COM1. Clobbers rax, rcx, rdx, rbx. */
guest_print_hex32:
  mov %eax, %ebx
  mov $8, %ecx
  mov $COM1, %dx
3:
  rol $4, %ebx
  mov %bl, %al
  and $0xf, %al
  add $'0', %al
  cmp $'9', %al
  jbe 4f
  add $('a' - '0' - 10), %al
4:
  outb %al, %dx
  dec %ecx
  jnz 3b
  ret
.endm
