// Writes the exit record as one JSON line into the file the vmm created at start, as root, before it dropped
// privileges: after the drop it needs no name in any directory (docs/vmm.md "Isolation").
#include "exit_record.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int exit_record_open(struct exit_record *r, const char *path, char *err, size_t errlen) {
  if (strlen(path) >= sizeof r->path) {
    snprintf(err, errlen, "--exit-file path too long");
    return -1;
  }
  strcpy(r->path, path);
  /* A record from an earlier run of the same VM must not be mistaken for ours; O_EXCL | O_NOFOLLOW: a name
   * someone planted there (a symlink) is never written through. */
  unlink(path);
  r->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (r->fd < 0) {
    snprintf(err, errlen, "open %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s) {
  size_t n;
  if (s[0] >= 0xc2 && s[0] <= 0xdf) n = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef) n = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4) n = 4;
  else return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  return n;
}

size_t json_escape(char *out, size_t cap, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t o = 0;
  while (*s && o + 8 < cap) {
    unsigned char c = *s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
      s++;
    } else if (c == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
      s++;
    } else if (c < 0x20 || c == 0x7f) {
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
      s++;
    } else if (c < 0x80) {
      out[o++] = (char)c;
      s++;
    } else {
      size_t n = utf8_len(s);
      if (n) {
        memcpy(out + o, s, n);
        o += n;
        s += n;
      } else {
        o += (size_t)snprintf(out + o, cap - o, "\\ufffd");
        s++;
      }
    }
  }
  out[o] = 0;
  return o;
}

int exit_record_commit(struct exit_record *r, const char *reason, const char *detail, const char *console_tail) {
  size_t cap = 6 * (strlen(detail) + strlen(console_tail)) + 256; /* worst case: every byte \u00XX */
  char *line = malloc(cap);
  if (!line) return -1;
  size_t o = (size_t)snprintf(line, cap, "{\"reason\":\"%s\",\"detail\":\"", reason);
  o += json_escape(line + o, cap - o, detail);
  o += (size_t)snprintf(line + o, cap - o, "\",\"console_tail\":\"");
  o += json_escape(line + o, cap - o, console_tail);
  o += (size_t)snprintf(line + o, cap - o, "\"}\n");
  int rc = 0;
  for (size_t done = 0; done < o;) {
    ssize_t w = write(r->fd, line + done, o - done);
    if (w <= 0) {
      rc = -1;
      break;
    }
    done += (size_t)w;
  }
  free(line);
  close(r->fd);
  r->fd = -1;
  return rc;
}
