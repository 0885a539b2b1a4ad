// Minimal /init for the VMM's Linux boot test: prints a marker and the CPU count, then powers off the onebox way
// (docs/architecture.md "Guest power-off": ONEBOX_PORT_POWEROFF, then reboot(RB_POWER_OFF)).
// With "onebox.test=panic" on the command line it exits instead, so the kernel panics (killing init).
#include <errno.h>
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
  int wrote = printf("BOOT-TEST: init running, cpus=%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
  int flushed = fflush(stdout);
  /* The same through printk (polled UART writes), and the serial IRQ count: tells a tty problem from a boot one. */
  int kmsg = open("/dev/kmsg", O_WRONLY);
  int irqs = open("/proc/interrupts", O_RDONLY);
  if (kmsg >= 0 && irqs >= 0) {
    char buf[4096];
    ssize_t n = read(irqs, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
      if (strstr(line, "ttyS") || strstr(line, "virtio")) dprintf(kmsg, "BOOT-TEST-KMSG: %s\n", line);
    dprintf(kmsg, "BOOT-TEST-KMSG: cpus=%ld printf=%d fflush=%d isatty=%d\n", sysconf(_SC_NPROCESSORS_ONLN), wrote,
            flushed, isatty(1));
  }
  tcdrain(1); /* the tty sends through THRE interrupts: let it finish before the VM ends */
  if (strstr(cmdline, "onebox.test=panic")) return 1; /* init exiting = "Attempted to kill init!" panic */
  /* onebox.test=probe: report what worked through init's exit code, which the kernel prints when it panics. */
  if (strstr(cmdline, "onebox.test=probe")) {
    int fd1_open = fcntl(1, F_GETFD) >= 0;
    int c = open("/dev/console", O_RDWR | O_NONBLOCK);
    return fd1_open | ((c >= 0 ? 0 : errno) << 1);
  }
  if (ioperm(ONEBOX_PORT_POWEROFF, 1, 1) == 0) outb(ONEBOX_POWEROFF_VALUE, ONEBOX_PORT_POWEROFF);
  reboot(RB_POWER_OFF);
  return 0;
}
