/*
 * onebox-runas: the guest agent's way to start a command as a user (guest/agent/process-manager.ts).
 *   onebox-runas [--ctty] UID GID GROUPS -- PROGRAM [ARG...]   (GROUPS: comma-separated gids, or "-" for none)
 * Sets the supplementary groups, then the gid, then the uid (all three of each), and execs PROGRAM
 * through PATH. Static and tiny on purpose: it replaces util-linux's setpriv on every command's start,
 * which in an emulated guest cost about as much as the `bash -c` it started (dynamic loading,
 * locale and NSS set-up, libcap-ng). Bun's own uid/gid options cannot set supplementary groups.
 * --ctty (a pty command): first a session of its own with stdin, the pty, as its controlling terminal, which
 * Bun's terminal spawn does not give; without it an interactive shell has no job control ("cannot set terminal
 * process group") and ^C/^Z reach nothing.
 * Exit codes as a shell's: 126 for a bad argument or a refused id change, 127 when exec fails.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_GROUPS 64

/* A decimal id in [0, 2^32-2]: no sign, no spaces, no empty string (strtoul would take all three). */
static int parse_id(const char *s, unsigned *out) {
  if (*s < '0' || *s > '9') return -1;
  unsigned long long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (unsigned)(*s - '0');
    if (v >= 0xffffffffULL) return -1; /* (uid_t)-1 means "unchanged" to setresuid */
  }
  *out = (unsigned)v;
  return 0;
}

static int fail(const char *what) {
  fprintf(stderr, "onebox-runas: %s\n", what);
  return 126;
}

/* A new session led by this process, with the terminal on stdin as its controlling terminal. setsid refuses a
 * process group leader (EPERM); Bun's terminal spawn makes none, and the pid must stay the program's (the agent
 * signals it), so there is no fork to get around it: then the command runs without one, as before. */
static void take_ctty(void) {
  if (setsid() >= 0) (void)ioctl(STDIN_FILENO, TIOCSCTTY, 0);
}

int main(int argc, char **argv) {
  int ctty = argc > 1 && strcmp(argv[1], "--ctty") == 0;
  if (ctty) {
    argv++;
    argc--;
  }
  if (argc < 6 || strcmp(argv[4], "--") != 0) return fail("usage: onebox-runas [--ctty] UID GID GROUPS -- PROGRAM [ARG...]");
  if (ctty) take_ctty();
  unsigned uid, gid;
  if (parse_id(argv[1], &uid) || parse_id(argv[2], &gid)) return fail("UID and GID must be decimal ids");
  gid_t groups[MAX_GROUPS];
  size_t n = 0;
  if (strcmp(argv[3], "-") != 0) {
    char buf[MAX_GROUPS * 11 + 1];
    if (strlen(argv[3]) >= sizeof buf) return fail("too many GROUPS");
    strcpy(buf, argv[3]);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      unsigned g;
      if (n == MAX_GROUPS || parse_id(t, &g)) return fail("GROUPS must be comma-separated decimal ids");
      groups[n++] = (gid_t)g;
    }
  }
  if (setgroups(n, groups) != 0) return fail(strerror(errno));
  if (setresgid(gid, gid, gid) != 0) return fail(strerror(errno));
  if (setresuid(uid, uid, uid) != 0) return fail(strerror(errno));
  execvp(argv[5], argv + 5);
  fprintf(stderr, "onebox-runas: %s: %s\n", argv[5], strerror(errno));
  return 127;
}
