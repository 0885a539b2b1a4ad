// Snapshot of a running sandbox with the machine layer faked: a template made of its captured VM and layer while the
// sandbox runs on, usable as a templateID (by id and by name); each failure leaves the sandbox running and no row or
// dir of the snapshot behind; refusals (unknown, paused, a taken name) make nothing.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { snapshotKey, snapshotPaths } from "../templates/snapshot.ts";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import { sandboxPaths } from "./paths.ts";
import { createApi } from "../api/app.ts";
import { Admission } from "../scheduler/admission.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

const templateDirs = () => readdirSync(join(s.dir, "templates")).sort();

test("snapshot: the sandbox runs on; a template with the captured VM, layer and guest token; a create restores it", async () => {
  s = await fakeSandboxes({ templateSnapshots: true });
  const row = await s.create();
  const vm = s.fm.vm(row.runDir!)!;
  const before = s.fm.calls.length;
  const t = await s.manager.snapshot(row.id, "snap-one");
  // Restored from the template snapshot: captured as a diff over it.
  expect(s.fm.calls.slice(before)).toEqual(["pause", "snapshot-diff", "resume"]);
  expect(vm.state).toBe("running");
  expect(s.manager.get(row.id)?.state).toBe("running");
  expect(s.manager.route(row.id)).not.toBeNull();
  expect(t).toMatchObject({ snapshotOf: row.id, aliases: '["snap-one"]', memoryMb: s.template.memoryMb, kernel: s.template.kernel });
  expect(s.state.templates.resolve("snap-one")?.id).toBe(t.id);
  const p = snapshotPaths(t, await snapshotKey(s.config, t));
  expect(existsSync(join(p.vmDir, "state"))).toBe(true);
  expect(existsSync(p.layer) && existsSync(join(t.dir, "layer.ext4")) && existsSync(join(t.dir, "rootfs.ext4"))).toBe(true);
  const meta = JSON.parse(readFileSync(p.meta, "utf8"));
  expect(meta.guestToken).toBe(row.envdAccessToken!);
  const base = readFileSync(sandboxPaths(s.config, row.id).baseFile, "utf8");
  expect(meta.base).toBe(base);
  const ev = s.state.sandboxes.eventsOf(row.id).find((e) => e.kind === "snapshot");
  expect(ev?.detail).toMatch(new RegExp(`^${t.id} taken in \\d+ ms \\(paused \\d+ ms\\), [\\d.]+ MiB written, memory as a diff over the template snapshot$`));

  // By name and by id: restored from the snapshot's VM dir, the /init shows the token its guest holds.
  for (const templateID of ["snap-one", t.id]) {
    const clone = await s.create({ templateID });
    expect(clone).toMatchObject({ templateId: t.id, state: "running" });
    expect(s.fm.vm(clone.runDir!)!.spec.restoreFrom).toBe(p.vmDir);
    // The diff restores over its base; the clone's own pauses and snapshots are full (no chain of diffs).
    expect(s.fm.vm(clone.runDir!)!.spec.restoreBase).toBe(base);
    expect(existsSync(sandboxPaths(s.config, clone.id).baseFile)).toBe(false);
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

test("a diff snapshot keeps its base: the template's delete is 409 and a prune of its old snapshots spares that one", async () => {
  s = await fakeSandboxes({ templateSnapshots: true, auth: false });
  const row = await s.create();
  const base = readFileSync(sandboxPaths(s.config, row.id).baseFile, "utf8");
  const snap = await s.manager.snapshot(row.id, "over-base");
  await s.manager.kill(row.id);
  const app = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  const res = await app.request("/templates/tpl", { method: "DELETE" });
  expect(res.status).toBe(409);
  expect(((await res.json()) as { message: string }).message).toContain(`diff over its own (${snap.id})`);
  // A new snapshot key for the template (its shape changed): the old snapshot is no longer current, but stays.
  s.state.sqlite.run("UPDATE templates SET memory_mb = memory_mb + 1 WHERE id = 'tpl'");
  await s.manager.warmTemplates();
  expect(existsSync(join(base, "state"))).toBe(true);
  // Without the snapshot over it, the template goes.
  expect((await app.request(`/templates/${snap.id}`, { method: "DELETE" })).status).toBe(204);
  expect((await app.request("/templates/tpl", { method: "DELETE" })).status).toBe(204);
});
