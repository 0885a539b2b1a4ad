// Test guest: prints a kernel panic line on COM1 and then hangs with interrupts off (no reset ever comes):
// the vmm must still end the VM as a panic after its grace period.
#include "guest.h"
.code64
  PUTS msg
1:
  cli
  hlt
  jmp 1b
  GUEST_LIB
msg: .asciz "Kernel panic - not syncing: test guest gives up\n"
