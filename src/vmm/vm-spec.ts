// What a VM is made of (docs/architecture.md "TS side of the VMM") and how it becomes onebox-vmm's command line.
import { join } from "node:path";

export interface VmSpec {
  id: string; // sandbox id (or template build id)
  runDir: string; // /run/onebox/vms/<id>: ctl.sock, vsock.sock live here
  consolePath: string;
  /** The console log's size cap (`--console-max`, docs/vmm.md "Console log"); unset: the vmm's default, 1 MiB. */
  consoleMaxBytes?: number;
  exitFile: string;
  memMib: number;
  vcpus: number;
  kernel: string;
  initrd?: string;
  cmdline: string; // cold boot
  restoreFrom?: string; // or restore (issue 3)
  /** When restoreFrom is a diff (a pause): the snapshot it lies over, from the daemon's own record (the path the
   *  diff's state file names was written by a vmm and is only checked against this one). */
  restoreBase?: string;
  /** Or pooled: prepare a memMib x vcpus machine with these devices and wait for `VmProcess.restore(dir)`
   *  (docs/snapshot.md "Pooled restore"); kernel/cmdline/testGuest are ignored; restoreFrom, if given, is the
   *  snapshot the vmm reads at start (as root) for that restore. */
  pooled?: boolean;
  /** Tests only: a flat 64-bit binary run instead of a kernel (`--test-guest`); kernel/initrd/cmdline are ignored. */
  testGuest?: string;
  disks: { path: string; readOnly: boolean }[];
  rng: boolean;
  vsock?: { cid: number; forwardPorts: number[] }; // forwardPorts e.g. [49983, 49999]
  /** virtio-net on a TAP the daemon opened (src/net: IFF_TAP|IFF_NO_PI|IFF_VNET_HDR), passed to the vmm as fd
   *  VMM_NET_FD; the daemon keeps its own copy. mac: the guest's (a restore keeps the snapshot's, docs/virtio.md).
   *  A restore needs it too: the clone runs on its own TAP. The guest configures eth0 from the kernel command line
   *  (guest/protocol.ts netCmdlineArg), which the cold boot's cmdline must carry. */
  net?: { tapFd: number; mac: string };
}

/** The fd a vmm inherits its TAP as (3 is its own dir, docs/vmm.md "Isolation"). */
export const VMM_NET_FD = 4;

export interface VmStats {
  rssKib: number;
  pssKib: number;
  cpuNs: number;
  /** µs to the VM's first guest exit, from the vmm's main() (cold boot, --restore) or, for a pooled vmm, from the
   *  `restore` request; 0 before it. */
  startUs: number;
  /** µs from the same start to the first KVM_RUN entry (startUs - enterUs = the guest's first run); 0 before it. */
  enterUs: number;
}

/** Where a pooled restore spent its time (the `restore` reply), in ns; the first guest exit is `stats().startUs`. */
export interface RestoreTimings {
  readNs: number; // open + read DIR/state
  validateNs: number; // checksum, caps, host kind, shape, sections, DIR/memory size
  mmapNs: number; // DIR/memory mapped MAP_PRIVATE over guest RAM
  vmNs: number; // irqchip + PIT state
  vcpuNs: number; // registers, FPU, MSRs, LAPIC, events of every vCPU
  devicesNs: number; // kvm clock, COM1/i8042/CMOS, virtio transports, vsock
  threadsNs: number; // event loop + vCPU threads started
  totalNs: number; // request received to vCPUs started
}

/** Exit record reasons (docs/architecture.md "Exit record") plus `vmm-crash` for a process gone without one. */
export type VmExitReason = "poweroff" | "reboot" | "panic" | "internal-error" | "stopped" | "error" | "vmm-crash";

export interface VmExit {
  reason: VmExitReason;
  detail: string;
  consoleTail: string;
  /** For vmm-crash: the signal that ended the process (e.g. "SIGKILL"), or its exit code if it exited. */
  signal?: string | number;
}

/** Fixed file names inside runDir. */
export const RUN_FILES = {
  ctl: "ctl.sock",
  vsock: "vsock.sock",
  stdout: "vmm.stdout",
  stderr: "vmm.stderr",
  state: "vmm.json", // what adopt() needs after a daemon restart
} as const;

export function ctlPath(runDir: string): string {
  return join(runDir, RUN_FILES.ctl);
}

export function vsockPath(runDir: string): string {
  return join(runDir, RUN_FILES.vsock);
}

/** Path of the forward socket for guest TCP `port` (docs/architecture.md "Forward sockets"). */
export function forwardPath(runDir: string, port: number): string {
  return `${vsockPath(runDir)}.tcp-${port}`;
}

/** The onebox-vmm arguments for a spec, in the order docs/architecture.md lists them. */
export function vmmArgs(spec: VmSpec): string[] {
  const args = ["--ctl", ctlPath(spec.runDir), "--console", spec.consolePath];
  if (spec.consoleMaxBytes !== undefined) args.push("--console-max", String(spec.consoleMaxBytes));
  args.push("--exit-file", spec.exitFile);
  args.push("--mem-mib", String(spec.memMib), "--vcpus", String(spec.vcpus));
  if (spec.pooled) {
    // The snapshot a pool entry is made for is read at start, as root (docs/snapshot.md "Pooled restore").
    args.push("--pool", ...(spec.restoreFrom ? ["--restore", spec.restoreFrom] : []));
  } else if (spec.testGuest) {
    args.push("--test-guest", spec.testGuest);
  } else if (spec.restoreFrom) {
    args.push("--restore", spec.restoreFrom);
  } else {
    args.push("--kernel", spec.kernel);
    if (spec.initrd) args.push("--initrd", spec.initrd);
    args.push("--cmdline", spec.cmdline);
  }
  if (spec.restoreFrom && spec.restoreBase && (spec.pooled || !spec.testGuest)) args.push("--restore-base", spec.restoreBase);
  for (const d of spec.disks) args.push("--disk", d.readOnly ? `${d.path},ro` : d.path);
  if (spec.rng) args.push("--rng");
  if (spec.vsock) {
    args.push("--vsock", vsockPath(spec.runDir), "--cid", String(spec.vsock.cid));
    // The socket path is named here, once (forwardPath): the vmm derives no socket name from another.
    for (const p of spec.vsock.forwardPorts) args.push("--forward", `${p}=${forwardPath(spec.runDir, p)}`);
  }
  if (spec.net) args.push("--net", `${VMM_NET_FD},${spec.net.mac}`);
  return args;
}
