// Pause to disk with the machine layer faked: the snapshot in the sandbox's dir and the VM gone (its exit is the
// park's, not an end); each failure leaves the sandbox running with its VM, timer and no half-written snapshot.
import { afterEach, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import { FILESYSTEM_ONLY, sandboxPaths } from "./paths.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("pause: paused, a full snapshot in paused/, the VM stopped and not an end, no route", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const vm = s.fm.vm(row.runDir!)!;
  await s.manager.pause(row.id);
  expect(s.manager.get(row.id)).toMatchObject({ state: "paused", vmPid: null, endedAt: null });
  expect(s.state.sandboxes.eventsOf(row.id).map((e) => e.kind).slice(3)).toEqual(["pausing", "saved", "paused"]);
  expect(vm.state).toBe("ended");
  expect(existsSync(join(sandboxPaths(s.config, row.id).pauseDir, "state"))).toBe(true);
  expect(s.manager.route(row.id)).toBeNull();
  await expect(s.manager.pause(row.id)).rejects.toThrow("is already paused");
});

test("a restored sandbox's pause writes a diff over its base; a failed diff falls back to a full snapshot", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const p = sandboxPaths(s.config, row.id);
  writeFileSync(p.baseFile, "/some/template/snapshot/vm");
  s.fm.failOnce.add("snapshot-diff");
  await s.manager.pause(row.id);
  expect(s.fm.calls.filter((c) => c.startsWith("snapshot"))).toEqual(["snapshot-diff", "snapshot"]);
  expect(existsSync(p.baseFile)).toBe(false); // its resumed VM no longer depends on the template snapshot
  expect(s.manager.get(row.id)?.state).toBe("paused");
});

for (const step of ["pause", "snapshot"] as const) {
  test(`pause fails at ${step}: 503, still running with its VM, route and timer, no snapshot left`, async () => {
    s = await fakeSandboxes();
    const row = await s.create();
    const vm = s.fm.vm(row.runDir!)!;
    s.fm.fail.add(step);
    await expect(s.manager.pause(row.id)).rejects.toMatchObject({ kind: "unavailable" });
    expect(s.manager.get(row.id)?.state).toBe("running");
    expect(vm.state).toBe("running");
    expect(s.manager.route(row.id)).not.toBeNull();
    expect(s.files(row.id).paused).toBe(false);
    // The VM's exit after a failed pause is an end again (its ending was cleared).
    vm.crash("poweroff");
    await Bun.sleep(20);
    expect(s.manager.get(row.id)).toMatchObject({ state: "ended", endReason: "poweroff" });
  });
}

test("pause of a sandbox whose VM this daemon does not hold: 503 saying what to do, state unchanged", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  s.fm.vms.clear();
  await s.restart(); // adopt finds no VM: the sandbox ends as lost
  expect(s.manager.get(row.id)?.endReason).toBe("lost");
  const now = Date.now();
  s.state.sandboxes.insert({
    id: "orphan", templateId: "tpl", state: "running", cpuCount: 1, memoryMb: 128, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: null, metadata: "{}", envVars: "{}", secure: false, startedAt: now, endAt: now + 60_000,
  });
  await expect(s.manager.pause("orphan")).rejects.toThrow("has no VM process attached to this daemon");
  expect(s.manager.get("orphan")?.state).toBe("running");
});

test("pause with memory: false: the guest syncs its disks before its vCPUs stop, no snapshot, the layer and a marker stay", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const vm = s.fm.vm(row.runDir!)!;
  const p = sandboxPaths(s.config, row.id);
  writeFileSync(p.baseFile, "/some/template/snapshot/vm");
  s.fm.calls.length = 0;
  await s.manager.pause(row.id, { memory: false });
  expect(s.fm.calls.filter((c) => c !== "stats")).toEqual(["sync", "pause", "stop"]);
  expect(vm.state).toBe("ended");
  expect(s.manager.get(row.id)).toMatchObject({ state: "paused", vmPid: null, endedAt: null });
  expect(existsSync(join(p.pauseDir, FILESYSTEM_ONLY)) && !existsSync(join(p.pauseDir, "state"))).toBe(true);
  expect(existsSync(p.layer)).toBe(true);
  expect(s.state.sandboxes.eventsOf(row.id).find((e) => e.kind === "saved")?.detail).toBe("filesystem only (the resume boots it afresh)");
  // A daemon restart keeps it paused (it has something to resume from).
  await s.restart();
  expect(s.manager.get(row.id)?.state).toBe("paused");
});

test("pause with memory: false whose guest cannot sync: 503, still running, nothing written", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  s.fm.failOnce.add("sync");
  await expect(s.manager.pause(row.id, { memory: false })).rejects.toMatchObject({ kind: "unavailable" });
  expect(s.manager.get(row.id)?.state).toBe("running");
  expect(s.fm.vm(row.runDir!)!.state).toBe("running");
  expect(s.files(row.id).paused).toBe(false);
});
