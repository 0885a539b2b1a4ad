// Native executables embedded in dist/onebox: resolved in a checkout (ffi/build/) or extracted once, by content, to
// /run/onebox/bin/ in a compiled binary (DESIGN.md §1: the daemon extracts native parts itself, not via $TMPDIR).
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import vmmBinary from "../../ffi/build/onebox-vmm" with { type: "file" };
import libOneboxFile from "../../ffi/build/libonebox.so" with { type: "file" };
import libOneboxNetFile from "../../ffi/build/libonebox-net.so" with { type: "file" };

/** Where embedded natives are extracted; one file per content hash, so an upgrade never overwrites a running one. */
export const NATIVE_BIN_DIR = "/run/onebox/bin";

/** The table of embedded natives: name -> path bun gives the import (a `/$bunfs/` path when compiled). */
const NATIVES = {
  "onebox-vmm": { embedded: vmmBinary, mode: 0o755 },
  "libonebox.so": { embedded: libOneboxFile, mode: 0o755 }, // dlopen'd by src/sys/libonebox.ts
  "libonebox-net.so": { embedded: libOneboxNetFile, mode: 0o755 }, // dlopen'd by src/sys/libonebox-net.ts (links libbpf.so.1)
} as const;

export type NativeName = keyof typeof NATIVES;

/** True for a path inside a compiled binary's embedded file system. */
export function isEmbedded(path: string): boolean {
  return path.startsWith("/$bunfs/") || path.startsWith("B:/~BUN/");
}

/**
 * Copies `source` to `<binDir>/<name>-<sha256 prefix>` (mode `mode`) unless that file exists, and returns its path.
 * Written to a temp name and renamed, so a concurrent daemon never runs a half-written file.
 */
export async function extractNative(source: string, name: string, binDir: string, mode: number): Promise<string> {
  const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
  const hash = new Bun.CryptoHasher("sha256").update(bytes).digest("hex").slice(0, 16);
  const dest = join(binDir, `${name}-${hash}`);
  if (existsSync(dest)) return dest;
  mkdirSync(binDir, { recursive: true, mode: 0o755 });
  const tmp = `${dest}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes, { mode });
  chmodSync(tmp, mode); // writeFileSync's mode is masked by the umask
  renameSync(tmp, dest);
  return dest;
}

const resolved = new Map<NativeName, string>();

/** Path of an executable native: ffi/build/<name> in a checkout, the extracted copy in dist/onebox. */
export async function nativePath(name: NativeName, binDir = NATIVE_BIN_DIR): Promise<string> {
  const cached = resolved.get(name);
  if (cached) return cached;
  const { embedded, mode } = NATIVES[name];
  if (!isEmbedded(embedded) && !existsSync(embedded)) {
    throw new Error(`${embedded} is missing: build the native parts with \`make -C ffi\``);
  }
  const path = isEmbedded(embedded) ? await extractNative(embedded, name, binDir, mode) : embedded;
  resolved.set(name, path);
  return path;
}
