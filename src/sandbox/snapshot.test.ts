// Snapshot of a running sandbox with the machine layer faked: a template made of its captured VM and layer while the
// sandbox runs on, usable as a templateID (by id and by name); each failure leaves the sandbox running and no row or
// dir of the snapshot behind; refusals (unknown, paused, a taken name) make nothing.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { snapshotKey, snapshotPaths } from "../templates/snapshot.ts";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

const templateDirs = () => readdirSync(join(s.dir, "templates")).sort();

test("snapshot: the sandbox runs on; a template with the captured VM, layer and guest token; a create restores it", async () => {
  s = await fakeSandboxes({ templateSnapshots: true });
  const row = await s.create();
  const vm = s.fm.vm(row.runDir!)!;
  const before = s.fm.calls.length;
  const t = await s.manager.snapshot(row.id, "snap-one");
  expect(s.fm.calls.slice(before)).toEqual(["pause", "snapshot", "resume"]);
  expect(vm.state).toBe("running");
  expect(s.manager.get(row.id)?.state).toBe("running");
  expect(s.manager.route(row.id)).not.toBeNull();
  expect(t).toMatchObject({ snapshotOf: row.id, aliases: '["snap-one"]', memoryMb: s.template.memoryMb, kernel: s.template.kernel });
  expect(s.state.templates.resolve("snap-one")?.id).toBe(t.id);
  const p = snapshotPaths(t, await snapshotKey(s.config, t));
  expect(existsSync(join(p.vmDir, "state"))).toBe(true);
  expect(existsSync(p.layer) && existsSync(join(t.dir, "layer.ext4")) && existsSync(join(t.dir, "rootfs.ext4"))).toBe(true);
  expect(JSON.parse(readFileSync(p.meta, "utf8")).guestToken).toBe(row.envdAccessToken!);
  const ev = s.state.sandboxes.eventsOf(row.id).find((e) => e.kind === "snapshot");
  expect(ev?.detail).toMatch(new RegExp(`^${t.id} taken in \\d+ ms \\(paused \\d+ ms\\), [\\d.]+ MiB written$`));

  // By name and by id: restored from the snapshot's VM dir, the /init shows the token its guest holds.
  for (const templateID of ["snap-one", t.id]) {
    const clone = await s.create({ templateID });
    expect(clone).toMatchObject({ templateId: t.id, state: "running" });
    expect(s.fm.vm(clone.runDir!)!.spec.restoreFrom).toBe(p.vmDir);
    expect(s.fm.initTokenHeaders.at(-1)).toBe(row.envdAccessToken);
    expect(clone.envdAccessToken).not.toBe(row.envdAccessToken);
  }
  // The source sandbox's end does not take the snapshot with it.
  await s.manager.kill(row.id);
  expect(existsSync(join(p.vmDir, "state"))).toBe(true);
});

for (const step of ["pause", "snapshot", "resume"] as const) {
  test(`snapshot fails at ${step}: 503, no snapshot row or dir left, the sandbox running with its route`, async () => {
    s = await fakeSandboxes();
    const row = await s.create();
    const vm = s.fm.vm(row.runDir!)!;
    const dirs = templateDirs();
    s.fm.failOnce.add(step);
    const err = s.manager.snapshot(row.id, "snap-x");
    await expect(err).rejects.toMatchObject({ kind: "unavailable" });
    if (step === "resume") await expect(err).rejects.toThrow("kill it");
    expect(templateDirs()).toEqual(dirs);
    expect(s.state.templates.list().map((t) => t.id)).toEqual(["tpl"]);
    expect(s.manager.get(row.id)?.state).toBe("running");
    if (step !== "resume") expect(vm.state).toBe("running");
    expect(s.manager.route(row.id)).not.toBeNull();
    // Nothing is held: the name is free and the next snapshot succeeds.
    expect((await s.manager.snapshot(row.id, "snap-x")).snapshotOf).toBe(row.id);
  });
}

test("refused: unknown sandbox 404, paused 409, a taken name 409; nothing made", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const dirs = templateDirs();
  await expect(s.manager.snapshot("nope")).rejects.toMatchObject({ kind: "not-found" });
  await expect(s.manager.snapshot(row.id, "base")).rejects.toMatchObject({ kind: "conflict" });
  await s.manager.pause(row.id);
  const paused = s.manager.snapshot(row.id);
  await expect(paused).rejects.toMatchObject({ kind: "conflict" });
  await expect(paused).rejects.toThrow("only a running sandbox can be snapshotted: resume it (connect) first");
  expect(templateDirs()).toEqual(dirs);
  expect(s.state.templates.list()).toHaveLength(1);
});
