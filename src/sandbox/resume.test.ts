// Resume from a pause to disk with the machine layer faked: a new VM restored from paused/, hygiene, /init with
// the token the agent holds; each failure leaves the sandbox paused with its snapshot, so a retry works.
import { afterEach, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import type { FakeStep } from "../machine/fake-machine.ts";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import { sandboxPaths } from "./paths.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("resume: running again in a new VM restored from paused/, which is then removed; a new end time", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  await s.manager.pause(row.id);
  s.fm.calls.length = 0;
  const resumed = await s.manager.resume(row.id, 60);
  expect(resumed.state).toBe("running");
  expect(resumed.endAt).toBeGreaterThan(Date.now() + 55_000);
  const vm = s.fm.vm(sandboxPaths(s.config, row.id).runDir)!;
  expect(vm.spec.restoreFrom).toBe(sandboxPaths(s.config, row.id).pauseDir);
  expect(resumed.vmPid).toBe(vm.pid);
  // One /init carrying the hygiene; no readiness probe: the paused guest was ready.
  expect(s.fm.calls.filter((c) => c !== "stats")).toEqual(["spawn", "init", `init ${row.runDir} +hygiene`]);
  expect(s.files(row.id).paused).toBe(false);
  expect(s.manager.route(row.id)).not.toBeNull();
  await expect(s.manager.resume(row.id)).rejects.toThrow(`sandbox ${row.id} is running, not paused`);
});

test("a filesystem-only pause resumes by a boot of its own layer: no restore, no hygiene, the marker removed", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  await s.manager.pause(row.id, { memory: false });
  s.fm.calls.length = 0;
  const resumed = await s.manager.resume(row.id, 60);
  expect(resumed.state).toBe("running");
  const vm = s.fm.vm(sandboxPaths(s.config, row.id).runDir)!;
  expect(vm.spec.restoreFrom).toBeUndefined();
  expect(vm.spec.disks.map((d) => d.path)).toContain(sandboxPaths(s.config, row.id).layer);
  expect(s.fm.calls).not.toContain("hygiene");
  expect(s.files(row.id).paused).toBe(false);
  expect(s.state.sandboxes.eventsOf(row.id).map((e) => e.kind)).toContain("rebooted");
});

test("connect with reboot (E2B's memory: false) boots a memory pause afresh and drops its snapshot and base", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const p = sandboxPaths(s.config, row.id);
  await s.manager.pause(row.id);
  writeFileSync(p.baseFile, "/some/template/snapshot/vm");
  const { resumed } = await s.manager.connect(row.id, 60, { reboot: true });
  expect(resumed).toBe(true);
  expect(s.fm.vm(p.runDir)!.spec.restoreFrom).toBeUndefined();
  expect(existsSync(p.pauseDir) || existsSync(p.baseFile)).toBe(false);
});

for (const step of ["spawn", "hygiene", "init"] as FakeStep[]) {
  test(`resume fails at ${step}: 503, still paused with its snapshot, no VM or run dir left; a retry resumes`, async () => {
    s = await fakeSandboxes();
    const row = await s.create();
    await s.manager.pause(row.id);
    s.fm.failOnce.add(step);
    await expect(s.manager.resume(row.id)).rejects.toMatchObject({ kind: "unavailable" });
    expect(s.manager.get(row.id)?.state).toBe("paused");
    expect(s.files(row.id)).toEqual({ sandboxDir: true, runDir: false, layer: true, paused: true });
    for (const vm of s.fm.vms.values()) expect(vm.state).toBe("ended");
    expect(s.manager.route(row.id)).toBeNull();
    expect((await s.manager.resume(row.id)).state).toBe("running");
  });
}

test("auto-resume: traffic to a paused autoResume sandbox resumes it; without autoResume it stays paused (502)", async () => {
  s = await fakeSandboxes();
  const auto = await s.create({ autoResume: true });
  const plain = await s.create();
  await s.manager.pause(auto.id);
  await s.manager.pause(plain.id);
  expect(await s.manager.routeOrResume(plain.id)).toBeNull();
  expect(s.manager.get(plain.id)?.state).toBe("paused");
  const r = await s.manager.routeOrResume(auto.id);
  expect(r).not.toBeNull();
  expect(await r!.socket(49983)).toBe(`${sandboxPaths(s.config, auto.id).runDir}/vsock.sock.tcp-49983`);
  expect(await r!.socket(8080)).toBe(`${sandboxPaths(s.config, auto.id).runDir}/fwd-8080`);
  expect(s.manager.get(auto.id)?.state).toBe("running");
});
