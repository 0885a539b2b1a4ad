// After a daemon restart: re-adopt the live VMs and their timers, record ends for the dead ones, and reap the
// warm pool entries a daemon that did not stop cleanly left.
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { egressOf } from "./egress.ts";
import { endReasonOf } from "./end-reasons.ts";
import { isParked, sandboxPaths } from "./paths.ts";
import { reapPoolLeftovers } from "./pool-entry.ts";

export async function recover(ctx: SandboxCtx): Promise<{ adopted: number; ended: number }> {
  const { reg, config } = ctx;
  const driver = ctx.machine?.driver ?? null;
  let adopted = 0;
  let ended = 0;
  for (const row of reg.rows.live()) {
    if (row.state === "paused" && isParked(config, row.id)) {
      adopted++; // paused to disk: nothing runs; resume restores it
      continue;
    }
    // A row still starting has no runDir yet, but its VM (spawned, or a taken warm pool entry) may run there:
    // the sandbox's paths, from its id, are where it is.
    const p = sandboxPaths(config, row.id);
    const handle = driver ? await driver.adopt(p.runDir, p.exitFile).catch(() => null) : null;
    if (handle && row.runDir && (row.state === "running" || row.state === "paused")) {
      reg.adoptLive(row.id, handle, p.runDir);
      // Its vmm still holds its TAP: the network slot stays with it (released when the VM ends).
      const lease = ctx.machine?.net?.adoptHeldBy(handle) ?? null;
      if (!lease && ctx.machine?.net) log.warn("an adopted sandbox holds no network slot", { id: row.id });
      // The slot's maps survived the restart, but the row is the truth (a PUT the old daemon stored and died before
      // writing, or learned addresses this daemon does not know the TTL of): its policy is written again.
      if (lease) {
        try {
          lease.setPolicy(egressOf(row));
        } catch (e) {
          log.warn("could not write an adopted sandbox's network policy; stopping it", { id: row.id, error: String(e) });
          await handle.stop().catch(() => undefined);
        }
      }
      if (row.state === "running") reg.armTimer(row);
      reg.event(row.id, "adopted", `pid ${handle.pid}`);
      adopted++;
      continue;
    }
    if (handle) {
      // Caught mid-operation (starting/pausing/stopping): its outcome is unknown, so end it.
      await handle.stop().catch(() => undefined);
      reg.finish(row.id, row.state === "starting" ? "start-failed" : "killed", `daemon restarted while ${row.state}`);
    } else {
      // Ended while the daemon was down: its exit record says how, if it had time to write one.
      const exit = driver ? await driver.readExit(p.exitFile).catch(() => null) : null;
      if (exit) {
        const { reason, detail } = endReasonOf(exit, false);
        reg.finish(row.id, reason, `${detail} (while the daemon was down)`);
      } else {
        reg.finish(row.id, "lost", "the VM process was gone when the daemon restarted");
      }
    }
    ended++;
  }
  // Warm pool entries of a daemon that did not stop cleanly: not sandboxes, never adopted as such. After the
  // rows above, so an entry a create had taken was ended as that sandbox first.
  if (driver) {
    const reaped = await reapPoolLeftovers(config, driver, (id) => reg.get(id) !== undefined);
    if (reaped) log.info("reaped warm pool leftovers", { reaped });
  }
  // Slots a running vmm held at start that no sandbox claimed above (reaped pool entries', a template VM's).
  await ctx.machine?.net?.releaseUnclaimed();
  return { adopted, ended };
}
