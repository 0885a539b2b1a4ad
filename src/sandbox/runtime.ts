// Starts one sandbox's microVM: clone the writable layer, then either restore the template's snapshot
// (the normal path: hygiene, then /init) or cold-boot the kernel (no snapshot yet, or snapshots off).
// Every step registers its undo; a failure unwinds them all (no leaked dirs, layers, processes).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TemplateRow } from "../store/index.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { unavailable } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { tailFile } from "../util/tail-file.ts";
import { sendHygiene, vsockPath } from "../vmm/index.ts";
import { AgentClient, type AgentInit } from "./agent-client.ts";
import { deathWatch, spawnVm, templateFiles, vmSpecFor, waitGuestReady, type VmPlace } from "./vm-config.ts";
import type { VmDriver, VmHandle } from "./vm-driver.ts";

export { templateFiles } from "./vm-config.ts";

/** A ready snapshot to restore from: the VM state directory and the disk layer it was taken with. */
export interface RestoreSource {
  vmDir: string;
  layer: string;
}

export interface BootRequest {
  id: string;
  template: TemplateRow;
  envVars: Record<string, string>;
  /** Absent for v1 sandboxes created without `secure` (spec §1.3): envd then checks no token. */
  accessToken?: string;
  /** Restore this snapshot instead of a cold boot. */
  from?: RestoreSource;
}

export interface Booted {
  handle: VmHandle;
  runDir: string;
  sandboxDir: string;
  /** How the VM came up. */
  mode: "restore" | "cold-boot";
  /** Set when a warm pool's prepared vmm took the restore (docs/architecture.md "Warm pool"). */
  pooled?: { restoreMs: number };
  /** Where the start spent its time, ms by stage (logged with "sandbox started"; pooled vs spawned). */
  stages: Stages;
}

export type Stages = Record<string, number>;

/** Adds the ms since `since` to stages[name]; returns now, for the next stage. */
export function stage(stages: Stages, name: string, since: number): number {
  const now = performance.now();
  stages[name] = Math.round((now - since) * 100) / 100;
  return now;
}

export function sandboxPaths(config: Config, id: string) {
  const sandboxDir = join(config.dataDir, "sandboxes", id);
  return {
    sandboxDir,
    runDir: join(config.runRoot, "vms", id),
    layer: join(sandboxDir, "layer.ext4"),
    console: join(sandboxDir, "console.log"),
    exitFile: join(sandboxDir, "exit.json"),
    /** Where a paused sandbox's VM state goes (docs/snapshot.md); its layer stays next to it. */
    pauseDir: join(sandboxDir, "paused"),
    /** The template snapshot VM dir this sandbox was restored from: its pause diffs lie over it. */
    baseFile: join(sandboxDir, "base"),
  };
}

/** What is missing for this template to boot, or null. */
export function templateProblem(t: TemplateRow, config: Config): string | null {
  const f = templateFiles(t);
  for (const p of [f.rootfs, f.layer]) {
    if (!existsSync(p)) return `template '${t.id}' has no ${p}: build it with scripts/mkrootfs.sh and register it with \`onebox template add\``;
  }
  const kernel = config.pvmKernel ?? t.kernel;
  if (!existsSync(kernel)) return `template '${t.id}' names kernel ${kernel}, which does not exist: install it or re-register the template`;
  if (t.initrd && !existsSync(t.initrd)) return `template '${t.id}' names initramfs ${t.initrd}, which does not exist: build it with scripts/mkinitramfs.sh`;
  return null;
}

/** Copies a disk layer: reflink where the filesystem allows (XFS, btrfs), a sparse copy elsewhere (ext4).
 *  `nice`: a background copy (warm pool refill) that should yield the CPU and disk to creates. */
export function cloneLayer(from: string, to: string, dataDir: string, opts: { nice?: boolean } = {}): void {
  const cmd = ["cp", "--reflink=auto", "--sparse=always", from, to];
  const cp = Bun.spawnSync(opts.nice ? ["nice", "-n", "10", ...cmd] : cmd, { stderr: "pipe" });
  if (cp.exitCode !== 0) {
    throw unavailable(`could not clone the disk layer ${from}: ${cp.stderr.toString().trim()}; check free disk space in ${dataDir}`);
  }
}

/** Raised when the vmm refused to restore a snapshot (corrupt, another host kind, another vmm): the
 *  caller may drop that snapshot and cold-boot instead. */
export class RestoreRefused extends Error {}

export interface GuestStart {
  place: VmPlace;
  init: AgentInit;
  /** The token the agent already holds (a resumed sandbox's); a fresh guest holds none. */
  tokenHeader?: string;
  undo: CleanupStack;
}

/** Spawns the VM at place (restore or cold boot), then brings its guest up (bringUp). Registers the VM's
 *  undo on s.undo. */
async function startGuest(config: Config, driver: VmDriver, t: TemplateRow, s: GuestStart, stages: Stages): Promise<VmHandle> {
  const { place } = s;
  const t0 = performance.now();
  const handle = await spawnVm(driver.spawn, vmSpecFor(config, t, place)).catch((e: unknown) => {
    throw place.restoreFrom ? new RestoreRefused(e instanceof Error ? e.message : String(e)) : e;
  });
  s.undo.push("vm process", () => stopAndWait(handle));
  stage(stages, "vmm", t0);
  await bringUp(config, t, handle, s, stages);
  return handle;
}

/** Stops a VM and waits (bounded) for its process to be gone. */
export async function stopAndWait(handle: VmHandle): Promise<void> {
  await handle.stop().catch(() => undefined);
  await Promise.race([handle.exited, Bun.sleep(5000)]);
}

/** A started VM's guest: a restored one gets its hygiene first; then wait until it is ready and send /init. */
export async function bringUp(config: Config, t: TemplateRow, handle: VmHandle, s: Omit<GuestStart, "undo">, stages: Stages): Promise<void> {
  const { place } = s;
  const dead = deathWatch(handle);
  let at = performance.now();
  if (place.restoreFrom) {
    // Before anything else talks to it, the clone gets its own clock, entropy and identity (docs/snapshot.md).
    // The identity comes from here, not the kernel command line, which is the template VM's.
    await sendHygiene(vsockPath(place.runDir), { id: place.id, hostname: place.id, timeoutMs: config.bootTimeoutMs }).catch((e: unknown) => {
      throw unavailable(`the restored guest did not take its clock, entropy and identity (${e instanceof Error ? e.message : String(e)})`);
    });
    at = stage(stages, "hygiene", at);
  }
  await waitGuestReady(config, t, handle, place.runDir, dead);
  at = stage(stages, "ready", at);
  // spec §3.5 / §6 item 12: default user "user"; the token is enforced by the agent from here on.
  await new AgentClient(place.runDir).init(s.init, s.tokenHeader).catch((e: unknown) => {
    // A VM that died meanwhile explains an /init that found no socket better than the socket error.
    const death = dead();
    throw death ? unavailable(`the sandbox VM exited while starting (${death})`) : e;
  });
  stage(stages, "init", at);
}

export function agentInit(req: BootRequest): AgentInit {
  return { envVars: req.envVars, accessToken: req.accessToken, defaultUser: "user", defaultWorkdir: "/home/user" };
}

export async function unwindLogged(id: string, undo: CleanupStack, console: string): Promise<void> {
  // The sandbox dir (and its console) may go with the undo: keep the console's end in the log.
  const tail = tailFile(console, 4096);
  if (tail) log.warn("console of the failed start", { id, tail });
  for (const err of await undo.unwind()) log.warn("cleanup after failed start", { id, error: err.message });
}

/** Creates a sandbox's VM: from the template's snapshot when req.from is set, else by a cold boot. */
export async function bootSandbox(config: Config, driver: VmDriver, req: BootRequest): Promise<Booted> {
  const p = sandboxPaths(config, req.id);
  const undo = new CleanupStack();
  const stages: Stages = {};
  const t0 = performance.now();
  try {
    mkdirSync(p.sandboxDir, { recursive: true, mode: 0o700 });
    undo.push("sandbox dir", () => rmSync(p.sandboxDir, { recursive: true, force: true }));
    // A restored guest's page cache matches the layer as it was at snapshot time, so it gets that copy.
    cloneLayer(req.from?.layer ?? templateFiles(req.template).layer, p.layer, config.dataDir);
    stage(stages, "layer", t0);
    mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
    undo.push("run dir", () => rmSync(p.runDir, { recursive: true, force: true }));
    const place = { id: req.id, runDir: p.runDir, console: p.console, exitFile: p.exitFile, layer: p.layer, restoreFrom: req.from?.vmDir };
    if (req.from) writeFileSync(p.baseFile, req.from.vmDir);
    const handle = await startGuest(config, driver, req.template, { place, init: agentInit(req), undo }, stages);
    undo.release();
    stage(stages, "total", t0);
    return { handle, runDir: p.runDir, sandboxDir: p.sandboxDir, mode: req.from ? "restore" : "cold-boot", stages };
  } catch (e) {
    await unwindLogged(req.id, undo, p.console);
    throw e;
  }
}

/** Brings a paused sandbox back from its own snapshot (sandboxPaths().pauseDir) and layer. A failure
 *  leaves both in place, so the sandbox stays paused and the resume can be retried. */
export async function resumeSandbox(config: Config, driver: VmDriver, req: BootRequest): Promise<Booted> {
  const p = sandboxPaths(config, req.id);
  const undo = new CleanupStack();
  try {
    rmSync(p.runDir, { recursive: true, force: true });
    mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
    undo.push("run dir", () => rmSync(p.runDir, { recursive: true, force: true }));
    // A pause diff lies over the template snapshot this sandbox came from: the daemon's record names it.
    const restoreBase = existsSync(p.baseFile) ? readFileSync(p.baseFile, "utf8") : undefined;
    const place = { id: req.id, runDir: p.runDir, console: p.console, exitFile: p.exitFile, layer: p.layer, restoreFrom: p.pauseDir, restoreBase };
    const stages: Stages = {};
    const t0 = performance.now();
    const handle = await startGuest(config, driver, req.template, { place, init: agentInit(req), tokenHeader: req.accessToken, undo }, stages);
    stage(stages, "total", t0);
    undo.release();
    // The running VM maps the memory file privately: unlinking keeps its pages, and the next pause
    // writes a new file instead of truncating the one under the mapping.
    rmSync(p.pauseDir, { recursive: true, force: true });
    return { handle, runDir: p.runDir, sandboxDir: p.sandboxDir, mode: "restore", stages };
  } catch (e) {
    await unwindLogged(req.id, undo, p.console);
    throw e;
  }
}

/** Pause to disk: the (already paused) VM is snapshotted into pauseDir and its process ends, so a
 *  paused sandbox holds no memory. On failure the VM is left paused and running, for the caller to resume. */
export async function parkSandbox(config: Config, id: string, handle: VmHandle): Promise<{ diff: boolean }> {
  const p = sandboxPaths(config, id);
  rmSync(p.pauseDir, { recursive: true, force: true });
  // A clone of a template snapshot writes only the pages it changed, over that snapshot; a cold-booted
  // VM (or a diff the vmm cannot make) writes all of its memory.
  let diff = existsSync(p.baseFile);
  try {
    if (diff) {
      await handle.snapshot(p.pauseDir, { diff: true }).catch((e: unknown) => {
        log.warn("diff snapshot failed; writing a full one", { id, error: e instanceof Error ? e.message : String(e) });
        diff = false;
        rmSync(p.pauseDir, { recursive: true, force: true });
      });
    }
    if (!diff) await handle.snapshot(p.pauseDir);
  } catch (e) {
    rmSync(p.pauseDir, { recursive: true, force: true });
    throw e;
  }
  if (!diff) rmSync(p.baseFile, { force: true }); // its resumed VM no longer depends on the template snapshot
  await handle.stop();
  return { diff };
}

/** The template snapshot VM dirs that live sandboxes depend on (see sandboxPaths().baseFile). */
export function snapshotsInUse(config: Config, ids: string[]): Set<string> {
  const used = new Set<string>();
  for (const id of ids) {
    try {
      used.add(readFileSync(sandboxPaths(config, id).baseFile, "utf8"));
    } catch {
      // cold-booted, or paused with a full snapshot
    }
  }
  return used;
}

/** Whether a paused sandbox has a complete snapshot to resume from (the vmm renames `state` in last). */
export function isParked(config: Config, id: string): boolean {
  return existsSync(join(sandboxPaths(config, id).pauseDir, "state"));
}

/** Removes what a sandbox left on disk once it has ended (its layer and paused state are not reusable). */
export function removeSandboxFiles(config: Config, id: string): void {
  const p = sandboxPaths(config, id);
  rmSync(p.runDir, { recursive: true, force: true });
  // Keep console.log and exit.json for `onebox sandbox logs`; drop the big files.
  rmSync(p.layer, { force: true });
  rmSync(p.pauseDir, { recursive: true, force: true });
}
