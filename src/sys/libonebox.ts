// Loads libonebox.so (ffi/lib) through bun:ffi: from ffi/build in a checkout, or extracted from
// the compiled binary first (src/sys/natives.ts; DESIGN.md §1: do not rely on $TMPDIR).
import { dlopen, FFIType } from "bun:ffi";
import { nativePath } from "./natives.ts";

/** Must equal ONEBOX_ABI_VERSION in ffi/lib/kvm_probe.h: a stale .so is refused, not misread. */
export const LIBONEBOX_ABI_VERSION = 2;

const symbols = {
  onebox_abi_version: { args: [], returns: FFIType.i32 },
  onebox_kvm_probe: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
} as const;

export type LibOnebox = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let loaded: LibOnebox | null = null;

/** The library's symbols, loaded once per process. */
export async function libOnebox(): Promise<LibOnebox> {
  if (loaded) return loaded;
  const path = await nativePath("libonebox.so");
  const lib = dlopen(path, symbols).symbols;
  const abi = lib.onebox_abi_version();
  if (abi !== LIBONEBOX_ABI_VERSION) {
    throw new Error(`${path} has ABI ${abi}, expected ${LIBONEBOX_ABI_VERSION}: rebuild it with \`make -C ffi\``);
  }
  loaded = lib;
  return lib;
}
