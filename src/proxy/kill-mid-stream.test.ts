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
import { Sandbox, TimeoutError } from "e2b";
import { ENVD_VERSION } from "../../guest/protocol.ts";

function envelope(msg: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + json.byteLength);
  new DataView(out.buffer).setUint32(1, json.byteLength, false);
  out.set(json, 5);
  return out;
}

let dir: string;
let upstream: ReturnType<typeof Bun.serve>;
let server: Server<WsBridge>;
/** The one sandbox's stream signal: aborted = killed. */
let sandbox: AbortController;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-kill-stream-"));
  const sock = join(dir, "fwd-49983");
  // The guest's end: envd's /health, and a Connect stream (Start's: its start event, then a little
  // stdout every 50 ms) that never ends by itself.
  upstream = Bun.serve({
    unix: sock,
    fetch(req) {
      if (new URL(req.url).pathname === "/health") return new Response(null, { status: 204 });
      let started = false;
      return new Response(
        new ReadableStream({
          async pull(c) {
            c.enqueue(envelope(started ? { event: { data: { stdout: btoa("x") } } } : { event: { start: { pid: 7 } } }));
            started = true;
            await Bun.sleep(50);
          },
        }),
        { headers: { "content-type": "application/connect+json" } },
      );
    },
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
    if (got.includes('"start"') && !sandbox.signal.aborted) setTimeout(() => sandbox.abort(), 120);
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

test("the e2b SDK's view: commands.run raises TimeoutError 'the sandbox was killed' (its /health probe answers 502)", async () => {
  sandbox = new AbortController();
  const Ctor = Sandbox as unknown as new (o: Record<string, unknown>) => Sandbox;
  const sbx = new Ctor({ sandboxId: "sbx1", envdVersion: ENVD_VERSION, debug: true, sandboxUrl: `http://127.0.0.1:${server.port}` });
  setTimeout(() => sandbox.abort(), 300);
  const e = await sbx.commands.run("sleep 600").catch((x: Error) => x);
  expect(e).toBeInstanceOf(TimeoutError);
  expect((e as Error).message).toContain("The sandbox was killed or reached its end of life");
}, 15_000);
