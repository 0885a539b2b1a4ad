// Snapshot (POST /sandboxes/{id}/snapshots): a running sandbox's memory, devices and disk layer captured at one
// instant into a new template (src/templates/from-sandbox.ts), while the sandbox runs on: its VM is paused only
// for the capture. The snapshot's id (and its name) then work wherever a template's do. A failure leaves the
// sandbox running and nothing of the snapshot behind (no row, no dir).
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { cloneLayer } from "../machine/disk.ts";
import type { TemplateRow } from "../store/index.ts";
import { finishSnapshotTemplate, startSnapshotTemplate } from "../templates/from-sandbox.ts";
import { admitSnapshot } from "../templates/snapshot-storage.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import { conflict, OneboxError, unavailable } from "../util/errors.ts";
import { newTemplateId } from "../util/ids.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { precondition } from "./lifecycle.ts";
import { sandboxPaths } from "./paths.ts";
import { snapshotVm } from "./runtime.ts";

const MIB = 1024 * 1024;

/** ephemeral: a fork's capture (fork.ts), removed once no live sandbox uses it (dropUnusedCapture). */
export async function snapshot(ctx: SandboxCtx, id: string, name?: string, opts: { ephemeral?: boolean; op?: "snapshot" | "fork" } = {}): Promise<TemplateRow> {
  const { reg, templates, config } = ctx;
  const op = opts.op ?? "snapshot";
  precondition(op, id, reg.getVisible(id).state);
  if (name && templates.resolve(name)) throw conflict(`a template or snapshot named '${name}' exists: pick another name or delete that one first`);
  return reg.locks.with(id, op, async () => {
    const row = reg.begin(op, id); // the precondition again, now that no other operation runs
    const live = reg.liveOrUnavailable(id);
    const source = templates.byId(row.templateId);
    if (!source) throw unavailable(`sandbox ${id}'s template ${row.templateId} was removed; its snapshot cannot be taken`);
    // Before anything is written: at most the guest's RAM (the memory file) and its layer as it is now.
    admitSnapshot(config, templates.list(), id, row.memoryMb * MIB + statSync(sandboxPaths(config, id).layer).blocks * 512);
    const undo = new CleanupStack();
    const t0 = performance.now();
    try {
      const draft = startSnapshotTemplate(config, source, { id: newTemplateId(), name, sandboxId: id, ephemeral: opts.ephemeral });
      undo.push("snapshot dir", () => rmSync(draft.row.dir, { recursive: true, force: true }));
      // A sandbox restored from a template snapshot is captured as a diff over it (only the pages it changed, as a
      // pause does): the capture's time and size follow what the sandbox did, not its memory size. Its clones
      // restore the diff over that base and are captured (and paused) in full: one level of diffs, never a chain.
      const paths = sandboxPaths(config, id);
      let base = existsSync(paths.baseFile) ? readFileSync(paths.baseFile, "utf8") : undefined;
      // The VM state and the layer must be of one instant: the guest writes nothing while its vCPUs are stopped.
      const tPause = performance.now();
      await live.handle.pause();
      let captureError: unknown = null;
      try {
        if (!(await snapshotVm(live.handle, draft.vmDir, id, base !== undefined))) base = undefined;
        cloneLayer(paths.layer, draft.layer, config.dataDir);
      } catch (e) {
        captureError = e;
      }
      try {
        await live.handle.resume();
      } catch (e) {
        throw unavailable(`sandbox ${id} could not be resumed after its snapshot was captured (${String(e)}); kill it`);
      }
      const pausedMs = performance.now() - tPause;
      if (captureError) throw captureError;
      const size = await finishSnapshotTemplate(config, draft, { snapshotMs: Math.round(pausedMs), guestToken: row.envdAccessToken ?? undefined, base });
      templates.insert(draft.row);
      undo.release();
      const ms = performance.now() - t0;
      const mib = (size.vmBytes + size.layerBytes) / MIB;
      reg.event(id, op, `${draft.row.id} taken in ${ms.toFixed(0)} ms (paused ${pausedMs.toFixed(0)} ms), ${mib.toFixed(1)} MiB written${base ? ", memory as a diff over the template snapshot" : ""}`);
      log.info("snapshot taken", {
        id,
        snapshot: draft.row.id,
        name: name ?? null,
        ms: Math.round(ms),
        pausedMs: Math.round(pausedMs),
        vmMiB: +(size.vmBytes / MIB).toFixed(1),
        layerMiB: +(size.layerBytes / MIB).toFixed(1),
        diff: base !== undefined,
      });
      return draft.row;
    } catch (e) {
      for (const err of await undo.unwind()) log.warn("cleanup after failed snapshot", { id, error: err.message });
      const msg = e instanceof Error ? e.message : String(e);
      log.warn("snapshot failed", { id, error: msg });
      if (e instanceof OneboxError) throw e;
      throw unavailable(`the snapshot of sandbox ${id} failed (${msg}); it is still running, retry`);
    }
  });
}
