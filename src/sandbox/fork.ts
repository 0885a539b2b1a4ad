// Fork (POST /sandboxes/{id}/fork): the running parent is captured once (snapshot.ts: paused only for the capture,
// it runs on), then `count` sandboxes are created from that capture, each through admission and the ordinary create
// (own id, identity, clock, entropy, envd token; a failed one leaves nothing). The capture is a hidden template
// (ephemeral) that goes once no live sandbox was created from it: at once if every create failed, else when the
// last fork ends (dropUnusedCapture, called by the registry on every end and at daemon start).
import { rmSync } from "node:fs";
import type { SandboxRow, TemplateRow } from "../store/index.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { create, type CreateInput } from "./create.ts";
import { parseJsonObject } from "./json-fields.ts";
import { snapshot } from "./snapshot.ts";

/** Most forks one request may ask for. */
export const MAX_FORK_COUNT = 10;
const DEFAULT_FORK_TIMEOUT_SEC = 300;

/** Runs a create if the host has room (src/scheduler/admission.ts), else throws its 429. */
export type Admit = <T>(cost: { cpus: number; memoryMib: number }, fn: () => Promise<T>) => Promise<T>;

export type ForkResult = { sandbox: SandboxRow } | { error: unknown };

/** Parents being forked: their captures are not dropped between the capture and the forks' rows (a sweep then
 *  would find a capture no sandbox uses yet). */
const forking = new Map<string, number>();

export async function fork(ctx: SandboxCtx, id: string, opts: { timeoutSec?: number; count: number }, admit: Admit): Promise<ForkResult[]> {
  forking.set(id, (forking.get(id) ?? 0) + 1);
  let capture: TemplateRow | null = null;
  try {
    capture = await snapshot(ctx, id, undefined, { ephemeral: true, op: "fork" });
    return await forkFrom(ctx, id, opts, admit, capture);
  } finally {
    const n = (forking.get(id) ?? 1) - 1;
    if (n > 0) forking.set(id, n);
    else forking.delete(id);
    if (capture) dropUnusedCapture(ctx, capture.id);
  }
}

async function forkFrom(ctx: SandboxCtx, id: string, opts: { timeoutSec?: number; count: number }, admit: Admit, capture: TemplateRow): Promise<ForkResult[]> {
  const parent = ctx.reg.mustGet(id);
  const input: CreateInput = {
    templateID: capture.id,
    timeoutSec: opts.timeoutSec ?? DEFAULT_FORK_TIMEOUT_SEC,
    metadata: parseJsonObject(parent.metadata),
    envVars: parseJsonObject(parent.envVars),
    secure: parent.secure,
    allowInternetAccess: parent.allowInternetAccess,
    network: parent.network,
    allowPublicTraffic: parent.trafficAccessToken === null,
    autoPause: parent.onTimeout === "pause",
    autoResume: parent.autoResume,
    autoPauseMemory: parent.autoPauseMemory,
    keyId: parent.keyId,
  };
  // Every create inserts its row before its first await, so the capture counts as used by all of them from here.
  const results = await Promise.all(
    Array.from({ length: opts.count }, () =>
      admit({ cpus: capture.cpuCount, memoryMib: capture.memoryMb }, () => create(ctx, input, capture)).then(
        (sandbox): ForkResult => ({ sandbox }),
        (error: unknown): ForkResult => ({ error }),
      ),
    ),
  );
  const made = results.filter((r) => "sandbox" in r).length;
  ctx.reg.event(id, "forked", `${made} of ${opts.count} from ${capture.id}`);
  log.info("sandbox forked", { id, capture: capture.id, asked: opts.count, made });
  return results;
}

/** Removes a fork's capture (row and files) once no live sandbox was created from it. */
export function dropUnusedCapture(ctx: SandboxCtx, templateId: string): void {
  const t: TemplateRow | undefined = ctx.templates.byId(templateId);
  if (!t?.ephemeral || (t.snapshotOf && forking.has(t.snapshotOf)) || ctx.reg.rows.countLiveOfTemplate(t.id) > 0) return;
  ctx.templates.delete(t.id);
  rmSync(t.dir, { recursive: true, force: true });
  log.info("removed a fork capture no sandbox uses", { capture: t.id });
}
