// Console logging for onebox-init: every line is prefixed so it stands out in console.log.
#pragma once
#include <stdarg.h>

/* log_info prints "onebox-init: <msg>\n" on stderr (the console once init has set it up). */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_errno is log_info with ": <strerror(errno)>" appended. */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_raw prints one line exactly as given (markers the host greps for). */
void log_raw(const char *line);
