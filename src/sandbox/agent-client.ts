// Talks to the guest agent (envd-compatible, guest port 49983) through the vmm's forward socket.
import { ENVD_PORT } from "../../guest/protocol.ts";
import { unavailable } from "../util/errors.ts";
import { forwardSocketPath } from "./vm-driver.ts";

export interface AgentInit {
  envVars: Record<string, string>;
  accessToken?: string;
  defaultUser: string;
  defaultWorkdir?: string;
}

export interface AgentMetrics {
  ts: number;
  cpu_count: number;
  cpu_used_pct: number;
  mem_total: number;
  mem_used: number;
  mem_cache?: number;
  disk_used: number;
  disk_total: number;
}

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

  /** POST /init with the token, env vars, default user and the host clock (spec §3.4, §3.5).
   *  Retried briefly: the agent may be restarting right after boot. */
  async init(body: AgentInit, accessTokenHeader?: string): Promise<void> {
    const payload = JSON.stringify({ ...body, timestamp: new Date().toISOString() });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (accessTokenHeader) headers["x-access-token"] = accessTokenHeader;
    let last = "";
    for (let i = 0; i < 50; i++) {
      try {
        const res = await this.fetch("/init", { method: "POST", body: payload, headers }, 3000);
        const text = await res.text();
        if (res.status === 204 || res.status === 200) return;
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
    if (!res.ok) throw unavailable(`the guest agent answered /metrics with ${res.status}; retry`);
    return (await res.json()) as AgentMetrics;
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
