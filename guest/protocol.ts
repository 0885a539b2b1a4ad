// Constants and types shared by the host and the guest: the only file src/ may import from guest/.

/** Printed by onebox-init on the console once the kernel has handed over and modules are loaded. */
export const ONEBOX_MARKER_BOOTED = "ONEBOX-INIT: booted";
/** Printed by onebox-init once the agent answers on the envd port. */
export const ONEBOX_MARKER_READY = "ONEBOX-INIT: ready";

/** I/O port the guest writes ONEBOX_POWEROFF_VALUE to right before it powers off (no ACPI). */
export const ONEBOX_PORT_POWEROFF = 0x0501;
export const ONEBOX_POWEROFF_VALUE = 0x31;

/** Guest vsock port of the forwarder: the host sends `TCP <port>\n`, gets `OK\n` or `ERR <msg>\n`. */
export const ONEBOX_VSOCK_FORWARD_PORT = 1024;
/** Guest vsock port of the clone-hygiene channel (clock, entropy, identity): JSON lines. */
export const ONEBOX_VSOCK_CONTROL_PORT = 1025;

/** Set (to "applied") on the agent's answer to a POST /init that carried a restored clone's hygiene and applied it
 *  (guest/agent/clone-hygiene.ts). An agent older than it ignores the field: the host then sends hygiene over the
 *  control channel instead. */
export const AGENT_HYGIENE_HEADER = "X-Onebox-Hygiene";

/** Guest TCP ports of the E2B services (shared/spec/e2b-protocol.md §2, §3, §4). */
export const ENVD_PORT = 49983;
export const CODE_INTERPRETER_PORT = 49999;

/**
 * envd version the guest agent implements (shared/spec/e2b-protocol.md §3.6): every SDK feature gate
 * up to 0.6.4 (metrics, recursive watch, disk metrics, stdin false, default user, closeStdin,
 * octet-stream upload, metadata, includeEntry, allowNetworkMounts). The control plane returns it as
 * `envdVersion`; the agent sends it in `X-Envd-Version` on /init.
 */
export const ENVD_VERSION = "0.6.13";

/**
 * Test modes of onebox-init (`onebox.test=` on the kernel command line; docs/guest.md).
 * `echo`: echo server on guest vsock port ONEBOX_TEST_ECHO_PORT and on guest TCP 127.0.0.1 of the
 * same port (reachable through the forwarder), plus the forwarder and the control channel.
 * `blk`: writes ONEBOX_TEST_BLK_BYTES of blkTestPattern(onebox.seed) to /dev/vdb (or /dev/vda if
 * it is the only disk) with O_DIRECT, fsyncs, reads it back with O_DIRECT and prints
 * ONEBOX_TEST_BLK_PREFIX + sha256 hex of what it read, then powers off.
 * `boot`: prints ONEBOX_MARKER_BOOTED and powers off. `panic`: kernel panic via sysrq.
 * `net` (with `onebox.net=`): connects TCP to the gateway's port ONEBOX_TEST_ECHO_PORT through eth0, sends
 * `onebox-net-test <N>\n` and N = 4 MiB of the pattern (i*7 + (i>>12)) & 255, reads a line and then until EOF checking
 * the same pattern, prints ONEBOX_TEST_NET_PREFIX + the line + ` rx=<bytes> good|bad`; again every second, forever
 * (a snapshot taken meanwhile shows whether its clones still reach the gateway).
 */
export const ONEBOX_TEST_ECHO_PORT = 5000;
export const ONEBOX_TEST_BLK_BYTES = 64 * 1024 * 1024;
export const ONEBOX_TEST_BLK_PREFIX = "ONEBOX-TEST: blk sha256=";
export const ONEBOX_TEST_NET_PREFIX = "ONEBOX-TEST: net reply=";

/**
 * The guest's network, on the kernel command line of a VM that has a virtio-net device (docs/guest.md "Network"):
 * `onebox.net=<ip>/<prefix>,<gateway>`. onebox-init then gives eth0 that address, routes everything via the gateway
 * and writes /etc/resolv.conf naming the gateway, at boot (before the template snapshot: every clone keeps it).
 */
export function netCmdlineArg(net: { ip: string; prefixLen: number; gateway: string }): string {
  return `onebox.net=${net.ip}/${net.prefixLen},${net.gateway}`;
}
/** xorshift64 is stuck at 0, so seed 0 starts from this constant instead. */
export const ONEBOX_BLK_SEED_ZERO = 0x9e3779b97f4a7c15n;

/**
 * The blk test pattern: x = seed (or ONEBOX_BLK_SEED_ZERO if 0); for each 8-byte word:
 * x ^= x << 13; x ^= x >> 7; x ^= x << 17 (mod 2^64), then write x little-endian.
 * Computed on two 32-bit halves: 64 MiB takes well under a second, unlike BigInt.
 */
export function blkTestPattern(seed: bigint, bytes: number): Uint8Array {
  const x = seed === 0n ? ONEBOX_BLK_SEED_ZERO : BigInt.asUintN(64, seed);
  let hi = Number(x >> 32n) >>> 0;
  let lo = Number(x & 0xffffffffn) >>> 0;
  const out = new Uint8Array(bytes - (bytes % 8));
  const words = new Uint32Array(out.buffer);
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  for (let i = 0; i < words.length; i += 2) {
    hi = (hi ^ ((hi << 13) | (lo >>> 19))) >>> 0;
    lo = (lo ^ (lo << 13)) >>> 0;
    lo = (lo ^ ((lo >>> 7) | (hi << 25))) >>> 0;
    hi = (hi ^ (hi >>> 7)) >>> 0;
    hi = (hi ^ ((hi << 17) | (lo >>> 15))) >>> 0;
    lo = (lo ^ (lo << 17)) >>> 0;
    if (!little) throw new Error("blkTestPattern assumes a little-endian host");
    words[i] = lo;
    words[i + 1] = hi;
  }
  return out;
}

/**
 * Messages on the control channel (vsock ONEBOX_VSOCK_CONTROL_PORT), one JSON object per line;
 * each gets one reply line, `{"ok":true}` or `{"ok":false,"error":"..."}`.
 * hygiene: every field optional; time_ns = CLOCK_REALTIME in ns since the epoch (an integer),
 * entropy = base64 of 1..512 random bytes (credited in full), id = [A-Za-z0-9_-]{1,64},
 * hostname = [A-Za-z0-9.-]{1,63}. poweroff: the guest shuts down after replying. status: replies
 * {"ok":true,"id":"<sandbox id or empty>","random":"<16 fresh CRNG bytes, hex>","time_ns":<CLOCK_REALTIME>}
 * (lets the host check that clone hygiene took effect). sync: the guest writes every dirty page to its disks
 * (sync(2)) and then replies (before a filesystem-only pause).
 */
export type ControlRequest =
  | { op: "ping" }
  | { op: "poweroff" }
  | { op: "status" }
  | { op: "sync" }
  | { op: "hygiene"; time_ns?: number; entropy?: string; id?: string; hostname?: string };
export type ControlReply = { ok: true } | { ok: false; error: string };
export type ControlStatus = { ok: true; id: string; random: string; time_ns: number };
