// The HTTP attacks of issue 11 item 4 against a real daemon: idle and slow connections, fd exhaustion,
// a malformed Host, oversized heads and bodies, and too many open requests from one address.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon({ idleTimeoutSec: 1, maxClientConnections: 4 });
});
afterAll(() => d.stop());

const port = () => Number(new URL(d.url).port);

/** A raw TCP connection: what it received, and when (if) the server closed it. */
function raw(first: string, p = port()): { sock: Socket; text: () => string; closed: Promise<number> } {
  let out = "";
  const t0 = Date.now();
  const sock = connect(p, "127.0.0.1", () => {
    if (first) sock.write(first);
  });
  sock.on("data", (b) => (out += b.toString()));
  sock.on("error", () => undefined);
  const closed = new Promise<number>((r) => sock.on("close", () => r(Date.now() - t0)));
  return { sock, text: () => out, closed };
}

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, Bun.sleep(ms).then(() => "still open" as const)]);

// Bun checks idle timeouts every 4 s: a 1 s timeout closes within ~4 s, 8 s is the margin. (A
// connection that never completes a head is closed by Bun itself after ~12 s, with or without one.)
const CUT_MS = 8000;

test("a keep-alive connection left idle after a request is closed after the idle timeout", async () => {
  const kept = raw(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  expect(await within(kept.closed, CUT_MS)).toBeLessThan(CUT_MS);
  expect(kept.text()).toStartWith("HTTP/1.1 200");
}, 10_000);

test("a slow body on an authenticated route is cut after the idle timeout", async () => {
  const head = `POST /v2/sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${d.key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"templ`;
  const slow = raw(head);
  expect(await within(slow.closed, CUT_MS)).toBeLessThan(CUT_MS);
}, 10_000);

test("many idle keep-alive connections from one address do not stop /health answering (a daemon with 64 fds)", async () => {
  // A daemon of its own, in a process whose fd limit the idle connections can exhaust.
  const script = join(d.dataDir, "serve-low-fd.ts");
  await Bun.write(
    script,
    `import { startTestDaemon } from ${JSON.stringify(join(import.meta.dir, "test-support.ts"))};\n` +
      `const s = await startTestDaemon({ idleTimeoutSec: 1 });\n` +
      `console.log(new URL(s.url).port);\n`,
  );
  const child = Bun.spawn(["sh", "-c", `ulimit -n 64 && exec "${process.execPath}" "${script}"`], { stdout: "pipe", stderr: "inherit" });
  try {
    const reader = child.stdout.getReader();
    const p = Number(new TextDecoder().decode((await reader.read()).value).trim());
    expect(p).toBeGreaterThan(0);
    // More kept-alive connections than the daemon has fds: the rest wait in the listen backlog.
    const idle = Array.from({ length: 90 }, () => raw(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, p));
    await Bun.sleep(500);
    const res = await fetch(`http://127.0.0.1:${p}/health`, { signal: AbortSignal.timeout(25_000) }).catch((e: Error) => e);
    expect(res instanceof Response ? res.status : String(res)).toBe(200);
    for (const c of idle) c.sock.destroy();
  } finally {
    child.kill();
    await child.exited;
  }
}, 30_000);

test("a malformed Host gets a JSON 400: no HTML page, no stack, no path", async () => {
  for (const host of ["a%b", "a b", "x/y"]) {
    const c = raw(`GET /v2/sandboxes HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    await within(c.closed, 3000);
    const text = c.text();
    expect(text).toStartWith("HTTP/1.1 400");
    expect(text.toLowerCase()).toContain("content-type: application/json");
    const body = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { code: number; message: string };
    expect(body.code).toBe(400);
    expect(body.message).toContain("Host");
    expect(text).not.toContain("<");
    expect(text).not.toContain(process.cwd());
  }
});

test("oversized headers get a JSON 431; an oversized control-plane body a JSON 413", async () => {
  const big = await fetch(d.url + "/health", { headers: { "x-big": "a".repeat(32 * 1024) } });
  expect(big.status).toBe(431);
  expect(((await big.json()) as { code: number }).code).toBe(431);
  const body = await d.api("/v2/sandboxes", { method: "POST", body: "x".repeat(2 << 20), headers: { "content-type": "application/json" } });
  expect(body.status).toBe(413);
  expect(((await body.json()) as { code: number }).code).toBe(413);
});

test("one address holding its limit of open requests gets a JSON 429; released, it is served again", async () => {
  const head = `POST /v2/sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${d.key}\r\nContent-Length: 1000\r\n\r\n{`;
  const held = Array.from({ length: 4 }, () => raw(head));
  await Bun.sleep(200);
  const refused = await fetch(d.url + "/health");
  expect(refused.status).toBe(429);
  const body = (await refused.json()) as { code: number; message: string };
  expect(body.code).toBe(429);
  expect(body.message).toContain("--max-client-connections");
  for (const c of held) c.sock.destroy();
  await Promise.all(held.map((c) => c.closed));
  await Bun.sleep(100);
  expect((await fetch(d.url + "/health")).status).toBe(200);
});
