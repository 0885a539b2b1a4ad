// Connect and the timeout routes with the machine layer faked: a running sandbox's TTL only grows, a paused one
// is resumed, one in flight is waited for, and setTimeout may shorten.
import { afterEach, expect, test } from "bun:test";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("connect to a running sandbox extends its end time, never shortens it", async () => {
  s = await fakeSandboxes();
  const row = await s.create({ timeoutSec: 600 });
  const short = await s.manager.connect(row.id, 10);
  expect(short).toMatchObject({ resumed: false, row: { endAt: row.endAt } });
  const long = await s.manager.connect(row.id, 3600);
  expect(long.resumed).toBe(false);
  expect(long.row.endAt).toBeGreaterThan(Date.now() + 3500_000);
});

test("connect to a paused sandbox resumes it (resumed: true); setTimeout may shorten", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  await s.manager.pause(row.id);
  const c = await s.manager.connect(row.id, 120);
  expect(c.resumed).toBe(true);
  expect(c.row.state).toBe("running");
  const t = s.manager.setTimeout(row.id, 5);
  expect(t.endAt).toBeLessThan(Date.now() + 6000);
});

test("connect while a pause is in flight waits for it, then resumes (not 409); unknown: 404", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  let open!: () => void;
  s.fm.gate.snapshot = new Promise<void>((r) => (open = r));
  const pausing = s.manager.pause(row.id);
  await Bun.sleep(20);
  expect(s.state.sandboxes.get(row.id)?.state).toBe("pausing");
  const connecting = s.manager.connect(row.id, 60);
  const second = s.manager.connect(row.id, 90); // two waiters: one resumes, the other finds it running
  await Bun.sleep(20);
  open();
  await pausing;
  const [c, c2] = await Promise.all([connecting, second]);
  expect(c).toMatchObject({ resumed: true, row: { state: "running" } });
  expect(c2).toMatchObject({ resumed: false, row: { state: "running" } });
  const after = s.fm.calls.slice(s.fm.calls.indexOf("snapshot"));
  expect(after.filter((x) => x === "spawn")).toEqual(["spawn"]); // resumed once, from the snapshot the pause made


  await expect(s.manager.connect("nosuchsandbox", 60)).rejects.toMatchObject({ kind: "not-found" });
});
