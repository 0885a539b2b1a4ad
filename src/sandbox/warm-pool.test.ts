// The warm pool on this host's /dev/kvm with real pooled onebox-vmm processes and the counting test guest
// (ffi/tests/guests/counter.S) snapshotted with a template's exact devices: fill, take + restore, refill,
// refills yielding to creates, a pooled vmm killed from outside, a snapshot change, close, and the reaping of a
// crashed daemon's entries. The Linux path (hygiene, /init, SDK creates) runs in tests/e2e/api-journey.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TemplateRow } from "../store/index.ts";
import { parseConfig, type Config } from "../util/config.ts";
import { bootFromPool, destroyPoolEntry, makePoolEntry, poolMarkerDir, reapPoolLeftovers, type PoolEntry } from "./pool-entry.ts";
import type { RestoreSource } from "../machine/disk.ts";
import { sandboxPaths } from "./paths.ts";
import { vmSpecFor } from "../machine/vm-config.ts";
import { loadVmDriver, type VmDriver } from "../machine/vm-driver.ts";
import { WarmPool, type WarmPoolDeps } from "./warm-pool.ts";
import { pidAlive } from "../vmm/index.ts";

const guests = join(import.meta.dir, "../../ffi/build/guests");
const haveKvm = existsSync("/dev/kvm") && existsSync(join(guests, "counter.bin"));

let root: string;
let config: Config;
let t: TemplateRow;
let driver: VmDriver;
let snap: RestoreSource;

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const counts = (text: string) => [...text.matchAll(/^count ([0-9a-f]{8})$/gm)].length;
// A reaped leftover vmm is not our child: it may stay a zombie until PID 1 collects it, and a
// zombie has ended (pidAlive says so; kill(pid, 0) alone would not).
const alive = pidAlive;

async function waitFor(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

/** Boots the counter guest with the template's own VM spec (rootfs, layer, rng, vsock + forwards), lets it
 *  count, and snapshots it: what a template snapshot is, with a test guest instead of Linux. */
async function takeSnapshot(name: string): Promise<RestoreSource> {
  const dir = join(root, "snaps", name);
  mkdirSync(dir, { recursive: true });
  const layer = join(dir, "layer.ext4");
  writeFileSync(layer, Buffer.alloc(1 << 20));
  const runDir = join(config.runRoot, "vms", `snap-${name}`);
  const place = { id: `snap-${name}`, runDir, console: join(dir, "console.log"), exitFile: join(dir, "exit.json"), layer };
  const vm = await driver.spawn({ ...vmSpecFor(config, t, place), testGuest: join(guests, "counter.bin") });
  await waitFor(() => counts(read(place.console)) >= 5);
  await vm.pause();
  await vm.snapshot(join(dir, "vm"));
  await vm.stop();
  rmSync(runDir, { recursive: true, force: true });
  return { vmDir: join(dir, "vm"), layer };
}

function deps(extra: Partial<WarmPoolDeps> = {}): WarmPoolDeps {
  return { config, driver, net: null, size: 2, snapshotOf: async () => snap, template: () => t, busy: () => false, ...extra };
}

/** What an entry leaves on disk: run dir, layer copy, marker. */
function filesOf(id: string): boolean[] {
  const p = sandboxPaths(config, id);
  return [existsSync(p.runDir), existsSync(p.layer), existsSync(join(poolMarkerDir(config), id))];
}

beforeAll(async () => {
  if (!haveKvm) return;
  root = mkdtempSync(join(tmpdir(), "obx-pool-"));
  config = parseConfig({ dataDir: join(root, "data"), runRoot: join(root, "run"), bootTimeoutMs: 2000 });
  const dir = join(root, "templates", "tpl");
  mkdirSync(dir, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4"]) writeFileSync(join(dir, f), Buffer.alloc(1 << 20));
  const now = Date.now();
  t = {
    id: "tpl", aliases: "[]", dir, kernel: "/nonexistent", initrd: null, cpuCount: 1, memoryMb: 32,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", readyPort: null, snapshotOf: null, ephemeral: false, defaults: "{}", buildId: null, createdAt: now, updatedAt: now,
  };
  const drv = await loadVmDriver();
  if (!drv.ok) throw new Error(drv.problem);
  driver = drv.driver;
  snap = await takeSnapshot("a");
}, 60_000);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.skipIf(!haveKvm)("warm pool (real pooled vmms, test guest)", () => {
  test("fills to size; a taken entry restores the snapshot and runs; the pool refills", async () => {
    const pool = new WarmPool(deps());
    pool.want(t);
    await waitFor(() => pool.ready(t.id) === 2);
    const e = pool.take(t);
    if (!e) throw new Error("no entry");
    expect(e.vmDir).toBe(snap.vmDir);
    expect(filesOf(e.id)).toEqual([true, true, true]);
    // A waiting vmm holds no guest memory (RAM is mapped, untouched): what admission leaves out.
    const s = await e.handle.stats();
    expect(s.startUs).toBe(0);
    console.log(`pooled vmm waiting: pss ${s.pssKib} KiB, rss ${s.rssKib} KiB (guest RAM ${t.memoryMb} MiB)`);
    expect(s.pssKib).toBeLessThan(t.memoryMb * 1024);
    const timings = await e.handle.restore(e.vmDir);
    const console_ = sandboxPaths(config, e.id).console;
    await waitFor(() => counts(read(console_)) >= 5);
    console.log(`restore into the pooled vmm: ${(timings.totalNs / 1e6).toFixed(2)} ms`);
    // Taken: refilled behind the create, with a new id.
    await waitFor(() => pool.ready(t.id) === 2);
    await e.handle.stop();
    expect((await e.handle.exited).reason).toBe("stopped");
    await destroyPoolEntry(config, e); // what a sandbox's end does with its files, here for the test's listing
    await pool.close();
  }, 60_000);

  test("refills wait while creates are in flight", async () => {
    let busy = false;
    const pool = new WarmPool(deps({ busy: () => busy }));
    pool.want(t);
    await waitFor(() => pool.ready(t.id) === 2);
    busy = true;
    const e = pool.take(t)!;
    await Bun.sleep(500);
    expect(pool.ready(t.id)).toBe(1);
    busy = false;
    await waitFor(() => pool.ready(t.id) === 2);
    await pool.close();
    // Never given to a create: the test ends it as the starter would (discard).
    await destroyPoolEntry(config, e);
  }, 60_000);

  test("a pooled vmm killed from outside leaves the pool, its files go, and it is replaced", async () => {
    const pool = new WarmPool(deps({ size: 1 }));
    pool.want(t);
    await waitFor(() => pool.ready(t.id) === 1);
    const [id] = readdirSync(poolMarkerDir(config));
    if (!id) throw new Error("no marker");
    const pid = Number(JSON.parse(read(join(sandboxPaths(config, id).runDir, "vmm.json"))).pid);
    process.kill(pid, "SIGKILL");
    await waitFor(() => !filesOf(id).some(Boolean) && pool.ready(t.id) === 1);
    const now = readdirSync(poolMarkerDir(config));
    expect(now.length).toBe(1);
    expect(now).not.toContain(id);
    await pool.close();
  }, 60_000);

  test("a new snapshot replaces the entries of the old one; close ends every entry and its files", async () => {
    let current = snap;
    const pool = new WarmPool(deps({ snapshotOf: async () => current }));
    pool.want(t);
    await waitFor(() => pool.ready(t.id) === 2);
    const old = readdirSync(poolMarkerDir(config));
    const pids = old.map((id) => Number(JSON.parse(read(join(sandboxPaths(config, id).runDir, "vmm.json"))).pid));
    current = await takeSnapshot("b");
    await pool.refresh(t);
    for (const id of old) expect(filesOf(id)).toEqual([false, false, false]);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    await waitFor(() => pool.ready(t.id) === 2);
    const fresh = readdirSync(poolMarkerDir(config));
    expect(fresh.some((id) => old.includes(id))).toBe(false);
    const e = pool.take(t)!;
    expect(e.vmDir).toBe(current.vmDir);
    await e.handle.restore(e.vmDir); // the layer copy and the vmm fit the new snapshot
    await destroyPoolEntry(config, e);
    const left = readdirSync(poolMarkerDir(config));
    const leftPids = left.map((id) => Number(JSON.parse(read(join(sandboxPaths(config, id).runDir, "vmm.json"))).pid));
    await pool.close();
    expect(pool.take(t)).toBeNull();
    for (const id of left) expect(filesOf(id)).toEqual([false, false, false]);
    for (const pid of leftPids) expect(alive(pid)).toBe(false);
    expect(readdirSync(poolMarkerDir(config))).toEqual([]);
  }, 90_000);

  test("a failed take (another snapshot than the entry's) ends the entry and leaves nothing", async () => {
    const e: PoolEntry = await makePoolEntry(config, driver, t, snap);
    const pid = e.handle.pid;
    const other = await takeSnapshot("c");
    const req = { id: e.id, template: t, envVars: {}, from: other };
    await expect(bootFromPool(config, e, req)).rejects.toThrow(/made for snapshot/);
    expect(alive(pid)).toBe(false);
    expect(filesOf(e.id)).toEqual([false, false, false]);
    expect(existsSync(sandboxPaths(config, e.id).sandboxDir)).toBe(false);
  }, 60_000);

  test("entries left by a daemon that died are reaped at the next start", async () => {
    // A separate process makes two entries and exits without cleaning up: the vmms are detached and live on.
    const script = `
      import { parseConfig } from ${JSON.stringify(join(import.meta.dir, "../util/config.ts"))};
      import { loadVmDriver } from ${JSON.stringify(join(import.meta.dir, "../machine/vm-driver.ts"))};
      import { makePoolEntry } from ${JSON.stringify(join(import.meta.dir, "pool-entry.ts"))};
      const config = parseConfig(${JSON.stringify({ dataDir: config.dataDir, runRoot: config.runRoot })});
      const drv = await loadVmDriver();
      const t = ${JSON.stringify(t)};
      for (let i = 0; i < 2; i++) await makePoolEntry(config, drv.driver, t, ${JSON.stringify(snap)});
      process.exit(0);
    `;
    const file = join(root, "crash.ts");
    writeFileSync(file, script);
    const r = Bun.spawnSync(["bun", file], { stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    const ids = readdirSync(poolMarkerDir(config));
    expect(ids.length).toBe(2);
    const pids = ids.map((id) => Number(JSON.parse(read(join(sandboxPaths(config, id).runDir, "vmm.json"))).pid));
    for (const pid of pids) expect(alive(pid)).toBe(true);
    expect(await reapPoolLeftovers(config, driver, () => false)).toBe(2);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    for (const id of ids) {
      expect(filesOf(id)).toEqual([false, false, false]);
      expect(existsSync(sandboxPaths(config, id).sandboxDir)).toBe(false);
    }
  }, 60_000);
});
