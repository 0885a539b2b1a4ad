// Loads libonebox-net.so (ffi/lib/net: TAP, rtnetlink, conntrack, the eBPF programs through libbpf) through bun:ffi.
// Separate from libonebox.so because it links libbpf.so.1: without libbpf only networking is off.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { nativePath } from "./natives.ts";

/** Must equal ONEBOX_NET_ABI_VERSION in ffi/lib/net/net.h. */
export const LIBONEBOX_NET_ABI_VERSION = 5;

const symbols = {
  onebox_net_abi_version: { args: [], returns: FFIType.i32 },
  onebox_net_error: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_tap_open: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  onebox_tap_set_offload: { args: [FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  onebox_tap_read: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  onebox_route_add: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  onebox_route_del: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  onebox_route_local_add: { args: [FFIType.u32], returns: FFIType.i32 },
  onebox_route_local_del: { args: [FFIType.u32], returns: FFIType.i32 },
  onebox_link_del: { args: [FFIType.ptr], returns: FFIType.i32 },
  onebox_link_del_async: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_link_names: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_link_index: { args: [FFIType.ptr], returns: FFIType.i32 },
  onebox_link_name: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_ct_delete_denied: { args: [FFIType.u32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_bpffs_ensure: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_open: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
  onebox_bpf_close: { args: [FFIType.ptr], returns: FFIType.void },
  onebox_bpf_unpin: { args: [FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_attach: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_bpf_detach: { args: [FFIType.i32], returns: FFIType.i32 },
  onebox_bpf_attached: { args: [FFIType.i32], returns: FFIType.i32 },
  onebox_bpf_slot_set: { args: [FFIType.ptr, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_slot_get: { args: [FFIType.ptr, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_slot_del: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  onebox_bpf_slot_keys: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_bpf_drops: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  onebox_bpf_map_fd: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_map_update: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  onebox_bpf_map_lookup: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_map_delete: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_map_next_key: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  onebox_bpf_ncpu: { args: [], returns: FFIType.i32 },
  onebox_bpf_test_run: { args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
} as const;

export type LibOneboxNet = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let loaded: LibOneboxNet | null = null;

/** The library's symbols, loaded once per process; throws with what to install when libbpf is missing. */
export async function libOneboxNet(): Promise<LibOneboxNet> {
  if (loaded) return loaded;
  const path = await nativePath("libonebox-net.so");
  let lib: LibOneboxNet;
  try {
    lib = dlopen(path, symbols).symbols;
  } catch (e) {
    throw new Error(`cannot load ${path} (${(e as Error).message}): install libbpf (Debian: apt-get install libbpf1)`);
  }
  const abi = lib.onebox_net_abi_version();
  if (abi !== LIBONEBOX_NET_ABI_VERSION) {
    throw new Error(`${path} has ABI ${abi}, expected ${LIBONEBOX_NET_ABI_VERSION}: rebuild it with \`make -C ffi\``);
  }
  loaded = lib;
  return lib;
}

/** A NUL-terminated C string for an FFI argument. */
export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`);
}

const ERRNO: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 12: "ENOMEM", 13: "EACCES", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV",
  22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 95: "EOPNOTSUPP", 105: "ENOBUFS", 110: "ETIMEDOUT", 7: "E2BIG",
};
export const errnoName = (e: number): string => ERRNO[Math.abs(e)] ?? `errno ${Math.abs(e)}`;

/** Throws when rc < 0, with the step, the errno name and libonebox-net's last message. */
export function check(lib: LibOneboxNet, rc: number, what: string): number {
  if (rc >= 0) return rc;
  const buf = Buffer.alloc(512);
  const n = lib.onebox_net_error(ptr(buf), buf.length);
  const detail = n > 0 ? `: ${buf.subarray(0, n).toString()}` : "";
  const err = new Error(`${what} failed (${errnoName(rc)})${detail}`) as Error & { errno: number };
  err.errno = -rc;
  throw err;
}
