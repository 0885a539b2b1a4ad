// Test guest for snapshots: counts forever, keeping the count both in r12 and in memory, and prints it to COM1.
// A restored clone must continue the sequence (register and RAM restored) and never print "mismatch".
#include "guest.h"
.code64
  xor %r12d, %r12d
  movl $0, count(%rip)
1:
  inc %r12d
  incl count(%rip)
  cmp count(%rip), %r12d
  je 2f
  PUTS mismatch
2:
  PUTS prefix
  mov %r12d, %eax
  call guest_print_hex32
  PUTS newline
  mov $1000, %r13   /* pause between lines: a few ms */
3:
  dec %r13
  jnz 3b
  jmp 1b
  GUEST_LIB
prefix: .asciz "count "
newline: .asciz "\n"
mismatch: .asciz "mismatch\n"
.balign 4096 /* its own page: no writes next to the code */
count: .long 0
