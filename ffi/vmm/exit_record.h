// The exit record (docs/architecture.md "Exit record"): one JSON line written atomically before the vmm exits.
#pragma once
#include <stddef.h>

struct exit_record {
  int tmp_fd;          /* PATH.tmp, opened at start so the exit needs no open() under seccomp */
  char path[4096];
  char tmp_path[4104];
};

/* Opens PATH.tmp for writing. Returns 0 or -1 with err. */
int exit_record_open(struct exit_record *r, const char *path, char *err, size_t errlen);
/* Writes {"reason","detail","console_tail"} and renames PATH.tmp to PATH. Returns 0 or -1. */
int exit_record_commit(struct exit_record *r, const char *reason, const char *detail, const char *console_tail);
/* Appends s as a JSON string body (no quotes) to out[0..cap); invalid UTF-8 becomes U+FFFD. Returns length. */
size_t json_escape(char *out, size_t cap, const char *s);
