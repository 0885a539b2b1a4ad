// Lookup in /etc/passwd text (static binaries cannot rely on NSS).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct user_entry {
  uid_t uid;
  gid_t gid;
  char home[256];
  char shell[256];
};

/* user_db_find looks up name in passwd-format text[0..len); true when found and well-formed. */
bool user_db_find(const char *text, size_t len, const char *name, struct user_entry *out);
