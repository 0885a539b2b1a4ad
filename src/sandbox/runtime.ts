// A sandbox's VM on disk and in a vmm: boot it (restore the template's snapshot or cold-boot), resume it from
// its own pause snapshot, park it (pause to disk), and its files. Every step registers its undo; a failure
// unwinds them all (no leaked dirs, layers, processes).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentInit } from "../machine/agent-client.ts";
import { stage, startGuest, unwindLogged, type Stages } from "../machine/bring-up.ts";
import { cloneLayer, type RestoreSource } from "../machine/disk.ts";
import type { Machine } from "../machine/machine.ts";
import { templateFiles } from "../machine/vm-config.ts";
import type { VmHandle } from "../machine/vm-driver.ts";
import type { CompiledPolicy } from "../net/policy.ts";
import type { TemplateRow } from "../store/index.ts";
import { initDefaults } from "../store/template-defaults.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { FILESYSTEM_ONLY, sandboxPaths } from "./paths.ts";

export interface BootRequest {
  id: string;
  template: TemplateRow;
  envVars: Record<string, string>;
  /** Absent for v1 sandboxes created without `secure` (spec §1.3): envd then checks no token. */
  accessToken?: string;
  /** Restore this snapshot instead of a cold boot. */
  from?: RestoreSource;
  /** The sandbox's egress policy, written into its network slot before the vmm spawns (src/sandbox/egress.ts). */
  egress?: CompiledPolicy;
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

export function agentInit(req: BootRequest): AgentInit {
  return { ...initDefaults(req.template, req.envVars), accessToken: req.accessToken };
}

/** Creates a sandbox's VM: from the template's snapshot when req.from is set, else by a cold boot. */
export async function bootSandbox(config: Config, m: Machine, req: BootRequest): Promise<Booted> {
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
    const place = { id: req.id, runDir: p.runDir, console: p.console, exitFile: p.exitFile, layer: p.layer, restoreFrom: req.from?.vmDir, restoreBase: req.from?.base };
    // Its pauses (and snapshots) are diffs over what it was restored from, unless that is itself a diff (a clone of
    // a snapshot captured as one): those are written in full, so diffs never chain.
    if (req.from && !req.from.base) writeFileSync(p.baseFile, req.from.vmDir);
    const handle = await startGuest(config, m, req.template, { place, init: agentInit(req), tokenHeader: req.from?.guestToken, undo, egress: req.egress }, stages);
    undo.release();
    stage(stages, "total", t0);
    return { handle, runDir: p.runDir, sandboxDir: p.sandboxDir, mode: req.from ? "restore" : "cold-boot", stages };
  } catch (e) {
    await unwindLogged(req.id, undo, p.console);
    throw e;
  }
}

/** Brings a paused sandbox back from its own snapshot (sandboxPaths().pauseDir) and layer, or, after a
 *  filesystem-only pause or when `reboot` is asked (E2B's connect with `memory: false`), boots its layer afresh: a
 *  new boot, the same files. A failure leaves both in place, so the sandbox stays paused and the resume can be
 *  retried. */
export async function resumeSandbox(config: Config, m: Machine, req: BootRequest, opts: { reboot?: boolean } = {}): Promise<Booted> {
  const p = sandboxPaths(config, req.id);
  const reboot = opts.reboot === true || !existsSync(join(p.pauseDir, "state"));
  const undo = new CleanupStack();
  try {
    rmSync(p.runDir, { recursive: true, force: true });
    mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
    undo.push("run dir", () => rmSync(p.runDir, { recursive: true, force: true }));
    // A pause diff lies over the template snapshot this sandbox came from: the daemon's record names it.
    const restoreBase = !reboot && existsSync(p.baseFile) ? readFileSync(p.baseFile, "utf8") : undefined;
    const place = { id: req.id, runDir: p.runDir, console: p.console, exitFile: p.exitFile, layer: p.layer, restoreFrom: reboot ? undefined : p.pauseDir, restoreBase };
    const stages: Stages = {};
    const t0 = performance.now();
    const handle = await startGuest(config, m, req.template, { place, init: agentInit(req), tokenHeader: req.accessToken, undo, egress: req.egress }, stages);
    stage(stages, "total", t0);
    undo.release();
    // The running VM maps the memory file privately: unlinking keeps its pages, and the next pause
    // writes a new file instead of truncating the one under the mapping.
    rmSync(p.pauseDir, { recursive: true, force: true });
    if (reboot) rmSync(p.baseFile, { force: true }); // a booted VM does not depend on the template snapshot
    return { handle, runDir: p.runDir, sandboxDir: p.sandboxDir, mode: reboot ? "cold-boot" : "restore", stages };
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
  let diff: boolean;
  try {
    diff = await snapshotVm(handle, p.pauseDir, id, existsSync(p.baseFile));
  } catch (e) {
    rmSync(p.pauseDir, { recursive: true, force: true });
    throw e;
  }
  if (!diff) rmSync(p.baseFile, { force: true }); // its resumed VM no longer depends on the template snapshot
  await handle.stop();
  return { diff };
}

/** Snapshots a paused VM into dir (a new directory): as a diff over the snapshot it was restored from when `diff`
 *  and the vmm can make one (a failed diff is logged and written in full instead), else in full. Returns whether the
 *  result is a diff. */
export async function snapshotVm(handle: VmHandle, dir: string, id: string, diff: boolean): Promise<boolean> {
  if (diff) {
    try {
      await handle.snapshot(dir, { diff: true });
      return true;
    } catch (e) {
      log.warn("diff snapshot failed; writing a full one", { id, error: e instanceof Error ? e.message : String(e) });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  await handle.snapshot(dir);
  return false;
}

/** Filesystem-only pause (E2B's keepMemory: false): the guest has written its dirty pages to the layer (pause.ts),
 *  so the VM just ends; the layer stays and the marker says the resume boots it afresh. */
export async function parkFilesystemOnly(config: Config, id: string, handle: VmHandle): Promise<void> {
  const p = sandboxPaths(config, id);
  rmSync(p.pauseDir, { recursive: true, force: true });
  mkdirSync(p.pauseDir, { recursive: true, mode: 0o700 });
  await handle.stop();
  writeFileSync(join(p.pauseDir, FILESYSTEM_ONLY), "", { mode: 0o600 });
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

/** Removes what a sandbox left on disk once it has ended (its layer and paused state are not reusable). */
export function removeSandboxFiles(config: Config, id: string): void {
  const p = sandboxPaths(config, id);
  rmSync(p.runDir, { recursive: true, force: true });
  // Keep console.log and exit.json for `onebox sandbox logs`; drop the big files.
  rmSync(p.layer, { force: true });
  rmSync(p.pauseDir, { recursive: true, force: true });
}
