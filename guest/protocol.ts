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
