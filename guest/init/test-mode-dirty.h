// The echo test mode's state service (vsock ONEBOX_TEST_STATE_PORT): dirties guest memory, writes a file and keeps a
// process ticking on request, and checks all three later. The snapshot tests and bench:restore use it to show that a
// paused and resumed guest kept its memory, files and processes.
#pragma once

/* Guest vsock port of the state service; mirrored in tests/e2e/lib/state-guest.ts. */
#define ONEBOX_TEST_STATE_PORT 5001

/* test_state_start serves the state protocol on its own thread; 0 or -1. One request per line, one reply line:
 *   dirty MIB SEED  -> "ok ms=N"   fill MIB MiB of fresh anonymous memory with the blk pattern of SEED (the previous
 *                                  region is freed); ms is the guest's own time for the fill
 *   file SEED       -> "ok"        write 1 MiB of the pattern of SEED to /tmp/onebox-state.dat and fsync it
 *   spawn           -> "ok pid=P"  fork a process that adds 1 to a shared counter every 10 ms
 *   check           -> "ok mem_bad=N file_bad=N pid=P alive=0|1 ticks=T"  pages of the region and of the file that
 *                                  differ from their pattern (-1: none made), the ticker's pid, whether it runs, and
 *                                  its counter */
int test_state_start(void);
