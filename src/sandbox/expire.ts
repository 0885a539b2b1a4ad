// A sandbox's deadline (spec §1.3 endAt): a running sandbox is paused (autoPause) or killed with reason
// timeout; one busy with another operation, or whose action failed, is tried again shortly.
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { kill } from "./kill.ts";
import { pause } from "./pause.ts";

export const EXPIRE_BUSY_RETRY_MS = 500;
export const EXPIRE_FAILED_RETRY_MS = 1000;

export async function expire(ctx: SandboxCtx, id: string): Promise<void> {
  const row = ctx.reg.get(id);
  if (!row || row.state !== "running") return;
  if (ctx.reg.locks.busy(id)) {
    globalThis.setTimeout(() => void expire(ctx, id), EXPIRE_BUSY_RETRY_MS);
    return;
  }
  try {
    if (row.onTimeout === "pause") await pause(ctx, id, { memory: row.autoPauseMemory });
    else await kill(ctx, id, "timeout");
  } catch (e) {
    log.warn("deadline action failed; retrying", { id, error: String(e) });
    globalThis.setTimeout(() => void expire(ctx, id), EXPIRE_FAILED_RETRY_MS);
  }
}
