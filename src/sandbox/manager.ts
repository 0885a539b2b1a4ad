// The sandbox service the API and the data plane call: builds the operations' context (registry, machine
// layer, starter) and hands each call to its operation's file (create, kill, pause, resume, connect, snapshot,
// fork, recover, expire, route).
import { cloneLayer } from "../machine/disk.ts";
import { sandboxPaths } from "./paths.ts";
import { agentGuest, type GuestLink } from "../machine/guest-link.ts";
import type { AgentMetrics } from "../machine/agent-client.ts";
import { realMachine } from "../machine/machine.ts";
import type { NetDrops, NetSlots } from "../machine/net-slots.ts";
import type { VmDriverResult, VmStats } from "../machine/vm-driver.ts";
import type { SandboxRow, State, TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { connect, setTimeout } from "./connect.ts";
import type { Attachment, SandboxCtx } from "./context.ts";
import { create, createProblem, resolveTemplate, type CreateInput } from "./create.ts";
import { applyEgress } from "./egress.ts";
import { expire } from "./expire.ts";
import { hostProblem } from "./host-check.ts";
import { kill } from "./kill.ts";
import type { EndReason } from "./lifecycle.ts";
import { pause } from "./pause.ts";
import { recover } from "./recover.ts";
import { SandboxRegistry } from "./registry.ts";
import { resume } from "./resume.ts";
import { route, routeOrResume, runningTokens, type Route } from "./route.ts";
import { snapshotsInUse } from "./runtime.ts";
import { snapshotBases } from "../templates/snapshot.ts";
import { dropUnusedCapture, fork, type Admit, type ForkResult } from "./fork.ts";
import { snapshot } from "./snapshot.ts";
import { SandboxStarter } from "./starter.ts";
import { DaemonMetrics } from "../metrics/daemon-metrics.ts";
import { MetricsSampler } from "./metrics-sampler.ts";

export type { CreateInput } from "./create.ts";
export type { Route } from "./route.ts";

export interface ManagerOptions {
  /** The guest link (default: the real agent and control channel; tests: fake-machine.ts). */
  guest?: GuestLink;
  /** Default: src/sandbox/host-check.ts (no /dev/kvm, a PVM host without its kernel). */
  hostProblem?: () => string | null;
  /** Per-sandbox resources a create acquires before the VM boots (context.ts Attachment). */
  attachments?: Attachment[];
  /** Network slots for every VM (machine/net-slots.ts); absent: sandboxes have no network. */
  net?: NetSlots | null;
}

export class SandboxManager {
  private readonly ctx: SandboxCtx;
  private readonly sampler: MetricsSampler;

  constructor(state: State, config: Config, driver: VmDriverResult, opts: ManagerOptions = {}) {
    const guest = opts.guest ?? agentGuest;
    const machine = driver.ok ? { ...realMachine(driver.driver, opts.net ?? null), guest } : null;
    const reg: SandboxRegistry = new SandboxRegistry(
      state.sandboxes,
      config,
      (id) => void expire(this.ctx, id),
      (templateId) => dropUnusedCapture(this.ctx, templateId),
    );
    this.ctx = {
      reg,
      templates: state.templates,
      config,
      machine,
      guest,
      machineProblem: driver.ok ? null : driver.problem,
      starter: machine ? new SandboxStarter(config, machine, (id) => state.templates.byId(id) ?? null) : null,
      hostProblem: opts.hostProblem ?? (() => hostProblem(config)),
      attachments: opts.attachments ?? [],
      metrics: new DaemonMetrics(),
    };
    this.sampler = new MetricsSampler(this.ctx, state.metrics, config.metricsIntervalSec * 1000, config.metricsRetentionMin * 60_000);
  }

  /** Starts sampling running sandboxes' guests for the metrics history (the daemon does, after recover). */
  startMetricsHistory(): void {
    this.sampler.start();
  }

  /** A round of the metrics history now (tests; the daemon's timer calls the same). */
  sampleMetrics(): Promise<void> {
    return this.sampler.round();
  }

  /** The daemon's Prometheus metrics: counted by the create path and the data plane, rendered by GET /metrics. */
  get daemonMetrics(): DaemonMetrics {
    return this.ctx.metrics;
  }

  /** Warm pool entries ready for a template now (0 without a pool): how a benchmark waits for a full pool. */
  warmPoolReady(templateId: string): number {
    return this.ctx.starter?.pool?.ready(templateId) ?? 0;
  }

  /** What the network slots denied since the daemon started, by reason; null without guest networking. */
  networkDenied(): Record<string, number> | null {
    return this.ctx.machine?.net?.deniedTotal() ?? null;
  }

  /** Makes the snapshots of every template that can start here, in the background (first creates restore). */
  async warmTemplates(): Promise<void> {
    // Fork captures whose forks all ended while no daemon ran (or left by one that stopped mid-fork) go first.
    for (const t of this.ctx.templates.list()) dropUnusedCapture(this.ctx, t.id);
    const snaps = this.ctx.starter?.snapshots;
    if (!snaps) return;
    const templates = this.ctx.templates.list();
    await this.ctx.starter?.warm(templates.filter((t) => this.createProblem(t) === null));
    // Old snapshots go once no live sandbox was restored from them (their pause diffs lie over them).
    // ... and the ones sandbox snapshots and fork captures are diffs over.
    const inUse = snapshotsInUse(this.ctx.config, this.ctx.reg.rows.live().map((r) => r.id));
    for (const base of snapshotBases(templates).keys()) inUse.add(base);
    for (const t of templates) await snaps.prune(t, inUse);
  }

  resolveTemplate(idOrAlias: string): TemplateRow {
    return resolveTemplate(this.ctx, idOrAlias);
  }

  createProblem(t: TemplateRow): string | null {
    return createProblem(this.ctx, t);
  }

  /** t: the template input.templateID resolves to, when the caller resolved it already (once per create). */
  create(input: CreateInput, t: TemplateRow = this.resolveTemplate(input.templateID)): Promise<SandboxRow> {
    return create(this.ctx, input, t);
  }

  getVisible(id: string): SandboxRow {
    return this.ctx.reg.getVisible(id);
  }

  get(id: string): SandboxRow | undefined {
    return this.ctx.reg.get(id);
  }

  kill(id: string, reason: EndReason = "killed"): Promise<void> {
    return kill(this.ctx, id, reason);
  }

  setTimeout(id: string, timeoutSec: number): SandboxRow {
    return setTimeout(this.ctx, id, timeoutSec);
  }

  connect(id: string, timeoutSec: number, opts: { reboot?: boolean } = {}): Promise<{ row: SandboxRow; resumed: boolean }> {
    return connect(this.ctx, id, timeoutSec, opts);
  }

  pause(id: string, opts: { memory?: boolean } = {}): Promise<void> {
    return pause(this.ctx, id, opts);
  }

  /** POST /sandboxes/{id}/snapshots: the new snapshot template (its id works as a templateID). */
  snapshot(id: string, name?: string): Promise<TemplateRow> {
    return snapshot(this.ctx, id, name);
  }

  /** A template build's step (src/builds): the running sandbox's disk layer copied to `to` while its vCPUs are
   *  stopped, so the copy is of one instant (the caller synced the guest's file systems first). */
  async captureLayer(id: string, to: string): Promise<void> {
    const live = this.ctx.reg.liveOrUnavailable(id);
    await live.handle.pause();
    try {
      cloneLayer(sandboxPaths(this.ctx.config, id).layer, to, this.ctx.config.dataDir);
    } finally {
      await live.handle.resume();
    }
  }

  /** Makes t's ready snapshot now (a built template: its start command runs in it); no-op with snapshots off. */
  async makeTemplateSnapshot(t: TemplateRow): Promise<void> {
    await this.ctx.starter?.snapshots?.ensure(t);
  }

  /** POST /sandboxes/{id}/fork: one capture, `count` creates from it (each admitted by `admit`), one result each. */
  fork(id: string, opts: { timeoutSec?: number; count: number }, admit: Admit): Promise<ForkResult[]> {
    return fork(this.ctx, id, opts, admit);
  }

  resume(id: string, timeoutSec?: number, opts: { reboot?: boolean } = {}): Promise<SandboxRow> {
    return resume(this.ctx, id, timeoutSec, opts);
  }

  /** PUT /sandboxes/{id}/network: stores the new config (validated by the API) and writes it into the running
   *  sandbox's slot at once (a paused one gets it at resume). */
  setNetwork(id: string, network: string, allowInternetAccess: boolean | null): void {
    this.ctx.reg.getVisible(id);
    this.ctx.reg.rows.update(id, { network, allowInternetAccess });
    applyEgress(this.ctx, id);
  }

  /** netDrops: the packets its network slot dropped since its vmm started (null: no network). */
  async metrics(id: string): Promise<{ vm: VmStats; guest: AgentMetrics; netDrops: NetDrops | null }> {
    const row = this.ctx.reg.getVisible(id);
    const live = this.ctx.reg.liveOrUnavailable(id);
    const [vm, guest] = await Promise.all([live.handle.stats(), this.ctx.guest.metrics(live.runDir, row.envdAccessToken)]);
    return { vm, guest, netDrops: this.ctx.machine?.net?.leaseOf(live.handle)?.drops() ?? null };
  }

  route(id: string): Route | null {
    return route(this.ctx, id);
  }

  routeOrResume(id: string): Promise<Route | null> {
    return routeOrResume(this.ctx, id);
  }

  runningTokens(): { id: string; token: string }[] {
    return runningTokens(this.ctx);
  }

  recover(): Promise<{ adopted: number; ended: number }> {
    return recover(this.ctx);
  }

  /** Stops timers without touching VMs: they live on and are re-adopted by the next daemon. */
  async detachAll(): Promise<void> {
    this.sampler.stop();
    this.ctx.reg.detach();
    // Template snapshot VMs and warm pool vmms are not sandboxes: none may outlive the daemon.
    await this.ctx.starter?.close();
  }
}
