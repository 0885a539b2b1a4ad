// The slot pool (like e2b-infra's network/pool.go): slots are made ahead in the background so a create only takes a
// ready one; a released slot is destroyed (never handed to another sandbox: no stale frames or conntrack entries of
// its address reach the next one) and replaced. Start-up re-adopts slots running VMMs still hold and reaps the rest.
import { linkDel, links } from "../sys/rtnetlink.ts";
import { log } from "../util/log.ts";
import { tapIndex } from "./addresses.ts";
import type { HostNet } from "./host-net.ts";
import { adoptSlot, makeSlot, type NetSlot } from "./slot.ts";

export interface SlotPoolOptions {
  /** Slots kept ready ahead of creates. */
  size: number;
}

export interface StartReport {
  adopted: NetSlot[];
  /** What was left by an earlier daemon and removed: TAP names and map entries (as `ifindex N`). */
  reaped: string[];
}

export class SlotPool {
  private ready: NetSlot[] = [];
  private readonly inUse = new Map<number, NetSlot>();
  /** Slot indexes taken (ready, in use, or being made). */
  private readonly taken = new Set<number>();
  /** Where the next index search starts: addresses are reused as late as possible. */
  private cursor = 0;
  private filling: Promise<void> | null = null;
  private stopped = false;
  private lastMakeMs: number | null = null;

  constructor(
    private readonly host: HostNet,
    private readonly opts: SlotPoolOptions,
  ) {}

  /** Re-adopts slots whose TAP a VMM still holds, reaps every other leftover, then starts filling. */
  async start(): Promise<StartReport> {
    const reaped: string[] = [];
    const adopted: NetSlot[] = [];
    const adoptedIfindexes = new Set<number>();
    for (const link of await links()) {
      const index = tapIndex(link.name);
      if (index === null) continue;
      const slot = index < this.host.range.slots ? await adoptSlot(this.host, index, link.ifindex) : null;
      if (slot) {
        adopted.push(slot);
        adoptedIfindexes.add(link.ifindex);
        this.inUse.set(slot.index, slot);
        this.taken.add(slot.index);
      } else {
        await linkDel(link.name);
        reaped.push(link.name);
      }
    }
    for (const key of this.host.bpf.slotKeys()) {
      if (adoptedIfindexes.has(key)) continue;
      this.host.bpf.deleteSlot(key);
      reaped.push(`ifindex ${key}`);
    }
    if (reaped.length) log.info("network: reaped leftovers of an earlier daemon", { reaped });
    if (adopted.length) log.info("network: re-adopted slots of running sandboxes", { taps: adopted.map((s) => s.tapName) });
    this.refill();
    return { adopted, reaped };
  }

  /** A ready slot (made ahead), or one made now when the pool is empty. */
  async acquire(): Promise<NetSlot> {
    if (this.stopped) throw new Error("the network slot pool is stopped");
    const slot = this.ready.shift() ?? (await this.make());
    this.inUse.set(slot.index, slot);
    this.refill();
    return slot;
  }

  /** Ends a slot for good (kill, timeout, crash, failed create, pause): destroys it and makes a replacement. */
  async release(slot: NetSlot): Promise<void> {
    this.inUse.delete(slot.index);
    const ready = this.ready.indexOf(slot);
    if (ready >= 0) this.ready.splice(ready, 1);
    const errors = await slot.destroy();
    this.taken.delete(slot.index);
    for (const e of errors) log.warn("network: slot undo failed", { tap: slot.tapName, error: e.message });
    this.refill();
  }

  /** Slots in use (taken by creates or re-adopted). */
  get used(): NetSlot[] {
    return [...this.inUse.values()];
  }

  stats(): { ready: number; inUse: number; target: number; lastMakeMs: number | null } {
    return { ready: this.ready.length, inUse: this.inUse.size, target: this.opts.size, lastMakeMs: this.lastMakeMs };
  }

  /** Waits until the pool holds its target of ready slots (or stopped). */
  async whenFilled(): Promise<void> {
    while (this.filling) await this.filling;
  }

  /** Destroys the ready slots and, unless `keepInUse` (sandboxes keep running for the next daemon to re-adopt),
   *  the slots in use too. */
  async stop(opts: { keepInUse: boolean } = { keepInUse: false }): Promise<void> {
    this.stopped = true;
    await this.whenFilled();
    for (const slot of [...this.ready, ...(opts.keepInUse ? [] : this.inUse.values())]) await this.release(slot);
  }

  private nextIndex(): number {
    const n = this.host.range.slots;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      if (this.taken.has(i)) continue;
      this.taken.add(i);
      this.cursor = (i + 1) % n;
      return i;
    }
    throw new Error(`every address of the sandbox range ${this.host.range} is in use: widen --sandbox-cidr`);
  }

  private async make(): Promise<NetSlot> {
    const index = this.nextIndex();
    const t0 = performance.now();
    try {
      this.host.refreshHostDeny(); // the host's addresses as they are now, before a guest can use this slot
      const slot = await makeSlot(this.host, index);
      this.lastMakeMs = performance.now() - t0;
      return slot;
    } catch (e) {
      this.taken.delete(index);
      throw e;
    }
  }

  /** Makes slots one at a time in the background until `size` are ready; a failure stops this round (logged). */
  private refill(): void {
    if (this.filling || this.stopped || this.ready.length >= this.opts.size) return;
    this.filling = (async () => {
      try {
        while (!this.stopped && this.ready.length < this.opts.size) this.ready.push(await this.make());
      } catch (e) {
        log.warn("network: could not make a slot ahead", { error: (e as Error).message });
      } finally {
        this.filling = null;
      }
    })();
  }
}
