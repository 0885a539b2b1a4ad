// libonebox: host probes reached through bun:ffi (placeholder until the KVM probe lands).
int onebox_abi_version(void) { return 1; }
