// GET /metrics through the API app over a real store, with the machine layer faked: the key as Bearer or X-API-Key,
// Prometheus's own checker (`promtool check metrics`, Debian's prometheus package, a test dependency of scripts/install-deps.sh)
// finds no problem, and the counters and gauges move as sandboxes are created, fail and end.
import { afterEach, expect, test } from "bun:test";
import type { Hono } from "hono";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { Admission } from "../scheduler/admission.ts";
import { createApi } from "./app.ts";
import { startTestDaemon } from "./test-support.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

/** promtool's verdict on an exposition: its exit code and what it printed. */
function promtool(text: string): { code: number; out: string } {
  const r = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(text), stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The value of one series line, e.g. `onebox_sandboxes{state="running",template="tpl"}`; NaN if absent. */
function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

test("GET /metrics: the key as Bearer or X-API-Key, none is 401; promtool finds no problem; counters and gauges move", async () => {
  s = await fakeSandboxes({ auth: true });
  const { key } = s.state.keys.create("prometheus");
  const app: Hono = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  const get = async (headers: Record<string, string>) => app.request("/metrics", { headers });

  expect((await get({})).status).toBe(401);
  expect((await get({ authorization: "Bearer e2b_wrong" })).status).toBe(401);
  const empty = await get({ authorization: `Bearer ${key}` });
  expect(empty.status).toBe(200);
  expect(empty.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const before = await empty.text();
  expect(value(before, 'onebox_admission_vcpus{kind="budget"}')).toBe(s.config.cpuBudget);

  const a = await s.create();
  const b = await s.create();
  // What b's network slot denied (the slot's eBPF counters and the name proxy's refusals, faked here).
  s.fm.net.dropsByFd.set(s.fm.vm(s.state.sandboxes.get(b.id)!.runDir!)!.spec.net!.tapFd, { policy: 3, name: 2 });
  s.fm.failOnce.add("init");
  await expect(s.create()).rejects.toThrow();
  await s.manager.kill(a.id);

  const res = await get({ "x-api-key": key });
  expect(res.status).toBe(200);
  const text = await res.text();
  const check = promtool(text);
  expect(check.out).toBe("");
  expect(check.code).toBe(0);
  expect(value(text, 'onebox_sandboxes{state="running",template="tpl"}')).toBe(1);
  expect(value(text, 'onebox_sandbox_creates_total{mode="cold_boot",warm_pool="off"}')).toBe(2);
  expect(value(text, 'onebox_sandbox_create_failures_total{reason="unavailable"}')).toBe(1);
  expect(value(text, 'onebox_sandbox_create_seconds_count{mode="cold_boot"}')).toBe(2);
  expect(value(text, 'onebox_sandbox_create_stage_seconds_count{mode="cold_boot",stage="init"}')).toBe(2);
  expect(value(text, 'onebox_admission_vcpus{kind="used"}')).toBe(1);
  expect(value(text, 'onebox_admission_memory_bytes{kind="used"}')).toBe(s.template.memoryMb * 1024 * 1024);
  expect(value(text, "onebox_sandbox_snapshots")).toBe(0);
  expect(value(text, 'onebox_network_denied_total{reason="policy"}')).toBe(3);
  expect(value(text, 'onebox_network_denied_total{reason="name"}')).toBe(2);
});

test("the data plane's answers are counted by status class (a running daemon, requests for sandboxes it does not have)", async () => {
  const d = await startTestDaemon();
  try {
    const ask = (headers: Record<string, string>) => fetch(`${d.url}/health`, { headers });
    const codes = [(await ask({ "e2b-sandbox-id": "nope", "e2b-sandbox-port": "49983" })).status, (await ask({ "e2b-sandbox-id": "nope2", "e2b-sandbox-port": "8000" })).status];
    const text = await (await d.api("/metrics")).text();
    const byClass = (c: number) => codes.filter((x) => Math.floor(x / 100) === c).length;
    for (const c of new Set(codes.map((x) => Math.floor(x / 100)))) expect(value(text, `onebox_dataplane_requests_total{code="${c}xx"}`)).toBe(byClass(c));
    expect(codes.every((c) => c >= 400)).toBe(true);
    expect(promtool(text).code).toBe(0);
  } finally {
    await d.stop();
  }
});
