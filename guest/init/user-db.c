// Lookup in /etc/passwd text (static binaries cannot rely on NSS).
#include "user-db.h"

#include <stdint.h>
#include <string.h>

#include "cmdline.h"

/* field i (0-based) of a ':'-separated line [s, e) */
static bool field(const char *s, const char *e, int i, const char **fs, size_t *fl) {
  for (int k = 0; k < i; k++) {
    const char *c = memchr(s, ':', (size_t)(e - s));
    if (!c) return false;
    s = c + 1;
  }
  const char *c = memchr(s, ':', (size_t)(e - s));
  *fs = s;
  *fl = (size_t)((c ? c : e) - s);
  return true;
}

static bool copy_field(char *dst, size_t cap, const char *s, size_t n) {
  if (n >= cap) return false;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return true;
}

bool user_db_find(const char *text, size_t len, const char *name, struct user_entry *out) {
  size_t nl = strlen(name);
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    const char *fs;
    size_t fl;
    if (field(p, e, 0, &fs, &fl) && fl == nl && memcmp(fs, name, nl) == 0) {
      uint64_t uid, gid;
      const char *us, *gs, *hs, *ss;
      size_t ul, gl, hl, sl;
      if (!field(p, e, 2, &us, &ul) || !field(p, e, 3, &gs, &gl) || !field(p, e, 5, &hs, &hl) ||
          !field(p, e, 6, &ss, &sl))
        return false;
      if (!cmdline_parse_u64(us, ul, &uid) || !cmdline_parse_u64(gs, gl, &gid) || uid > UINT32_MAX - 1 ||
          gid > UINT32_MAX - 1)
        return false;
      out->uid = (uid_t)uid;
      out->gid = (gid_t)gid;
      return copy_field(out->home, sizeof out->home, hs, hl) && copy_field(out->shell, sizeof out->shell, ss, sl);
    }
    p = e + 1;
  }
  return false;
}
