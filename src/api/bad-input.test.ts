// Tests bad input on the control plane: malformed JSON, wrong types, size cap, unknown routes, a fuzzer.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon({ maxBodyBytes: 64 * 1024 });
  // A template whose image files do not exist: valid creates reach the runtime checks and must fail cleanly.
  const now = Date.now();
  d.state.templates.insert({
    id: "tplfuzz", aliases: '["base"]', dir: join(d.dataDir, "templates", "tplfuzz"), kernel: "/nonexistent/vmlinuz",
    initrd: null, cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.0.0", public: false,
    cmdlineExtra: "", createdAt: now, updatedAt: now,
  });
});
afterAll(() => d.stop());

const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  d.api(path, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });

async function expectError(res: Response, status: number, contains?: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { code: number; message: string };
  expect(body.code).toBe(status);
  expect(typeof body.message).toBe("string");
  if (contains) expect(body.message).toContain(contains);
}

test("malformed JSON → 400", async () => {
  await expectError(await post("/v2/sandboxes", '{"templateID":'), 400, "not valid JSON");
  await expectError(await post("/sandboxes", "[1,2]"), 400, "JSON object");
  await expectError(await post("/v2/sandboxes", ""), 400, "empty");
});

test("wrong types → 400 naming the field", async () => {
  await expectError(await post("/v2/sandboxes", JSON.stringify({ templateID: 5 })), 400, "templateID");
  await expectError(await post("/v2/sandboxes", JSON.stringify({ templateID: "base", timeout: "x" })), 400, "timeout");
  await expectError(await post("/v2/sandboxes", JSON.stringify({ templateID: "base", metadata: { a: 1 } })), 400, "metadata");
  await expectError(await post("/v2/sandboxes", JSON.stringify({ templateID: "base", timeout: -1 })), 400, "timeout");
  await expectError(await post("/sandboxes/abc/timeout", JSON.stringify({ timeout: 1.5 })), 400, "timeout");
  await expectError(await d.api("/v2/sandboxes?limit=0"), 400, "limit");
  await expectError(await d.api("/v2/sandboxes?state=dead"), 400, "state");
  await expectError(await d.api("/v2/sandboxes?startedAfter=yesterday"), 400, "startedAfter");
  await expectError(await d.api("/v2/sandboxes?nextToken=garbage"), 400, "nextToken");
});

test("unknown template → 404 template '<x>' not found", async () => {
  await expectError(await post("/v2/sandboxes", JSON.stringify({ templateID: "nope" })), 404, "template 'nope' not found");
});

test("oversized bodies → 413, with and without Content-Length", async () => {
  const big = JSON.stringify({ templateID: "base", metadata: { k: "x".repeat(100 * 1024) } });
  await expectError(await post("/v2/sandboxes", big), 413, "larger than");
  // Chunked (no length), like Node's SDK sends: the cap counts streamed bytes.
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode("x".repeat(8192)));
      c.close();
    },
  });
  await expectError(await d.api("/v2/sandboxes", { method: "POST", body: stream, headers: { "content-type": "application/json" } }), 413);
});

test("unknown routes and methods → 404 JSON", async () => {
  await expectError(await d.api("/v9/sandboxes"), 404, "no route");
  await expectError(await d.api("/sandboxes", { method: "PATCH" }), 404);
});

test("operations on unknown sandboxes → 404 {code:404}", async () => {
  await expectError(await d.api("/sandboxes/nosuchid"), 404);
  await expectError(await d.api("/sandboxes/nosuchid", { method: "DELETE" }), 404);
  await expectError(await post("/sandboxes/nosuchid/timeout", '{"timeout":5}'), 404);
  await expectError(await post("/v2/sandboxes/nosuchid/connect", "{}"), 404);
  await expectError(await post("/sandboxes/nosuchid/connect", '{"timeout":5}'), 404);
  await expectError(await post("/sandboxes/nosuchid/pause", "{}"), 404);
  await expectError(await d.api("/sandboxes/nosuchid/metrics"), 404);
});

// Deterministic PRNG so a failure can be replayed.
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
}

function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 9);
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return Math.floor((r() - 0.5) * 1e6);
    case 3: return r() * 1e20;
    case 4: return "base";
    case 5: return String.fromCharCode(...Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 0xffff)));
    case 6: return depth > 2 ? [] : Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      if (depth > 2) return {};
      const keys = ["templateID", "timeout", "metadata", "envVars", "secure", "autoPause", "autoResume", "memory", "duration", "x"];
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(r() * 5); i++) o[keys[Math.floor(r() * keys.length)]!] = randomValue(r, depth + 1);
      return o;
    }
  }
}

test("fuzzer: 1000 random bodies to create/connect/timeout/list; daemon healthy, nothing leaked", async () => {
  const r = rng(42);
  const targets = ["/v2/sandboxes", "/sandboxes", "/v2/sandboxes/abc/connect", "/sandboxes/abc/connect", "/sandboxes/abc/timeout"];
  const statuses = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    let res: Response;
    if (i % 10 === 9) {
      const q = new URLSearchParams();
      for (const k of ["metadata", "state", "limit", "nextToken", "order", "startedAfter", "template"]) {
        if (r() < 0.4) q.set(k, String(randomValue(r)));
      }
      res = await d.api("/v2/sandboxes?" + q.toString());
    } else {
      const v = randomValue(r);
      const body = r() < 0.1 ? JSON.stringify(v).slice(0, -1) : JSON.stringify(v) ?? "";
      res = await post(targets[i % targets.length]!, body);
    }
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    // Every answer is an E2B-shaped error or a success; never a 500.
    expect(res.status).not.toBe(500);
    if (res.status >= 400) expect(((await res.json()) as { code: number }).code).toBe(res.status);
    else await res.arrayBuffer();
  }
  expect(statuses.get(400)).toBeGreaterThan(100);
  expect((await fetch(d.url + "/health")).status).toBe(200);
  expect(d.state.sandboxes.count()).toBe(0);
  const sbDir = join(d.dataDir, "sandboxes");
  expect(existsSync(sbDir) ? readdirSync(sbDir) : []).toEqual([]);
});
