// Tests the snapshot and fork routes' edges through the API and the real SDK on rows without a VM: POST
// /sandboxes/{id}/snapshots and /fork refusals (404 before a bad body, 400 bad input, 409 paused), GET /snapshots
// filters (a fork's capture is not listed) and X-Next-Token paging, and DELETE /templates/{snapshotID}: 409 while
// a live sandbox was created from it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as e2b from "e2b";
import type { NewSandboxRow } from "../store/index.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
const T0 = Date.parse("2026-01-01T00:00:00Z");

function template(id: string, at: number, snapshotOf: string | null, aliases: string[] = []): void {
  const dir = join(d.dataDir, "templates", id);
  mkdirSync(dir, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(dir, f), "");
  d.state.templates.insert({
    id, aliases: JSON.stringify(aliases), dir, kernel: join(dir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 256,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", snapshotOf, createdAt: at, updatedAt: at,
  });
}
function sandbox(id: string, patch: Partial<NewSandboxRow> = {}): void {
  d.state.sandboxes.insert({
    id, templateId: "tplbase", state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: T0, endAt: Date.now() + 3_600_000, ...patch,
  });
}

beforeAll(async () => {
  d = await startTestDaemon();
  template("tplbase", T0, null, ["base"]);
  for (let i = 0; i < 5; i++) template(`snap${i}`, T0 + 10 + i, i < 3 ? "sbxa" : "sbxb", i === 1 ? ["named-one"] : []);
  sandbox("sbxa");
  sandbox("sbxpaused", { state: "paused" });
  sandbox("fromsnap", { templateId: "snap4" });
  template("forkcap", T0 + 20, "sbxa");
  d.state.sqlite.run("UPDATE templates SET ephemeral = 1 WHERE id = 'forkcap'");
});
afterAll(() => d.stop());

const opts = () => ({ apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 10_000 });
const post = (path: string, body: string) => d.api(path, { method: "POST", body, headers: { "content-type": "application/json" } });

test("POST /sandboxes/{id}/snapshots: unknown 404 (before a bad body), bad name 400, paused 409, taken name 409", async () => {
  const codes = async (id: string, body: string) => {
    const r = await post(`/sandboxes/${id}/snapshots`, body);
    return [r.status, ((await r.json()) as { code: number }).code];
  };
  expect(await codes("nosuch", '{"name": "Bad Name!"}')).toEqual([404, 404]);
  expect(await codes("sbxa", '{"name": "Bad Name!"}')).toEqual([400, 400]);
  expect(await codes("sbxa", '{"name": 7}')).toEqual([400, 400]);
  expect(await codes("sbxpaused", "{}")).toEqual([409, 409]);
  expect(await codes("sbxa", '{"name": "base"}')).toEqual([409, 409]);
  await expect(e2b.Sandbox.createSnapshot("nosuch", opts())).rejects.toBeInstanceOf(e2b.SandboxNotFoundError);
  expect(d.state.templates.list()).toHaveLength(7);
});

test("POST /sandboxes/{id}/fork: unknown 404 (before a bad body), count 0 or over 10 400, paused 409; nothing made", async () => {
  const codes = async (id: string, body: string) => {
    const r = await post(`/sandboxes/${id}/fork`, body);
    return [r.status, ((await r.json()) as { code: number }).code];
  };
  expect(await codes("nosuch", '{"count": 0}')).toEqual([404, 404]);
  expect(await codes("sbxa", '{"count": 0}')).toEqual([400, 400]);
  expect(await codes("sbxa", '{"count": 11}')).toEqual([400, 400]);
  expect(await codes("sbxa", '{"timeout": -1}')).toEqual([400, 400]);
  expect(await codes("sbxpaused", '{"count": 2}')).toEqual([409, 409]);
  await expect(e2b.Sandbox.fork("nosuch", opts())).rejects.toBeInstanceOf(e2b.SandboxNotFoundError);
  expect(d.state.templates.list()).toHaveLength(7);
});

test("GET /snapshots: only snapshots, filtered by sandboxID and name, paged with X-Next-Token; the SDK pages through", async () => {
  const page = async (q: string) => {
    const r = await d.api(`/snapshots${q}`);
    expect(r.status).toBe(200);
    return { items: (await r.json()) as { snapshotID: string; names: string[] }[], next: r.headers.get("x-next-token") };
  };
  expect((await page("")).items.map((s) => s.snapshotID)).toEqual(["snap0", "snap1", "snap2", "snap3", "snap4"]);
  expect((await page("?sandboxID=sbxb")).items.map((s) => s.snapshotID)).toEqual(["snap3", "snap4"]);
  expect((await page("?name=named-one")).items).toEqual([{ snapshotID: "snap1", names: ["named-one"] }]);
  expect((await page("?name=snap2")).items.map((s) => s.snapshotID)).toEqual(["snap2"]);
  const first = await page("?limit=2&sandboxID=sbxa");
  expect(first.items.map((s) => s.snapshotID)).toEqual(["snap0", "snap1"]);
  const second = await page(`?limit=2&sandboxID=sbxa&nextToken=${first.next}`);
  expect(second).toEqual({ items: [{ snapshotID: "snap2", names: [] }], next: null });
  expect((await d.api("/snapshots?limit=0")).status).toBe(400);
  expect((await d.api("/snapshots?nextToken=garbage")).status).toBe(400);

  const p = e2b.Sandbox.listSnapshots({ ...opts(), limit: 2 });
  const all: string[] = [];
  while (p.hasNext) all.push(...(await p.nextItems()).map((s) => s.snapshotId));
  expect(all).toEqual(["snap0", "snap1", "snap2", "snap3", "snap4"]);
});

test("deleteSnapshot: 409 while a live sandbox was created from it, true once it ended, false when unknown", async () => {
  await expect(e2b.Sandbox.deleteSnapshot("snap4", opts())).rejects.toThrow("used by 1 live sandbox");
  expect(d.state.templates.byId("snap4")).toBeDefined();
  d.state.sandboxes.update("fromsnap", { state: "ended", endedAt: Date.now(), endReason: "killed" });
  expect(await e2b.Sandbox.deleteSnapshot("snap4", opts())).toBe(true);
  expect(await e2b.Sandbox.deleteSnapshot("snap4", opts())).toBe(false);
  expect((await d.api("/snapshots?sandboxID=sbxb")).status).toBe(200);
  expect(((await (await d.api("/snapshots?sandboxID=sbxb")).json()) as unknown[]).length).toBe(1);
});
