// The onebox.test= programs the e2e tests boot: echo, blk, boot, panic, net.
#pragma once
#include "cmdline.h"

/* test_run runs a one-shot test (blk, boot, panic; net repeats every second and never returns); returns 0 when the caller should power
 * off, -1 when the name is not one of them. `echo` is not one-shot: PID 1 supervises
 * test_echo_main (with the forwarder and the control channel) instead. */
int test_run(const struct cmdline *cl);
/* test_echo_main serves echo on vsock and TCP 127.0.0.1 port ONEBOX_TEST_ECHO_PORT. */
void test_echo_main(void) __attribute__((noreturn));
/* test_echo_serve echoes every connection on listen_fd until EOF; never returns unless accept
 * fails. Socket family agnostic so it can be tested on the host. */
void test_echo_serve(int listen_fd);
/* test_blk writes ONEBOX_BLK_TEST_BYTES of the seeded pattern to dev, reads them back with
 * O_DIRECT and stores the SHA-256 of what was read as hex in out; 0 or -1. */
int test_blk(const char *dev, uint64_t seed, unsigned long bytes, char out[65]);
