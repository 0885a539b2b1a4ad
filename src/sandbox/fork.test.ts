// Fork with the machine layer faked: one capture of the running parent, `count` sandboxes created from it (each its
// own id and token, the parent's metadata and env), partial failure per entry with nothing of a failed one left, and
// the hidden capture removed once no live sandbox uses it (at once when every fork failed).
import { afterEach, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Admission } from "../scheduler/admission.ts";
import { rateLimited } from "../util/errors.ts";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import type { Admit, ForkResult } from "./fork.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

const admitAll: Admit = (_cost, fn) => fn();
const sandboxes = (r: ForkResult[]) => r.flatMap((x) => ("sandbox" in x ? [x.sandbox] : []));
const errors = (r: ForkResult[]) => r.flatMap((x) => ("error" in x ? [x.error] : []));
const captures = () => s.state.templates.list().filter((t) => t.ephemeral);

test("fork of 3: one capture, three sandboxes from it with their own ids and tokens; the capture goes with the last fork", async () => {
  s = await fakeSandboxes();
  const parent = await s.create({ metadata: { job: "x" }, envVars: { A: "1" } });
  const r = await s.manager.fork(parent.id, { count: 3, timeoutSec: 60 }, admitAll);
  const forks = sandboxes(r);
  expect(forks).toHaveLength(3);
  expect(s.fm.calls.filter((c) => c === "snapshot")).toHaveLength(1);
  const [capture] = captures();
  expect(capture).toMatchObject({ snapshotOf: parent.id, aliases: "[]" });
  expect(new Set([parent.id, ...forks.map((f) => f.id)]).size).toBe(4);
  expect(new Set([parent.envdAccessToken, ...forks.map((f) => f.envdAccessToken)]).size).toBe(4);
  for (const f of forks) {
    expect(f).toMatchObject({ templateId: capture!.id, state: "running", metadata: '{"job":"x"}', envVars: '{"A":"1"}' });
    expect(f.endAt - Date.now()).toBeLessThanOrEqual(60_000);
  }
  expect(s.manager.get(parent.id)?.state).toBe("running");
  // The parent's end leaves the forks; the capture stays until the last of them ends.
  await s.manager.kill(parent.id);
  await s.manager.kill(forks[0]!.id);
  await s.manager.kill(forks[1]!.id);
  expect(captures()).toHaveLength(1);
  expect(s.manager.get(forks[2]!.id)?.state).toBe("running");
  await s.manager.kill(forks[2]!.id);
  expect(captures()).toHaveLength(0);
  expect(existsSync(capture!.dir)).toBe(false);
});

test("partial failure: the failed fork is an error entry and leaves no row or dir; the others run", async () => {
  s = await fakeSandboxes();
  const parent = await s.create();
  const dirsBefore = s.sandboxDirs().length;
  s.fm.failOnce.add("init");
  const r = await s.manager.fork(parent.id, { count: 3 }, admitAll);
  expect(sandboxes(r)).toHaveLength(2);
  expect(errors(r)).toEqual([expect.objectContaining({ kind: "unavailable" })]);
  expect(s.sandboxDirs().length).toBe(dirsBefore + 2);
  expect(s.state.sandboxes.countLiveOfTemplate(captures()[0]!.id)).toBe(2);
});

test("every fork refused (admission) or failed: error entries, the capture removed at once, the parent running", async () => {
  s = await fakeSandboxes();
  const parent = await s.create();
  const dirs = () => readdirSync(join(s.dir, "templates")).sort();
  const before = dirs();
  const full: Admit = () => Promise.reject(rateLimited("host is full", 5));
  const r = await s.manager.fork(parent.id, { count: 2 }, full);
  expect(errors(r).map((e) => (e as { kind: string }).kind)).toEqual(["rate-limited", "rate-limited"]);
  s.fm.fail.add("spawn");
  expect(errors(await s.manager.fork(parent.id, { count: 2 }, admitAll))).toHaveLength(2);
  expect(captures()).toEqual([]);
  expect(dirs()).toEqual(before);
  expect(s.manager.get(parent.id)?.state).toBe("running");
});

test("a failed capture makes nothing; a paused parent is 409; the sweep drops a capture no sandbox uses", async () => {
  s = await fakeSandboxes();
  const parent = await s.create();
  s.fm.failOnce.add("snapshot");
  await expect(s.manager.fork(parent.id, { count: 2 }, admitAll)).rejects.toMatchObject({ kind: "unavailable" });
  expect(s.state.templates.list()).toHaveLength(1);
  const r = await s.manager.fork(parent.id, { count: 1 }, admitAll);
  const [capture] = captures();
  // Its fork ends while no daemon runs (the row alone says so): the next start's sweep removes the capture.
  s.state.sandboxes.update(sandboxes(r)[0]!.id, { state: "ended", endedAt: Date.now(), endReason: "killed" });
  await s.manager.warmTemplates();
  expect(s.state.templates.byId(capture!.id)).toBeUndefined();
  await s.manager.pause(parent.id);
  await expect(s.manager.fork(parent.id, { count: 1 }, admitAll)).rejects.toThrow("only a running sandbox can be forked");
});

test("fork of 10 past a concurrent-create bound of 2: every entry waits for a slot and is made (was: 8 entries 429)", async () => {
  s = await fakeSandboxes();
  const parent = await s.create();
  const admission = new Admission({ cpuBudget: 64, memoryBudgetMib: 65536, maxConcurrentCreates: 2, retryAfterSec: 3 }, () => ({ cpus: 0, memoryMib: 0 }));
  const r = await s.manager.fork(parent.id, { count: 10 }, (cost, fn) => admission.admit(cost, fn, { waitForSlotMs: 10_000 }));
  expect(errors(r)).toEqual([]);
  expect(new Set(sandboxes(r).map((f) => f.id)).size).toBe(10);
});
