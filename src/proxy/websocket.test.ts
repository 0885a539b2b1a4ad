// Tests WebSocket proxying: a real echo server on a Unix socket behind a real Bun.serve using the bridge.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { isWebSocketUpgrade, openUpstream, upgradeClient, websocketHandler, type WsBridge } from "./websocket.ts";

let dir: string;
let upstream: Server<{ path: string; proto: string | null }>;
let proxy: Server<WsBridge>;
const sandbox = new AbortController();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-ws-"));
  const sock = join(dir, "vsock.sock.tcp-8080");
  upstream = Bun.serve<{ path: string; proto: string | null }>({
    unix: sock,
    fetch(req, srv) {
      const u = new URL(req.url);
      const proto = req.headers.get("sec-websocket-protocol")?.split(",")[0]?.trim() ?? null;
      if (srv.upgrade(req, { data: { path: u.pathname + u.search, proto }, headers: proto ? { "sec-websocket-protocol": proto } : {} })) return;
      return new Response("not a websocket", { status: 400 });
    },
    websocket: {
      open(ws) {
        ws.send(`hello ${ws.data.path}`);
      },
      message(ws, m) {
        ws.send(typeof m === "string" ? `echo:${m}` : m);
      },
    },
  });
  proxy = Bun.serve<WsBridge>({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req, srv) {
      if (!isWebSocketUpgrade(req)) return new Response("no", { status: 400 });
      const url = new URL(req.url);
      const port = url.searchParams.get("port") ?? "8080";
      const up = await openUpstream(req, url, join(dir, `vsock.sock.tcp-${port}`), 2000).catch(() => null);
      if (!up) return Response.json({ message: "The sandbox is running but port is not open", code: 502 }, { status: 502 });
      if (upgradeClient(srv, req, up, sandbox.signal)) return;
      return new Response("upgrade failed", { status: 400 });
    },
    websocket: websocketHandler,
  });
});
afterAll(() => {
  proxy.stop(true);
  upstream.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

function collect(ws: WebSocket): { messages: unknown[]; closed: Promise<number> } {
  const messages: unknown[] = [];
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => messages.push(e.data);
  const closed = new Promise<number>((r) => (ws.onclose = (e) => r(e.code)));
  return { messages, closed };
}

async function until(cond: () => boolean, ms = 2000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await Bun.sleep(10);
}

test("text and binary frames pass both ways, path and subprotocol included", async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/room/1?x=2`, ["chat"]);
  const c = collect(ws);
  await new Promise((r) => (ws.onopen = r));
  expect(ws.protocol).toBe("chat");
  ws.send("ping");
  ws.send(new Uint8Array([1, 2, 3]));
  await until(() => c.messages.length >= 3);
  expect(c.messages[0]).toBe("hello /room/1?x=2");
  expect(c.messages[1]).toBe("echo:ping");
  expect([...new Uint8Array(c.messages[2] as ArrayBuffer)]).toEqual([1, 2, 3]);
  ws.close();
  await c.closed;
});

test("nothing listening → 502 port is not open, no upgrade", async () => {
  const res = await fetch(`http://127.0.0.1:${proxy.port}/?port=9999`, {
    headers: { Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" },
  });
  expect(res.status).toBe(502);
});

test("the sandbox ending closes open WebSockets", async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/`);
  const c = collect(ws);
  await new Promise((r) => (ws.onopen = r));
  sandbox.abort();
  expect(await c.closed).toBe(1001);
});
