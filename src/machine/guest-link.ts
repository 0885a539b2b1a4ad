// The machine layer's round trips with a guest: clone hygiene, readiness (/health, the ready port), /init,
// /metrics. One interface, so the lifecycle's unit tests put a fake guest here (fake-machine.ts).
import type { TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { AgentClient, waitHealthy, type AgentInit, type AgentMetrics } from "./agent-client.ts";
import { agentSocket, guestExec } from "./guest-exec.ts";
import { sendHygiene, syncGuestDisks, type InitHygiene } from "./hygiene.ts";
import { FORWARDED_PORTS } from "./vm-config.ts";
import { forwardSocketPath, vsockPath, type VmHandle } from "./vm-driver.ts";

export interface GuestLink {
  /** A restored clone's own clock, entropy and identity over onebox-init's control channel (docs/snapshot.md): for an
   *  agent that did not take them with its /init. */
  hygiene(runDir: string, id: string, timeoutMs: number): Promise<void>;
  /** The guest writes its dirty pages to its disks (before a filesystem-only pause). */
  syncDisks(runDir: string, timeoutMs: number): Promise<void>;
  /** Until the agent answers /health, then the template's ready port (if it has one). */
  waitReady(config: Config, t: TemplateRow, handle: VmHandle, runDir: string, dead: () => string | null): Promise<void>;
  /** POST /init (spec §3.4): tokenHeader is the token the agent already holds (a resumed guest's); hygiene, a
   *  restored clone's, goes in the same request; timeoutMs bounds the whole exchange (a start's: the boot timeout).
   *  true when the agent applied that hygiene (an older agent does not). */
  init(runDir: string, body: AgentInit, tokenHeader?: string, o?: { hygiene?: InitHygiene; timeoutMs?: number }): Promise<boolean>;
  metrics(runDir: string, accessToken: string | null): Promise<AgentMetrics>;
  /** A template VM runs one command as the SDK would, before its ready snapshot: what a first command reads and
   *  builds (the agent's process-start path, bash and its files in the page cache) is then in the snapshot, shared by
   *  every clone, instead of private pages in each (docs/benchmarks.md bench:density: 11.8 of an idle clone's
   *  17.3 MiB). Throws when the command does not run or exits non-zero. */
  warmUp(runDir: string, user: string, timeoutMs: number): Promise<void>;
}

/** The warm-up command: bash -l as commands.run, with output, so the agent's output path runs too. */
export const WARM_UP_CMD = "echo onebox-warm-up";

/** The real guest: onebox-init's control channel over vsock and the agent over its forward socket. */
export const agentGuest: GuestLink = {
  hygiene: (runDir, id, timeoutMs) => sendHygiene(vsockPath(runDir), { id, hostname: id, timeoutMs }),
  syncDisks: (runDir, timeoutMs) => syncGuestDisks(vsockPath(runDir), timeoutMs),
  async waitReady(config, t, handle, runDir, dead) {
    await new AgentClient(runDir).waitHealthy(Date.now() + config.bootTimeoutMs, dead);
    const ready = t.readyPort;
    if (!ready) return;
    const socket = FORWARDED_PORTS.includes(ready) ? forwardSocketPath(runDir, ready) : await handle.forward(ready);
    await waitHealthy(socket, `template's service on port ${ready}`, Date.now() + config.bootTimeoutMs, dead);
  },
  init: (runDir, body, tokenHeader, o) => new AgentClient(runDir).init(body, tokenHeader, o?.hygiene, o?.timeoutMs),
  metrics: (runDir, accessToken) => new AgentClient(runDir).metrics(accessToken),
  async warmUp(runDir, user, timeoutMs) {
    const r = await guestExec(agentSocket(runDir), WARM_UP_CMD, { user, timeoutMs });
    if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}${r.error ? ` (${r.error})` : ""}: ${r.tail.slice(-3).join(" | ")}`);
  },
};
