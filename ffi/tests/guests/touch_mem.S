// Test guest for the VM's memory cgroup: writes one word to every 4 KiB page from 4 MiB to 60 MiB (the VM needs
// 64 MiB), prints "touched", then halts. Each write faults a fresh host page into the vmm, charged to its cgroup.
#include "guest.h"
.code64
  mov $0x400000, %rdi
  mov $0x3c00000, %rcx
1:
  mov %rdi, (%rdi)
  add $4096, %rdi
  cmp %rcx, %rdi
  jb 1b
  PUTS touched
2:
  cli
  hlt
  jmp 2b
  GUEST_LIB
touched: .asciz "touched\n"
