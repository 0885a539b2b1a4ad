// The metrics history with the machine layer faked, over a real store: rounds record a sample per running sandbox
// (not a paused one), GET /sandboxes/{id}/metrics answers the range from them (plus a sample of now when the range
// holds the present), and samples past the retention go.
import { afterEach, expect, test } from "bun:test";
import { createApi } from "../api/app.ts";
import { Admission } from "../scheduler/admission.ts";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("rounds record running sandboxes; the route answers a range from them, and now's sample when it holds the present", async () => {
  s = await fakeSandboxes({ auth: false });
  const a = await s.create();
  const b = await s.create();
  await s.manager.pause(b.id);
  await s.manager.sampleMetrics();
  await Bun.sleep(5);
  await s.manager.sampleMetrics();
  const recorded = s.state.metrics.range(a.id, 0, Date.now());
  expect(recorded).toHaveLength(2);
  expect(s.state.metrics.range(b.id, 0, Date.now())).toEqual([]); // paused: no sample
  const app = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  const get = async (q = "") => (await app.request(`/sandboxes/${a.id}/metrics${q}`)).json() as Promise<{ timestampUnix: number; memTotal: number }[]>;
  const all = await get();
  expect(all).toHaveLength(3); // two recorded, one now
  expect(all.every((m) => m.memTotal === 1)).toBe(true);
  const first = Math.floor(recorded[0]!.ts / 1000);
  // A range that ended before the present (the route counts whole seconds): the recorded samples only.
  while (Math.floor(Date.now() / 1000) <= first) await Bun.sleep(50);
  expect(await get(`?start=${first}&end=${first}`)).toHaveLength(recorded.filter((r) => Math.floor(r.ts / 1000) === first).length);
  // A range in the future: nothing.
  expect(await get(`?start=${first + 3600}`)).toEqual([]);
  // The paused sandbox: its (empty) history, no 503.
  expect(await (await app.request(`/sandboxes/${b.id}/metrics`)).json()).toEqual([]);
});

test("samples older than the retention are deleted by the next round", async () => {
  s = await fakeSandboxes({ metricsRetentionMin: 1 });
  const a = await s.create();
  const old = { sandboxId: a.id, ts: Date.now() - 61_000, cpuCount: 1, cpuUsedPct: 0, memUsed: 1, memTotal: 1, memCache: 0, diskUsed: 1, diskTotal: 1 };
  s.state.metrics.insert(old);
  expect(s.state.metrics.range(a.id, 0, Date.now())).toHaveLength(1);
  await s.manager.sampleMetrics();
  const left = s.state.metrics.range(a.id, 0, Date.now());
  expect(left).toHaveLength(1);
  expect(left[0]!.ts).toBeGreaterThan(old.ts);
});
