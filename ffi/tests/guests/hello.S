// Test guest: writes a line to COM1 (PIO exits through the 8250) with OUTSB and OUT, then powers off.
#include "guest.h"
.code64
  /* rep outsb: one string-PIO exit with count > 1 */
  lea greeting(%rip), %rsi
  mov $(greeting_end - greeting), %ecx
  mov $COM1, %dx
  rep outsb
  PUTS second
  POWEROFF
  GUEST_LIB
greeting: .ascii "hello from the test guest\n"
greeting_end:
second: .asciz "second line\n"
