// Power-off and reboot of the guest (no ACPI: tell the vmm through ONEBOX_PORT_POWEROFF).
#include "power.h"

#include <sys/io.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "log.h"
#include "protocol.h"

void power_off(void) {
  sync();
  /* Without ACPI, RB_POWER_OFF only halts the CPU; the port write is how the vmm learns that
   * this halt is a power-off (docs/architecture.md, "Guest power-off and reboot"). */
  if (ioperm(ONEBOX_PORT_POWEROFF, 1, 1) == 0) outb(ONEBOX_POWEROFF_VALUE, ONEBOX_PORT_POWEROFF);
  else log_errno("ioperm");
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

void power_reboot(void) {
  sync();
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}
