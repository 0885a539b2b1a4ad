// Template snapshot validity and build failures, on this host with the real vmm (the Linux path, a
// snapshot restored by creates, runs in the test host: tests/e2e/api-journey.test.ts).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadVmDriver } from "../machine/vm-driver.ts";
import type { TemplateRow } from "../store/index.ts";
import { parseConfig, type Config } from "../util/config.ts";
import { FakeMachine } from "../machine/fake-machine.ts";
import { buildTemplateSnapshot, currentSnapshot, snapshotKey, snapshotPaths, TemplateSnapshots } from "./snapshot.ts";

let root: string;
let config: Config;
let t: TemplateRow;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "onebox-tplsnap-"));
  config = parseConfig({ dataDir: root, runRoot: join(root, "run"), bootTimeoutMs: 5000 });
  const dir = join(root, "templates", "tpl1");
  mkdirSync(dir, { recursive: true });
  // Not a kernel: the vmm refuses it during setup, which is the build failure these tests need.
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(dir, f), "not an image");
  const now = Date.now();
  t = {
    id: "tpl1", aliases: '["t"]', dir, kernel: join(dir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 128,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", readyPort: null, snapshotOf: null, ephemeral: false, defaults: "{}", buildId: null, createdAt: now, updatedAt: now,
  };
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Lays out a snapshot dir as a finished build would (the files' contents do not matter to validity). */
async function fakeFinishedSnapshot(key: string): Promise<void> {
  const p = snapshotPaths(t, key);
  mkdirSync(p.vmDir, { recursive: true });
  writeFileSync(join(p.vmDir, "state"), "x");
  writeFileSync(p.layer, "x");
  writeFileSync(p.meta, JSON.stringify({ key, createdAt: Date.now(), bootMs: 1, snapshotMs: 1 }));
}

test("a snapshot counts only when complete and made from the same kernel, image and shape", async () => {
  expect(await currentSnapshot(config, t)).toBeNull();
  const key = await snapshotKey(config, t);
  expect(key).toMatch(/^[0-9a-f]{32}$/);
  await fakeFinishedSnapshot(key);
  expect(await currentSnapshot(config, t)).toEqual({ vmDir: snapshotPaths(t, key).vmDir, layer: snapshotPaths(t, key).layer });
  // Another VM shape: a different key.
  expect(await snapshotKey(config, { ...t, memoryMb: 256 })).not.toBe(key);
  expect(await currentSnapshot(config, { ...t, memoryMb: 256 })).toBeNull();
  // A replaced kernel (new mtime): stale.
  utimesSync(t.kernel, new Date(), new Date(Date.now() + 5000));
  expect(await snapshotKey(config, t)).not.toBe(key);
  expect(await currentSnapshot(config, t)).toBeNull();
  rmSync(join(t.dir, "snapshots"), { recursive: true, force: true });
});

test("prune keeps the current snapshot and those live sandboxes came from; drops the rest and build leftovers", async () => {
  const current = await snapshotKey(config, t);
  for (const k of [current, "old-in-use", "old-unused"]) await fakeFinishedSnapshot(k);
  mkdirSync(snapshotPaths(t, "interrupted").tmp, { recursive: true });
  const drv = await loadVmDriver();
  if (!drv.ok) throw new Error(drv.problem);
  await new TemplateSnapshots(config, drv.driver).prune(t, new Set([snapshotPaths(t, "old-in-use").vmDir]));
  expect(readdirSync(join(t.dir, "snapshots")).sort()).toEqual([current, "old-in-use"].sort());
  rmSync(join(t.dir, "snapshots"), { recursive: true, force: true });
});

test("a failed build leaves nothing behind and is not retried at once", async () => {
  const drv = await loadVmDriver();
  if (!drv.ok) throw new Error(drv.problem);
  let spawns = 0;
  const driver = { ...drv.driver, spawn: (s: Parameters<typeof drv.driver.spawn>[0]) => (spawns++, drv.driver.spawn(s)) };
  const snaps = new TemplateSnapshots(config, driver);
  const first = await snaps.ensure(t).then(
    () => null,
    (e: Error) => e,
  );
  expect(first?.message ?? "").toContain("the VM process did not start");
  expect(spawns).toBe(1);
  const p = snapshotPaths(t, await snapshotKey(config, t));
  expect(existsSync(p.dir)).toBe(false);
  expect(existsSync(p.tmp)).toBe(false);
  const vms = join(config.runRoot, "vms");
  expect(existsSync(vms) ? readdirSync(vms) : []).toEqual([]);
  // Within the retry delay the same error comes back without another boot.
  const second = await snaps.ensure(t).then(
    () => null,
    (e: Error) => e,
  );
  expect(second).toBe(first);
  expect(spawns).toBe(1);
});

test("the template VM runs one command as the SDK would before its snapshot; a failing one does not fail the build", async () => {
  // Without it every clone reads and builds its first command's pages itself: 11.8 of an idle clone's 17.3 MiB
  // (docs/benchmarks.md bench:density).
  for (const failing of [false, true]) {
    const m = new FakeMachine();
    if (failing) m.fail.add("warmUp");
    const src = await buildTemplateSnapshot(config, m.driver, t, new Set(), m.guest);
    expect(existsSync(join(src.vmDir, "..", "meta.json"))).toBe(true);
    const steps = m.calls.filter((c) => ["ready", "warmUp", "pause", "snapshot"].includes(c) || c.startsWith("warmUp "));
    const runDir = join(config.runRoot, "vms", `template-${t.id}`);
    expect(steps).toEqual(failing ? ["ready", "warmUp", "pause", "snapshot"] : ["ready", "warmUp", `warmUp ${runDir} user`, "pause", "snapshot"]);
    rmSync(join(t.dir, "snapshots"), { recursive: true, force: true });
  }
});
