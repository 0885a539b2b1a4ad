// Test guest: floods COM1 with ~650 KiB of console lines, prints a last line, then powers off: the console log on the
// host must stay under --console-max and still end with the last line (docs/vmm.md "Console log").
#include "guest.h"
.code64
  mov $8000, %ebx
1:
  lea line(%rip), %rsi
  mov $(line_end - line), %ecx
  mov $COM1, %dx
  rep outsb
  dec %ebx
  jnz 1b
  PUTS last
  POWEROFF
  GUEST_LIB
line: .ascii "flood: the guest prints this line over and over, past the console log's size cap\n"
line_end:
last: .asciz "the last line of the flood\n"
