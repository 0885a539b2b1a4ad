// Socket and thread helpers shared by the forwarder, the control channel and the echo test.
#pragma once
#include <stddef.h>
#include <stdint.h>

/* sock_listen_vsock listens on AF_VSOCK VMADDR_CID_ANY:port; returns the fd or -1. */
int sock_listen_vsock(uint32_t port);
/* sock_spawn runs fn(arg) on a detached thread with a small stack; 0 or -1. */
int sock_spawn(void *(*fn)(void *), void *arg);
/* sock_write_all writes n bytes (MSG_NOSIGNAL); 0 or -1. */
int sock_write_all(int fd, const void *buf, size_t n);
/* sock_read_line reads byte by byte up to '\n' (so no byte after it is consumed), at most
 * cap-1 bytes; returns the line length without '\n', or -1 on EOF/error/overlong line. */
long sock_read_line(int fd, char *buf, size_t cap);
/* sock_set_rcvtimeo sets SO_RCVTIMEO (0 = none). */
void sock_set_rcvtimeo(int fd, int ms);
