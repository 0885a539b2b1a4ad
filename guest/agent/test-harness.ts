// Test helper: runs the real agent as a separate process on a free port and builds SDK sandboxes pointing at it.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox } from "e2b";
import type { Subprocess } from "bun";
import { ENVD_VERSION } from "../protocol.ts";

export interface RunningAgent {
  url: string;
  port: number;
  proc: Subprocess;
  dir: string;
  stop(): Promise<void>;
  /** A sandbox handle of the official SDK, talking to this agent (no API call, spec §2.6). */
  sandbox(opts?: { token?: string; version?: string }): Sandbox;
  init(body: Record<string, unknown>, token?: string): Promise<Response>;
}

/** Ensures user `user` exists (uid 1000 when free) on this throwaway root test machine. */
export function ensureTestUser(): void {
  const has = Bun.spawnSync(["id", "-u", "user"]).exitCode === 0;
  if (has) return;
  const uidFree = Bun.spawnSync(["getent", "passwd", "1000"]).exitCode !== 0;
  const r = Bun.spawnSync(["useradd", "-m", "-s", "/bin/bash", ...(uidFree ? ["-u", "1000"] : []), "user"]);
  if (r.exitCode !== 0) throw new Error(`useradd failed: ${r.stderr.toString()}`);
}

/** Ensures user `grpuser` exists with a supplementary group `grpextra` besides its own; returns that group's gid. */
export function ensureGroupedTestUser(): number {
  if (Bun.spawnSync(["getent", "group", "grpextra"]).exitCode !== 0) Bun.spawnSync(["groupadd", "grpextra"]);
  if (Bun.spawnSync(["id", "-u", "grpuser"]).exitCode !== 0) {
    const r = Bun.spawnSync(["useradd", "-m", "-s", "/bin/bash", "-G", "grpextra", "grpuser"]);
    if (r.exitCode !== 0) throw new Error(`useradd failed: ${r.stderr.toString()}`);
  }
  return Number(Bun.spawnSync(["getent", "group", "grpextra"]).stdout.toString().split(":")[2]);
}

export async function startTestAgent(): Promise<RunningAgent> {
  const dir = mkdtempSync(join(tmpdir(), "onebox-agent-test-"));
  // Commands run as a user through onebox-runas, as in a guest (`bun run build` makes it).
  const runas = join(import.meta.dir, "..", "init", "build", "onebox-runas");
  if (!existsSync(runas)) throw new Error(`${runas} is missing: run \`bun run build\` (or make -C guest/init) first`);
  const env = { ...process.env, ONEBOX_AGENT_RUNAS: runas };
  const proc = Bun.spawn(["bun", join(import.meta.dir, "main.ts"), "--port", "0"], { stdout: "pipe", stderr: "inherit", env });
  const reader = proc.stdout.getReader();
  let out = "";
  let port = 0;
  const deadline = Date.now() + 10_000;
  while (!port) {
    if (Date.now() > deadline) throw new Error(`agent did not start: ${out}`);
    const r = await reader.read();
    if (r.done) throw new Error(`agent exited: ${out}`);
    out += new TextDecoder().decode(r.value);
    const m = /listening on [^:]+:(\d+)/.exec(out);
    if (m) port = Number(m[1]);
  }
  reader.releaseLock();
  void proc.stdout.pipeTo(new WritableStream()).catch(() => {});
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    proc,
    dir,
    async stop() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
    sandbox(opts = {}) {
      const Ctor = Sandbox as unknown as new (o: Record<string, unknown>) => Sandbox;
      return new Ctor({
        sandboxId: "agenttest",
        envdVersion: opts.version ?? ENVD_VERSION,
        envdAccessToken: opts.token,
        debug: true,
        sandboxUrl: url,
      });
    },
    init(body, token) {
      return fetch(`${url}/init`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { "X-Access-Token": token } : {}) },
        body: JSON.stringify(body),
      });
    },
  };
}
