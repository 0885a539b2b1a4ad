// A built template's start command (E2B's setStartCmd): started in the template VM before its ready snapshot, and
// its ready command polled until it exits 0, so every sandbox restored from the snapshot has the process running.
import { agentSocket, guestExec } from "../machine/guest-exec.ts";
import type { TemplateRow } from "../store/index.ts";
import { E2B_DEFAULT_USER, E2B_DEFAULT_WORKDIR, templateDefaults } from "../store/template-defaults.ts";
import { log } from "../util/log.ts";

/** How long a ready command may keep failing before the snapshot (and so the build) fails. */
export const READY_TIMEOUT_MS = 5 * 60_000;
const READY_POLL_MS = 500;
const READY_TRY_MS = 30_000;

/** Starts t's start command in the booted template VM at runDir and waits for its ready command; no-op for a
 *  template without one to run. Throws with the ready command's last output when it never succeeds. */
export async function runStartCmd(t: TemplateRow, runDir: string, dead: () => string | null, readyTimeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const d = templateDefaults(t);
  if (!d.runStartCmd || !d.startCmd) return;
  const socket = agentSocket(runDir);
  const user = d.user ?? E2B_DEFAULT_USER;
  const cwd = d.workdir ?? (user === E2B_DEFAULT_USER ? E2B_DEFAULT_WORKDIR : undefined);
  const opts = { user, envs: d.envVars ?? {}, ...(cwd ? { cwd } : {}) };
  const started = await guestExec(socket, d.startCmd, { ...opts, detach: true });
  if (started.error) throw new Error(`the start command could not run: ${started.error}`);
  log.info("template start command running", { template: t.id, pid: started.pid });
  if (!d.readyCmd) return;
  const deadline = Date.now() + readyTimeoutMs;
  let last: string[] = [];
  for (;;) {
    const why = dead();
    if (why) throw new Error(`the template VM ended while waiting for the ready command: ${why}`);
    const r = await guestExec(socket, d.readyCmd, { ...opts, timeoutMs: READY_TRY_MS });
    if (r.exitCode === 0) return;
    last = r.tail;
    if (Date.now() > deadline) {
      throw new Error(`the ready command \`${d.readyCmd}\` did not exit 0 within ${Math.round(readyTimeoutMs / 1000)} s (last exit ${r.exitCode}${r.error ? `, ${r.error}` : ""}): ${last.slice(-5).join(" | ")}`);
    }
    await Bun.sleep(READY_POLL_MS);
  }
}
