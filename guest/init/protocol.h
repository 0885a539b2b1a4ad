// Constants shared with the host; mirror of guest/protocol.ts (keep the two in step).
#pragma once

#define ONEBOX_MARKER_BOOTED "ONEBOX-INIT: booted"
#define ONEBOX_MARKER_READY "ONEBOX-INIT: ready"
#define ONEBOX_PORT_POWEROFF 0x0501
#define ONEBOX_POWEROFF_VALUE 0x31
#define ONEBOX_VSOCK_FORWARD_PORT 1024
#define ONEBOX_VSOCK_CONTROL_PORT 1025
#define ONEBOX_TEST_ECHO_PORT 5000
#define ONEBOX_BLK_TEST_BYTES (64u * 1024 * 1024)
#define ONEBOX_BLK_TEST_SEED_ZERO 0x9E3779B97F4A7C15ull
#define ONEBOX_TEST_BLK_PREFIX "ONEBOX-TEST: blk sha256="
#define ONEBOX_TEST_NET_PREFIX "ONEBOX-TEST: net reply="
#define ENVD_PORT 49983
