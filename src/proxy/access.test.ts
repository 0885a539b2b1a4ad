// Data-plane access through a real daemon (issue 11 item 5): a secure sandbox's ports need its envd token,
// checked before any forward slot. The guest is real HTTP servers on the forward sockets' Unix paths; the
// VMM is a stand-in driver whose forward() counts the slots it hands out.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import { openState, type NewSandboxRow } from "../store/index.ts";
import type { VmDriverResult, VmHandle } from "../machine/vm-driver.ts";
import { forwardPath } from "../vmm/index.ts";
import { fileSignature } from "./signed-url.ts";

const TOKEN = "secret-envd-token-0123456789";
let d: TestDaemon;
const guests: Server<undefined>[] = [];
const slots: { id: string; port: number }[] = [];

/** What a guest port answers: its port and path; for /echo the request body; for /stream a chunk, a silence, and a chunk. */
function guestServer(path: string, port: number): Server<undefined> {
  return Bun.serve({
    unix: path,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/echo") return new Response(await req.arrayBuffer());
      if (url.pathname === "/stream") {
        return new Response(
          new ReadableStream({
            async start(c) {
              c.enqueue(new TextEncoder().encode("first\n"));
              await Bun.sleep(Number(url.searchParams.get("quiet") ?? "0"));
              c.enqueue(new TextEncoder().encode("second\n"));
              if (url.searchParams.has("forever")) await Bun.sleep(60_000);
              c.close();
            },
          }),
        );
      }
      if (url.pathname === "/host") return Response.json({ host: req.headers.get("host") });
      return Response.json({ port, path: url.pathname });
    },
  });
}

/** The stand-in VMM: adopt() finds every recorded VM alive; forward(port) opens a guest socket. */
function standInDriver(): VmDriverResult {
  const handle = (runDir: string, id: string): VmHandle => {
    let exit: (e: never) => void = () => undefined;
    const exited = new Promise<never>((r) => (exit = r));
    return {
      pid: 0x3fffffff, // above any pid_max: nothing to signal
      pause: async () => undefined,
      resume: async () => undefined,
      // A VM slow to stop makes a kill a control-plane request longer than the idle timeout.
      async stop() {
        if (id === "slowstop") await Bun.sleep(6000);
        exit({ reason: "stopped" } as never);
      },
      snapshot: async () => undefined,
      stats: async () => ({}) as never,
      async forward(port) {
        slots.push({ id, port });
        const p = join(runDir, `fwd-${port}`);
        guests.push(guestServer(p, port));
        return p;
      },
      exited,
    };
  };
  return {
    ok: true,
    driver: { spawn: async () => { throw new Error("no spawn here"); }, adopt: async (runDir) => handle(runDir, runDir.split("/").pop()!), readExit: async () => null },
  };
}

function row(id: string, token: string | null, runDir: string, traffic: string | null = null, network: string | null = null): NewSandboxRow {
  const now = Date.now();
  return {
    id, templateId: "tpl", state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: token, metadata: "{}", envVars: "{}", secure: token !== null, startedAt: now, endAt: now + 3_600_000, runDir,
    trafficAccessToken: traffic, network,
  };
}
const TRAFFIC = "traffic-token-abcdef0123456789";

let dir = "";
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "onebox-access-"));
  const runRoot = join(dir, "run");
  const st = openState(dir);
  for (const [id, token, traffic] of [
    ["securebox", TOKEN, null], ["openbox", null, null], ["slowstop", null, null],
    ["privatebox", null, TRAFFIC], ["privatesecure", TOKEN, TRAFFIC], // allowPublicTraffic: false
    ["maskbox", null, null],
  ] as const) {
    const runDir = join(runRoot, "vms", id);
    mkdirSync(runDir, { recursive: true });
    const network = id === "maskbox" ? JSON.stringify({ maskRequestHost: "localhost:${PORT}" }) : null;
    st.sandboxes.insert(row(id, token, runDir, traffic, network));
    // envd and the interpreter are forwarded at spawn: their sockets exist without a slot.
    for (const port of [49983, 49999]) guests.push(guestServer(forwardPath(runDir, port), port));
  }
  st.close();
  d = await startTestDaemon({ runRoot, idleTimeoutSec: 1, maxClientConnections: 3 }, dir, standInDriver());
});
afterAll(async () => {
  await d.stop();
  for (const g of guests) g.stop(true);
  rmSync(dir, { recursive: true, force: true }); // a data dir the test passed in: stop() leaves it
});

const port = (id: string, p: number, path: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
  fetch(d.url + path, { ...init, headers: { "E2b-Sandbox-Id": id, "E2b-Sandbox-Port": String(p), ...headers } });

test("a secure sandbox's ports without its token: 401 JSON, and no forward slot is used", async () => {
  for (let p = 8000; p < 8040; p++) {
    const res = await port("securebox", p, "/");
    expect(res.status).toBe(401);
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(401);
    expect(body.message).toContain("X-Access-Token");
  }
  expect((await port("securebox", 8000, "/", { "X-Access-Token": "wrong" })).status).toBe(401);
  // Host routing is checked the same way.
  expect((await fetch(d.url + "/", { headers: { Host: `8001-securebox.localhost:${new URL(d.url).port}` } })).status).toBe(401);
  expect(slots).toEqual([]);
  // With the token: forwarded, one slot.
  const ok = await port("securebox", 8000, "/x", { "X-Access-Token": TOKEN });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual({ port: 8000, path: "/x" });
  expect(slots).toEqual([{ id: "securebox", port: 8000 }]);
});

test("the code interpreter's /execute needs the token; the SDK's tokenless /contexts calls pass", async () => {
  expect((await port("securebox", 49999, "/execute", {}, { method: "POST", body: "{}" })).status).toBe(401);
  expect((await port("securebox", 49999, "/execute", { "X-Access-Token": TOKEN }, { method: "POST", body: "{}" })).status).toBe(200);
  expect((await port("securebox", 49999, "/contexts", {}, { method: "POST", body: "{}" })).status).toBe(200);
  expect((await port("securebox", 49999, "/contexts")).status).toBe(200);
  expect((await port("securebox", 49999, "/contexts/abc", {}, { method: "DELETE" })).status).toBe(200);
  expect((await port("securebox", 49999, "/contexts/abc/restart", {}, { method: "POST" })).status).toBe(200);
});

test("envd: /health is open, RPCs need the token, /files passes with a valid signature only", async () => {
  expect((await port("securebox", 49983, "/health")).status).toBe(200);
  const rpc = await port("securebox", 49983, "/process.Process/List", { "content-type": "application/json" }, { method: "POST", body: "{}" });
  expect(rpc.status).toBe(401);
  expect(((await rpc.json()) as { message: string }).message).toContain("unauthorized access");
  const sig = await fileSignature("/home/user/a", "read", "user", TOKEN);
  expect((await port("securebox", 49983, `/files?path=/home/user/a&username=user&signature=${encodeURIComponent(sig)}`)).status).toBe(200);
  const forged = await fileSignature("/home/user/a", "read", "user", "not-the-token");
  expect((await port("securebox", 49983, `/files?path=/home/user/a&username=user&signature=${encodeURIComponent(forged)}`)).status).toBe(401);
  expect((await port("securebox", 49983, "/files?path=/home/user/a")).status).toBe(401);
});

test("a sandbox created without secure stays open, as on E2B", async () => {
  const res = await port("openbox", 8080, "/open");
  expect(res.status).toBe(200);
  expect(slots).toContainEqual({ id: "openbox", port: 8080 });
});

test("a stream silent for longer than the idle timeout is not cut", async () => {
  const res = await port("openbox", 8080, "/stream?quiet=6000");
  expect(await res.text()).toBe("first\nsecond\n");
}, 15_000);

test("a keep-alive connection is cut again once idle after a data-plane response, streamed or not", async () => {
  const { connect } = await import("node:net");
  const closedAfter = (path: string) =>
    new Promise<number>((resolve) => {
      const t0 = Date.now();
      const sock = connect(Number(new URL(d.url).port), "127.0.0.1", () =>
        sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nE2b-Sandbox-Id: openbox\r\nE2b-Sandbox-Port: 8080\r\n\r\n`),
      );
      sock.on("error", () => undefined);
      sock.on("data", () => undefined); // consume: a paused socket never reports the close
      sock.on("close", () => resolve(Date.now() - t0));
      setTimeout(() => (sock.destroy(), resolve(Infinity)), 12_000);
    });
  const [plain, streamed] = await Promise.all([closedAfter("/open"), closedAfter("/stream?quiet=10")]);
  expect(plain).toBeLessThan(9000);
  expect(streamed).toBeLessThan(9000);
}, 15_000);

test("a control-plane request whose handler outlasts the idle timeout is answered, not cut", async () => {
  const t0 = Date.now();
  const res = await d.api("/sandboxes/slowstop", { method: "DELETE" });
  expect(res.status).toBe(204);
  expect(Date.now() - t0).toBeGreaterThan(5000);
}, 15_000);

test("streams the client abandons release their hold: the address is served again", async () => {
  // The limit is 3 per address: ten abandoned streams would exhaust it if any were not released.
  for (let i = 0; i < 10; i++) {
    const ac = new AbortController();
    const res = await port("openbox", 8080, "/stream?quiet=50&forever=1", {}, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.read().catch(() => undefined);
    await Bun.sleep(50);
  }
  await Bun.sleep(200);
  expect((await port("openbox", 8080, "/after")).status).toBe(200);
  expect((await fetch(d.url + "/health")).status).toBe(200);
}, 20_000);

test("allowPublicTraffic: false: every port but envd's needs the traffic token (403 without, before any slot); envd keeps its own token", async () => {
  const before = slots.length;
  for (const id of ["privatebox", "privatesecure"]) {
    const res = await port(id, 8000, "/");
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toContain("e2b-traffic-access-token");
    expect((await port(id, 8000, "/", { "e2b-traffic-access-token": "wrong" })).status).toBe(403);
    expect((await port(id, 49999, "/contexts")).status).toBe(403); // the interpreter's tokenless calls too
  }
  expect(slots.length).toBe(before); // refused before routing
  const ok = await port("privatebox", 8000, "/y", { "e2b-traffic-access-token": TRAFFIC });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual({ port: 8000, path: "/y" });
  expect((await port("privatesecure", 8001, "/", { "e2b-traffic-access-token": TRAFFIC })).status).toBe(200);
  // envd: open on a sandbox without an envd token; the traffic token never opens a secure one's.
  expect((await port("privatebox", 49983, "/process.Process/List", {}, { method: "POST", body: "{}" })).status).toBe(200);
  expect((await port("privatesecure", 49983, "/process.Process/List", { "e2b-traffic-access-token": TRAFFIC }, { method: "POST", body: "{}" })).status).toBe(401);
  expect((await port("privatesecure", 49983, "/process.Process/List", { "X-Access-Token": TOKEN }, { method: "POST", body: "{}" })).status).toBe(200);
});

test("maskRequestHost: the sandbox's ports see that Host, ${PORT} replaced by the port; without one, Host is as before", async () => {
  expect(await (await port("maskbox", 8000, "/host")).json()).toEqual({ host: "localhost:8000" });
  expect(await (await port("maskbox", 49999, "/host")).json()).toEqual({ host: "localhost:49999" });
  const plain = (await (await port("openbox", 8000, "/host")).json()) as { host: string };
  expect(plain.host).not.toContain("localhost:8000");
});

test("the data plane's forwarded body bytes are counted both ways for GET /metrics", async () => {
  const metric = async (direction: string) => {
    const text = await (await d.api("/metrics")).text();
    return Number(new RegExp(`^onebox_dataplane_bytes_total\\{direction="${direction}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  };
  const [up, down] = [await metric("to_sandbox"), await metric("from_sandbox")];
  const body = "x".repeat(100_000);
  const res = await port("openbox", 8000, "/echo", {}, { method: "POST", body });
  expect(await res.text()).toBe(body);
  expect((await metric("to_sandbox")) - up).toBe(100_000);
  expect((await metric("from_sandbox")) - down).toBe(100_000);
});
