// Test guest: pulses the i8042 reset line (command 0xFE on port 0x64), as Linux does with reboot=k.
#include "guest.h"
.code64
  mov $0xfe, %al
  outb %al, $0x64
1:
  cli
  hlt
  jmp 1b
