// The guest's serial console log on the host, capped and rotated in place (docs/vmm.md "Console log"): the vmm
// holds only the fd (after dropping root it may not rename in the daemon's directories), so past the cap it
// moves the newest half of the file to its start and truncates the rest.
#include "console_log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char ROTATED[] = "[onebox: console log over its size cap; older output dropped]\n";

int console_log_open(const char *path, char *err, size_t errlen) {
  /* O_RDWR: rotation reads the newest half back. O_NOFOLLOW + the regular-file check: a planted link or FIFO is
   * refused (this runs as root, and rotation truncates). */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "open --console %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "--console %s: not a regular file", path);
    close(fd);
    return -1;
  }
  return fd;
}

void console_log_attach(struct console_log *c, int fd, uint64_t max) {
  c->fd = fd;
  c->max = max ? max : CONSOLE_LOG_MAX_DEFAULT;
  c->size = 0;
  if (fd < 0) return;
  /* Rotation writes at offset 0, which O_APPEND would turn into an append (pwrite(2), BUGS). */
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_APPEND)) fcntl(fd, F_SETFL, fl & ~O_APPEND);
  off_t end = lseek(fd, 0, SEEK_END);
  c->size = end > 0 ? (uint64_t)end : 0;
}

static void write_all(struct console_log *c, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(c->fd, p, n);
    if (w <= 0) return; /* a full disk must not stop the guest; the ring still has the tail */
    p += w;
    n -= (size_t)w;
    c->size += (uint64_t)w;
  }
}

/* Moves the newest `keep` bytes (from the first line start among them) to the file's start; -1 if unreadable. */
static int keep_newest(struct console_log *c, uint64_t keep) {
  char buf[65536];
  uint64_t from = c->size - keep, to = sizeof ROTATED - 1;
  bool first = true;
  while (from < c->size) {
    size_t n = c->size - from < sizeof buf ? (size_t)(c->size - from) : sizeof buf;
    ssize_t r = pread(c->fd, buf, n, (off_t)from);
    if (r <= 0) return -1;
    size_t skip = 0;
    if (first) { /* start at a line: a cut line would be shown as if it were whole */
      char *nl = memchr(buf, '\n', (size_t)r);
      skip = nl ? (size_t)(nl - buf) + 1 : 0;
      first = false;
    }
    if (pwrite(c->fd, buf + skip, (size_t)r - skip, (off_t)to) != (ssize_t)((size_t)r - skip)) return -1;
    from += (uint64_t)r;
    to += (uint64_t)r - skip;
  }
  if (pwrite(c->fd, ROTATED, sizeof ROTATED - 1, 0) != (ssize_t)(sizeof ROTATED - 1)) return -1;
  if (ftruncate(c->fd, (off_t)to) < 0) return -1;
  c->size = to;
  return 0;
}

void console_log_write(struct console_log *c, const char *p, size_t n, const char *recent, size_t recent_len) {
  if (c->fd < 0 || n == 0) return;
  if (c->size + n > c->max) {
    if (keep_newest(c, c->max / 2) < 0) {
      /* Write-only fd (or a read error): start over with what the ring holds. */
      if (ftruncate(c->fd, 0) < 0) return;
      c->size = 0;
      if (recent_len > c->max / 2) {
        recent += recent_len - c->max / 2;
        recent_len = c->max / 2;
      }
      const char *nl = memchr(recent, '\n', recent_len); /* from a line start, as keep_newest */
      if (nl) {
        recent_len -= (size_t)(nl + 1 - recent);
        recent = nl + 1;
      }
      lseek(c->fd, 0, SEEK_SET);
      write_all(c, ROTATED, sizeof ROTATED - 1);
      write_all(c, recent, recent_len);
    }
    lseek(c->fd, (off_t)c->size, SEEK_SET);
  }
  write_all(c, p, n);
}
