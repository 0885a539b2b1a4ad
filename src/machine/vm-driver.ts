// The machine layer's seam to src/vmm: the VmProcess API of docs/architecture.md (fake-machine.ts has an in-memory one).
import type { Socket } from "node:net";
import { readExitRecord, VmProcess, type RestoreTimings, type VmExit, type VmSpec, type VmStats } from "../vmm/index.ts";

// The VM's description, statistics and end come from src/vmm itself: one definition of each.
export type { RestoreTimings, VmExit, VmSpec, VmStats } from "../vmm/index.ts";

export interface VmHandle {
  readonly pid: number;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  /** diff: only what a restored VM changed, over the snapshot it came from (docs/snapshot.md "Diff snapshots"). */
  snapshot(dir: string, opts?: { diff?: boolean }): Promise<void>;
  stats(): Promise<VmStats>;
  forward(port: number): Promise<string>;
  readonly exited: Promise<VmExit>;
}

/** A vmm started with `--pool` (docs/snapshot.md "Pooled restore"): the machine is built and waits for restore(dir). */
export interface PooledVmHandle extends VmHandle {
  /** Rejects if the snapshot is refused (the vmm stays pooled) or the restore failed (the vmm ends). */
  restore(dir: string): Promise<RestoreTimings>;
}

export interface VmDriver {
  spawn(spec: VmSpec): Promise<VmHandle>;
  /** Absent: this driver cannot pool, and the daemon keeps no warm pool. */
  spawnPooled?(spec: VmSpec): Promise<PooledVmHandle>;
  /** exitFile: where the daemon's own state says the VM's exit record is (never learnt from runDir). */
  adopt(runDir: string, exitFile: string): Promise<VmHandle | null>;
  /** The exit record a VM left behind (for VMs that ended while the daemon was down). */
  readExit(exitFile: string): Promise<VmExit | null>;
  dialVsock?(vsockPath: string, port: number): Promise<Socket>;
}

export type VmDriverResult = { ok: true; driver: VmDriver } | { ok: false; problem: string };

/** Path of the forward socket the vmm listens on for guest TCP `port` (docs/architecture.md). */
export { forwardPath as forwardSocketPath, vsockPath } from "../vmm/index.ts";

/** The VMM driver: src/vmm's VmProcess (spawns the embedded onebox-vmm, one process per VM). */
export async function loadVmDriver(): Promise<VmDriverResult> {
  return {
    ok: true,
    driver: {
      spawn: (spec) => VmProcess.spawn(spec),
      spawnPooled: (spec) => VmProcess.spawnPooled(spec),
      adopt: (runDir, exitFile) => VmProcess.adopt(runDir, exitFile),
      readExit: (exitFile) => readExitRecord(exitFile),
    },
  };
}
