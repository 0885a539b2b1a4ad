// How a create gets its VM: restore the template's ready snapshot (made on first use, or ahead of time by
// warm()), falling back to a cold boot when snapshots are off, the snapshot cannot be made, or the vmm
// refuses it (then it is dropped and rebuilt by a later create).
import type { TemplateRow } from "../store/index.ts";
import { TemplateSnapshots } from "../templates/snapshot.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { bootSandbox, RestoreRefused, type BootRequest, type Booted, type RestoreSource } from "./runtime.ts";
import type { VmDriver } from "./vm-driver.ts";

export class SandboxStarter {
  readonly snapshots: TemplateSnapshots | null;

  constructor(
    private readonly config: Config,
    private readonly driver: VmDriver,
  ) {
    this.snapshots = config.templateSnapshots ? new TemplateSnapshots(config, driver) : null;
  }

  async start(req: Omit<BootRequest, "from">): Promise<Booted> {
    const from = await this.snapshotOf(req.template);
    if (from) {
      try {
        return await bootSandbox(this.config, this.driver, { ...req, from });
      } catch (e) {
        if (!(e instanceof RestoreRefused)) throw e;
        log.warn("the template snapshot was refused; dropping it and cold-booting", { template: req.template.id, error: e.message });
        await this.snapshots?.invalidate(req.template);
      }
    }
    return bootSandbox(this.config, this.driver, req);
  }

  /** Makes the snapshots of these templates now, one after the other, so first creates restore too. */
  async warm(templates: TemplateRow[]): Promise<void> {
    for (const t of templates) await this.snapshotOf(t);
  }

  private async snapshotOf(t: TemplateRow): Promise<RestoreSource | null> {
    if (!this.snapshots) return null;
    try {
      return await this.snapshots.ensure(t);
    } catch (e) {
      log.warn("no template snapshot; cold-booting", { template: t.id, error: e instanceof Error ? e.message : String(e) });
      return null;
    }
  }
}
