// The guest's serial console log file on the host: written by the vmm, capped in size, rotated in place.
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Default and bounds of --console-max (bytes); the daemon passes its Config (docs/vmm.md "Console log"). */
#define CONSOLE_LOG_MAX_DEFAULT (1ull << 20)
#define CONSOLE_LOG_MAX_MIN (64ull << 10)
#define CONSOLE_LOG_MAX_MAX (1ull << 40)

struct console_log {
  int fd;        /* -1: no file */
  uint64_t max;  /* the file never grows past this many bytes */
  uint64_t size; /* bytes in the file now (the vmm is its only writer) */
};

/* Opens PATH for the log (before the vmm drops root): never through a symlink, only a regular file, 0600.
 * Returns the fd or -1 with a message in err. */
int console_log_open(const char *path, char *err, size_t errlen);
/* Takes over fd (any of O_WRONLY/O_RDWR, with or without O_APPEND) with a cap of max bytes; writes go to its end. */
void console_log_attach(struct console_log *c, int fd, uint64_t max);
/* Appends n bytes. Past the cap it first keeps only the newest half of the file, from a line start, behind a
 * marker line; when the fd cannot be read back it starts the file over with `recent` (the output before p, from
 * the serial tail ring), from its first line start. */
void console_log_write(struct console_log *c, const char *p, size_t n, const char *recent, size_t recent_len);
