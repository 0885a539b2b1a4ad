// Loads libonebox.so (ffi/lib) through bun:ffi: from ffi/build in a checkout, or extracted from
// the compiled binary into the run directory first (DESIGN.md §1: do not rely on $TMPDIR).
import { dlopen, FFIType } from "bun:ffi";
import { mkdirSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import embeddedLib from "../../ffi/build/libonebox.so" with { type: "file" };

/** Must equal ONEBOX_ABI_VERSION in ffi/lib/kvm_probe.h: a stale .so is refused, not misread. */
export const LIBONEBOX_ABI_VERSION = 2;

const symbols = {
  onebox_abi_version: { args: [], returns: FFIType.i32 },
  onebox_kvm_probe: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
} as const;

export type LibOnebox = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let loaded: LibOnebox | null = null;

/** Where the library is on disk; an embedded copy ($bunfs) is written out to runDir first. */
export async function libOneboxPath(runDir = process.env.ONEBOX_RUN_DIR ?? "/run/onebox"): Promise<string> {
  if (!embeddedLib.startsWith("/$bunfs/")) return embeddedLib;
  const bytes = new Uint8Array(await Bun.file(embeddedLib).arrayBuffer());
  // Name by content so that two onebox versions never load each other's library.
  const hash = new Bun.CryptoHasher("sha256").update(bytes).digest("hex").slice(0, 16);
  const dest = join(runDir, `libonebox-${hash}.so`);
  if (!existsSync(dest)) {
    mkdirSync(runDir, { recursive: true, mode: 0o755 });
    const tmp = `${dest}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes, { mode: 0o755 });
    renameSync(tmp, dest);
  }
  return dest;
}

/** The library's symbols, loaded once per process. */
export async function libOnebox(): Promise<LibOnebox> {
  if (loaded) return loaded;
  const path = await libOneboxPath();
  const lib = dlopen(path, symbols).symbols;
  const abi = lib.onebox_abi_version();
  if (abi !== LIBONEBOX_ABI_VERSION) {
    throw new Error(`${path} has ABI ${abi}, expected ${LIBONEBOX_ABI_VERSION}: rebuild it with \`make -C ffi\``);
  }
  loaded = lib;
  return lib;
}
