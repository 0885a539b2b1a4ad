// Tests the forwarder against a real HTTP server on a Unix socket (standing in for a vmm forward socket).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { forwardRequest, PortClosedError } from "./forward.ts";

let dir: string;
let upstream: ReturnType<typeof Bun.serve>;
let sock: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-fwd-"));
  sock = join(dir, "vsock.sock.tcp-49983");
  upstream = Bun.serve({
    unix: sock,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/echo") {
        const seen = Object.fromEntries(req.headers);
        return Response.json({ method: req.method, search: url.search, body: await req.text(), headers: seen });
      }
      if (url.pathname === "/gzip") {
        return new Response(gzipSync("hello"), { headers: { "content-encoding": "gzip", "content-type": "text/plain" } });
      }
      if (url.pathname === "/stream") {
        // Never ends by itself: only an abort can finish it.
        return new Response(
          new ReadableStream({
            async pull(c) {
              c.enqueue(new TextEncoder().encode("tick\n"));
              await Bun.sleep(20);
            },
          }),
        );
      }
      return new Response("nope", { status: 404 });
    },
  });
});
afterAll(() => {
  upstream.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const url = (p: string) => new URL("http://localhost:3000" + p);

test("passes method, query, body and end-to-end headers; drops routing and hop-by-hop headers", async () => {
  const req = new Request("http://localhost:3000/echo?a=1&b=2", {
    method: "POST",
    body: "payload",
    headers: { "E2b-Sandbox-Id": "x", "E2b-Sandbox-Port": "49983", "X-Access-Token": "t", Connection: "keep-alive", "Keepalive-Ping-Interval": "50" },
  });
  const res = await forwardRequest(req, url("/echo?a=1&b=2"), sock, new AbortController().signal);
  const body = (await res.json()) as { method: string; search: string; body: string; headers: Record<string, string> };
  expect(body.method).toBe("POST");
  expect(body.search).toBe("?a=1&b=2");
  expect(body.body).toBe("payload");
  expect(body.headers["x-access-token"]).toBe("t");
  expect(body.headers["keepalive-ping-interval"]).toBe("50");
  expect(body.headers["e2b-sandbox-id"]).toBeUndefined();
  expect(body.headers["e2b-sandbox-port"]).toBeUndefined();
});

test("gzip responses pass through undecoded (spec §3.4 GET /files gzip)", async () => {
  const res = await forwardRequest(new Request("http://x/gzip"), url("/gzip"), sock, new AbortController().signal);
  expect(res.headers.get("content-encoding")).toBe("gzip");
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(bytes[0]).toBe(0x1f);
  expect(bytes[1]).toBe(0x8b);
});

test("aborting the sandbox's signal cuts an open stream (kill → client sees a dropped connection)", async () => {
  const ac = new AbortController();
  const res = await forwardRequest(new Request("http://x/stream"), url("/stream"), sock, ac.signal);
  const reader = res.body!.getReader();
  const first = await reader.read();
  expect(new TextDecoder().decode(first.value)).toContain("tick");
  ac.abort();
  let failed = false;
  try {
    for (let i = 0; i < 100; i++) if ((await reader.read()).done) break;
  } catch {
    failed = true;
  }
  expect(failed).toBe(true);
});

test("nothing listening on the socket → PortClosedError (answered as 'port is not open')", async () => {
  await expect(
    forwardRequest(new Request("http://x/echo"), url("/echo"), join(dir, "vsock.sock.tcp-8080"), new AbortController().signal),
  ).rejects.toBeInstanceOf(PortClosedError);
});
