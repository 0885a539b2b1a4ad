// Sandbox lifecycle operations over the state table: create, kill, timeouts, pause/resume, ends.
import type { State, SandboxRow, TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { conflict, notFound, OneboxError, unavailable } from "../util/errors.ts";
import { newAccessToken, newSandboxId } from "../util/ids.ts";
import { log } from "../util/log.ts";
import { AgentClient } from "../machine/agent-client.ts";
import { endReasonOf, wasOomKilled } from "./end-reasons.ts";
import { agentEnvdVersion } from "../machine/envd-version.ts";
import { hostProblem } from "./host-check.ts";
import { parseJsonObject } from "./json-fields.ts";
import { assertTransition, isState, TRANSITIONAL_STATES, VISIBLE_STATES, type EndReason, type SandboxState } from "./lifecycle.ts";
import { OpLocks } from "./op-lock.ts";
import { parkSandbox, removeSandboxFiles, resumeSandbox, snapshotsInUse } from "./runtime.ts";
import { isParked, sandboxPaths } from "./paths.ts";
import { templateProblem } from "../machine/disk.ts";
import { realMachine } from "../machine/machine.ts";
import { reapPoolLeftovers } from "./pool-entry.ts";
import { SandboxStarter } from "./starter.ts";
import { DeadlineTimers } from "./timers.ts";
import type { VmDriverResult, VmHandle, VmStats } from "../machine/vm-driver.ts";
import { LiveVms, type Live } from "./live-vms.ts";
import type { AgentMetrics } from "../machine/agent-client.ts";

export interface CreateInput {
  templateID: string;
  timeoutSec: number;
  metadata: Record<string, string>;
  envVars: Record<string, string>;
  secure: boolean;
  allowInternetAccess: boolean | null;
  autoPause: boolean;
  autoResume: boolean;
}

export interface Route {
  runDir: string;
  signal: AbortSignal;
}

export class SandboxManager {
  private live = new LiveVms();
  private locks = new OpLocks();
  private timers = new DeadlineTimers((id) => void this.expire(id));
  /** The reason we stopped a VM for, so its exit is not reported as a crash. */
  private stopReasons = new Map<string, EndReason>();
  /** Set when the daemon shuts down: VMs live on, so their handles' ends are not ours to record. */
  private detached = false;
  /** Creates in flight: a kill of a starting sandbox waits for its boot instead of failing with 409. */
  private creating = new Map<string, Promise<void>>();
  /** Sandboxes whose VM is being stopped because it was paused to disk: its exit is not an end. */
  private parking = new Set<string>();
  private readonly starter: SandboxStarter | null;

  constructor(
    private readonly state: State,
    private readonly config: Config,
    private readonly driver: VmDriverResult,
  ) {
    this.starter = driver.ok ? new SandboxStarter(config, realMachine(driver.driver), (id) => state.templates.byId(id) ?? null) : null;
  }

  /** Makes the snapshots of every template that can start here, in the background (first creates restore). */
  async warmTemplates(): Promise<void> {
    const snaps = this.starter?.snapshots;
    if (!snaps) return;
    const templates = this.state.templates.list();
    await this.starter?.warm(templates.filter((t) => this.createProblem(t) === null));
    // Old snapshots go once no live sandbox was restored from them (their pause diffs lie over them).
    const inUse = snapshotsInUse(this.config, this.state.sandboxes.live().map((r) => r.id));
    for (const t of templates) await snaps.prune(t, inUse);
  }

  resolveTemplate(idOrAlias: string): TemplateRow {
    const t = this.state.templates.resolve(idOrAlias);
    if (!t) throw notFound(`template '${idOrAlias}' not found`);
    return t;
  }

  /** Why a create cannot succeed on this host right now, checked before anything is written. */
  createProblem(t: TemplateRow): string | null {
    return (
      hostProblem(this.config) ??
      (this.driver.ok ? null : this.driver.problem) ??
      (agentEnvdVersion() ? null : "this build has no guest agent version (guest/protocol.ts ENVD_VERSION); rebuild onebox") ??
      templateProblem(t, this.config)
    );
  }

  async create(input: CreateInput): Promise<SandboxRow> {
    const t = this.resolveTemplate(input.templateID);
    const problem = this.createProblem(t);
    const starter = this.starter;
    if (problem || !starter) throw unavailable(`cannot start a sandbox: ${problem ?? "no VMM"}`);
    // A warm pool entry was made under a sandbox id of its own (pool-entry.ts says why): it becomes this one's.
    const pooled = starter.takePooled(t);
    const id = pooled?.id ?? newSandboxId();
    const now = Date.now();
    // v2 is always secure; v1 only when asked (spec §1.3). Without a token the agent checks none.
    const token = input.secure ? newAccessToken() : null;
    try {
      this.state.sandboxes.insert({
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
        onTimeout: input.autoPause ? "pause" : "kill",
        autoResume: input.autoResume,
        startedAt: now,
        endAt: now + input.timeoutSec * 1000,
      });
    } catch (e) {
      if (pooled) await starter.discard(pooled);
      throw e;
    }
    this.state.sandboxes.addEvent(id, "create", `template ${t.id}`);
    const boot = this.locks.with(id, "create", () =>
      starter.start({ id, template: t, envVars: input.envVars, accessToken: token ?? undefined, pooled }),
    );
    this.creating.set(id, boot.then(() => undefined, () => undefined));
    try {
      const booted = await boot;
      this.adoptLive(id, booted.handle, booted.runDir);
      this.state.sandboxes.addEvent(
        id,
        booted.mode,
        booted.pooled ? `from the warm pool (snapshot restored into a waiting vmm in ${booted.pooled.restoreMs.toFixed(2)} ms)` : "",
      );
      this.setState(id, "starting", "running", { runDir: booted.runDir, sandboxDir: booted.sandboxDir, vmPid: booted.handle.pid });
      // ms per stage: vmm = spawn (layer copy before it) or, from the warm pool, the restore request alone.
      // vmmStartUs: the vmm's own count to the guest's first exit, from main() (spawned) or from `restore` (pooled).
      const started = { id, template: t.id, mode: booted.mode, warmPool: booted.pooled !== undefined, ms: booted.stages };
      void booted.handle.stats().then(
        (st) => log.info("sandbox started", { ...started, vmmStartUs: st.startUs, vmmEnterUs: st.enterUs }),
        () => log.info("sandbox started", started),
      );
      this.armTimer(this.mustGet(id));
      this.creating.delete(id);
      return this.mustGet(id);
    } catch (e) {
      // Undo the row too: a failed create leaves nothing behind.
      this.state.sandboxes.delete(id);
      this.creating.delete(id);
      const msg = e instanceof Error ? e.message : String(e);
      log.warn("create failed", { id, template: t.id, error: msg });
      if (e instanceof OneboxError && e.kind === "unavailable") throw unavailable(`cannot start a sandbox: ${msg}`);
      throw e;
    }
  }

  /** A sandbox the E2B API can see (not ended); 404 otherwise. */
  getVisible(id: string): SandboxRow {
    const row = this.state.sandboxes.get(id);
    if (!row || !isState(row.state) || !VISIBLE_STATES.includes(row.state)) {
      throw notFound(`sandbox ${id} not found`);
    }
    return row;
  }

  get(id: string): SandboxRow | undefined {
    return this.state.sandboxes.get(id);
  }

  async kill(id: string, reason: EndReason = "killed"): Promise<void> {
    const booting = this.creating.get(id);
    if (booting) await booting;
    const row = this.getVisible(id);
    await this.locks.with(id, "kill", async () => {
      assertTransition(id, row.state as SandboxState, "stopping");
      this.setState(id, row.state as SandboxState, "stopping");
      this.stopReasons.set(id, reason);
      const live = this.live.get(id);
      this.live.cutStreams(id, false);
      if (live) {
        await live.handle.stop().catch((e) => log.warn("stop failed", { id, error: String(e) }));
        const gone = await Promise.race([live.handle.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
        if (!gone) {
          // A vmm that ignores `stop` must not outlive its sandbox (its files are removed next).
          log.warn("VM process ignored stop; killing it", { id, pid: live.handle.pid });
          try {
            process.kill(live.handle.pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
      }
      this.finish(id, reason, reason === "timeout" ? "the sandbox reached its end time" : "killed through the API");
    });
  }

  /** POST /sandboxes/{id}/timeout: endAt = now + timeout, may shorten (spec §1.3). */
  setTimeout(id: string, timeoutSec: number): SandboxRow {
    const row = this.getVisible(id);
    this.state.sandboxes.update(id, { endAt: Date.now() + timeoutSec * 1000 });
    const updated = this.mustGet(id);
    if (row.state !== "paused") this.armTimer(updated);
    return updated;
  }

  /** Connect: resumes a paused sandbox (201) or extends a running one's TTL only (200). */
  async connect(id: string, timeoutSec: number): Promise<{ row: SandboxRow; resumed: boolean }> {
    const row = this.getVisible(id);
    if (TRANSITIONAL_STATES.includes(row.state as SandboxState) || this.locks.busy(id)) {
      throw conflict(`sandbox ${id} is ${row.state}; retry the connect in a moment`);
    }
    let resumed = false;
    if (row.state === "paused") {
      await this.resume(id, timeoutSec);
      resumed = true;
    }
    const current = this.mustGet(id);
    const endAt = Math.max(current.endAt, Date.now() + timeoutSec * 1000);
    this.state.sandboxes.update(id, { endAt });
    const updated = this.mustGet(id);
    this.armTimer(updated);
    return { row: updated, resumed };
  }

  /** Pause to disk (spec §1.3 pause): the vCPUs stop, the VM is snapshotted into the sandbox's dir and
   *  its process ends, so a paused sandbox holds no memory and survives a host reboot's daemon restart. */
  async pause(id: string): Promise<void> {
    const row = this.getVisible(id);
    if (row.state === "paused") throw conflict(`sandbox ${id} is already paused`);
    await this.locks.with(id, "pause", async () => {
      assertTransition(id, row.state as SandboxState, "pausing");
      const live = this.liveOrUnavailable(id);
      this.setState(id, row.state as SandboxState, "pausing");
      try {
        await live.handle.pause();
      } catch (e) {
        this.setState(id, "pausing", "running");
        throw unavailable(`pausing sandbox ${id} failed (${String(e)}); it is still running, retry`);
      }
      this.live.cutStreams(id, true);
      this.timers.clear(id);
      this.parking.add(id);
      try {
        const { diff } = await parkSandbox(this.config, id, live.handle);
        this.state.sandboxes.addEvent(id, "saved", diff ? "diff over the template snapshot" : "full memory");
      } catch (e) {
        this.parking.delete(id);
        await live.handle.resume().catch(() => undefined);
        this.setState(id, "pausing", "running");
        this.armTimer(this.mustGet(id));
        throw unavailable(`pausing sandbox ${id} failed while saving it (${String(e)}); it is still running, retry`);
      }
      this.live.remove(id);
      this.parking.delete(id);
      this.setState(id, "pausing", "paused", { vmPid: null });
    });
  }

  async resume(id: string, timeoutSec?: number): Promise<SandboxRow> {
    const row = this.getVisible(id);
    if (row.state !== "paused") throw conflict(`sandbox ${id} is ${row.state}, not paused`);
    await this.locks.with(id, "resume", async () => {
      this.setState(id, "paused", "resuming");
      try {
        await this.wake(row);
      } catch (e) {
        this.setState(id, "resuming", "paused");
        throw unavailable(`resuming sandbox ${id} failed (${e instanceof Error ? e.message : String(e)}); it is still paused, retry`);
      }
      const endAt = timeoutSec ? Date.now() + timeoutSec * 1000 : Math.max(row.endAt, Date.now() + 300_000);
      this.setState(id, "resuming", "running", { endAt, vmPid: this.live.get(id)?.handle.pid ?? null });
      this.armTimer(this.mustGet(id));
    });
    return this.mustGet(id);
  }

  /** Restores a paused sandbox from its snapshot; a VM paused in memory by an older daemon just continues. */
  private async wake(row: SandboxRow): Promise<void> {
    const init = { envVars: parseJsonObject(row.envVars), accessToken: row.envdAccessToken ?? undefined };
    const live = this.live.get(row.id);
    if (live) {
      await live.handle.resume();
      // Re-run /init so the guest clock is fixed after the pause (spec §3.4).
      await new AgentClient(live.runDir)
        .init({ ...init, defaultUser: "user", defaultWorkdir: "/home/user" }, init.accessToken)
        .catch((e) => log.warn("re-init after resume failed", { id: row.id, error: String(e) }));
      return;
    }
    if (!this.driver.ok) throw new Error(this.driver.problem);
    const template = this.state.templates.resolve(row.templateId);
    if (!template) throw new Error(`its template ${row.templateId} was removed`);
    const booted = await resumeSandbox(this.config, realMachine(this.driver.driver), { id: row.id, template, ...init });
    this.adoptLive(row.id, booted.handle, booted.runDir);
  }

  async metrics(id: string): Promise<{ vm: VmStats; guest: AgentMetrics }> {
    const row = this.getVisible(id);
    const live = this.liveOrUnavailable(id);
    const [vm, guest] = await Promise.all([live.handle.stats(), new AgentClient(live.runDir).metrics(row.envdAccessToken)]);
    return { vm, guest };
  }

  /** Data-plane route: only running sandboxes are reachable (paused/dead → 502, spec §2.3). */
  route(id: string): Route | null {
    const live = this.live.get(id);
    if (!live) return null;
    const row = this.state.sandboxes.get(id);
    if (row?.state !== "running") return null;
    return { runDir: live.runDir, signal: live.streams.signal };
  }

  /** Like route(), but a paused sandbox created with autoResume is resumed by the traffic (spec §1.3
   *  autoResume; §1.3 pause: 502 while paused "unless auto-resume"). */
  async routeOrResume(id: string): Promise<Route | null> {
    const direct = this.route(id);
    if (direct) return direct;
    if (!this.state.sandboxes.get(id)?.autoResume) return null;
    // Traffic that arrives while an auto-pause is being written waits for it, then resumes; requests
    // that arrive together share one resume.
    await this.locks.settled(id);
    if (this.state.sandboxes.get(id)?.state === "paused") {
      await this.resume(id).catch(async (e) => {
        log.warn("auto-resume failed", { id, error: String(e) });
        await this.locks.settled(id);
      });
    }
    return this.route(id);
  }

  /** The forward socket for guest TCP `port` of a running sandbox (see LiveVms.portSocket). */
  portSocket(id: string, runDir: string, port: number): Promise<string> {
    return this.live.portSocket(id, runDir, port);
  }

  /** Running sandboxes with their envd tokens, for routing signed /files URLs (spec §2.4 item 1). */
  runningTokens(): { id: string; token: string }[] {
    const out: { id: string; token: string }[] = [];
    for (const id of this.live.ids()) {
      const row = this.state.sandboxes.get(id);
      if (row?.state === "running" && row.envdAccessToken) out.push({ id, token: row.envdAccessToken });
    }
    return out;
  }

  /** After a daemon restart: re-adopt live VMs and their timers; record ends for the dead ones. */
  async recover(): Promise<{ adopted: number; ended: number }> {
    let adopted = 0;
    let ended = 0;
    for (const row of this.state.sandboxes.live()) {
      if (row.state === "paused" && isParked(this.config, row.id)) {
        adopted++; // paused to disk: nothing runs; resume restores it
        continue;
      }
      // A row still starting has no runDir yet, but its VM (spawned, or a taken warm pool entry) may run there.
      const runDir = row.runDir ?? sandboxPaths(this.config, row.id).runDir;
      const handle = this.driver.ok ? await this.driver.driver.adopt(runDir, sandboxPaths(this.config, row.id).exitFile).catch(() => null) : null;
      if (handle && row.runDir && (row.state === "running" || row.state === "paused")) {
        this.adoptLive(row.id, handle, row.runDir);
        if (row.state === "running") this.armTimer(row);
        this.state.sandboxes.addEvent(row.id, "adopted", `pid ${handle.pid}`);
        adopted++;
        continue;
      }
      if (handle) {
        // Caught mid-operation (starting/pausing/stopping): its outcome is unknown, so end it.
        await handle.stop().catch(() => undefined);
        this.finish(row.id, row.state === "starting" ? "start-failed" : "killed", `daemon restarted while ${row.state}`);
      } else {
        // Ended while the daemon was down: its exit record says how, if it had time to write one.
        const exit = this.driver.ok ? await this.driver.driver.readExit(sandboxPaths(this.config, row.id).exitFile).catch(() => null) : null;
        if (exit) {
          const { reason, detail } = endReasonOf(exit, false);
          this.finish(row.id, reason, `${detail} (while the daemon was down)`);
        } else {
          this.finish(row.id, "lost", "the VM process was gone when the daemon restarted");
        }
      }
      ended++;
    }
    // Warm pool entries of a daemon that did not stop cleanly: not sandboxes, never adopted as such. After the
    // rows above, so an entry a create had taken was ended as that sandbox first.
    if (this.driver.ok) {
      const reaped = await reapPoolLeftovers(this.config, this.driver.driver, (id) => this.state.sandboxes.get(id) !== undefined);
      if (reaped) log.info("reaped warm pool leftovers", { reaped });
    }
    return { adopted, ended };
  }

  /** Stops timers without touching VMs: they live on and are re-adopted by the next daemon. */
  async detachAll(): Promise<void> {
    this.detached = true;
    this.timers.clearAll();
    // Template snapshot VMs and warm pool vmms are not sandboxes: none may outlive the daemon.
    await this.starter?.close();
  }

  private async expire(id: string): Promise<void> {
    const row = this.state.sandboxes.get(id);
    if (!row || row.state !== "running") return;
    if (this.locks.busy(id)) {
      setTimeout(() => void this.expire(id), 500);
      return;
    }
    try {
      if (row.onTimeout === "pause") await this.pause(id);
      else await this.kill(id, "timeout");
    } catch (e) {
      log.warn("deadline action failed; retrying", { id, error: String(e) });
      setTimeout(() => void this.expire(id), 1000);
    }
  }

  private adoptLive(id: string, handle: VmHandle, runDir: string): void {
    this.live.add(id, handle, runDir);
    void handle.exited.then(async (exit) => {
      const stopped = this.stopReasons.get(id);
      // kill() records its own reason; a VM stopped after a pause to disk has not ended its sandbox.
      if (stopped || this.parking.has(id) || this.detached) return;
      const oom = exit.reason === "vmm-crash" ? await wasOomKilled(handle.pid) : false;
      const { reason, detail } = endReasonOf(exit, oom);
      if (!this.detached) this.finish(id, reason, detail);
    });
  }

  /** Records the end once: state ended, reason, time; drops timers, streams and the layer. */
  private finish(id: string, reason: EndReason, detail: string): void {
    const row = this.state.sandboxes.get(id);
    this.timers.clear(id);
    this.live.remove(id);
    this.stopReasons.delete(id);
    if (!row || row.state === "ended") return;
    this.state.sandboxes.update(id, { state: "ended", endedAt: Date.now(), endReason: reason, endDetail: detail, vmPid: null });
    this.state.sandboxes.addEvent(id, "end", `${reason}: ${detail}`);
    try {
      removeSandboxFiles(this.config, id);
    } catch (e) {
      log.warn("could not remove sandbox files", { id, error: String(e) });
    }
    log.info("sandbox ended", { id, reason, detail });
  }

  private armTimer(row: SandboxRow): void {
    this.timers.arm(row.id, row.endAt);
  }

  private setState(id: string, from: SandboxState, to: SandboxState, patch: Partial<SandboxRow> = {}): void {
    assertTransition(id, from, to);
    this.state.sandboxes.update(id, { ...patch, state: to });
    this.state.sandboxes.addEvent(id, to);
  }

  private liveOrUnavailable(id: string): Live {
    const live = this.live.get(id);
    if (!live) throw unavailable(`sandbox ${id} has no VM process attached to this daemon; kill it and create a new one`);
    return live;
  }

  private mustGet(id: string): SandboxRow {
    const row = this.state.sandboxes.get(id);
    if (!row) throw notFound(`sandbox ${id} not found`);
    return row;
  }
}

