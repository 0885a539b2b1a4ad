// The disk layer: a template's files, a VM's writable layer copy, and what a template lacks to boot.
import { existsSync } from "node:fs";
import type { TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { unavailable } from "../util/errors.ts";
import { templateFiles } from "./vm-config.ts";

/** A ready snapshot to restore from: the VM state directory and the disk layer it was taken with. */
export interface RestoreSource {
  vmDir: string;
  layer: string;
  /** The envd token the snapshotted guest holds (a snapshot of a sandbox, src/sandbox/snapshot.ts): a clone's
   *  /init must show it to set its own. Absent for a template's snapshot, whose guest never had /init. */
  guestToken?: string;
  /** The VM dir this snapshot's memory is a diff over (a snapshot of a sandbox restored from a template snapshot):
   *  a restore maps it under the diff (VmSpec.restoreBase). Absent for a full snapshot. */
  base?: string;
}

/** What is missing for this template to boot, or null. */
export function templateProblem(t: TemplateRow, config: Config): string | null {
  const f = templateFiles(t);
  for (const p of [f.rootfs, f.layer]) {
    if (!existsSync(p)) return `template '${t.id}' has no ${p}: build it with scripts/mkrootfs.sh and register it with \`onebox template add\``;
  }
  const kernel = config.pvmKernel ?? t.kernel;
  if (!existsSync(kernel)) return `template '${t.id}' names kernel ${kernel}, which does not exist: install it or re-register the template`;
  if (t.initrd && !existsSync(t.initrd)) return `template '${t.id}' names initramfs ${t.initrd}, which does not exist: build it with scripts/mkinitramfs.sh`;
  return null;
}

/** Copies a disk layer: reflink where the filesystem allows (XFS, btrfs), a sparse copy elsewhere (ext4).
 *  `nice`: a background copy (warm pool refill) that should yield the CPU and disk to creates. */
export function cloneLayer(from: string, to: string, dataDir: string, opts: { nice?: boolean } = {}): void {
  const cmd = ["cp", "--reflink=auto", "--sparse=always", from, to];
  const cp = Bun.spawnSync(opts.nice ? ["nice", "-n", "10", ...cmd] : cmd, { stderr: "pipe" });
  if (cp.exitCode !== 0) {
    throw unavailable(`could not clone the disk layer ${from}: ${cp.stderr.toString().trim()}; check free disk space in ${dataDir}`);
  }
}
