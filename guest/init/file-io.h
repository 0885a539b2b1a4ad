/* Small whole-file reads and writes for init's config, /proc and cgroup files: one place for the
 * open/read-until-done/close dance and its EINTR and short-read handling. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* Reads up to cap - 1 bytes of path into buf and NUL-terminates it (buf is "" on failure).
 * Returns the length read, or -1 if the file cannot be opened or read. cap must be >= 1. */
ssize_t file_read_text(const char *path, char *buf, size_t cap);

/* Writes text to an existing file (cgroup and /proc knobs take one write). 0 on success, else -1
 * with errno set. */
int file_write_text(const char *path, const char *text);
