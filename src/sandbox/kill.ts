// Kill (spec §1.3 DELETE /sandboxes/{id}), also a deadline's end: stopping, the VM stopped (killed if it
// ignores that), then ended with the reason and the big files removed.
import type { EndReason } from "./lifecycle.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";

/** How long a VM gets to end after `stop` before it is killed. */
export const STOP_GRACE_MS = 10_000;

export async function kill(ctx: SandboxCtx, id: string, reason: EndReason = "killed"): Promise<void> {
  const { reg } = ctx;
  // A kill of a starting sandbox waits for its boot (or its rollback) instead of failing with 409.
  const booting = reg.creating.get(id);
  if (booting) await booting;
  reg.getVisible(id);
  await reg.locks.with(id, "kill", async () => {
    reg.begin("kill", id, reason);
    const live = reg.live.get(id);
    reg.live.cutStreams(id, false);
    if (live) {
      await live.handle.stop().catch((e) => log.warn("stop failed", { id, error: String(e) }));
      const gone = await Promise.race([live.handle.exited.then(() => true), Bun.sleep(STOP_GRACE_MS).then(() => false)]);
      if (!gone) {
        // A vmm that ignores `stop` must not outlive its sandbox (its files are removed next).
        log.warn("VM process ignored stop; killing it", { id, pid: live.handle.pid });
        try {
          process.kill(live.handle.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    reg.finish(id, reason, reason === "timeout" ? "the sandbox reached its end time" : "killed through the API");
  });
}
