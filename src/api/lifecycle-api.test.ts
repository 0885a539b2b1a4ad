// Tests lifecycle operations through the API on rows without a VM: deadlines, kill, timeout, connect, pause.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sandboxCommand } from "../cli/sandbox.ts";
import type { NewSandboxRow } from "../store/index.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
});
afterAll(() => d.stop());

let n = 0;
function insert(patch: Partial<NewSandboxRow> = {}): string {
  const id = `lc${n++}x`;
  d.state.sandboxes.insert({
    id, templateId: "t", state: "running", cpuCount: 1, memoryMb: 128, diskSizeMb: 256, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: Date.now(),
    endAt: Date.now() + 3_600_000, ...patch,
  });
  return id;
}
const post = (path: string, body: unknown) => d.api(path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

test("timeout may shorten; the sandbox is gone about 1 s after its deadline, reason timeout", async () => {
  const id = insert();
  expect((await post(`/sandboxes/${id}/timeout`, { timeout: 1 })).status).toBe(204);
  const end = Date.parse(((await (await d.api(`/sandboxes/${id}`)).json()) as { endAt: string }).endAt);
  expect(end - Date.now()).toBeLessThan(1100);
  await Bun.sleep(1300);
  const res = await d.api(`/sandboxes/${id}`);
  expect(res.status).toBe(404);
  expect(((await res.json()) as { code: number }).code).toBe(404);
  const row = d.state.sandboxes.get(id)!;
  expect(row.state).toBe("ended");
  expect(row.endReason).toBe("timeout");
  expect(row.endedAt! - end).toBeLessThan(1000);
});

test("kill → 204, then 404 everywhere; the row keeps its reason", async () => {
  const id = insert();
  expect((await d.api(`/sandboxes/${id}`, { method: "DELETE" })).status).toBe(204);
  expect((await d.api(`/sandboxes/${id}`, { method: "DELETE" })).status).toBe(404);
  expect((await d.api(`/sandboxes/${id}`)).status).toBe(404);
  expect((await post(`/sandboxes/${id}/timeout`, { timeout: 10 })).status).toBe(404);
  expect(d.state.sandboxes.get(id)?.endReason).toBe("killed");
  expect(d.state.sandboxes.eventsOf(id).map((e) => e.kind)).toContain("end");
});

test("connect extends the TTL only (200 for a running sandbox)", async () => {
  const id = insert({ endAt: Date.now() + 1_000_000 });
  const before = d.state.sandboxes.get(id)!.endAt;
  const res = await post(`/sandboxes/${id}/connect`, { timeout: 10 });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { sandboxID: string; envdAccessToken: string; clientID: string };
  expect(body.sandboxID).toBe(id);
  expect(body.envdAccessToken).toBe("tok");
  expect(d.state.sandboxes.get(id)!.endAt).toBe(before);
  expect((await post(`/v2/sandboxes/${id}/connect`, { timeout: 2000 })).status).toBe(200);
  expect(d.state.sandboxes.get(id)!.endAt).toBeGreaterThan(before);
  // v2 accepts an empty body.
  expect((await d.api(`/v2/sandboxes/${id}/connect`, { method: "POST" })).status).toBe(200);
});

test("pause: 409 when already paused; no VM attached → 503 saying what to do", async () => {
  const paused = insert({ state: "paused" });
  const res = await post(`/sandboxes/${paused}/pause`, {});
  expect(res.status).toBe(409);
  expect(((await res.json()) as { code: number }).code).toBe(409);
  const running = insert();
  const r2 = await post(`/sandboxes/${running}/pause`, {});
  expect(r2.status).toBe(503);
  expect(((await r2.json()) as { message: string }).message).toContain("kill it");
  expect(d.state.sandboxes.get(running)!.state).toBe("running");
  expect((await post(`/sandboxes/${running}/resume`, {})).status).toBe(409);
});

test("connect while an operation is in flight → 409", async () => {
  const id = insert({ state: "pausing" });
  expect((await post(`/sandboxes/${id}/connect`, { timeout: 10 })).status).toBe(409);
});

test("data plane: paused, ended and unknown sandboxes answer 502 JSON (spec §2.3)", async () => {
  for (const id of [insert({ state: "paused" }), "doesnotexist"]) {
    const res = await fetch(d.url + "/health", { headers: { "E2b-Sandbox-Id": id, "E2b-Sandbox-Port": "49983" } });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ sandboxId: id, message: "The sandbox was not found", code: 502 });
  }
  const byHost = await fetch(d.url + "/health", { headers: { Host: "49983-doesnotexist.localhost:3000" } });
  expect(byHost.status).toBe(502);
  const half = await fetch(d.url + "/health", { headers: { "E2b-Sandbox-Id": "x" } });
  expect(half.status).toBe(400);
});

test("`onebox sandbox ls --all --json` shows ended sandboxes with their reason", async () => {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    expect(await sandboxCommand(["ls", "--all", "--json", "--data-dir", d.dataDir])).toBe(0);
  } finally {
    console.log = orig;
  }
  const rows = JSON.parse(lines.join("")) as { state: string; endReason: string | null }[];
  expect(rows.some((r) => r.state === "ended" && r.endReason === "timeout")).toBe(true);
  expect(rows.some((r) => r.state === "ended" && r.endReason === "killed")).toBe(true);
});
