// Test guest: loads an empty IDT and executes UD2: #UD -> #GP -> #DF -> triple fault (KVM_EXIT_SHUTDOWN).
#include "guest.h"
.code64
  PUTS msg
  lidt empty_idt(%rip)
  ud2
  GUEST_LIB
msg: .asciz "about to triple fault\n"
  .balign 8
empty_idt: .word 0
  .quad 0
