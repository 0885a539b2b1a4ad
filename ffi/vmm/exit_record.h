// The exit record (docs/architecture.md "Exit record"): one JSON line written into a file opened before the drop.
#pragma once
#include <stddef.h>

struct exit_record {
  int fd; /* PATH, created (empty) at start, as root: the vmm needs no path into the daemon's dirs at its end */
  char path[4096];
};

/* Creates PATH anew (0600, never through a symlink) for writing. Returns 0 or -1 with err. */
int exit_record_open(struct exit_record *r, const char *path, char *err, size_t errlen);
/* Writes {"reason","detail","console_tail"} into PATH (one write; the daemon reads it once the vmm is gone).
 * Returns 0 or -1. */
int exit_record_commit(struct exit_record *r, const char *reason, const char *detail, const char *console_tail);
/* Appends s as a JSON string body (no quotes) to out[0..cap); invalid UTF-8 becomes U+FFFD. Returns length. */
size_t json_escape(char *out, size_t cap, const char *s);
