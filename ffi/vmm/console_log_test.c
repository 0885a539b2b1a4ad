// Native test of the capped console log: a guest that prints far past --console-max through the UART leaves a file
// under the cap that ends with its newest line and starts at a line; also for a write-only (O_APPEND) fd, and a
// planted symlink or FIFO is refused.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "console_log.h"
#include "serial.h"
#include "test_check.h"

#define CAP (64u << 10)

static void guest_prints(struct serial *s, const char *text) {
  for (const char *p = text; *p; p++) serial_pio_write(s, 0, (const uint8_t *)p, 1); /* THR, as the guest's outb */
}

static char file[CAP * 2];

/* Prints `lines` numbered lines; checks the file stays under the cap and holds the newest of them, whole. */
static int run(int fd, int lines, const char *name) {
  struct vm vm = {0};
  vm.exit_efd = -1;
  struct serial s;
  serial_init(&s, &vm, fd);
  s.log.max = CAP;
  char line[128];
  for (int i = 0; i < lines; i++) {
    snprintf(line, sizeof line, "line %06d of the guest's console output, padded to look like dmesg\n", i);
    guest_prints(&s, line);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size <= CAP);
  }
  int rfd = open(name, O_RDONLY);
  CHECK(rfd >= 0);
  ssize_t n = read(rfd, file, sizeof file - 1);
  close(rfd);
  CHECK(n > 0 && (size_t)n <= CAP);
  file[n] = 0;
  snprintf(line, sizeof line, "line %06d of the guest's console output, padded to look like dmesg\n", lines - 1);
  CHECK(n >= (ssize_t)strlen(line) && strcmp(file + n - strlen(line), line) == 0); /* the newest line is last */
  static const char marker[] = "[onebox: console log over its size cap";
  CHECK(strncmp(file, marker, strlen(marker)) == 0);
  const char *second = strchr(file, '\n') + 1;
  CHECK(strncmp(second, "line ", 5) == 0); /* the kept part starts at a whole line */
  CHECK(n > (ssize_t)(CAP / 8));           /* and keeps a useful amount, not just the last line */
  return 0;
}

int main(void) {
  char dir[] = "/tmp/onebox-console-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256], link[256], fifo[256];
  snprintf(path, sizeof path, "%s/console.log", dir);
  snprintf(link, sizeof link, "%s/link.log", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo.log", dir);
  char err[256];

  /* The vmm's own open: read-write, rotated by moving the newest half to the start. 3 MiB through a 64 KiB cap. */
  int fd = console_log_open(path, err, sizeof err);
  CHECK(fd >= 0);
  struct stat st;
  CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600);
  CHECK(run(fd, 40000, path) == 0);
  close(fd);

  /* An fd it cannot read back (a write-only O_APPEND one, as a daemon might pass): starts over from the ring. */
  unlink(path);
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
  CHECK(fd >= 0);
  CHECK(run(fd, 40000, path) == 0);
  close(fd);

  /* A symlink or a FIFO planted at the path is refused (the open runs as root; rotation truncates). */
  CHECK(symlink("/etc/passwd", link) == 0);
  CHECK(console_log_open(link, err, sizeof err) < 0);
  CHECK(mkfifo(fifo, 0600) == 0);
  CHECK(console_log_open(fifo, err, sizeof err) < 0 && strstr(err, "not a regular file"));

  unlink(path);
  unlink(link);
  unlink(fifo);
  rmdir(dir);
  printf("console_log_test: ok\n");
  return 0;
}
