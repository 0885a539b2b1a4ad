// Create (spec §1.3 POST /sandboxes): checks, a warm pool entry if one is ready, the row (starting), the
// attachments, the VM (starter), then running with its deadline. Rollback is decided here, in one place: every
// step pushes its undo on one stack, which a failure unwinds (no row, no files, no VM, no pool entry left).
import { agentEnvdVersion } from "../machine/envd-version.ts";
import { templateProblem } from "../machine/disk.ts";
import type { SandboxRow, TemplateRow } from "../store/index.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import { notFound, OneboxError, unavailable } from "../util/errors.ts";
import { newAccessToken, newSandboxId } from "../util/ids.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { applyEgress, egressOf } from "./egress.ts";

export interface CreateInput {
  templateID: string;
  timeoutSec: number;
  metadata: Record<string, string>;
  envVars: Record<string, string>;
  secure: boolean;
  allowInternetAccess: boolean | null;
  /** E2B's `network` as stored (JSON, validated by the API: src/api/network-body.ts), or null. */
  network?: string | null;
  /** E2B's network.allowPublicTraffic (default true); false issues a trafficAccessToken. */
  allowPublicTraffic?: boolean;
  autoPause: boolean;
  /** false: a timeout's pause keeps only the filesystem (E2B's lifecycle keepMemory: false); default true. */
  autoPauseMemory?: boolean;
  /** The id of the API key the create came with (the audit log's "who" for the sandbox's data plane). */
  keyId?: string | null;
  autoResume: boolean;
}

export function resolveTemplate(ctx: SandboxCtx, idOrAlias: string): TemplateRow {
  const t = ctx.templates.resolve(idOrAlias);
  if (!t) throw notFound(`template '${idOrAlias}' not found`);
  return t;
}

/** Why a create cannot succeed on this host right now, checked before anything is written. */
export function createProblem(ctx: SandboxCtx, t: TemplateRow): string | null {
  return (
    ctx.hostProblem() ??
    ctx.machineProblem ??
    (agentEnvdVersion() ? null : "this build has no guest agent version (guest/protocol.ts ENVD_VERSION); rebuild onebox") ??
    templateProblem(t, ctx.config)
  );
}

/** t: the template input.templateID names, resolved once by the caller (its cost was admitted). */
export async function create(ctx: SandboxCtx, input: CreateInput, t: TemplateRow): Promise<SandboxRow> {
  const { reg, starter } = ctx;
  const problem = createProblem(ctx, t);
  if (problem || !starter) throw unavailable(`cannot start a sandbox: ${problem ?? "no VMM"}`);
  const undo = new CleanupStack();
  // A warm pool entry was made under a sandbox id of its own (pool-entry.ts says why): it becomes this one's.
  // It is ours to discard until the starter takes it.
  const pooled = starter.takePooled(t);
  let pooledOwned = pooled !== null;
  if (pooled) undo.push("warm pool entry", () => (pooledOwned ? starter.discard(pooled) : undefined));
  const id = pooled?.id ?? newSandboxId();
  const now = Date.now();
  // v2 is always secure; v1 only when asked (spec §1.3). Without a token the agent checks none.
  const token = input.secure ? newAccessToken() : null;
  let inserted = false;
  // A kill of this sandbox meanwhile waits for the create's outcome, rollback included.
  let settled!: () => void;
  reg.creating.set(id, new Promise<void>((r) => (settled = r)));
  try {
    reg.rows.insert({
      id,
      templateId: t.id,
      alias: input.templateID === t.id ? null : input.templateID,
      state: "starting",
      cpuCount: t.cpuCount,
      memoryMb: t.memoryMb,
      diskSizeMb: t.diskSizeMb,
      envdVersion: agentEnvdVersion() ?? t.envdVersion,
      envdAccessToken: token,
      metadata: JSON.stringify(input.metadata),
      envVars: JSON.stringify(input.envVars),
      secure: input.secure,
      allowInternetAccess: input.allowInternetAccess,
      network: input.network ?? null,
      trafficAccessToken: input.allowPublicTraffic === false ? newAccessToken() : null,
      onTimeout: input.autoPause ? "pause" : "kill",
      autoResume: input.autoResume,
      autoPauseMemory: input.autoPauseMemory ?? true,
      keyId: input.keyId ?? null,
      startedAt: now,
      endAt: now + input.timeoutSec * 1000,
    });
    inserted = true;
    // Undo the row too: a failed create leaves nothing behind (ACTIONS.create.onFail).
    undo.push("row", () => reg.fail("create", id));
    reg.event(id, "create", `template ${t.id}`);
    const boot = reg.locks.with(id, "create", async () => {
      // Per-sandbox resources, in order, each with its undo on the stack (docs/architecture.md "Create").
      for (const a of ctx.attachments) await a.acquire({ id, template: t, undo });
      pooledOwned = false;
      const egress = egressOf(reg.mustGet(id));
      return starter.start({ id, template: t, envVars: input.envVars, accessToken: token ?? undefined, pooled, egress });
    });
    const booted = await boot;
    reg.adoptLive(id, booted.handle, booted.runDir);
    applyEgress(ctx, id); // a PUT /network during the boot changed the row after the slot got its policy
    reg.event(id, booted.mode, booted.pooled ? `from the warm pool (snapshot restored into a waiting vmm in ${booted.pooled.restoreMs.toFixed(2)} ms)` : "");
    reg.complete("create", id, { runDir: booted.runDir, sandboxDir: booted.sandboxDir, vmPid: booted.handle.pid });
    // ms per stage: vmm = spawn (layer copy before it) or, from the warm pool, the restore request alone.
    // vmmStartUs: the vmm's own count to the guest's first exit, from main() (spawned) or from `restore` (pooled).
    const started = { id, template: t.id, mode: booted.mode, warmPool: booted.pooled !== undefined, ms: booted.stages };
    ctx.metrics.created(booted.mode, booted.pooled ? "hit" : ctx.starter?.pool ? "miss" : "off", booted.stages);
    void booted.handle.stats().then(
      (st) => log.info("sandbox started", { ...started, vmmStartUs: st.startUs, vmmEnterUs: st.enterUs }),
      () => log.info("sandbox started", started),
    );
    reg.armTimer(reg.mustGet(id));
    undo.release();
    return reg.mustGet(id);
  } catch (e) {
    for (const err of await undo.unwind()) log.warn("cleanup after failed create", { id, error: err.message });
    if (!inserted) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    log.warn("create failed", { id, template: t.id, error: msg });
    ctx.metrics.createFailed(e instanceof OneboxError ? e.kind : "internal");
    if (e instanceof OneboxError && e.kind === "unavailable") throw unavailable(`cannot start a sandbox: ${msg}`);
    throw e;
  } finally {
    reg.creating.delete(id);
    settled();
  }
}
