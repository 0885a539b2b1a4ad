// Boots one sandbox's microVM: clone the layer, spawn the vmm, wait for the agent, /init it.
// Every step registers its undo; a failure unwinds them all (no leaked dirs, layers, processes).
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CODE_INTERPRETER_PORT, ENVD_PORT } from "../../guest/protocol.ts";
import type { TemplateRow } from "../store/index.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { unavailable } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { AgentClient, waitHealthy } from "./agent-client.ts";
import { tailFile } from "../util/tail-file.ts";
import { forwardSocketPath, type VmDriver, type VmHandle } from "./vm-driver.ts";

export interface BootRequest {
  id: string;
  template: TemplateRow;
  envVars: Record<string, string>;
  /** Absent for v1 sandboxes created without `secure` (spec §1.3): envd then checks no token. */
  accessToken?: string;
}

export interface Booted {
  handle: VmHandle;
  runDir: string;
  sandboxDir: string;
}

/** Guest CID: each VM has its own vmm and hybrid-vsock socket, so the CID is private to it. */
const GUEST_CID = 3;

export function sandboxPaths(config: Config, id: string) {
  const sandboxDir = join(config.dataDir, "sandboxes", id);
  return {
    sandboxDir,
    runDir: join(config.runRoot, "vms", id),
    layer: join(sandboxDir, "layer.ext4"),
    console: join(sandboxDir, "console.log"),
    exitFile: join(sandboxDir, "exit.json"),
  };
}

export function templateFiles(t: TemplateRow) {
  return { rootfs: join(t.dir, "rootfs.ext4"), layer: join(t.dir, "layer.ext4") };
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

export async function bootSandbox(config: Config, driver: VmDriver, req: BootRequest): Promise<Booted> {
  const p = sandboxPaths(config, req.id);
  const files = templateFiles(req.template);
  const undo = new CleanupStack();
  try {
    mkdirSync(p.sandboxDir, { recursive: true, mode: 0o700 });
    undo.push("sandbox dir", () => rmSync(p.sandboxDir, { recursive: true, force: true }));

    // Reflink where the filesystem allows (XFS, btrfs): instant and shared; a plain copy elsewhere.
    const cp = Bun.spawnSync(["cp", "--reflink=auto", "--sparse=always", files.layer, p.layer], { stderr: "pipe" });
    if (cp.exitCode !== 0) {
      throw unavailable(`could not clone the template layer: ${cp.stderr.toString().trim()}; check free disk space in ${config.dataDir}`);
    }

    mkdirSync(p.runDir, { recursive: true, mode: 0o700 });
    undo.push("run dir", () => rmSync(p.runDir, { recursive: true, force: true }));

    const cmdline = ["console=ttyS0 reboot=k panic=-1 quiet", `onebox.id=${req.id}`, req.template.cmdlineExtra]
      .filter(Boolean)
      .join(" ");
    const handle = await driver
      .spawn({
      id: req.id,
      runDir: p.runDir,
      consolePath: p.console,
      exitFile: p.exitFile,
      memMib: req.template.memoryMb,
      vcpus: req.template.cpuCount,
      kernel: config.pvmKernel ?? req.template.kernel,
      initrd: req.template.initrd ?? undefined,
      cmdline,
      disks: [
        { path: files.rootfs, readOnly: true },
        { path: p.layer, readOnly: false },
      ],
      rng: true,
      vsock: { cid: GUEST_CID, forwardPorts: [ENVD_PORT, CODE_INTERPRETER_PORT] },
      })
      .catch((e: unknown) => {
        throw unavailable(`the VM process did not start (${e instanceof Error ? e.message : String(e)}); run \`onebox doctor\``);
      });
    undo.push("vm process", async () => {
      await handle.stop().catch(() => undefined);
      await Promise.race([handle.exited, Bun.sleep(5000)]);
    });
    let dead: string | null = null;
    void handle.exited.then((x) => (dead = `${x.reason}: ${x.detail}${x.signal !== undefined ? ` (${x.signal})` : ""}`));

    const agent = new AgentClient(p.runDir);
    await agent.waitHealthy(Date.now() + config.bootTimeoutMs, () => dead);
    // spec §3.5 / §6 item 12: default user "user"; the token is enforced by the agent from here on.
    await agent.init({ envVars: req.envVars, accessToken: req.accessToken, defaultUser: "user", defaultWorkdir: "/home/user" });
    const ready = req.template.readyPort;
    if (ready) {
      const socket = ready === ENVD_PORT || ready === CODE_INTERPRETER_PORT ? forwardSocketPath(p.runDir, ready) : await handle.forward(ready);
      await waitHealthy(socket, `template's service on port ${ready}`, Date.now() + config.bootTimeoutMs, () => dead);
    }

    undo.release();
    return { handle, runDir: p.runDir, sandboxDir: p.sandboxDir };
  } catch (e) {
    // The sandbox dir (and its console) goes with the undo: keep the console's end in the log.
    const tail = tailFile(p.console, 4096);
    if (tail) log.warn("console of the failed boot", { id: req.id, tail });
    const errors = await undo.unwind();
    for (const err of errors) log.warn("cleanup after failed boot", { id: req.id, error: err.message });
    throw e;
  }
}

/** Removes what a sandbox left on disk once it has ended (its layer is not reusable). */
export function removeSandboxFiles(config: Config, id: string): void {
  const p = sandboxPaths(config, id);
  rmSync(p.runDir, { recursive: true, force: true });
  // Keep console.log and exit.json for `onebox sandbox logs`; drop the big layer.
  rmSync(p.layer, { force: true });
}
