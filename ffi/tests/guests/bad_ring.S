// Test guest: drives the first virtio-mmio device (virtio spec 3.1.1 init sequence) with a descriptor that points
// far outside guest RAM, notifies, and prints the device status: the device must flag DEVICE_NEEDS_RESET (0x40)
// while the vmm keeps running. Then halts with interrupts off (the test stops the VM over the control socket).
#include "guest.h"
#define RING 0x200000                 /* desc table; avail at +0x1000, used at +0x2000 (all in RAM) */
.code64
  mov $VIRTIO_MMIO_BASE, %rdi
  movl $0, 0x070(%rdi)                /* STATUS = 0: reset */
  movl $1, 0x070(%rdi)                /* ACKNOWLEDGE */
  movl $3, 0x070(%rdi)                /* | DRIVER */
  movl $1, 0x024(%rdi)                /* DRIVER_FEATURES_SEL = 1 */
  movl $1, 0x020(%rdi)                /* VIRTIO_F_VERSION_1 (bit 32) */
  movl $11, 0x070(%rdi)               /* | FEATURES_OK */
  movl $0, 0x030(%rdi)                /* QUEUE_SEL = 0 */
  movl $8, 0x038(%rdi)                /* QUEUE_NUM = 8 */
  movl $RING, 0x080(%rdi)             /* QUEUE_DESC_LOW */
  movl $0, 0x084(%rdi)
  movl $(RING + 0x1000), 0x090(%rdi)  /* QUEUE_DRIVER_LOW (avail) */
  movl $0, 0x094(%rdi)
  movl $(RING + 0x2000), 0x0a0(%rdi)  /* QUEUE_DEVICE_LOW (used) */
  movl $0, 0x0a4(%rdi)
  /* desc[0] = { addr = 0xdead00000000 (not RAM), len = 4096, flags = WRITE, next = 0 } */
  mov $RING, %rbx
  movabs $0xdead00000000, %rax
  mov %rax, 0(%rbx)
  movl $4096, 8(%rbx)
  movw $2, 12(%rbx)
  movw $0, 14(%rbx)
  /* avail: flags 0, idx 1, ring[0] = 0 */
  mov $(RING + 0x1000), %rbx
  movw $0, 0(%rbx)
  movw $0, 4(%rbx)
  movw $1, 2(%rbx)
  movl $1, 0x044(%rdi)                /* QUEUE_READY */
  movl $15, 0x070(%rdi)               /* | DRIVER_OK */
  movl $0, 0x050(%rdi)                /* QUEUE_NOTIFY queue 0 */
  /* the device may handle the notify on another thread: poll STATUS for a while */
  mov $100000000, %rcx
1:
  movl 0x070(%rdi), %eax
  test $0x40, %eax
  jnz 2f
  dec %rcx
  jnz 1b
2:
  PUTS status
  mov $VIRTIO_MMIO_BASE, %rdi
  movl 0x070(%rdi), %eax
  call guest_print_hex32
  PUTS newline
3:
  cli
  hlt
  jmp 3b
  GUEST_LIB
status: .asciz "virtio status="
newline: .asciz "\n"
