// The warm pool (docs/architecture.md "Warm pool"): per template, `size` entries made ahead (a pooled vmm + its
// layer copy, pool-entry.ts) so a create only restores the snapshot into one. take() never waits: an empty pool
// means the ordinary path. Refills run in the background, one entry at a time, after the creates in flight.
import type { TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { destroyPoolEntry, makePoolEntry, type PoolEntry } from "./pool-entry.ts";
import type { RestoreSource } from "../machine/disk.ts";
import type { NetSlots } from "../machine/net-slots.ts";
import type { VmDriver } from "../machine/vm-driver.ts";

/** After a failed refill a template's pool waits this long before the next try (a vmm that cannot start must
 *  not be retried in a tight loop). */
const RETRY_AFTER_FAILURE_MS = 30_000;
/** How often templates that were removed are looked for, and refills after a failure retried. */
const SWEEP_MS = 30_000;
/** Poll interval while creates are in flight (refills wait for them). */
const BUSY_POLL_MS = 50;

export interface WarmPoolDeps {
  config: Config;
  driver: VmDriver;
  /** Each entry's vmm gets its network slot when it is made (null: no networking). */
  net: NetSlots | null;
  /** Entries kept ready per template (0: no pool). */
  size: number;
  /** The template's current snapshot, or null; never builds one (that is a create's or warm()'s job). */
  snapshotOf(t: TemplateRow): Promise<RestoreSource | null>;
  /** The template as stored now; null once it was removed. */
  template(id: string): TemplateRow | null;
  /** True while creates are in flight: a refill waits, so it never competes with a create. */
  busy(): boolean;
}

interface Group {
  entries: PoolEntry[];
  /** Time of the last failed refill (0: none); see RETRY_AFTER_FAILURE_MS. */
  failedAt: number;
  /** No current snapshot at the last refill: wait for want() (called when one is made or used). */
  noSnapshot: boolean;
}

export class WarmPool {
  private groups = new Map<string, Group>();
  private pumping: Promise<void> | null = null;
  private closed = false;
  private readonly sweeper: ReturnType<typeof setInterval>;
  /** Entries being destroyed (drain, stale, dead): close() waits for them. */
  private ending = new Set<Promise<void>>();

  constructor(private readonly deps: WarmPoolDeps) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  get size(): number {
    return this.deps.size;
  }

  /** Entries ready for template id now. */
  ready(templateId: string): number {
    return this.groups.get(templateId)?.entries.length ?? 0;
  }

  /** Keep t's pool filled from now on (t has, or is about to have, a snapshot). */
  want(t: TemplateRow): void {
    if (this.closed || this.deps.size <= 0) return;
    const g = this.groups.get(t.id);
    if (g) g.noSnapshot = false;
    else this.groups.set(t.id, { entries: [], failedAt: 0, noSnapshot: false });
    this.kick();
  }

  /** An entry for t, or null (none ready): the caller owns it from here (bootFromPool or destroyPoolEntry).
   *  Whether it fits the template's current snapshot is checked by bootFromPool. A refill follows. */
  take(t: TemplateRow): PoolEntry | null {
    if (this.closed) return null;
    const entry = this.groups.get(t.id)?.entries.shift() ?? null;
    this.want(t);
    return entry;
  }

  /** Ends t's entries that keep() rejects (all by default): the template's snapshot was dropped or replaced,
   *  or the template was removed. */
  async drain(templateId: string, keep: (e: PoolEntry) => boolean = () => false): Promise<void> {
    const g = this.groups.get(templateId);
    if (!g) return;
    const gone = g.entries.filter((e) => !keep(e));
    g.entries = g.entries.filter(keep);
    await Promise.all(gone.map((e) => this.end(e, "drained")));
    this.kick();
  }

  /** After t's snapshot changed (made, rebuilt, dropped): entries of any other snapshot go, the pool refills. */
  async refresh(t: TemplateRow): Promise<void> {
    const from = await this.deps.snapshotOf(t).catch(() => null);
    await this.drain(t.id, (e) => e.vmDir === from?.vmDir);
    if (from) this.want(t);
  }

  /** Daemon stop: no more refills; every entry's vmm ends and its files go (they are not sandboxes). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    await this.pumping;
    const all = [...this.groups.values()].flatMap((g) => g.entries);
    this.groups.clear();
    await Promise.all([...all.map((e) => this.end(e, "daemon stopping")), ...this.ending]);
  }

  private end(e: PoolEntry, why: string): Promise<void> {
    const p = destroyPoolEntry(this.deps.config, e)
      .catch((err: unknown) => log.warn("could not end a warm pool entry", { id: e.id, why, error: String(err) }))
      .finally(() => this.ending.delete(p));
    this.ending.add(p);
    return p;
  }

  private kick(): void {
    if (this.closed || this.pumping || !this.nextGroup()) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      // want()/take() during the last step's await found the pump running: look again.
      this.kick();
    });
  }

  private nextGroup(): [string, Group] | null {
    const now = Date.now();
    for (const [id, g] of this.groups) {
      if (g.entries.length < this.deps.size && !g.noSnapshot && now - g.failedAt >= RETRY_AFTER_FAILURE_MS) return [id, g];
    }
    return null;
  }

  /** One refill at a time until every template's pool is full (or waiting for a snapshot or a retry). */
  private async pump(): Promise<void> {
    for (;;) {
      const next = this.closed ? null : this.nextGroup();
      if (!next) return;
      const [id, g] = next;
      const t = this.deps.template(id);
      if (!t) {
        this.groups.delete(id);
        await Promise.all(g.entries.map((e) => this.end(e, "template removed")));
        continue;
      }
      const from = await this.deps.snapshotOf(t).catch(() => null);
      if (!from) {
        g.noSnapshot = true;
        continue;
      }
      // Entries of an older snapshot hold a layer copy that no longer matches: replace them.
      const stale = g.entries.filter((e) => e.vmDir !== from.vmDir);
      if (stale.length) {
        g.entries = g.entries.filter((e) => e.vmDir === from.vmDir);
        await Promise.all(stale.map((e) => this.end(e, "snapshot replaced")));
      }
      // Creates first: an entry is made only while none is in flight (checked last, right before the work:
      // the create whose take started this refill is in flight by now).
      while (!this.closed && this.deps.busy()) await Bun.sleep(BUSY_POLL_MS);
      if (this.closed) return;
      let entry: PoolEntry;
      try {
        entry = await makePoolEntry(this.deps.config, this.deps.driver, t, from, this.deps.net);
      } catch (e) {
        g.failedAt = Date.now();
        log.warn("warm pool refill failed; creates use the ordinary path meanwhile", {
          template: id,
          retryInSec: RETRY_AFTER_FAILURE_MS / 1000,
          error: e instanceof Error ? e.message : String(e),
        });
        continue;
      }
      if (this.closed || this.groups.get(id) !== g) {
        await this.end(entry, "pool closed while the entry was made");
        continue;
      }
      g.entries.push(entry);
      this.watch(id, entry);
    }
  }

  /** A pooled vmm that dies while it waits (killed from outside, OOM) leaves the pool and is replaced. */
  private watch(templateId: string, entry: PoolEntry): void {
    void entry.handle.exited.then((exit) => {
      const g = this.groups.get(templateId);
      const i = g?.entries.indexOf(entry) ?? -1;
      if (!g || i < 0) return; // taken or drained: not ours any more
      g.entries.splice(i, 1);
      log.warn("a warm pool vmm ended while waiting; replacing it", { id: entry.id, template: templateId, reason: `${exit.reason}: ${exit.detail}` });
      void this.end(entry, "ended while pooled").then(() => this.kick());
    });
  }

  /** Removed templates' entries go; refills that waited out a failure are retried. */
  private sweep(): void {
    for (const [id, g] of this.groups) {
      if (this.deps.template(id)) continue;
      this.groups.delete(id);
      for (const e of g.entries) void this.end(e, "template removed");
    }
    this.kick();
  }
}
