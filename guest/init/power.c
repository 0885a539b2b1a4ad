// Power-off and reboot of the guest (no ACPI: tell the vmm through ONEBOX_PORT_POWEROFF).
#include "power.h"

#include <sys/io.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "protocol.h"

/* power_port_write does ioperm + outb in a short-lived child. Measured: under nested
 * virtualization (KVM inside the QEMU TCG test host) the outb raises #GP despite a successful
 * ioperm; in PID 1 that SIGSEGV would panic the kernel ("Attempted to kill init"), so only the
 * child may die, and power-off continues with reboot() either way. */
static void power_port_write(void) {
  pid_t pid = fork();
  if (pid == 0) {
    if (ioperm(ONEBOX_PORT_POWEROFF, 1, 1) < 0) _exit(1);
    outb(ONEBOX_POWEROFF_VALUE, ONEBOX_PORT_POWEROFF);
    _exit(0);
  }
  if (pid < 0) {
    log_errno("power-off port: fork");
    return;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    log_info("power-off port 0x%x not writable here; relying on reboot(RB_POWER_OFF)", ONEBOX_PORT_POWEROFF);
}

void power_off(void) {
  sync();
  /* Without ACPI, RB_POWER_OFF only halts the CPU; the port write is how the vmm learns that
   * this halt is a power-off (docs/architecture.md, "Guest power-off and reboot"). */
  power_port_write();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

void power_reboot(void) {
  sync();
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}
