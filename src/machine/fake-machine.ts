// Test support: the machine layer in memory, for unit tests of the sandbox lifecycle on hosts without KVM. A fake
// VmDriver (spawn, pooled spawn, restore, pause, resume, snapshot, stop, forward, adopt, readExit) and a fake
// GuestLink (hygiene, readiness, /init, /metrics), each step able to fail on demand, and network slots (FakeNet). The real vmm and guest
// stay covered by src/vmm's tests and tests/e2e.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unavailable } from "../util/errors.ts";
import type { AgentMetrics } from "./agent-client.ts";
import type { GuestLink } from "./guest-link.ts";
import type { Machine } from "./machine.ts";
import type { CompiledPolicy } from "../net/policy.ts";
import { dropsJson, type NetLease, type NetSlots } from "./net-slots.ts";
import type { PooledVmHandle, VmDriver, VmExit, VmHandle, VmSpec } from "./vm-driver.ts";

export type FakeStep =
  | "spawn" | "spawnPooled" | "restore" | "pause" | "resume" | "snapshot" | "snapshot-diff" | "stop" | "stats" | "forward"
  | "adopt" | "hygiene" | "sync" | "ready" | "init" | "metrics" | "warmUp";

const GUEST_STEPS: FakeStep[] = ["hygiene", "ready", "init", "metrics", "warmUp"];

export class FakeVm implements PooledVmHandle {
  static nextPid = 4_000_000; // above any pid_max: nothing to signal
  readonly pid = FakeVm.nextPid++;
  state: "running" | "paused" | "pooled" | "ended" = "running";
  readonly exited: Promise<VmExit>;
  private end!: (e: VmExit) => void;
  /** Whether stop() ends it (false: a vmm that ignores `stop`). */
  obeysStop = true;

  constructor(
    private readonly m: FakeMachine,
    readonly spec: VmSpec,
  ) {
    this.exited = new Promise((r) => (this.end = r));
  }

  /** The VM ends by itself (a guest power-off, a panic, a crash of its vmm). */
  crash(reason: VmExit["reason"] = "vmm-crash", detail = ""): void {
    if (this.state === "ended") return;
    this.state = "ended";
    this.end({ reason, detail, consoleTail: "" });
  }

  async pause(): Promise<void> {
    this.m.step("pause");
    this.state = "paused";
  }
  async resume(): Promise<void> {
    this.m.step("resume");
    this.state = "running";
  }
  async stop(): Promise<void> {
    this.m.step("stop");
    if (this.obeysStop) this.crash("stopped");
  }
  async snapshot(dir: string, opts: { diff?: boolean } = {}): Promise<void> {
    await this.m.gated(opts.diff ? "snapshot-diff" : "snapshot");
    if (this.state !== "paused") throw new Error("pause the VM first");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "memory"), "");
    writeFileSync(join(dir, "state"), JSON.stringify({ diff: opts.diff === true }));
  }
  async stats() {
    await this.m.gated("stats");
    return { rssKib: 1, pssKib: 1, cpuNs: 1, startUs: 1, enterUs: 1 };
  }
  async forward(port: number): Promise<string> {
    this.m.step("forward");
    return join(this.spec.runDir, `fwd-${port}`);
  }
  async restore(dir: string) {
    this.m.step("restore");
    this.state = "running";
    this.m.calls.push(`restore ${dir}`);
    return { readNs: 0, validateNs: 0, mmapNs: 0, vmNs: 0, vcpuNs: 0, devicesNs: 0, threadsNs: 0, totalNs: 1000 };
  }
}

/** Network slots in memory: which are held (by fd) and released, so a test sees a slot go back on every end. Like the
 *  real one (net-slots.ts): a daemon stop (detach) leaves held slots to the next daemon, which re-adopts those a
 *  running VM holds and releases the rest. */
export class FakeNet implements NetSlots {
  private nextFd = 1000;
  private generation = 0;
  /** Slots taken and not released, by fd. */
  readonly held = new Map<number, NetLease>();
  /** tap names, in the order released. */
  readonly released: string[] = [];
  failAcquire = false;
  /** The policy each slot was last given (by fd), and every setPolicy in order (`obx1000 allow=... deny=...`). */
  readonly policies = new Map<number, CompiledPolicy>();
  readonly policyLog: string[] = [];
  /** What drops() returns for a slot (by fd); absent: all zero. */
  readonly dropsByFd = new Map<number, Record<string, number>>();
  /** Set to make setPolicy throw (a full map). */
  failSetPolicy = false;
  private unclaimed = new Set<number>();
  /** When each slot got a policy, as positions in the machine's `calls` (the index the next step taken then got). */
  readonly policySetAt = new Map<string, number[]>();
  constructor(private readonly calls: string[] = []) {}
  private byHandle = new WeakMap<VmHandle, NetLease>();

  private lease(fd: number): NetLease {
    const gen = this.generation;
    let done = false;
    const l: NetLease = {
      tapName: `obx${fd}`,
      fd,
      slotIp: `198.18.0.${fd % 250}`,
      setPolicy: (p) => {
        if (this.failSetPolicy) throw new Error("fake setPolicy failed");
        if (done) throw new Error(`no network slot in use at ${l.slotIp}`);
        this.policies.set(fd, p);
        this.policySetAt.set(l.tapName, [...(this.policySetAt.get(l.tapName) ?? []), this.calls.length]);
        this.policyLog.push(`${l.tapName} ${describePolicy(p)}`);
      },
      drops: () => (done ? null : dropsJson({ policy: 0, host: 0, reserved: 0, ...this.dropsByFd.get(fd) })),
      release: async () => {
        if (done || gen !== this.generation) return;
        done = true;
        this.held.delete(fd);
        this.policies.delete(fd);
        this.released.push(l.tapName);
      },
    };
    this.held.set(fd, l);
    return l;
  }

  /** The held slots' drops (released fake slots keep none). */
  deniedTotal(): Record<string, number> {
    const sum: Record<string, number> = {};
    for (const l of this.held.values()) for (const [k, n] of Object.entries(l.drops() ?? {})) sum[k] = (sum[k] ?? 0) + n;
    return sum;
  }

  async acquire(): Promise<NetLease> {
    if (this.failAcquire) throw new Error("fake slot acquire failed");
    return this.lease(this.nextFd++);
  }

  bind(handle: VmHandle, lease: NetLease): void {
    this.byHandle.set(handle, lease);
  }

  leaseOf(handle: VmHandle): NetLease | null {
    return this.byHandle.get(handle) ?? null;
  }

  adoptHeldBy(handle: VmHandle): NetLease | null {
    const fd = (handle as FakeVm).spec?.net?.tapFd;
    if (fd === undefined || !this.unclaimed.delete(fd)) return null;
    const l = this.lease(fd);
    this.byHandle.set(handle, l);
    void handle.exited.then(() => l.release());
    return l;
  }

  async releaseUnclaimed(): Promise<void> {
    for (const fd of this.unclaimed) {
      const l = this.held.get(fd);
      this.held.delete(fd);
      if (l) this.released.push(l.tapName);
    }
    this.unclaimed.clear();
  }

  async detach(): Promise<void> {
    this.generation++;
    this.unclaimed = new Set(this.held.keys());
  }

  /** The fds of the slots held now. */
  heldFds(): number[] {
    return [...this.held.keys()];
  }
}

/** `allow=203.0.113.10/32 deny=0.0.0.0/0 domains=` (CIDRs sorted), for tests to compare. */
export function describePolicy(p: CompiledPolicy): string {
  const c = (l: { base: number; prefix: number }[]) =>
    l.map((x) => `${[24, 16, 8, 0].map((s) => (x.base >>> s) & 255).join(".")}/${x.prefix}`).sort().join(",");
  return `allow=${c(p.allow)} deny=${c(p.deny)} domains=${[...p.domains].sort().join(",")}`;
}

export class FakeMachine implements Machine {
  /** Steps that throw when next taken (each stays until removed). */
  readonly fail = new Set<FakeStep>();
  /** Steps that throw the next time only. */
  readonly failOnce = new Set<FakeStep>();
  /** Every step taken, in order (with what it was taken for, where that helps a test). */
  readonly calls: string[] = [];
  readonly net = new FakeNet(this.calls);
  /** Every VM spawned, by run dir: what adopt() finds after a "daemon restart". */
  readonly vms = new Map<string, FakeVm>();
  /** Exit records by exit file: what readExit() finds for VMs that ended while no daemon ran. */
  readonly exits = new Map<string, VmExit>();
  /** Whether the fake guest's agent applies clone hygiene carried by /init (false: an agent older than it). */
  agentHygiene = true;
  /** The X-Access-Token each /init was sent with (null: none), in order. */
  readonly initTokenHeaders: (string | null)[] = [];
  /** Set to make a step wait (e.g. a slow boot that a kill must wait for). */
  gate: Partial<Record<FakeStep, Promise<void>>> = {};

  /** Takes step s: records it, and throws if it is set to fail. */
  step(s: FakeStep): void {
    this.calls.push(s);
    // The guest's steps fail as the real ones do, with a 503 (bring-up.ts, agent-client.ts); the vmm's plainly.
    const failing = this.fail.has(s) || this.failOnce.delete(s);
    if (failing) throw GUEST_STEPS.includes(s) ? unavailable(`fake ${s} failed`) : new Error(`fake ${s} failed`);
  }

  /** Takes step s once its gate (if any) opens. */
  async gated(s: FakeStep): Promise<void> {
    const g = this.gate[s];
    if (g) await g;
    this.step(s);
  }

  private made(spec: VmSpec, state: FakeVm["state"]): FakeVm {
    const vm = new FakeVm(this, spec);
    vm.state = state;
    this.vms.set(spec.runDir, vm);
    // The real vmm creates its exit record at start (docs/architecture.md "Exit record").
    writeFileSync(spec.exitFile, "");
    return vm;
  }

  readonly driver: VmDriver = {
    spawn: async (spec) => {
      await this.gated("spawn");
      return this.made(spec, "running");
    },
    spawnPooled: async (spec) => {
      await this.gated("spawnPooled");
      return this.made(spec, "pooled");
    },
    adopt: async (runDir) => {
      this.step("adopt");
      const vm = this.vms.get(runDir);
      return vm && vm.state !== "ended" ? (vm as VmHandle) : null;
    },
    readExit: async (exitFile) => this.exits.get(exitFile) ?? null,
  };

  readonly guest: GuestLink = {
    hygiene: async () => this.gated("hygiene"),
    syncDisks: async () => this.gated("sync"),
    waitReady: async () => this.gated("ready"),
    init: async (runDir, _body, tokenHeader, o) => {
      await this.gated("init");
      const applied = o?.hygiene !== undefined && this.agentHygiene;
      // The agent applies the hygiene within /init: a "hygiene" set to fail makes that /init fail.
      if (applied && (this.fail.has("hygiene") || this.failOnce.delete("hygiene"))) throw unavailable("fake hygiene in /init failed");
      this.calls.push(`init ${runDir}${applied ? " +hygiene" : ""}`);
      this.initTokenHeaders.push(tokenHeader ?? null);
      return applied;
    },
    metrics: async (): Promise<AgentMetrics> => {
      this.step("metrics");
      return { ts: 1, cpu_count: 1, cpu_used_pct: 0, mem_total: 1, mem_used: 1, disk_used: 1, disk_total: 1 };
    },
    warmUp: async (runDir, user) => {
      await this.gated("warmUp");
      this.calls.push(`warmUp ${runDir} ${user}`);
    },
  };

  /** The VM a sandbox's run dir holds now. */
  vm(runDir: string): FakeVm | undefined {
    return this.vms.get(runDir);
  }
}
