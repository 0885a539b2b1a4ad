// A template's ready snapshot (docs/templates-snapshot section of docs/snapshot.md): the template's VM
// is cold-booted once, left until its agent (and its ready port's service) answer, then paused and
// snapshotted next to a copy of its disk layer. Every create restores it.
//
// A snapshot is only valid for what it was taken with: the vmm binary (state format), the kernel and
// initramfs, the root image, the VM shape and the host kind. Those go into a key stored with it; a
// snapshot whose key differs is rebuilt, never restored.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DIED_WHILE_BOOTING } from "../machine/agent-client.ts";
import { cloneLayer, type RestoreSource } from "../machine/disk.ts";
import { agentGuest, type GuestLink } from "../machine/guest-link.ts";
import { deathWatch, spawnVm, templateFiles, vmSpecFor } from "../machine/vm-config.ts";
import { withSlot, type NetSlots } from "../machine/net-slots.ts";
import type { VmDriver, VmHandle } from "../machine/vm-driver.ts";
import type { TemplateRow } from "../store/index.ts";
import { nativePath } from "../sys/natives.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { tailFile } from "../util/tail-file.ts";
import { E2B_DEFAULT_USER, templateDefaults } from "../store/template-defaults.ts";
import { runStartCmd } from "./start-cmd.ts";

const META = "meta.json";

export interface SnapshotMeta {
  key: string;
  createdAt: number;
  /** Cold boot to ready, then pause + snapshot: what every restore saves. */
  bootMs: number;
  snapshotMs: number;
  /** Set for a snapshot of a sandbox (src/sandbox/snapshot.ts): the token its guest holds (RestoreSource.guestToken). */
  guestToken?: string;
  /** Set for a snapshot of a sandbox written as a diff: the template snapshot's VM dir it lies over (RestoreSource.base). */
  base?: string;
}

/** Snapshots live in t.dir/snapshots/<key>/: a rebuilt snapshot gets a new directory, so the old one
 *  can stay while paused sandboxes' diffs still lie over its memory file (pruneSnapshots). */
export function snapshotPaths(t: TemplateRow, key: string) {
  const dir = join(t.dir, "snapshots", key);
  return { dir, tmp: `${dir}.tmp`, vmDir: join(dir, "vm"), layer: join(dir, "layer.ext4"), meta: join(dir, META) };
}

function fileId(path: string | null | undefined): string {
  if (!path) return "-";
  try {
    const s = statSync(path);
    return `${path}:${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch {
    return `${path}:missing`;
  }
}

/** What the snapshot depends on, hashed. The vmm's extracted path is content-addressed, so a new vmm
 *  (possibly a new state format) changes the key. The host kind is the vmm's own check on restore. */
export async function snapshotKey(config: Config, t: TemplateRow): Promise<string> {
  const f = templateFiles(t);
  const parts = [
    await nativePath("onebox-vmm"),
    fileId(config.pvmKernel ?? t.kernel),
    fileId(t.initrd),
    fileId(f.rootfs),
    fileId(f.layer),
    `${t.memoryMb}:${t.cpuCount}:${t.cmdlineExtra}:${t.readyPort ?? 0}`,
    // The device set: a snapshot taken with a net device restores only with one (and its guest has eth0 up), so
    // a daemon with networking never restores one made without (all made before networking are rebuilt).
    config.network ? "net-v1" : "no-net",
    // Taken after one warm-up command (warmUp below): older snapshots are remade so their clones share its pages.
    "warm-v1",
  ];
  return createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, 32);
}

export function readMeta(t: TemplateRow, key: string): SnapshotMeta | null {
  try {
    return JSON.parse(readFileSync(snapshotPaths(t, key).meta, "utf8")) as SnapshotMeta;
  } catch {
    return null;
  }
}

/** The template's snapshot if it is complete and current; null otherwise. */
export async function currentSnapshot(config: Config, t: TemplateRow): Promise<RestoreSource | null> {
  const key = await snapshotKey(config, t);
  const p = snapshotPaths(t, key);
  const meta = readMeta(t, key);
  if (meta?.key !== key || !existsSync(join(p.vmDir, "state")) || !existsSync(p.layer)) return null;
  return { vmDir: p.vmDir, layer: p.layer, ...(meta.guestToken ? { guestToken: meta.guestToken } : {}), ...(meta.base ? { base: meta.base } : {}) };
}

/** The snapshot templates whose memory is a diff over one of t's snapshots: t must stay while they do. */
export function snapshotsOver(t: TemplateRow, rows: TemplateRow[]): string[] {
  const out: string[] = [];
  for (const [base, ids] of snapshotBases(rows)) if (base.startsWith(`${t.dir}/`)) out.push(...ids);
  return out;
}

/** The template snapshot VM dirs that sandbox snapshots (and fork captures) among rows are diffs over: they must stay
 *  while those snapshots do (pruning and template deletes ask). Read from every snapshot meta of those rows. */
export function snapshotBases(rows: TemplateRow[]): Map<string, string[]> {
  const bases = new Map<string, string[]>(); // base VM dir -> ids of the snapshot templates over it
  for (const t of rows) {
    if (!t.snapshotOf) continue;
    const root = join(t.dir, "snapshots");
    let keys: string[] = [];
    try {
      keys = readdirSync(root);
    } catch {
      continue;
    }
    for (const key of keys) {
      const base = readMeta(t, key)?.base;
      if (base) bases.set(base, [...(bases.get(base) ?? []), t.id]);
    }
  }
  return bases;
}

/** Boots t, waits until it is ready, and snapshots it into t.dir/snapshots/<key> (built in <key>.tmp and
 *  renamed last, so an interrupted build leaves no snapshot that looks complete). A template VM that dies
 *  while booting (a guest crash, e.g. a triple fault) is booted once more from scratch: a failed build
 *  makes every create cold-boot for RETRY_AFTER_FAILURE_MS, and in the emulated test host such a crash
 *  comes about once in four or five suite runs without being reproducible. A slow boot is not retried. */
export async function buildTemplateSnapshot(
  config: Config,
  driver: VmDriver,
  t: TemplateRow,
  /** Holds the template VM while it runs, so a stopping daemon can end it (it would outlive it otherwise). */
  active: Set<VmHandle> = new Set(),
  guest: GuestLink = agentGuest,
  /** The template VM's network slot comes from here (the snapshot's guest has eth0 configured, every clone too). */
  net: NetSlots | null = null,
): Promise<RestoreSource> {
  try {
    return await bootAndSnapshot(config, driver, t, active, guest, net);
  } catch (e) {
    if (!(e instanceof Error) || !e.message.startsWith(DIED_WHILE_BOOTING)) throw e;
    log.warn("template VM died while booting; booting it once more", { template: t.id, error: e.message });
    return await bootAndSnapshot(config, driver, t, active, guest, net);
  }
}

async function bootAndSnapshot(
  config: Config,
  driver: VmDriver,
  t: TemplateRow,
  active: Set<VmHandle>,
  guest: GuestLink,
  net: NetSlots | null,
): Promise<RestoreSource> {
  const id = `template-${t.id}`;
  const runDir = join(config.runRoot, "vms", id);
  const key = await snapshotKey(config, t);
  const p = snapshotPaths(t, key);
  rmSync(p.tmp, { recursive: true, force: true });
  const undo = new CleanupStack();
  const console = join(p.tmp, "console.log");
  try {
    mkdirSync(p.tmp, { recursive: true, mode: 0o700 });
    undo.push("snapshot.tmp", () => rmSync(p.tmp, { recursive: true, force: true }));
    const layer = join(p.tmp, "layer.ext4");
    cloneLayer(templateFiles(t).layer, layer, config.dataDir);
    // A VM left by a daemon that stopped mid-build would hold runDir's sockets: end it first.
    await (await driver.adopt(runDir, join(p.tmp, "exit.json")).catch(() => null))?.stop();
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    undo.push("run dir", () => rmSync(runDir, { recursive: true, force: true }));

    const t0 = performance.now();
    const place = { id, runDir, console, exitFile: join(p.tmp, "exit.json"), layer };
    const handle = await withSlot(net, (lease) => spawnVm(driver.spawn, vmSpecFor(config, t, { ...place, net: lease })));
    active.add(handle);
    undo.push("vm process", async () => {
      active.delete(handle);
      await handle.stop().catch(() => undefined);
      await Promise.race([handle.exited, Bun.sleep(5000)]);
    });
    // No /init: the token, env vars and clock belong to each clone, sent after its restore.
    await guest.waitReady(config, t, handle, runDir, deathWatch(handle));
    // A built template's start command runs before the snapshot, so it runs in every clone (E2B's setStartCmd).
    await runStartCmd(t, runDir, deathWatch(handle));
    await warmUp(guest, t, runDir);
    const bootMs = performance.now() - t0;

    const t1 = performance.now();
    await handle.pause();
    // The layer copy above is what the guest has written through: after the pause, nothing more is.
    await handle.snapshot(join(p.tmp, "vm"));
    await handle.stop();
    active.delete(handle);
    const snapshotMs = performance.now() - t1;
    const meta: SnapshotMeta = { key, createdAt: Date.now(), bootMs: Math.round(bootMs), snapshotMs: Math.round(snapshotMs) };
    writeFileSync(join(p.tmp, META), `${JSON.stringify(meta)}\n`);
    rmSync(p.dir, { recursive: true, force: true });
    renameSync(p.tmp, p.dir);
    rmSync(runDir, { recursive: true, force: true });
    undo.release();
    log.info("template snapshot ready", { template: t.id, bootMs: meta.bootMs, snapshotMs: meta.snapshotMs });
    return { vmDir: p.vmDir, layer: p.layer };
  } catch (e) {
    const tail = tailFile(console, 4096);
    if (tail) log.warn("console of the failed template snapshot", { template: t.id, tail });
    for (const err of await undo.unwind()) log.warn("cleanup after failed template snapshot", { template: t.id, error: err.message });
    throw e;
  }
}

/** How long the warm-up command may take (the first command of a cold guest: ~1-2 s emulated). */
const WARM_UP_TIMEOUT_MS = 60_000;

/** One command in the template VM before its snapshot (GuestLink.warmUp), as the template's default user. A template
 *  whose image cannot run it (no bash, no such user) still gets its snapshot: its clones then pay their first
 *  command's pages themselves, as before. */
async function warmUp(guest: GuestLink, t: TemplateRow, runDir: string): Promise<void> {
  const user = templateDefaults(t).user ?? E2B_DEFAULT_USER;
  try {
    await guest.warmUp(runDir, user, WARM_UP_TIMEOUT_MS);
  } catch (e) {
    log.warn("template warm-up command failed; snapshotting without it", { template: t.id, error: (e as Error).message });
  }
}

/** After a failed build, creates cold-boot for this long before a build is tried again (a template that
 *  cannot be snapshotted must not make every create pay for a failed attempt first). */
const RETRY_AFTER_FAILURE_MS = 10 * 60_000;

/** One snapshot build per template at a time; creates that arrive meanwhile wait for it. */
export class TemplateSnapshots {
  private building = new Map<string, Promise<RestoreSource>>();
  private failed = new Map<string, { at: number; error: Error }>();
  private active = new Set<VmHandle>();
  private listeners: ((t: TemplateRow) => void)[] = [];

  constructor(
    private readonly config: Config,
    private readonly driver: VmDriver,
    private readonly guest: GuestLink = agentGuest,
    private readonly net: NetSlots | null = null,
  ) {}

  /** Calls fn whenever t's snapshot was made, dropped or pruned (the warm pool's entries follow the snapshot). */
  onChange(fn: (t: TemplateRow) => void): void {
    this.listeners.push(fn);
  }

  /** The current snapshot, or null; never builds one. */
  current(t: TemplateRow): Promise<RestoreSource | null> {
    return currentSnapshot(this.config, t);
  }

  private changed(t: TemplateRow): void {
    for (const fn of this.listeners) fn(t);
  }

  /** The current snapshot, building it first if there is none; rejects with the last build error
   *  while a failed template is in its retry delay. */
  async ensure(t: TemplateRow): Promise<RestoreSource> {
    const ready = await currentSnapshot(this.config, t);
    if (ready) return ready;
    let build = this.building.get(t.id);
    if (build) return build;
    const failed = this.failed.get(t.id);
    if (failed && Date.now() - failed.at < RETRY_AFTER_FAILURE_MS) throw failed.error;
    log.info("making the template snapshot", { template: t.id });
    build = buildTemplateSnapshot(this.config, this.driver, t, this.active, this.guest, this.net);
    this.building.set(t.id, build);
    try {
      const made = await build;
      this.failed.delete(t.id);
      this.changed(t);
      return made;
    } catch (e) {
      this.failed.set(t.id, { at: Date.now(), error: e instanceof Error ? e : new Error(String(e)) });
      throw e;
    } finally {
      this.building.delete(t.id);
    }
  }

  /** Ends the template VMs of builds in flight (the daemon is stopping; the next start rebuilds). */
  async stopBuilds(): Promise<void> {
    await Promise.all([...this.active].map((h) => h.stop().catch(() => undefined)));
  }

  /** See pruneSnapshots; skipped while t's snapshot is being built (its .tmp dir is live). */
  async prune(t: TemplateRow, inUse: Set<string>): Promise<void> {
    if (this.building.has(t.id)) return;
    const removed = await pruneSnapshots(this.config, t, inUse);
    for (const dir of removed) log.info("removed an unused template snapshot", { template: t.id, dir });
    if (removed.length) this.changed(t);
  }

  /** Drops a snapshot that failed to restore, so the next create rebuilds it. */
  async invalidate(t: TemplateRow): Promise<void> {
    if (this.building.has(t.id)) return;
    rmSync(snapshotPaths(t, await snapshotKey(this.config, t)).dir, { recursive: true, force: true });
    this.changed(t);
  }
}

/** Removes t's snapshots that are neither current nor in `inUse` (VM dirs that sandboxes were restored
 *  from and whose pause diffs may lie over them), and leftovers of interrupted builds. Not while a
 *  build of t runs (TemplateSnapshots.prune). */
async function pruneSnapshots(config: Config, t: TemplateRow, inUse: Set<string>): Promise<string[]> {
  const root = join(t.dir, "snapshots");
  if (!existsSync(root)) return [];
  const current = await snapshotKey(config, t);
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    if (name === current) continue;
    const dir = join(root, name);
    if (!name.endsWith(".tmp") && inUse.has(join(dir, "vm"))) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
