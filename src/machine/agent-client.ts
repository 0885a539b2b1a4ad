// Talks to the guest agent (envd-compatible, guest port 49983) through the vmm's forward socket.
import { z } from "zod";
import { AGENT_HYGIENE_HEADER, ENVD_PORT } from "../../guest/protocol.ts";
import { readCapped, readCappedText } from "../util/bounded-read.ts";
import { unavailable } from "../util/errors.ts";
import type { InitHygiene } from "./hygiene.ts";
import { forwardSocketPath } from "./vm-driver.ts";

export interface AgentInit {
  envVars: Record<string, string>;
  accessToken?: string;
  defaultUser: string;
  defaultWorkdir?: string;
}

/** GET /metrics as the agent answers it (guest/agent/init-http.ts); the guest is the tenant's, so the answer
 *  is checked, not trusted. */
const count = z.number().finite().nonnegative();
export const AgentMetricsSchema = z.object({
  ts: count,
  cpu_count: count,
  cpu_used_pct: count,
  mem_total: count,
  mem_used: count,
  mem_cache: count.optional(),
  disk_used: count,
  disk_total: count,
});
export type AgentMetrics = z.infer<typeof AgentMetricsSchema>;

/** Largest /metrics answer read (the real one is ~200 bytes) and /init answer kept (only shown in an error). */
export const AGENT_METRICS_MAX = 16 * 1024;
export const AGENT_INIT_REPLY_MAX = 4096;

export class AgentClient {
  readonly socket: string;
  constructor(runDir: string) {
    this.socket = forwardSocketPath(runDir, ENVD_PORT);
  }

  private fetch(path: string, init: RequestInit = {}, timeoutMs = 2000): Promise<Response> {
    return fetch("http://sandbox" + path, { ...init, unix: this.socket, signal: AbortSignal.timeout(timeoutMs) });
  }

  /** Polls GET /health (204) until it answers or the deadline passes (spec §3.4). */
  waitHealthy(deadlineMs: number, isDead: () => string | null): Promise<void> {
    return waitHealthy(this.socket, "guest agent", deadlineMs, isDead);
  }

  /** POST /init with the token, env vars, default user and the host clock (spec §3.4, §3.5), and after a restore the
   *  clone's hygiene. Resolves true when the agent says it applied that hygiene (an agent older than it does not: the
   *  caller then sends it over the control channel). Retried briefly while the agent cannot be reached (it may be
   *  restarting right after boot); a try that reached it waits for its answer until timeoutMs: under load (50
   *  emulated guests starting at once) an answer takes minutes, and a try cut short is only redone from scratch by
   *  a guest that has no time to spare (bench:create run of 2026-12-08, where every 3 s try timed out). */
  async init(body: AgentInit, accessTokenHeader?: string, hygiene?: InitHygiene, timeoutMs = 150_000): Promise<boolean> {
    const payload = JSON.stringify({ ...body, ...(hygiene ? { hygiene } : {}), timestamp: new Date().toISOString() });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (accessTokenHeader) headers["x-access-token"] = accessTokenHeader;
    const end = Date.now() + timeoutMs;
    let last = "";
    for (let i = 0; i < 50 && Date.now() < end; i++) {
      try {
        const left = Math.max(3000, end - Date.now());
        const res = await this.fetch("/init", { method: "POST", body: payload, headers }, left);
        const text = await readCappedText(res, AGENT_INIT_REPLY_MAX, Math.max(3000, end - Date.now()), "guest agent /init");
        if (res.status === 204 || res.status === 200) return hygiene !== undefined && res.headers.get(AGENT_HYGIENE_HEADER) === "applied";
        last = `status ${res.status}: ${text.slice(0, 200)}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await Bun.sleep(20);
    }
    throw unavailable(`the guest agent refused /init (${last}); the template's agent may be too old, rebuild it`);
  }

  async metrics(accessToken: string | null): Promise<AgentMetrics> {
    const headers: Record<string, string> = {};
    if (accessToken) headers["x-access-token"] = accessToken;
    const res = await this.fetch("/metrics", { headers }, 3000);
    if (!res.ok) {
      await res.body?.cancel();
      throw unavailable(`the guest agent answered /metrics with ${res.status}; retry`);
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(await readCapped(res.body, AGENT_METRICS_MAX, 3000, "guest agent /metrics")));
    } catch (e) {
      throw unavailable(`the guest agent's /metrics answer was refused (${e instanceof Error ? e.message : String(e)}); retry`);
    }
    const m = AgentMetricsSchema.safeParse(body);
    if (!m.success) throw unavailable(`the guest agent's /metrics answer is malformed (${m.error.issues[0]?.path.join(".") ?? ""}: ${m.error.issues[0]?.message ?? ""})`);
    return m.data;
  }
}

/** How waitHealthy's error begins when the VM died before it answered (a crash, not a slow boot). */
export const DIED_WHILE_BOOTING = "the sandbox VM exited while booting";

/** Polls GET /health on a guest port's forward socket until it answers 2xx (agent: 204; the
 *  code interpreter: 200 "OK"), the VM dies, or the deadline passes. */
export async function waitHealthy(socket: string, what: string, deadlineMs: number, isDead: () => string | null): Promise<void> {
  let lastErr = "no answer";
  while (Date.now() < deadlineMs) {
    const death = isDead();
    if (death) throw unavailable(`${DIED_WHILE_BOOTING} (${death}); its console is in the daemon's log`);
    try {
      const res = await fetch("http://sandbox/health", { unix: socket, signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return;
      lastErr = `status ${res.status}`;
    } catch (e) {
      lastErr = e instanceof Error ? e.message : String(e);
    }
    await Bun.sleep(20);
  }
  throw unavailable(`the ${what} did not answer /health in time (${lastErr}); check the template's image and the console log`);
}
