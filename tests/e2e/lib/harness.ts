// e2e harness: builds the test initramfs and boots onebox-init test modes (onebox.test=) as real
// microVMs through src/vmm, inside the test host (scripts/testhost). Cleans up what it starts.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ONEBOX_MARKER_BOOTED } from "../../../guest/protocol.ts";
import type { Socket } from "node:net";
import { VmProcess, dialVsock, type VmSpec } from "../../../src/vmm/index.ts";

export const REPO = join(import.meta.dir, "..", "..", "..");
/** Set by scripts/testhost; the e2e tests need its /dev/kvm (emulated AMD-V) and kernel. */
export const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
/** Wall-clock budget for one boot inside the test host (nested under TCG: seconds, not ms). */
export const BOOT_TIMEOUT_MS = 120_000;

export type TestMode = "echo" | "blk" | "boot" | "panic" | "net";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the e2e tests inside the test host (scripts/test-e2e.sh)`);
  return v;
}

export function testKernel(): string {
  return env("ONEBOX_TEST_KERNEL");
}

/** Runs a command in the repo, throwing with its output when it fails. */
function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout.toString()}${r.stderr.toString()}`);
  }
}

let scratch: string | null = null;
/** Short paths: Unix socket paths are limited to 108 bytes. */
export function scratchRoot(): string {
  if (!scratch) {
    const dir = `/tmp/obx-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    scratch = dir;
  }
  return scratch;
}

let initramfs: string | null = null;
/** The test initramfs (onebox-init + the guest modules), built once per test process. */
export function testInitramfs(): string {
  if (initramfs) return initramfs;
  // The host normally built these already; /repo is a per-run copy, so building here is harmless.
  if (!existsSync(join(REPO, "guest/init/build/onebox-init"))) run(["make", "-C", "guest/init"]);
  if (!existsSync(join(REPO, "ffi/build/onebox-vmm"))) run(["make", "-C", "ffi"]);
  const out = join(scratchRoot(), "test-initramfs.cpio.gz");
  run(["bash", "scripts/mkinitramfs.sh", "--modules", join(env("ONEBOX_TEST_KERNEL_DIR"), "modules"), "--out", out]);
  initramfs = out;
  return out;
}

let nextCid = 3;
let nextId = 0;

export interface TestVmOptions {
  test: TestMode;
  seed?: bigint;
  disks?: { path: string; readOnly: boolean }[];
  memMib?: number;
  vcpus?: number;
  vsock?: boolean;
  rng?: boolean;
  /** virtio-net on this TAP fd (docs/virtio.md); the guest configures eth0 only with cmdlineExtra's onebox.net=. */
  net?: VmSpec["net"];
  cmdlineExtra?: string;
}

export interface TestVm {
  vm: VmProcess;
  spec: VmSpec;
  /** The host end of the guest's vsock (hybrid vsock Unix socket, docs/architecture.md). */
  vsockPath: string;
  console(): string;
  /** Resolves once `text` is on the console; rejects on timeout or if the VM exits first. */
  waitConsole(text: string, timeoutMs?: number): Promise<void>;
  /** Stops the VM if it still runs and removes its files. */
  dispose(): Promise<void>;
}

/** The daemon's command line (docs/architecture.md, "Inside the guest") plus the test mode. */
export function testCmdline(test: TestMode, seed?: bigint): string {
  const parts = ["console=ttyS0", "reboot=k", "panic=-1", "quiet", `onebox.test=${test}`];
  if (seed !== undefined) parts.push(`onebox.seed=${seed}`);
  return parts.join(" ");
}

export async function startTestVm(o: TestVmOptions): Promise<TestVm> {
  const n = nextId++;
  const runDir = join(scratchRoot(), `vm${n}`);
  mkdirSync(runDir, { recursive: true });
  const spec: VmSpec = {
    id: `e2e-${process.pid}-${n}`,
    runDir,
    consolePath: join(runDir, "console.log"),
    exitFile: join(runDir, "exit.json"),
    memMib: o.memMib ?? 256,
    vcpus: o.vcpus ?? 1,
    kernel: testKernel(),
    initrd: testInitramfs(),
    cmdline: [testCmdline(o.test, o.seed), o.cmdlineExtra ?? ""].join(" ").trim(),
    disks: o.disks ?? [],
    rng: o.rng ?? true,
    vsock: o.vsock === false ? undefined : { cid: nextCid++, forwardPorts: [] },
    ...(o.net ? { net: o.net } : {}),
  };
  const vm = await VmProcess.spawn(spec);
  let exited = false;
  // How the VM ended, for the error when it ends before a marker (an empty console says nothing).
  let how = "";
  void vm.exited.then(
    (e) => {
      exited = true;
      how = `reason ${e.reason}${e.signal !== undefined ? ` (${e.signal})` : ""}: ${e.detail}`;
    },
    (e: unknown) => {
      exited = true;
      how = `exit not known: ${String(e)}`;
    },
  );
  const vmmStderr = (): string => {
    const f = join(runDir, "vmm.stderr");
    return existsSync(f) ? readFileSync(f, "utf8").slice(-1000) : "";
  };
  const consoleText = (): string => (existsSync(spec.consolePath) ? readFileSync(spec.consolePath, "utf8") : "");
  return {
    vm,
    spec,
    vsockPath: join(runDir, "vsock.sock"),
    console: consoleText,
    async waitConsole(text, timeoutMs = BOOT_TIMEOUT_MS) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (consoleText().includes(text)) return;
        if (exited) {
          throw new Error(`VM exited before printing '${text}' (${how}); vmm stderr:\n${vmmStderr()}\nconsole tail:\n${consoleText().slice(-2000)}`);
        }
        if (Date.now() > end) throw new Error(`no '${text}' after ${timeoutMs} ms; console tail:\n${consoleText().slice(-2000)}`);
        await Bun.sleep(50);
      }
    },
    async dispose() {
      if (!exited) {
        await vm.stop().catch(() => process.kill(vm.pid, "SIGKILL"));
        await vm.exited.catch(() => undefined);
      }
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** Boots a VM and waits for onebox-init's booted marker. */
export async function bootToMarker(o: TestVmOptions): Promise<TestVm> {
  const t = await startTestVm(o);
  try {
    await t.waitConsole(ONEBOX_MARKER_BOOTED);
  } catch (e) {
    await t.dispose();
    throw e;
  }
  return t;
}

export function sha256Hex(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/** Dials guest vsock `port`, retrying while nothing listens yet (the guest starts its server after boot). */
export async function dialWhenListening(vsockPath: string, port: number, timeoutMs = BOOT_TIMEOUT_MS): Promise<Socket> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await dialVsock(vsockPath, port);
    } catch (e) {
      if (Date.now() > end) throw new Error(`vsock port ${port} not listening after ${timeoutMs} ms: ${(e as Error).message}`);
      await Bun.sleep(200);
    }
  }
}

/** Sends `data` over an echo connection and collects exactly as many bytes back; rejects if the stream
 *  ends early. `label` names the stream in that error. */
export function echoOver(sock: Socket, data: Buffer, label = "stream"): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    sock.on("data", (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= data.length) {
        sock.end();
        resolve(Buffer.concat(chunks));
      }
    });
    sock.on("error", reject);
    sock.on("close", () => {
      if (got < data.length) reject(new Error(`${label}: closed after ${got} of ${data.length} bytes`));
    });
    sock.write(data);
  });
}
