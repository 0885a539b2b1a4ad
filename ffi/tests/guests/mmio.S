// Test guest: reads an unmapped MMIO address (expects all ones) and the first virtio-mmio window's
// MagicValue/Version/DeviceID registers, prints them on COM1, then powers off.
#include "guest.h"
.code64
  PUTS unmapped
  mov $0xc0000000, %rdi        /* above RAM (the test gives 64 MiB), below the virtio windows */
  movl (%rdi), %eax
  call guest_print_hex32
  PUTS magic
  mov $VIRTIO_MMIO_BASE, %rdi
  movl 0x000(%rdi), %eax       /* VIRTIO_MMIO_MAGIC_VALUE */
  call guest_print_hex32
  PUTS version
  mov $VIRTIO_MMIO_BASE, %rdi
  movl 0x004(%rdi), %eax       /* VIRTIO_MMIO_VERSION */
  call guest_print_hex32
  PUTS device
  mov $VIRTIO_MMIO_BASE, %rdi
  movl 0x008(%rdi), %eax       /* VIRTIO_MMIO_DEVICE_ID */
  call guest_print_hex32
  PUTS newline
  POWEROFF
  GUEST_LIB
unmapped: .asciz "unmapped="
magic: .asciz " magic="
version: .asciz " version="
device: .asciz " device="
newline: .asciz "\n"
