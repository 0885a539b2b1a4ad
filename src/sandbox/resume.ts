// Resume (spec §1.3; connect and auto-resume come here too): a paused sandbox is restored from its own snapshot
// into a new vmm, gets hygiene and /init, and runs with a new deadline. A failure leaves it paused, its
// snapshot in place, so the resume can be retried (ACTIONS.resume.onFail).
import type { SandboxRow } from "../store/index.ts";
import { initDefaults } from "../store/template-defaults.ts";
import { unavailable } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { parseJsonObject } from "./json-fields.ts";
import { applyEgress, egressOf } from "./egress.ts";
import { precondition } from "./lifecycle.ts";
import { resumeSandbox } from "./runtime.ts";

/** Without a timeout a resumed sandbox keeps its end time, but gets at least this long. */
const RESUME_MIN_MS = 300_000;

/** `reboot` (E2B's connect/resume with `memory: false`): boot the sandbox's files afresh instead of restoring its
 *  memory; a filesystem-only pause always resumes so. */
export async function resume(ctx: SandboxCtx, id: string, timeoutSec?: number, opts: { reboot?: boolean } = {}): Promise<SandboxRow> {
  const { reg } = ctx;
  const row = reg.getVisible(id);
  precondition("resume", id, row.state);
  await reg.locks.with(id, "resume", async () => {
    reg.begin("resume", id);
    try {
      await wake(ctx, row, opts.reboot === true);
    } catch (e) {
      reg.fail("resume", id);
      throw unavailable(`resuming sandbox ${id} failed (${e instanceof Error ? e.message : String(e)}); it is still paused, retry`);
    }
    const endAt = timeoutSec ? Date.now() + timeoutSec * 1000 : Math.max(row.endAt, Date.now() + RESUME_MIN_MS);
    reg.complete("resume", id, { endAt, vmPid: reg.live.get(id)?.handle.pid ?? null });
    reg.armTimer(reg.mustGet(id));
  });
  return reg.mustGet(id);
}

/** Restores a paused sandbox from its snapshot; a VM paused in memory by an older daemon just continues. */
async function wake(ctx: SandboxCtx, row: SandboxRow, reboot: boolean): Promise<void> {
  const init = { envVars: parseJsonObject(row.envVars), accessToken: row.envdAccessToken ?? undefined };
  const live = ctx.reg.live.get(row.id);
  if (live) {
    await live.handle.resume();
    // Re-run /init so the guest clock is fixed after the pause (spec §3.4).
    const template = ctx.templates.resolve(row.templateId);
    await ctx.guest
      .init(live.runDir, { ...init, ...initDefaults(template ?? { defaults: "{}" }, init.envVars) }, init.accessToken)
      .catch((e) => log.warn("re-init after resume failed", { id: row.id, error: String(e) }));
    return;
  }
  if (!ctx.machine) throw new Error(ctx.machineProblem ?? "no VMM");
  const template = ctx.templates.resolve(row.templateId);
  if (!template) throw new Error(`its template ${row.templateId} was removed`);
  const booted = await resumeSandbox(ctx.config, ctx.machine, { id: row.id, template, ...init, egress: egressOf(ctx.reg.mustGet(row.id)) }, { reboot });
  if (booted.mode === "cold-boot") ctx.reg.event(row.id, "rebooted", "from its filesystem (its memory was not kept)");
  ctx.reg.adoptLive(row.id, booted.handle, booted.runDir);
  applyEgress(ctx, row.id); // a PUT /network during the resume changed the row after the slot got its policy
}
