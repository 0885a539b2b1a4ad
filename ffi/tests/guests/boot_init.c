// Minimal /init for the VMM's Linux boot test: prints a marker and the CPU count, then powers off the onebox way
// (docs/architecture.md "Guest power-off": ONEBOX_PORT_POWEROFF, then reboot(RB_POWER_OFF)).
// With "onebox.test=panic" on the command line it exits instead, so the kernel panics (killing init).
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>

#define ONEBOX_PORT_POWEROFF 0x501 /* guest/protocol.ts */
#define ONEBOX_POWEROFF_VALUE 0x31

int main(void) {
  mount("proc", "/proc", "proc", 0, NULL);
  char cmdline[4096] = "";
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    if (n > 0) cmdline[n] = 0;
    close(fd);
  }
  printf("BOOT-TEST: init running, cpus=%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
  fflush(stdout);
  tcdrain(1); /* the tty sends through THRE interrupts: let it finish before the VM ends */
  if (strstr(cmdline, "onebox.test=panic")) return 1; /* init exiting = "Attempted to kill init!" panic */
  if (ioperm(ONEBOX_PORT_POWEROFF, 1, 1) == 0) outb(ONEBOX_POWEROFF_VALUE, ONEBOX_PORT_POWEROFF);
  reboot(RB_POWER_OFF);
  return 0;
}
