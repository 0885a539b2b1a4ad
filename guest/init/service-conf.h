// Parser for service files (/etc/onebox/agent.conf, /etc/onebox/services.d/*.conf).
#pragma once
#include <stddef.h>

#define SVC_MAX_ARGS 32
#define SVC_MAX_ENV 64
#define SVC_TEXT_MAX 8192

/*
 * Format: one "key=value" per line; '#' starts a comment line; blank lines ignored.
 *   exec=/path/to/program arg1 arg2   (required; split on spaces, no quoting)
 *   env=NAME=value                    (repeatable)
 *   cwd=/dir                          (default /)
 *   user=name                         (default root; looked up in /etc/passwd)
 *   log=console|null|/path            (default console; where stdout/stderr go)
 */
struct service_conf {
  char *argv[SVC_MAX_ARGS + 1];
  char *envp[SVC_MAX_ENV + 1];
  const char *cwd;
  const char *user;
  const char *log;
  char storage[SVC_TEXT_MAX];
};

/* service_conf_parse parses text[0..len); returns 0, or -1 with a reason in err. */
int service_conf_parse(const char *text, size_t len, struct service_conf *out, char *err, size_t errcap);
