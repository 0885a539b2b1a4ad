// Tests the E2B routes added by the docs/api.md audit: 501s for unsupported routes, batch metrics,
// log query parameters, template update and the v2 template list; and what the real SDK makes of them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as e2b from "e2b";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
const T0 = Date.parse("2026-01-01T00:00:00Z");

beforeAll(async () => {
  d = await startTestDaemon();
  for (const [i, id] of ["tplone", "tpltwo", "tplthree"].entries()) {
    const dir = join(d.dataDir, "templates", id);
    mkdirSync(dir, { recursive: true });
    for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(dir, f), "");
    d.state.templates.insert({
      id, aliases: JSON.stringify([id.slice(3)]), dir, kernel: join(dir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 256,
      diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: T0 + i, updatedAt: T0 + i,
    });
  }
  // A running row with no VM behind it: its log routes work from the database alone.
  d.state.sandboxes.insert({
    id: "logsrow", templateId: "tplone", state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: T0, endAt: T0 + 3_600_000,
  });
  const ev = (at: number, kind: string, detail: string) =>
    d.state.sqlite.run("INSERT INTO events (sandbox_id, at, kind, detail) VALUES (?, ?, ?, ?)", ["logsrow", at, kind, detail]);
  ev(T0 + 1000, "created", "template tplone");
  ev(T0 + 2000, "paused", "");
  ev(T0 + 3000, "resumed", "after 1 s");
  ev(T0 + 4000, "end", "panic: guest kernel panic"); // level warn (not killed/timeout)
});
afterAll(() => d.stop());

async function json(res: Response): Promise<{ status: number; body: unknown }> {
  return { status: res.status, body: await res.json() };
}

test("known but unsupported E2B routes answer 501 {code, message} saying why, not 404", async () => {
  for (const [method, path] of [
    ["GET", "/secrets"],
    ["DELETE", "/secrets/abc"],
    ["POST", "/volumes"],
    ["GET", "/volumes/abc"],
    ["GET", "/teams"],
    ["GET", "/teams/t1/metrics/max"],
  ]) {
    const r = await json(await d.api(path!, { method, body: method === "GET" ? undefined : "{}" }));
    expect({ method, path, status: r.status }).toEqual({ method, path, status: 501 });
    const b = r.body as { code: number; message: string };
    expect(b.code).toBe(501);
    expect(b.message).toMatch(/not (supported|served)/);
  }
  // Still 401 without a key: the 501s sit behind auth like every route.
  expect((await fetch(d.url + "/secrets")).status).toBe(401);
  // DELETE /templates/tags is the tags route (a body without tags: 400), not a delete of a template called "tags".
  expect((await d.api("/templates/tags", { method: "DELETE", body: "{}" })).status).toBe(400);
  expect(d.state.templates.list().length).toBe(3);
});

test("the real SDK reports an unsupported route as an error with the reason, not 'not found'", async () => {
  const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 10_000 };
  const err = await e2b.Volume.list(opts).then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(e2b.VolumeError);
  expect(err).not.toBeInstanceOf(e2b.NotFoundError);
  expect(err!.message).toContain("501");
  expect(err!.message).toContain("volumes are not supported");
});

test("an unsupported sandbox route answers 404 (not found), not 501, for an unknown or ended sandbox: the SDK raises SandboxNotFoundError", async () => {
  d.state.sandboxes.insert({
    id: "endedrow", templateId: "tplone", state: "ended", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: T0, endAt: T0 + 1000, endedAt: T0 + 500,
  });
  for (const id of ["nosuch", "endedrow"]) {
    for (const [method, path] of [["POST", `/sandboxes/${id}/fork`], ["POST", `/sandboxes/${id}/snapshots`]]) {
      const r = await json(await d.api(path!, { method, body: "{}" }));
      expect({ path, status: r.status, code: (r.body as { code: number }).code }).toEqual({ path, status: 404, code: 404 });
    }
  }
  const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 10_000 };
  const err = await e2b.Sandbox.createSnapshot("endedrow", opts).then(() => null, (e: unknown) => e as Error);
  expect(err).toBeInstanceOf(e2b.SandboxNotFoundError);
});

test("GET /sandboxes/{id}/metrics over a range without now is an empty list (no history is kept); start after end is 400", async () => {
  const now = Math.floor(Date.now() / 1000);
  // logsrow has no VM: a range that asks for the current sample cannot be served, one that does not need not be
  expect(await json(await d.api(`/sandboxes/logsrow/metrics?start=${now + 3600}&end=${now + 7200}`))).toEqual({ status: 200, body: [] });
  expect(await json(await d.api(`/sandboxes/logsrow/metrics?start=${now - 7200}&end=${now - 3600}`))).toEqual({ status: 200, body: [] });
  expect((await d.api(`/sandboxes/logsrow/metrics?start=${now - 60}&end=${now + 60}`)).status).toBe(503);
  expect((await d.api(`/sandboxes/logsrow/metrics?start=${now + 60}&end=${now - 60}`)).status).toBe(400);
  expect((await d.api(`/sandboxes/nosuch/metrics?start=${now + 3600}`)).status).toBe(404);
});

test("GET /sandboxes/metrics: 400 without ids, only running sandboxes with a sample, not shadowed by /sandboxes/{id}", async () => {
  const none = await json(await d.api("/sandboxes/metrics"));
  expect(none.status).toBe(400);
  expect((none.body as { message: string }).message).toContain("sandbox_ids");
  // logsrow has no VM (no sample): left out, like unknown ids. Both query forms are accepted.
  expect(await json(await d.api("/sandboxes/metrics?sandbox_ids=logsrow,nosuch"))).toEqual({ status: 200, body: { sandboxes: {} } });
  expect(await json(await d.api("/sandboxes/metrics?sandbox_ids=logsrow&sandbox_ids=nosuch"))).toEqual({ status: 200, body: { sandboxes: {} } });
  const many = Array.from({ length: 101 }, (_, i) => `s${i}`).join(",");
  expect((await d.api(`/sandboxes/metrics?sandbox_ids=${many}`)).status).toBe(400);
});

type V2Logs = { logs: { timestamp: string; level: string; message: string }[] };
const v2 = async (q: string) => {
  const res = await d.api("/v2/sandboxes/logsrow/logs" + q);
  expect(res.status).toBe(200);
  return ((await res.json()) as V2Logs).logs.map((l) => l.message);
};

test("v2 logs: cursor, direction, level, limit, search", async () => {
  expect(await v2("")).toEqual(["created: template tplone", "paused", "resumed: after 1 s", "end: panic: guest kernel panic"]);
  expect(await v2(`?cursor=${T0 + 2000}`)).toEqual(["paused", "resumed: after 1 s", "end: panic: guest kernel panic"]);
  expect(await v2(`?cursor=${T0 + 2500}&direction=backward`)).toEqual(["paused", "created: template tplone"]);
  expect(await v2("?direction=backward&limit=1")).toEqual(["end: panic: guest kernel panic"]);
  expect(await v2("?level=warn")).toEqual(["end: panic: guest kernel panic"]);
  expect(await v2("?level=debug&limit=2")).toEqual(["created: template tplone", "paused"]);
  expect(await v2("?search=after")).toEqual(["resumed: after 1 s"]);
  expect(await v2("?search=After")).toEqual([]);
  for (const q of ["?limit=0", "?limit=1001", "?direction=up", "?level=trace", "?cursor=-1", "?cursor=abc"]) {
    const r = await json(await d.api("/v2/sandboxes/logsrow/logs" + q));
    expect({ q, status: r.status }).toEqual({ q, status: 400 });
  }
  expect((await d.api("/v2/sandboxes/nosuch/logs")).status).toBe(404);
});

test("v1 logs: start and limit", async () => {
  const res = await d.api(`/sandboxes/logsrow/logs?start=${T0 + 3000}&limit=5`);
  const b = (await res.json()) as { logs: { line: string }[]; logEntries: { message: string; level: string }[] };
  expect(b.logs.map((l) => l.line)).toEqual(["resumed: after 1 s", "end: panic: guest kernel panic"]);
  expect(b.logEntries.map((l) => l.level)).toEqual(["info", "warn"]);
  const one = (await (await d.api("/sandboxes/logsrow/logs?limit=1")).json()) as { logs: { line: string }[] };
  expect(one.logs.map((l) => l.line)).toEqual(["created: template tplone"]);
  expect((await d.api("/sandboxes/logsrow/logs?start=soon")).status).toBe(400);
});

test("PATCH /templates/{id} (v1: 200, no body) and /v2/templates/{id} ({names}) set public; 404, 400", async () => {
  const v1 = await d.api("/templates/one", { method: "PATCH", body: JSON.stringify({ public: true }) });
  expect(v1.status).toBe(200);
  expect(await v1.text()).toBe("");
  expect(d.state.templates.byId("tplone")!.public).toBe(true);
  expect(await json(await d.api("/v2/templates/tplone", { method: "PATCH", body: JSON.stringify({ public: false }) }))).toEqual({
    status: 200,
    body: { names: ["one"] },
  });
  expect(d.state.templates.byId("tplone")!.public).toBe(false);
  expect(await json(await d.api("/templates/aliases/one"))).toEqual({ status: 200, body: { templateID: "tplone", public: false } });
  expect((await d.api("/v2/templates/nosuch", { method: "PATCH", body: "{}" })).status).toBe(404);
  const bad = await json(await d.api("/v2/templates/tplone", { method: "PATCH", body: JSON.stringify({ public: "yes" }) }));
  expect(bad.status).toBe(400);
  expect((bad.body as { message: string }).message).toContain("public");
});

test("GET /v2/templates pages oldest first with X-Next-Token", async () => {
  const seen: string[] = [];
  let token: string | null = null;
  let pages = 0;
  do {
    const res: Response = await d.api("/v2/templates?limit=2" + (token ? `&nextToken=${token}` : ""));
    expect(res.status).toBe(200);
    seen.push(...((await res.json()) as { templateID: string }[]).map((t) => t.templateID));
    token = res.headers.get("x-next-token");
    pages++;
  } while (token && pages < 5);
  expect(seen).toEqual(["tplone", "tpltwo", "tplthree"]);
  expect(pages).toBe(2);
  expect((await d.api("/v2/templates?nextToken=nonsense")).status).toBe(400);
  expect((await d.api("/v2/templates?limit=0")).status).toBe(400);
});
