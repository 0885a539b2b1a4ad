// The few libc calls Bun has no API for: extended attributes (file metadata, §3.4), clock_settime (/init, §3.4), inotify
// (§3.3), and a restored clone's hygiene in /init (sethostname, the RNDADDENTROPY ioctl: clone-hygiene.ts).
import { dlopen, FFIType, ptr } from "bun:ffi";

type Lib = ReturnType<typeof open>;

function open() {
  return dlopen("libc.so.6", {
    setxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    lgetxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    llistxattr: { args: [FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    clock_settime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    sethostname: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  });
}

let lib: Lib | null | undefined;
function libc(): Lib | null {
  if (lib === undefined) {
    try {
      lib = open();
    } catch {
      lib = null; // not glibc: metadata and clock fixing are unavailable, everything else works
    }
  }
  return lib;
}

/** Loads and binds libc now. bun:ffi compiles its bindings on first use (TinyCC), and that first use was a clone's
 *  first /init, the one carrying its hygiene: every create paid the compile (its daemon start +50-100 ms, emulated;
 *  docs/benchmarks.md bench:create). Done at the agent's start, the compiled bindings are in the template's snapshot,
 *  shared by every clone. */
export function preloadLibc(): void {
  libc();
}

/** Whether libc's bindings are loaded (or were tried): what preloadLibc() leaves behind. */
export const libcLoaded = (): boolean => lib !== undefined;

const cstr = (s: string) => Buffer.from(s + "\0", "utf8");

/** Sets one xattr; false when the filesystem (or the libc) does not allow it. */
export function setXattr(path: string, name: string, value: string): boolean {
  const l = libc();
  if (!l) return false;
  const v = Buffer.from(value, "utf8");
  const buf = v.byteLength ? v : Buffer.alloc(1);
  return l.symbols.setxattr(cstr(path), cstr(name), ptr(buf), v.byteLength, 0) === 0;
}

/** All xattrs of `path` (not following a final symlink) whose names start with `prefix`, prefix stripped. */
export function listXattrs(path: string, prefix: string): Record<string, string> {
  const l = libc();
  const out: Record<string, string> = {};
  if (!l) return out;
  const p = cstr(path);
  const names = Buffer.alloc(4096);
  const n = Number(l.symbols.llistxattr(p, ptr(names), names.byteLength));
  if (n <= 0) return out;
  const value = Buffer.alloc(8192);
  for (const name of names.subarray(0, n).toString("utf8").split("\0")) {
    if (!name.startsWith(prefix)) continue;
    const len = Number(l.symbols.lgetxattr(p, cstr(name), ptr(value), value.byteLength));
    if (len >= 0) out[name.slice(prefix.length)] = value.subarray(0, len).toString("utf8");
  }
  return out;
}

type InotifyLib = { inotify_init1(flags: number): number; inotify_add_watch(fd: number, path: Buffer, mask: number): number; inotify_rm_watch(fd: number, wd: number): number; close(fd: number): number };
let ino: InotifyLib | null | undefined;

/** inotify(7) calls (watch.ts reads the events with Bun.file(fd).stream()). */
export function inotifyLib(): InotifyLib | null {
  if (ino === undefined) {
    try {
      ino = dlopen("libc.so.6", {
        inotify_init1: { args: [FFIType.i32], returns: FFIType.i32 },
        inotify_add_watch: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
        inotify_rm_watch: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        close: { args: [FFIType.i32], returns: FFIType.i32 },
      }).symbols as unknown as InotifyLib;
    } catch {
      ino = null;
    }
  }
  return ino;
}

/** Sets CLOCK_REALTIME to ms since the epoch (whole ms: /init's timestamp, Date.parse); false without privilege or
 *  libc. */
export function setClock(ms: number): boolean {
  return setClockNs(BigInt(Math.floor(ms)) * 1_000_000n);
}

/** Sets CLOCK_REALTIME to ns since the epoch exactly (clone hygiene); false without privilege or libc. */
export function setClockNs(ns: bigint): boolean {
  const l = libc();
  if (!l) return false;
  const ts = new BigInt64Array([ns / 1_000_000_000n, ns % 1_000_000_000n]);
  return l.symbols.clock_settime(0, ptr(ts)) === 0;
}

/** sethostname(2); false without privilege or libc. */
export function setHostname(name: string): boolean {
  const l = libc();
  if (!l) return false;
  const b = Buffer.from(name, "utf8");
  return l.symbols.sethostname(ptr(b), b.byteLength) === 0;
}

// linux/random.h: _IOW('R', 0x03, int[2]) and _IO('R', 0x07).
const RNDADDENTROPY = 0x40085203;
const RNDRESEEDCRNG = 0x5207;

/** Credits bytes in full to the kernel's pool and reseeds its CRNG (RNDADDENTROPY + RNDRESEEDCRNG on fd, an open
 *  /dev/random): the host's bytes come from its CSPRNG. false without privilege or libc. */
export function addEntropy(fd: number, bytes: Uint8Array): boolean {
  const l = libc();
  if (!l) return false;
  // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
  const req = Buffer.alloc(8 + bytes.byteLength + 4);
  req.writeInt32LE(bytes.byteLength * 8, 0);
  req.writeInt32LE(bytes.byteLength, 4);
  req.set(bytes, 8);
  if (l.symbols.ioctl(fd, RNDADDENTROPY, ptr(req)) !== 0) return false;
  return l.symbols.ioctl(fd, RNDRESEEDCRNG, ptr(req)) === 0;
}
