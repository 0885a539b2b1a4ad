// The data plane's view of sandboxes (src/proxy/sandbox-port.ts): a running sandbox's route (its streams' signal
// and its guest ports' sockets), auto-resume on traffic, and the tokens signed /files URLs are checked against.
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";
import { resume } from "./resume.ts";

export interface Route {
  /** Aborted when the sandbox stops or pauses: its open streams end (spec §3.1). */
  signal: AbortSignal;
  /** The forward socket of guest TCP `port` (LiveVms.portSocket). */
  socket(port: number): Promise<string>;
}

/** Only running sandboxes are reachable (paused/dead → 502, spec §2.3). */
export function route(ctx: SandboxCtx, id: string): Route | null {
  const live = ctx.reg.live.get(id);
  if (!live) return null;
  if (ctx.reg.get(id)?.state !== "running") return null;
  return { signal: live.streams.signal, socket: (port) => ctx.reg.live.portSocket(id, port) };
}

/** Like route(), but a paused sandbox created with autoResume is resumed by the traffic (spec §1.3
 *  autoResume; §1.3 pause: 502 while paused "unless auto-resume"). */
export async function routeOrResume(ctx: SandboxCtx, id: string): Promise<Route | null> {
  const direct = route(ctx, id);
  if (direct) return direct;
  if (!ctx.reg.get(id)?.autoResume) return null;
  // Traffic that arrives while an auto-pause is being written waits for it, then resumes; requests
  // that arrive together share one resume.
  await ctx.reg.locks.settled(id);
  if (ctx.reg.get(id)?.state === "paused") {
    await resume(ctx, id).catch(async (e) => {
      log.warn("auto-resume failed", { id, error: String(e) });
      await ctx.reg.locks.settled(id);
    });
  }
  return route(ctx, id);
}

/** Running sandboxes with their envd tokens, for routing signed /files URLs (spec §2.4 item 1). */
export function runningTokens(ctx: SandboxCtx): { id: string; token: string }[] {
  const out: { id: string; token: string }[] = [];
  for (const id of ctx.reg.live.ids()) {
    const row = ctx.reg.get(id);
    if (row?.state === "running" && row.envdAccessToken) out.push({ id, token: row.envdAccessToken });
  }
  return out;
}
