// A sandbox's snapshot laid out as a template (POST /sandboxes/{id}/snapshots): its dir holds a hard link to the
// source template's root image, the sandbox's layer as captured, and the captured VM under snapshots/<key>/ exactly
// like a template's ready snapshot (snapshot.ts), so a create from it restores through the ordinary path.
import { linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cloneLayer } from "../machine/disk.ts";
import { templateFiles } from "../machine/vm-config.ts";
import type { TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { snapshotKey, snapshotPaths, type SnapshotMeta } from "./snapshot.ts";

export interface SnapshotDraft {
  /** The template row to insert once the capture is complete. */
  row: TemplateRow;
  /** Where the vmm writes the VM state and where the layer is copied to, while the VM is paused. */
  vmDir: string;
  layer: string;
  tmp: string;
}

/** Makes the snapshot template's dir with its root image (a hard link: the base never changes and outlives a
 *  removal of the source template) and an empty capture dir. The caller removes row.dir if anything later fails. */
export function startSnapshotTemplate(config: Config, source: TemplateRow, opts: { id: string; name?: string; sandboxId: string; ephemeral?: boolean }): SnapshotDraft {
  const dir = join(config.dataDir, "templates", opts.id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rootfs = templateFiles(source).rootfs;
  const linked = join(dir, "rootfs.ext4");
  try {
    linkSync(rootfs, linked);
  } catch {
    cloneLayer(rootfs, linked, config.dataDir); // another filesystem: a reflink or sparse copy
  }
  const tmp = join(dir, "snapshots", "capture.tmp");
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  const now = Date.now();
  const row: TemplateRow = {
    ...source,
    id: opts.id,
    aliases: JSON.stringify(opts.name ? [opts.name] : []),
    dir,
    public: false,
    snapshotOf: opts.sandboxId,
    ephemeral: opts.ephemeral ?? false,
    createdAt: now,
    updatedAt: now,
  };
  return { row, vmDir: join(tmp, "vm"), layer: join(tmp, "layer.ext4"), tmp };
}

/** After the capture: the layer becomes the template's layer too (a hard link), and the capture dir is renamed to
 *  snapshots/<key> with its meta, which makes it the template's current snapshot. Returns the bytes the capture
 *  holds on disk (VM state, layer) as allocated blocks. */
export async function finishSnapshotTemplate(
  config: Config,
  d: SnapshotDraft,
  meta: { snapshotMs: number; guestToken?: string; base?: string },
): Promise<{ vmBytes: number; layerBytes: number }> {
  linkSync(d.layer, templateFiles(d.row).layer);
  const key = await snapshotKey(config, d.row);
  const m: SnapshotMeta = {
    key,
    createdAt: d.row.createdAt,
    bootMs: 0,
    snapshotMs: meta.snapshotMs,
    ...(meta.guestToken ? { guestToken: meta.guestToken } : {}),
    ...(meta.base ? { base: meta.base } : {}),
  };
  writeFileSync(join(d.tmp, "meta.json"), `${JSON.stringify(m)}\n`, { mode: 0o600 });
  const vmBytes = allocated(d.vmDir);
  const layerBytes = statSync(d.layer).blocks * 512;
  const p = snapshotPaths(d.row, key);
  rmSync(p.dir, { recursive: true, force: true });
  renameSync(d.tmp, p.dir);
  return { vmBytes, layerBytes };
}

function allocated(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).blocks * 512;
  return n;
}
