// The clone-hygiene control channel (vsock 1025): JSON lines from the host, one reply each.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_LINE_MAX 4096
#define CONTROL_ENTROPY_MAX 512

enum control_op { CONTROL_PING, CONTROL_HYGIENE, CONTROL_POWEROFF, CONTROL_STATUS, CONTROL_SYNC };

struct control_msg {
  enum control_op op;
  bool has_time;
  int64_t time_ns;            /* CLOCK_REALTIME to set, ns since the epoch */
  size_t entropy_len;         /* decoded "entropy" bytes, 0 if absent */
  uint8_t entropy[CONTROL_ENTROPY_MAX];
  char id[65];                /* "" if absent */
  char hostname[64];          /* "" if absent */
};

/* control_parse parses one line; returns 0, or -1 with a reason in err. */
int control_parse(const char *line, size_t len, struct control_msg *out, char *err, size_t errcap);
/* control_apply performs msg (clock, entropy, hostname, id file); returns 0 or -1 with err. */
int control_apply(const struct control_msg *msg, char *err, size_t errcap);
/* control_run serves connections on listen_fd forever (a thread per connection). */
void control_run(int listen_fd);
