// The vsock forwarder: `TCP <port>\n` -> connect 127.0.0.1:<port> -> `OK\n` -> bytes both ways.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define FWD_LINE_MAX 32
#define FWD_MAX_CONNS 1024

/* A dialer connects to a guest-local TCP port; returns the fd, or -1 with a reason in err.
 * Pluggable so that unit tests can run the forwarder over Unix/TCP sockets on the host. */
typedef int (*fwd_dial_fn)(uint16_t port, char *err, size_t errcap);

/* fwd_line_parse parses the request line (without its '\n'): exactly "TCP <port>", port a
 * decimal 1..65535 without leading zeros. Returns 0 or -1. */
int fwd_line_parse(const char *line, size_t len, uint16_t *port);
/* fwd_dial_tcp_loopback connects to 127.0.0.1:port. */
int fwd_dial_tcp_loopback(uint16_t port, char *err, size_t errcap);
/* forwarder_run accepts on listen_fd forever, one handler thread pair per connection.
 * Returns only if accept fails permanently. */
void forwarder_run(int listen_fd, fwd_dial_fn dial);
/* forwarder_active returns the number of connections being served (for tests). */
int forwarder_active(void);
