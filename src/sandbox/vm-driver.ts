// The one seam between the sandbox runtime and src/vmm: the VmProcess API of docs/architecture.md.
// src/vmm is written in parallel; until `src/vmm/vm-process.ts` lands, `loadVmDriver()` reports it
// missing and create answers 503 (no fake VM stands in). Swap the body of loadVmDriver for a static
// import once the module exists.
import type { Socket } from "node:net";

export interface VmSpec {
  id: string;
  runDir: string;
  consolePath: string;
  exitFile: string;
  memMib: number;
  vcpus: number;
  kernel: string;
  initrd?: string;
  cmdline: string;
  restoreFrom?: string;
  disks: { path: string; readOnly: boolean }[];
  rng: boolean;
  vsock?: { cid: number; forwardPorts: number[] };
}

export interface VmStats {
  rssKib: number;
  pssKib: number;
  cpuNs: number;
}

export interface VmExit {
  /** poweroff | reboot | panic | internal-error | stopped | error | vmm-crash */
  reason: string;
  detail?: string;
  consoleTail?: string;
  signal?: string | number;
}

export interface VmHandle {
  readonly pid: number;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  snapshot(dir: string): Promise<void>;
  stats(): Promise<VmStats>;
  forward(port: number): Promise<string>;
  readonly exited: Promise<VmExit>;
}

export interface VmDriver {
  spawn(spec: VmSpec): Promise<VmHandle>;
  adopt(runDir: string): Promise<VmHandle | null>;
  dialVsock?(vsockPath: string, port: number): Promise<Socket>;
}

export type VmDriverResult = { ok: true; driver: VmDriver } | { ok: false; problem: string };

/** Path of the forward socket the vmm listens on for guest TCP `port` (docs/architecture.md). */
export function forwardSocketPath(runDir: string, port: number): string {
  return `${runDir}/vsock.sock.tcp-${port}`;
}

/** Loads src/vmm's VmProcess. Not yet present in this tree: returns the problem instead. */
export async function loadVmDriver(): Promise<VmDriverResult> {
  return {
    ok: false,
    problem:
      "the VMM's TypeScript side (src/vmm/vm-process.ts) is not in this build yet; update onebox to a build that includes it",
  };
}
