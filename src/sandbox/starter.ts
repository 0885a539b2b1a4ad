// How a create gets its VM: restore the template's ready snapshot (made on first use, or ahead of time by
// warm()) into a warm pool entry when one is ready, else into a freshly spawned vmm; fall back to a cold boot
// when snapshots are off, the snapshot cannot be made, or the vmm refuses it (then it is dropped and rebuilt by
// a later create). A create never fails because of the pool: any pool failure takes the ordinary path.
import type { TemplateRow } from "../store/index.ts";
import { TemplateSnapshots } from "../templates/snapshot.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { bootFromPool, destroyPoolEntry, type PoolEntry } from "./pool-entry.ts";
import { RestoreRefused } from "../machine/bring-up.ts";
import type { RestoreSource } from "../machine/disk.ts";
import type { Machine } from "../machine/machine.ts";
import { bootSandbox, type BootRequest, type Booted } from "./runtime.ts";
import { WarmPool } from "./warm-pool.ts";

export interface StartRequest extends Omit<BootRequest, "from"> {
  /** An entry taken from the pool for this create (its id is req.id); start() owns it from here. */
  pooled?: PoolEntry | null;
}

export class SandboxStarter {
  readonly snapshots: TemplateSnapshots | null;
  /** Null when snapshots are off, the pool size is 0, or the driver cannot pool. */
  readonly pool: WarmPool | null;
  private inFlight = 0;

  constructor(
    private readonly config: Config,
    private readonly machine: Machine,
    /** The template as stored now (the pool drops removed templates' entries). */
    templateOf: (id: string) => TemplateRow | null,
  ) {
    const { driver, guest, net } = machine;
    this.snapshots = config.templateSnapshots ? new TemplateSnapshots(config, driver, guest, net) : null;
    const snapshots = this.snapshots;
    this.pool =
      snapshots && config.warmPoolSize > 0 && driver.spawnPooled
        ? new WarmPool({
            config,
            driver,
            net,
            size: config.warmPoolSize,
            snapshotOf: (t) => snapshots.current(t),
            template: templateOf,
            busy: () => this.inFlight > 0,
          })
        : null;
    // A snapshot made, rebuilt or dropped: entries made for another one go, the pool refills from the new one.
    snapshots?.onChange((t) => void this.pool?.refresh(t));
  }

  /** A ready pool entry for t (its id becomes the sandbox's), or null. */
  takePooled(t: TemplateRow): PoolEntry | null {
    return this.pool?.take(t) ?? null;
  }

  /** Ends an entry taken for a create that did not get as far as start(). */
  async discard(entry: PoolEntry): Promise<void> {
    await destroyPoolEntry(this.config, entry);
  }

  async start(req: StartRequest): Promise<Booted> {
    this.inFlight++;
    try {
      return await this.startCounted(req);
    } finally {
      this.inFlight--;
    }
  }

  private async startCounted({ pooled, ...req }: StartRequest): Promise<Booted> {
    const from = await this.snapshotOf(req.template);
    // A sandbox's snapshots get no pool of their own: there may be many, each entry a vmm held ready.
    if (from && !req.template.snapshotOf) this.pool?.want(req.template);
    if (pooled) {
      if (from) {
        try {
          return await bootFromPool(this.config, pooled, { ...req, from }, this.machine.guest, this.machine.net);
        } catch (e) {
          log.warn("the warm pool entry failed; starting the sandbox the ordinary way", { id: req.id, template: req.template.id, error: e instanceof Error ? e.message : String(e) });
        }
      } else {
        await destroyPoolEntry(this.config, pooled);
      }
    }
    if (from) {
      try {
        return await bootSandbox(this.config, this.machine, { ...req, from });
      } catch (e) {
        if (!(e instanceof RestoreRefused)) throw e;
        log.warn("the template snapshot was refused; dropping it and cold-booting", { template: req.template.id, error: e.message });
        await this.snapshots?.invalidate(req.template);
      }
    }
    return bootSandbox(this.config, this.machine, req);
  }

  /** Makes the snapshots of these templates now, one after the other, so first creates restore too; then
   *  the warm pool fills for each that has one. */
  async warm(templates: TemplateRow[]): Promise<void> {
    for (const t of templates) {
      if (await this.snapshotOf(t)) if (!t.snapshotOf) this.pool?.want(t);
    }
  }

  /** Daemon stop: the pool's vmms end (they are not sandboxes), and so do template builds in flight. */
  async close(): Promise<void> {
    await Promise.all([this.pool?.close(), this.snapshots?.stopBuilds()]);
  }

  private async snapshotOf(t: TemplateRow): Promise<RestoreSource | null> {
    // A template build's private template (src/builds) boots once, for its steps: a snapshot would cost a boot more.
    if (!this.snapshots || (t.ephemeral && !t.snapshotOf)) return null;
    try {
      return await this.snapshots.ensure(t);
    } catch (e) {
      log.warn("no template snapshot; cold-booting", { template: t.id, error: e instanceof Error ? e.message : String(e) });
      return null;
    }
  }
}
