// Pause to disk (spec §1.3 pause): the vCPUs stop, the VM is snapshotted into the sandbox's dir and its process
// ends, so a paused sandbox holds no memory and survives a host reboot's daemon restart. A failure leaves it
// running (ACTIONS.pause.onFail).
import { unavailable } from "../util/errors.ts";
import type { SandboxCtx } from "./context.ts";
import { precondition } from "./lifecycle.ts";
import { parkSandbox } from "./runtime.ts";

export async function pause(ctx: SandboxCtx, id: string): Promise<void> {
  const { reg } = ctx;
  precondition("pause", id, reg.getVisible(id).state);
  await reg.locks.with(id, "pause", async () => {
    const live = reg.liveOrUnavailable(id);
    reg.begin("pause", id);
    try {
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
      const { diff } = await parkSandbox(ctx.config, id, live.handle);
      reg.event(id, "saved", diff ? "diff over the template snapshot" : "full memory");
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
