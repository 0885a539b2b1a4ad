// e2e harness for the tests that drive `onebox serve` as a subprocess (as a user runs it) with the e2b SDK: scratch
// dirs, `onebox template add` of an image, start (waits for /health), stop, and the cleanup after a run — sandboxes
// killed through the API, then the daemon stopped, then any vmm left killed by its recorded pid. Test host only.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { REPO } from "./harness.ts";

/** Boots are emulated (TCG) in the test host, and several run at once: allow minutes, not seconds. */
export const BOOT_MS = 300_000;

/** The onebox binary if built, else the sources through bun. */
export function onebox(): string[] {
  const bin = join(REPO, "dist", "onebox");
  return existsSync(bin) ? [bin] : ["bun", join(REPO, "src", "main.ts")];
}

/** Runs a command in the repo; its stdout, or a throw with its output when it fails. */
export function run(cmd: string[], env: Record<string, string> = {}): string {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

/** The api-e2e image: $ONEBOX_E2E_TEMPLATE_DIR, or .cache/api-e2e-template built on the outer host with
 *  `scripts/mkrootfs.sh --out .cache/api-e2e-template --variant minimal` (the test host has no network for
 *  debootstrap, so the image cannot be built in here). Null, with a warning naming `file`, when it is missing. */
export function apiImageDir(file: string): string | null {
  const dir = process.env.ONEBOX_E2E_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-template");
  if (existsSync(join(dir, "rootfs.ext4"))) return dir;
  if (process.env.ONEBOX_TESTHOST === "1") console.warn(`${file}: skipped: no template image; build .cache/api-e2e-template on the outer host (see apiImageDir())`);
  return null;
}

export class ServeDaemon {
  readonly dataDir: string;
  readonly runRoot: string;
  readonly port: number;
  readonly url: string;
  key = "";
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  private initrd: string | null = null;

  /** `root`: this test's scratch dir (removed by cleanup); `portSalt` keeps files of one run off each other's port. */
  constructor(readonly root: string, portSalt = 0) {
    this.dataDir = join(root, "data");
    this.runRoot = join(root, "run");
    this.port = 30000 + ((process.pid + portSalt) % 20000);
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /** The e2b SDK's connection options for this daemon. */
  opts() {
    return { apiKey: this.key, apiUrl: this.url, sandboxUrl: this.url, requestTimeoutMs: BOOT_MS };
  }

  /** `onebox template add` of an image dir with the test host's kernel and a test initramfs (made once). */
  addTemplate(name: string, from: string): void {
    if (!this.initrd) {
      mkdirSync(this.root, { recursive: true });
      this.initrd = join(this.root, "initramfs.cpio.gz");
      run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", this.initrd]);
    }
    run([...onebox(), "template", "add", "--name", name, "--from", from, "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "",
      "--initrd", this.initrd, "--memory-mib", "512", "--data-dir", this.dataDir]);
  }

  /** Starts `onebox serve` (with the templates the test added, not the default ones: building those would start
   *  debootstrap) and waits for /health; the admin key it wrote becomes `key`. */
  async start(): Promise<void> {
    mkdirSync(this.root, { recursive: true });
    this.proc = Bun.spawn([...onebox(), "serve", "--port", String(this.port), "--data-dir", this.dataDir, "--run-root", this.runRoot,
      "--boot-timeout-ms", String(BOOT_MS), "--no-default-templates"], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
    for (let i = 0; i < 200; i++) {
      if (await fetch(this.url + "/health").then((r) => r.status === 200, () => false)) {
        this.key = readFileSync(join(this.dataDir, "admin-key"), "utf8").trim();
        return;
      }
      await Bun.sleep(100);
    }
    throw new Error("onebox serve did not answer /health within 20 s");
  }

  /** SIGTERM, then SIGKILL after 15 s; whether it exited on SIGTERM (a clean stop). */
  async stop(): Promise<boolean> {
    const p = this.proc;
    if (!p) return true;
    this.proc = null;
    p.kill("SIGTERM");
    const exited = await Promise.race([p.exited.then(() => true), Bun.sleep(15_000).then(() => false)]);
    if (!exited) {
      p.kill("SIGKILL");
      await p.exited;
    }
    return exited;
  }

  /** After a run: the sandboxes matching `metadata` (all without it) killed through the API, the daemon stopped, any
   *  vmm left killed by the pid it recorded, and the scratch dir removed. */
  async cleanup(metadata?: Record<string, string>): Promise<void> {
    try {
      for (const s of await Sandbox.list({ ...this.opts(), ...(metadata ? { query: { metadata } } : {}) }).nextItems()) {
        await Sandbox.kill(s.sandboxId, this.opts());
      }
    } catch (e) {
      console.error("cleanup through the API failed:", e);
    } finally {
      await this.stop().catch(() => false);
      this.killLeftoverVms();
      rmSync(this.root, { recursive: true, force: true });
    }
  }

  private killLeftoverVms(): void {
    const vms = join(this.runRoot, "vms");
    for (const id of existsSync(vms) ? readdirSync(vms) : []) {
      try {
        process.kill((JSON.parse(readFileSync(join(vms, id, "vmm.json"), "utf8")) as { pid: number }).pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
