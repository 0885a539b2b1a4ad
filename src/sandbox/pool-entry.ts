// One warm-pool entry (docs/architecture.md "Warm pool"): a pooled onebox-vmm with its own copy of a template
// snapshot's disk layer, made ahead under a sandbox id drawn now; taking it restores the snapshot into it. Also
// the reaper for entries a crashed daemon left behind.
//
// Why the entry lives at its sandbox's final paths from the start (sandboxPaths(id)) instead of being renamed
// there at the take: the daemon finds a running vmm's files by the sandbox's paths (its sockets in the run dir,
// its exit record, which the vmm holds open, and its own dir next to it, where run-time `forward PORT` sockets
// and snapshots go). A sandbox id is random and unknown to anyone until the create returns it, so drawing it when
// the entry is made costs nothing, and adopt, the proxy's forward sockets and removeSandboxFiles need no change.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TemplateRow } from "../store/index.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { newSandboxId, SANDBOX_ID_RE } from "../util/ids.ts";
import { log } from "../util/log.ts";
import { bringUp, stage, stopAndWait, unwindLogged, type Stages } from "../machine/bring-up.ts";
import { cloneLayer, type RestoreSource } from "../machine/disk.ts";
import { agentGuest, type GuestLink } from "../machine/guest-link.ts";
import { vmSpecFor } from "../machine/vm-config.ts";
import { withSlot, type NetSlots } from "../machine/net-slots.ts";
import type { PooledVmHandle, VmDriver } from "../machine/vm-driver.ts";
import { sandboxPaths } from "./paths.ts";
import { agentInit, type BootRequest, type Booted } from "./runtime.ts";

export interface PoolEntry {
  /** The sandbox id the entry becomes when taken. */
  id: string;
  templateId: string;
  /** The snapshot this entry's layer was copied from: only that snapshot may be restored into it. */
  vmDir: string;
  handle: PooledVmHandle;
  createdAt: number;
}

/** `$DATA/pool/<id>`: one marker per entry not yet taken, so a restarted daemon finds what to reap. In the data
 *  dir (not the run dir, which a host reboot empties) because the entry's layer copy lives there too. */
export function poolMarkerDir(config: Config): string {
  return join(config.dataDir, "pool");
}

function markerPath(config: Config, id: string): string {
  return join(poolMarkerDir(config), id);
}

/** Makes an entry for template t and its snapshot `from`: marker, layer copy (niced), run dir, pooled vmm. */
/** net: the entry's vmm is spawned with its devices, so its network slot is taken now and the create inherits it
 *  (released when the vmm ends: taken and killed, discarded, or dead while pooled). */
export async function makePoolEntry(config: Config, driver: VmDriver, t: TemplateRow, from: RestoreSource, net: NetSlots | null = null): Promise<PoolEntry> {
  if (!driver.spawnPooled) throw new Error("this VM driver cannot start pooled vmms");
  const id = newSandboxId();
  const p = sandboxPaths(config, id);
  const undo = new CleanupStack();
  try {
    // The marker goes first: whatever exists of this entry after a crash is found through it.
    mkdirSync(poolMarkerDir(config), { recursive: true, mode: 0o700 });
    writeFileSync(markerPath(config, id), `${JSON.stringify({ template: t.id, vmDir: from.vmDir, at: Date.now() })}\n`);
    undo.push("pool marker", () => rmSync(markerPath(config, id), { force: true }));
    mkdirSync(p.sandboxDir, { recursive: true, mode: 0o700 });
    undo.push("sandbox dir", () => rmSync(p.sandboxDir, { recursive: true, force: true }));
    // A restored guest's page cache matches the layer as it was at snapshot time: this entry gets that copy.
    cloneLayer(from.layer, p.layer, config.dataDir, { nice: true });
    mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
    undo.push("run dir", () => rmSync(p.runDir, { recursive: true, force: true }));
    // The same spec a spawn with restoreFrom gets (devices in the same order), so the snapshot fits it.
    // restoreFrom: the pooled vmm reads that snapshot at start, as root; its files stay private to root.
    const place = { id, runDir: p.runDir, console: p.console, exitFile: p.exitFile, layer: p.layer, restoreFrom: from.vmDir };
    const spawnPooled = driver.spawnPooled.bind(driver);
    const handle = await withSlot(net, (lease) => spawnPooled(vmSpecFor(config, t, { ...place, net: lease })));
    undo.release();
    return { id, templateId: t.id, vmDir: from.vmDir, handle, createdAt: Date.now() };
  } catch (e) {
    for (const err of await undo.unwind()) log.warn("cleanup after a failed warm pool entry", { id, error: err.message });
    throw e;
  }
}

/** Ends an entry that will not be taken: its vmm, dirs and marker. */
export async function destroyPoolEntry(config: Config, entry: PoolEntry): Promise<void> {
  await stopAndWait(entry.handle);
  removeEntryFiles(config, entry.id, true);
}

function removeEntryFiles(config: Config, id: string, withSandboxDir: boolean): void {
  const p = sandboxPaths(config, id);
  rmSync(p.runDir, { recursive: true, force: true });
  if (withSandboxDir) rmSync(p.sandboxDir, { recursive: true, force: true });
  else rmSync(p.layer, { force: true });
  rmSync(markerPath(config, id), { force: true });
}

/** Starts sandbox req.id (= entry.id) from the entry: restore req.from into it, then hygiene, ready and /init
 *  as for any restore. On failure the entry is gone (vmm stopped, dirs removed) and the caller may boot the
 *  same id the ordinary way. */
export async function bootFromPool(
  config: Config,
  entry: PoolEntry,
  req: BootRequest & { from: RestoreSource },
  guest: GuestLink = agentGuest,
  net: NetSlots | null = null,
): Promise<Booted> {
  if (req.id !== entry.id) throw new Error(`warm pool entry ${entry.id} taken for sandbox ${req.id}`);
  const p = sandboxPaths(config, entry.id);
  const undo = new CleanupStack();
  const stages: Stages = {};
  const t0 = performance.now();
  undo.push("warm pool entry", () => destroyPoolEntry(config, entry));
  try {
    if (entry.vmDir !== req.from.vmDir) throw new Error(`the entry was made for snapshot ${entry.vmDir}, the current one is ${req.from.vmDir}`);
    writeFileSync(p.baseFile, req.from.vmDir);
    // The entry's slot was taken (open, as a new slot is) when it was made; its guest runs only from the restore
    // on, so the sandbox's policy goes in before it.
    if (req.egress && net) {
      const lease = net.leaseOf(entry.handle);
      if (!lease) throw new Error(`warm pool entry ${entry.id} holds no network slot`);
      lease.setPolicy(req.egress);
    }
    const timings = await entry.handle.restore(req.from.vmDir);
    stage(stages, "vmm", t0);
    const place = { id: entry.id, runDir: p.runDir, console: p.console, exitFile: p.exitFile, layer: p.layer, restoreFrom: req.from.vmDir };
    await bringUp(config, guest, req.template, entry.handle, { place, init: agentInit(req), tokenHeader: req.from.guestToken }, stages);
    // A sandbox now: no longer the reaper's (recover() adopts it through its row from here on).
    rmSync(markerPath(config, entry.id), { force: true });
    undo.release();
    stage(stages, "total", t0);
    const pooled = { restoreMs: timings.totalNs / 1e6 };
    return { handle: entry.handle, runDir: p.runDir, sandboxDir: p.sandboxDir, mode: "restore", pooled, stages };
  } catch (e) {
    await unwindLogged(entry.id, undo, p.console);
    throw e;
  }
}

/** Ends entries a daemon that did not stop cleanly left (it had no chance to): their vmms, run dirs and layers.
 *  `hasRow(id)`: a create had taken the entry (recover() has already ended that sandbox): its console and exit
 *  record stay for `onebox sandbox logs`. Returns how many were reaped. */
export async function reapPoolLeftovers(config: Config, driver: VmDriver, hasRow: (id: string) => boolean): Promise<number> {
  const dir = poolMarkerDir(config);
  if (!existsSync(dir)) return 0;
  // In parallel: each stop of an adopted vmm polls its pid until it is gone or a zombie (bounded at 5 s).
  const ids = readdirSync(dir).filter((id) => SANDBOX_ID_RE.test(id));
  await Promise.all(
    ids.map(async (id) => {
      const p = sandboxPaths(config, id);
      const vm = await driver.adopt(p.runDir, p.exitFile).catch(() => null);
      if (vm) await stopAndWait(vm);
      let template = "";
      try {
        template = (JSON.parse(readFileSync(markerPath(config, id), "utf8")) as { template?: string }).template ?? "";
      } catch {
        // a marker cut short by the crash: its id is all the reaper needs
      }
      removeEntryFiles(config, id, !hasRow(id));
      log.info("reaped a warm pool entry left by an earlier daemon", { id, template, vmmWasRunning: vm !== null });
    }),
  );
  return ids.length;
}
