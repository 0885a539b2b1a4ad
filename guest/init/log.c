// Console logging for onebox-init: one write() per line so lines from processes do not interleave.
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void log_emit(const char *prefix, const char *fmt, va_list ap, int err) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s", prefix);
  if (n < 0) return;
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
  if (m < 0) return;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  if (err) {
    int k = snprintf(buf + len, sizeof buf - len, ": %s", strerror(err));
    if (k > 0) len += (size_t)k;
    if (len > sizeof buf - 2) len = sizeof buf - 2;
  }
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}

void log_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_emit("onebox-init: ", fmt, ap, 0);
  va_end(ap);
}

void log_errno(const char *fmt, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  log_emit("onebox-init: ", fmt, ap, err);
  va_end(ap);
}

void log_raw(const char *line) {
  char buf[256];
  size_t n = strnlen(line, sizeof buf - 1);
  memcpy(buf, line, n);
  buf[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, n);
  (void)w;
}
