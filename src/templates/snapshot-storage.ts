// Snapshot storage (issue 16): what sandbox snapshots and fork captures hold on disk, per sandbox and in total, and
// the bounds a new snapshot must stay within (config snapshotStorageMaxMib, snapshotStoragePerSandboxMib).
// Counted from the files themselves (allocated blocks, each inode once), so it is right after a crash, a restart or
// a delete without any bookkeeping that could drift.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { insufficientStorage } from "../util/errors.ts";

const MIB = 1024 * 1024;

export interface SnapshotStorage {
  count: number;
  totalBytes: number;
  /** Source sandbox id -> bytes its snapshots (and fork captures) hold. */
  bySandbox: Map<string, number>;
}

/** Bytes a snapshot template's dir holds of its own: every file, each inode once, except a root image that is a hard
 *  link (nlink > 1) to its base template's, which the base owns. Symlinks are not followed. */
export function snapshotBytes(dir: string): number {
  const seen = new Set<string>();
  let bytes = 0;
  const walk = (d: string, top: boolean) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return; // removed meanwhile
    }
    for (const name of names) {
      const p = join(d, name);
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, false);
      else if (st.isFile()) {
        if (top && name === "rootfs.ext4" && st.nlink > 1) continue;
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue; // the layer is linked twice: the template's and the capture's
        seen.add(key);
        bytes += st.blocks * 512;
      }
    }
  };
  walk(dir, true);
  return bytes;
}

/** The storage of every snapshot among rows (templates with a source sandbox). */
export function snapshotStorage(rows: TemplateRow[]): SnapshotStorage {
  const out: SnapshotStorage = { count: 0, totalBytes: 0, bySandbox: new Map() };
  for (const r of rows) {
    if (!r.snapshotOf) continue;
    const b = snapshotBytes(r.dir);
    out.count++;
    out.totalBytes += b;
    out.bySandbox.set(r.snapshotOf, (out.bySandbox.get(r.snapshotOf) ?? 0) + b);
  }
  return out;
}

/** Refuses (507) a snapshot of sandboxId that could take storage past either bound. estimateBytes is its most: the
 *  guest's RAM (the memory file's ceiling) plus the layer's allocated blocks. */
export function admitSnapshot(config: Config, rows: TemplateRow[], sandboxId: string, estimateBytes: number): void {
  const s = snapshotStorage(rows);
  const mib = (b: number) => Math.ceil(b / MIB);
  const total = config.snapshotStorageMaxMib * MIB;
  const perSandbox = config.snapshotStoragePerSandboxMib * MIB;
  const own = s.bySandbox.get(sandboxId) ?? 0;
  if (s.totalBytes + estimateBytes > total)
    throw insufficientStorage(
      `snapshot storage is full: snapshots hold ${mib(s.totalBytes)} MiB of the ${config.snapshotStorageMaxMib} MiB allowed and this one may need ${mib(estimateBytes)} MiB; delete snapshots (DELETE /templates/{snapshotID}) or raise --snapshot-storage-max-mib`,
    );
  if (own + estimateBytes > perSandbox)
    throw insufficientStorage(
      `sandbox ${sandboxId}'s snapshots hold ${mib(own)} MiB of the ${config.snapshotStoragePerSandboxMib} MiB allowed per sandbox and this one may need ${mib(estimateBytes)} MiB; delete some of its snapshots or raise --snapshot-storage-per-sandbox-mib`,
    );
}
