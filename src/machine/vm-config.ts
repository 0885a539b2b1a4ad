// What a template's microVM looks like: one place for cold boots, template snapshots, restores and pooled vmms.
import { join } from "node:path";
import { CODE_INTERPRETER_PORT, ENVD_PORT, netCmdlineArg } from "../../guest/protocol.ts";
import { GUEST_NET } from "../net/addresses.ts";
import type { TemplateRow } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { unavailable } from "../util/errors.ts";
import type { VmHandle, VmSpec } from "./vm-driver.ts";

/** Guest CID: each VM has its own vmm and hybrid-vsock socket, so the CID is private to it. */
export const GUEST_CID = 3;

/** Guest ports the vmm forwards from the start (the rest on first use through `forward PORT`). */
export const FORWARDED_PORTS = [ENVD_PORT, CODE_INTERPRETER_PORT];

export function templateFiles(t: TemplateRow) {
  return { rootfs: join(t.dir, "rootfs.ext4"), layer: join(t.dir, "layer.ext4") };
}

export interface VmPlace {
  /** Sandbox id, or the template VM's id while its snapshot is made. */
  id: string;
  runDir: string;
  console: string;
  exitFile: string;
  /** This VM's own writable layer (a copy of the template's or of its snapshot's). */
  layer: string;
  /** Snapshot directory to restore instead of booting the kernel. */
  restoreFrom?: string;
  /** When restoreFrom is a pause diff: the template snapshot it lies over (sandboxPaths().baseFile). */
  restoreBase?: string;
  /** This VM's network slot (machine/net-slots.ts): its TAP becomes the guest's eth0. */
  net?: { fd: number } | null;
}

/** The VM spec for template t at place p. A restore must name the same devices in the same order as
 *  the snapshotted VM (docs/snapshot.md), which holds because both come from this function. */
export function vmSpecFor(config: Config, t: TemplateRow, p: VmPlace): VmSpec {
  // eth0's configuration is read by the guest's init at a cold boot only; a restore keeps what the snapshotted
  // guest had (the same address on every clone, docs/network.md).
  const net = p.net ? netCmdlineArg(GUEST_NET) : "";
  const cmdline = ["console=ttyS0 reboot=k panic=-1 quiet", `onebox.id=${p.id}`, `onebox.hostname=${p.id}`, net, t.cmdlineExtra]
    .filter(Boolean)
    .join(" ");
  return {
    id: p.id,
    runDir: p.runDir,
    consolePath: p.console,
    consoleMaxBytes: config.consoleLogMaxBytes,
    exitFile: p.exitFile,
    memMib: t.memoryMb,
    vcpus: t.cpuCount,
    kernel: config.pvmKernel ?? t.kernel,
    initrd: t.initrd ?? undefined,
    cmdline,
    restoreFrom: p.restoreFrom,
    restoreBase: p.restoreBase,
    disks: [
      { path: templateFiles(t).rootfs, readOnly: true },
      { path: p.layer, readOnly: false },
    ],
    rng: true,
    vsock: { cid: GUEST_CID, forwardPorts: FORWARDED_PORTS },
    ...(p.net ? { net: { tapFd: p.net.fd, mac: GUEST_NET.mac } } : {}),
  };
}

/** Spawns the vmm, turning a setup failure into a 503 that points at `onebox doctor`. */
export async function spawnVm(spawn: (spec: VmSpec) => Promise<VmHandle>, spec: VmSpec): Promise<VmHandle> {
  return spawn(spec).catch((e: unknown) => {
    throw unavailable(`the VM process did not start (${e instanceof Error ? e.message : String(e)}); run \`onebox doctor\``);
  });
}

/** Why the VM ended, once it has (for boot loops that must stop waiting on a dead guest). */
export function deathWatch(handle: VmHandle): () => string | null {
  let dead: string | null = null;
  void handle.exited.then((x) => (dead = `${x.reason}: ${x.detail}${x.signal !== undefined ? ` (${x.signal})` : ""}`));
  return () => dead;
}
