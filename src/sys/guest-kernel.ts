// Which guest kernel and initramfs onebox will boot: an explicit path, or the provisioned default
// ($DATA/kernels/debian-cloud, written by scripts/fetch-kernel.sh), with what the files are.
import { existsSync, openSync, readSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { envVar } from "../util/config.ts";

export type KernelFormat = "bzImage" | "elf" | "unknown" | "missing";

export interface GuestKernel {
  path: string;
  /** How it was chosen: a command-line flag, ONEBOX_KERNEL / ONEBOX_PVM_KERNEL, or the provisioned default. */
  source: "flag" | "env" | "default";
  format: KernelFormat;
  /** From kernel.json beside a provisioned kernel. */
  version: string | null;
  /** The initramfs found beside the kernel (or given), null if none is built yet. */
  initrd: string | null;
}

/** Names an initramfs may have beside the kernel, in order of preference. */
const INITRD_NAMES = ["initramfs.cpio.gz", "initramfs.cpio", "initrd.img"];

/** Reads the first bytes: ELF magic, or the Linux boot protocol's "HdrS" at 0x202. */
export function kernelFormat(path: string): KernelFormat {
  if (!existsSync(path)) return "missing";
  const buf = Buffer.alloc(0x206);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "missing";
  }
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n >= 4 && buf.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return "elf";
    if (n >= 0x206 && buf.toString("latin1", 0x202, 0x206) === "HdrS") return "bzImage";
    return "unknown";
  } finally {
    closeSync(fd);
  }
}

export function defaultKernelDir(dataDir: string): string {
  return join(dataDir, "kernels", "debian-cloud");
}

export function resolveGuestKernel(opts: { kernel?: string; initrd?: string; dataDir: string }): GuestKernel {
  // ONEBOX_PVM_KERNEL is what `onebox serve` reads (src/cli/serve.ts); ONEBOX_KERNEL is the general name.
  // An empty variable counts as unset (`ONEBOX_KERNEL= onebox doctor`).
  const env = envVar("ONEBOX_KERNEL") || envVar("ONEBOX_PVM_KERNEL") || undefined;
  const flag = opts.kernel || undefined;
  const source: GuestKernel["source"] = flag ? "flag" : env ? "env" : "default";
  const dir = defaultKernelDir(opts.dataDir);
  const path = flag ?? env ?? join(dir, "vmlinuz");
  let version: string | null = null;
  if (source === "default") {
    try {
      const meta = JSON.parse(readFileSync(join(dir, "kernel.json"), "utf8")) as { version?: unknown };
      version = typeof meta.version === "string" ? meta.version : null;
    } catch {
      // No kernel.json: not provisioned by scripts/fetch-kernel.sh; the format check still runs.
    }
  }
  const given = opts.initrd || envVar("ONEBOX_INITRD") || undefined;
  const initrd = given ?? INITRD_NAMES.map((n) => join(dir, n)).find((p) => existsSync(p)) ?? null;
  return { path, source, format: kernelFormat(path), version, initrd };
}
