// The sandboxes this daemon knows: their rows (through the store) and lifecycle events, the live VMs it holds,
// the per-sandbox operation lock, deadline timers and creates in flight; and the steps every operation shares:
// begin an action (precondition, its state while running), settle it, watch a VM's end, record a sandbox's end.
import type { VmHandle } from "../machine/vm-driver.ts";
import type { SandboxRow, SandboxStore } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { notFound, unavailable } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { endReasonOf, wasOomKilled } from "./end-reasons.ts";
import { ACTIONS, assertTransition, precondition, VISIBLE_STATES, type EndReason, type Op, type SandboxState } from "./lifecycle.ts";
import { LiveVms, type Live } from "./live-vms.ts";
import { OpLocks } from "./op-lock.ts";
import { removeSandboxFiles } from "./runtime.ts";
import { DeadlineTimers } from "./timers.ts";

export class SandboxRegistry {
  readonly live = new LiveVms();
  readonly locks = new OpLocks();
  readonly timers: DeadlineTimers;
  /** Creates in flight: a kill of a starting sandbox waits for its boot instead of failing with 409. */
  readonly creating = new Map<string, Promise<void>>();
  /** Set when the daemon shuts down: VMs live on, so their ends are not ours to record. */
  private detached = false;

  constructor(
    readonly rows: SandboxStore,
    private readonly config: Config,
    onDeadline: (id: string) => void,
    /** Called once a sandbox's end is recorded, with its template's id (a fork's capture may go: fork.ts). */
    private readonly onEnded: (templateId: string) => void = () => undefined,
  ) {
    this.timers = new DeadlineTimers(onDeadline);
  }

  get(id: string): SandboxRow | undefined {
    return this.rows.get(id);
  }

  mustGet(id: string): SandboxRow {
    const row = this.rows.get(id);
    if (!row) throw notFound(`sandbox ${id} not found`);
    return row;
  }

  /** A sandbox the E2B API can see (not ended); 404 otherwise. */
  getVisible(id: string): SandboxRow {
    const row = this.rows.get(id);
    if (!row || !VISIBLE_STATES.includes(row.state)) throw notFound(`sandbox ${id} not found`);
    return row;
  }

  liveOrUnavailable(id: string): Live {
    const live = this.live.get(id);
    if (!live) throw unavailable(`sandbox ${id} has no VM process attached to this daemon; kill it and create a new one`);
    return live;
  }

  /** Starts action `op` on the row as it is now: its precondition (409), then its running state. A kill's
   *  `reason` becomes its VM's ending, so the VM's exit is not taken for a crash. */
  begin(op: Op, id: string, reason?: EndReason): SandboxRow {
    const a = ACTIONS[op];
    const row = this.getVisible(id);
    precondition(op, id, row.state);
    if (a.via) this.setState(id, row.state, a.via);
    const live = this.live.get(id);
    if (a.ending === "end" && live) live.ending = { why: "end", reason: reason ?? "killed" };
    return row;
  }

  /** The action succeeded: its final state, with the row's other changes. */
  complete(op: Op, id: string, patch: Partial<SandboxRow> = {}): void {
    const a = ACTIONS[op];
    this.setState(id, a.via ?? this.mustGet(id).state, a.to, patch);
  }

  /** The action failed: the state it falls back to; its VM (if kept) is no longer ending. */
  fail(op: Op, id: string): void {
    const a = ACTIONS[op];
    const live = this.live.get(id);
    if (live) live.ending = null;
    if (a.onFail === "deleted") this.rows.delete(id);
    else if (a.onFail && a.via) this.setState(id, a.via, a.onFail);
  }

  setState(id: string, from: SandboxState, to: SandboxState, patch: Partial<SandboxRow> = {}): void {
    assertTransition(id, from, to);
    this.rows.update(id, { ...patch, state: to });
    this.rows.addEvent(id, to);
  }

  event(id: string, kind: string, detail = ""): void {
    this.rows.addEvent(id, kind, detail);
  }

  armTimer(row: SandboxRow): void {
    this.timers.arm(row.id, row.endAt);
  }

  /** Holds a VM for sandbox id; its exit ends the sandbox unless the daemon is ending it (Live.ending). */
  adoptLive(id: string, handle: VmHandle, runDir: string): void {
    const live = this.live.add(id, handle, runDir);
    if (this.detached) live.ending = { why: "detach" };
    void handle.exited.then(async (exit) => {
      if (live.ending) return;
      const oom = exit.reason === "vmm-crash" ? await wasOomKilled(handle.pid) : false;
      const { reason, detail } = endReasonOf(exit, oom);
      if (!live.ending) this.finish(id, reason, detail);
    });
  }

  /** Records the end once: state ended, reason, time; drops timers, streams and the layer. */
  finish(id: string, reason: EndReason, detail: string): void {
    const row = this.rows.get(id);
    this.timers.clear(id);
    this.live.remove(id);
    if (!row || row.state === "ended") return;
    this.rows.update(id, { state: "ended", endedAt: Date.now(), endReason: reason, endDetail: detail, vmPid: null });
    this.rows.addEvent(id, "end", `${reason}: ${detail}`);
    try {
      removeSandboxFiles(this.config, id);
    } catch (e) {
      log.warn("could not remove sandbox files", { id, error: String(e) });
    }
    log.info("sandbox ended", { id, reason, detail });
    this.onEnded(row.templateId);
  }

  /** Daemon stop: timers stop, and every VM's end from here on is the next daemon's to see (it re-adopts them). */
  detach(): void {
    this.detached = true;
    this.timers.clearAll();
    for (const live of this.live.all()) live.ending = { why: "detach" };
  }
}
