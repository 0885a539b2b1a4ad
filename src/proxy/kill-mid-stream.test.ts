// A sandbox killed while a data-plane stream is open: the connection closes in the body (FIN, no last chunk), as envd's.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { Hono } from "hono";
import { startServer } from "../api/server.ts";
import { parseConfig } from "../util/config.ts";
import { DataPlane } from "./data-plane.ts";
import type { SandboxPort } from "./sandbox-port.ts";
import type { WsBridge } from "./websocket.ts";

let dir: string;
let upstream: ReturnType<typeof Bun.serve>;
let server: Server<WsBridge>;
/** The one sandbox's stream signal: aborted = killed. */
let sandbox: AbortController;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-kill-stream-"));
  const sock = join(dir, "fwd-49983");
  // The guest's end: a Connect stream that sends a message every 50 ms and never ends by itself.
  upstream = Bun.serve({
    unix: sock,
    fetch: () =>
      new Response(
        new ReadableStream({
          async pull(c) {
            c.enqueue(new TextEncoder().encode("\x00\x00\x00\x00\x02{}"));
            await Bun.sleep(50);
          },
        }),
        { headers: { "content-type": "application/connect+json" } },
      ),
  });
  const sandboxes: SandboxPort = {
    routeOrResume: async (id) => (id === "sbx1" && !sandbox.signal.aborted ? { signal: sandbox.signal, socket: async () => sock } : null),
    runningTokens: () => [],
    secrets: (id) => (id === "sbx1" ? { envd: null, traffic: null } : null),
  };
  server = startServer(parseConfig({ port: 0, listen: "127.0.0.1", dataDir: dir, runRoot: join(dir, "run"), network: false }), new Hono(), new DataPlane(sandboxes));
});
afterAll(() => {
  server.stop(true);
  upstream.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

test("kill during a stream: the client reads the data sent, then the connection closes in the body (FIN, not a reset)", async () => {
  sandbox = new AbortController();
  let got = "";
  const t0 = Date.now();
  const sock = connect(server.port!, "127.0.0.1", () =>
    sock.write("POST /process.Process/Start HTTP/1.1\r\nHost: 49983-sbx1.localhost\r\nContent-Type: application/connect+json\r\nContent-Length: 0\r\n\r\n"),
  );
  sock.on("data", (b) => {
    got += b.toString("latin1");
    if (got.includes("{}") && !sandbox.signal.aborted) setTimeout(() => sandbox.abort(), 120);
  });
  const ended = await new Promise<string>((r) => {
    sock.on("end", () => r("FIN"));
    sock.on("error", (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
  });
  sock.destroy();
  expect(ended).toBe("FIN");
  expect(got).toStartWith("HTTP/1.1 200");
  expect(got.toLowerCase()).toContain("transfer-encoding: chunked");
  expect(got.endsWith("\r\n0\r\n\r\n")).toBe(false); // no last chunk: the body was cut, not ended
  expect(Date.now() - t0).toBeLessThan(9000); // Bun's idle check runs every 4 s
}, 15_000);

test("the JS SDK's view: fetch's body read fails as the connection dropped mid-body", async () => {
  sandbox = new AbortController();
  const res = await fetch(`http://127.0.0.1:${server.port}/process.Process/Start`, {
    method: "POST",
    headers: { "e2b-sandbox-id": "sbx1", "e2b-sandbox-port": "49983", "content-type": "application/connect+json" },
    body: "",
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  await reader.read();
  sandbox.abort();
  const err = await (async () => {
    for (;;) if ((await reader.read()).done) return "ended cleanly";
  })().catch((e: Error) => e.message);
  // One of the messages the e2b SDK reads as a dropped connection, then probes /health (502 → killed).
  expect(err).toMatch(/socket connection was closed unexpectedly|terminated/);
}, 15_000);
