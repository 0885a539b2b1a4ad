// The control socket (docs/architecture.md "Control socket"): line requests, pushed events, and the exit sequence.
#pragma once
#include "exit_record.h"
#include "machine.h"

struct control {
  struct machine *m;
  const struct vmm_args *args;
  struct exit_record *record;
  int listen_fd;
  int client_fd;
  int signal_fd;  /* SIGTERM/SIGINT: stop like the `stop` request */
  int smaps_fd;   /* /proc/self/smaps_rollup, opened before seccomp */
  bool pooled;    /* --pool and no `restore DIR` done yet: only ping, stats, stop and restore are served */
  char buf[4097];
  size_t len;
};

/* Creates and listens on args->ctl (replacing a stale socket file). Returns 0 or -1 with err. */
int control_listen(struct control *c, const char *path, char *err, size_t errlen);
/* Serves requests until the VM exits; writes the exit record, pushes `event exit`, returns the exit status. */
int control_run(struct control *c);
