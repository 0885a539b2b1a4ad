// Parser for service files (/etc/onebox/agent.conf, /etc/onebox/services.d/*.conf).
#include "service-conf.h"

#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t cap, const char *msg, int line) {
  snprintf(err, cap, "line %d: %s", line, msg);
  return -1;
}

int service_conf_parse(const char *text, size_t len, struct service_conf *out, char *err, size_t errcap) {
  memset(out, 0, sizeof *out);
  out->cwd = "/";
  out->log = "console";
  if (len >= SVC_TEXT_MAX) return fail(err, errcap, "file too large", 0);
  memcpy(out->storage, text, len);
  out->storage[len] = '\0';
  if (memchr(out->storage, '\0', len)) return fail(err, errcap, "NUL byte in file", 0);
  int nargs = 0, nenv = 0, lineno = 0;
  char *p = out->storage;
  while (p && *p) {
    char *line = p;
    char *nl = strchr(p, '\n');
    if (nl) { *nl = '\0'; p = nl + 1; } else p = NULL;
    lineno++;
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = '\0';
    while (*line == ' ' || *line == '\t') line++;
    if (!*line || *line == '#') continue;
    char *eq = strchr(line, '=');
    if (!eq) return fail(err, errcap, "expected key=value", lineno);
    *eq = '\0';
    char *v = eq + 1;
    if (!strcmp(line, "exec")) {
      if (nargs) return fail(err, errcap, "exec given twice", lineno);
      char *save = NULL;
      for (char *a = strtok_r(v, " \t", &save); a; a = strtok_r(NULL, " \t", &save)) {
        if (nargs == SVC_MAX_ARGS) return fail(err, errcap, "too many arguments", lineno);
        out->argv[nargs++] = a;
      }
      if (!nargs || out->argv[0][0] != '/') return fail(err, errcap, "exec needs an absolute path", lineno);
    } else if (!strcmp(line, "env")) {
      char *e = strchr(v, '=');
      if (!e || e == v) return fail(err, errcap, "env needs NAME=value", lineno);
      if (nenv == SVC_MAX_ENV) return fail(err, errcap, "too many env lines", lineno);
      out->envp[nenv++] = v;
    } else if (!strcmp(line, "cwd")) {
      if (v[0] != '/') return fail(err, errcap, "cwd needs an absolute path", lineno);
      out->cwd = v;
    } else if (!strcmp(line, "user")) {
      if (!v[0]) return fail(err, errcap, "empty user", lineno);
      out->user = v;
    } else if (!strcmp(line, "log")) {
      if (strcmp(v, "console") && strcmp(v, "null") && v[0] != '/')
        return fail(err, errcap, "log must be console, null or an absolute path", lineno);
      out->log = v;
    } else {
      return fail(err, errcap, "unknown key", lineno);
    }
  }
  if (!nargs) return fail(err, errcap, "no exec line", lineno);
  return 0;
}
