// Pause to disk (spec §1.3 pause): the vCPUs stop, the VM is snapshotted into the sandbox's dir and its process
// ends, so a paused sandbox holds no memory and survives a host reboot's daemon restart. A failure leaves it
// running (ACTIONS.pause.onFail).
import { unavailable } from "../util/errors.ts";
import type { SandboxCtx } from "./context.ts";
import { precondition } from "./lifecycle.ts";
import { parkFilesystemOnly, parkSandbox } from "./runtime.ts";

/** How long the guest may take to write its dirty pages before a filesystem-only pause gives up (it stays running). */
const SYNC_TIMEOUT_MS = 60_000;

/** `memory: false` (E2B's keepMemory: false): keep only the filesystem; the resume boots it afresh. */
export async function pause(ctx: SandboxCtx, id: string, opts: { memory?: boolean } = {}): Promise<void> {
  const keepMemory = opts.memory !== false;
  const { reg } = ctx;
  precondition("pause", id, reg.getVisible(id).state);
  await reg.locks.with(id, "pause", async () => {
    const live = reg.liveOrUnavailable(id);
    reg.begin("pause", id);
    try {
      // The guest's page cache goes with its memory: its disks must hold every write first.
      if (!keepMemory) await ctx.guest.syncDisks(live.runDir, SYNC_TIMEOUT_MS);
      await live.handle.pause();
    } catch (e) {
      reg.fail("pause", id);
      throw unavailable(`pausing sandbox ${id} failed (${String(e)}); it is still running, retry`);
    }
    reg.live.cutStreams(id, true);
    reg.timers.clear(id);
    // From here its VM's exit is the park's, not an end.
    live.ending = { why: "park" };
    try {
      if (keepMemory) {
        const { diff } = await parkSandbox(ctx.config, id, live.handle);
        reg.event(id, "saved", diff ? "diff over the template snapshot" : "full memory");
      } else {
        await parkFilesystemOnly(ctx.config, id, live.handle);
        reg.event(id, "saved", "filesystem only (the resume boots it afresh)");
      }
    } catch (e) {
      live.ending = null;
      await live.handle.resume().catch(() => undefined);
      reg.fail("pause", id);
      reg.armTimer(reg.mustGet(id));
      throw unavailable(`pausing sandbox ${id} failed while saving it (${String(e)}); it is still running, retry`);
    }
    reg.live.remove(id);
    reg.complete("pause", id, { vmPid: null });
  });
}
