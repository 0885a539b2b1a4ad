// The data plane's audit: the real e2b SDK through onebox's server and data plane to the real guest agent (run on this
// host; a Unix-socket relay stands where the vmm's forward socket is): a command's line, a PTY and an upload's path are
// told to the audit callback; the Start body reaches the agent unchanged (the command runs).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { Hono } from "hono";
import { Sandbox } from "e2b";
import { ensureTestUser, startTestAgent, type RunningAgent } from "../../guest/agent/test-harness.ts";
import { startServer } from "../api/server.ts";
import { parseConfig } from "../util/config.ts";
import { parseStartEnvelope } from "./audit-body.ts";
import { DataPlane, type DataAudit } from "./data-plane.ts";
import type { SandboxPort } from "./sandbox-port.ts";
import type { WsBridge } from "./websocket.ts";

let dir: string;
let agent: RunningAgent;
let relay: ReturnType<typeof Bun.serve>;
let server: Server<WsBridge>;
const audited: DataAudit[] = [];
/** The upload the test makes: the agent runs on this host, so the file lands in this host's /tmp (removed after). */
const uploaded = `/tmp/onebox-audit-upload-${process.pid}.txt`;

beforeAll(async () => {
  ensureTestUser();
  agent = await startTestAgent();
  expect((await agent.init({ defaultUser: "user", accessToken: "audit-token" })).status).toBe(204);
  dir = mkdtempSync(join(tmpdir(), "onebox-audit-"));
  const sock = join(dir, "fwd-49983");
  // The vmm's forward socket in a VM is a byte pipe to the guest port; here, to the agent's TCP port.
  relay = Bun.serve({
    unix: sock,
    fetch: (req) => {
      const u = new URL(req.url);
      return fetch(`${agent.url}${u.pathname}${u.search}`, { method: req.method, headers: req.headers, body: req.body, duplex: "half", decompress: false } as RequestInit);
    },
  });
  const sandboxes: SandboxPort = {
    routeOrResume: async (id) => (id === "sbxa" ? { signal: new AbortController().signal, socket: async () => sock } : null),
    runningTokens: () => [{ id: "sbxa", token: "audit-token" }],
    secrets: (id) => (id === "sbxa" ? { envd: "audit-token", traffic: null } : null),
  };
  const config = parseConfig({ port: 0, listen: "127.0.0.1", dataDir: dir, runRoot: join(dir, "run"), network: false });
  server = startServer(config, new Hono(), new DataPlane(sandboxes, () => {}, (e) => audited.push(e)));
});
afterAll(async () => {
  server?.stop(true);
  relay?.stop(true);
  await agent?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  rmSync(uploaded, { force: true });
});

function sdk(): Sandbox {
  const Ctor = Sandbox as unknown as new (o: Record<string, unknown>) => Sandbox;
  return new Ctor({ sandboxId: "sbxa", envdVersion: "0.6.13", envdAccessToken: "audit-token", sandboxUrl: `http://127.0.0.1:${server.port}`, debug: false, apiKey: "e2b_unused" });
}

test("commands.run, a PTY and files.write through the SDK are audited with what they did", async () => {
  const s = sdk();
  expect((await s.commands.run("echo audit-me", { cwd: "/tmp" })).stdout).toBe("audit-me\n");
  await s.files.write(uploaded, "x");
  const pty = await s.pty.create({ cols: 80, rows: 24, onData: () => {}, timeoutMs: 10_000 });
  await s.pty.kill(pty.pid);
  for (let i = 0; i < 50 && audited.length < 3; i++) await Bun.sleep(20);
  expect(audited).toContainEqual({ sandboxId: "sbxa", op: "command", detail: "/bin/bash -l -c echo audit-me (cwd /tmp)" });
  expect(audited).toContainEqual({ sandboxId: "sbxa", op: "file-write", detail: uploaded, status: 200 });
  expect(audited.find((a) => a.op === "pty")?.detail).toStartWith("/bin/bash -i -l");
});

test("a body that is not a JSON Connect envelope is recorded as unreadable, not parsed", () => {
  expect(parseStartEnvelope(new Uint8Array([0, 0, 0, 0, 3, 0x7b, 0x7d]))).toBeNull(); // cut
  expect(parseStartEnvelope(new Uint8Array([1, 0, 0, 0, 2, 0x7b, 0x7d]))).toBeNull(); // compressed
  expect(parseStartEnvelope(new TextEncoder().encode("\0\0\0\0\x02{}"))).toBeNull(); // no process
});
