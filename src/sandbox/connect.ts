// Connect (spec §1.3): resumes a paused sandbox (201) or extends a running one's TTL only (200); and the
// timeout routes, which set the end time (may shorten) or extend it. A connect during another operation (a pause in
// flight, a resume, a boot) waits for it and then acts on the outcome, as E2B's does (issue 15).
import type { SandboxRow } from "../store/index.ts";
import type { SandboxCtx } from "./context.ts";
import { precondition } from "./lifecycle.ts";
import { resume } from "./resume.ts";

/** `reboot`: a paused sandbox boots its files afresh (E2B's `memory: false`, the SDK's onResume "reboot"). */
export async function connect(ctx: SandboxCtx, id: string, timeoutSec: number, opts: { reboot?: boolean } = {}): Promise<{ row: SandboxRow; resumed: boolean }> {
  const { reg } = ctx;
  let row = reg.getVisible(id);
  // Each wait ends with its operation; a sandbox killed meanwhile is then 404 (getVisible).
  while (reg.locks.busy(id)) {
    await reg.locks.settled(id);
    row = reg.getVisible(id);
  }
  precondition("connect", id, row.state);
  let resumed = false;
  if (row.state === "paused") {
    await resume(ctx, id, timeoutSec, opts);
    resumed = true;
  }
  const current = reg.mustGet(id);
  const endAt = Math.max(current.endAt, Date.now() + timeoutSec * 1000);
  reg.rows.update(id, { endAt });
  const updated = reg.mustGet(id);
  reg.armTimer(updated);
  return { row: updated, resumed };
}

/** POST /sandboxes/{id}/timeout: endAt = now + timeout, may shorten (spec §1.3). */
export function setTimeout(ctx: SandboxCtx, id: string, timeoutSec: number): SandboxRow {
  const { reg } = ctx;
  const row = reg.getVisible(id);
  reg.rows.update(id, { endAt: Date.now() + timeoutSec * 1000 });
  const updated = reg.mustGet(id);
  if (row.state !== "paused") reg.armTimer(updated);
  return updated;
}
