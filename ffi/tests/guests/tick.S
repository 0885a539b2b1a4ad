// Test guest for bench:restore: prints "ready" once, then exits to the vmm (OUT to the ignored port 0x80) every few
// µs without console output, so a restored clone's first guest exit comes right after it starts running.
#include "guest.h"
.code64
  PUTS ready
1:
  outb %al, $0x80
  mov $1000, %ecx
2:
  dec %ecx
  jnz 2b
  jmp 1b
  GUEST_LIB
ready: .asciz "ready\n"
