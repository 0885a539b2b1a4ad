// Shared helpers for the benchmark scripts: percentiles, timing, re-running inside the test host, and a real `onebox serve` subprocess.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const REPO = join(import.meta.dir, "..");

/** Nearest-rank percentile (p in 0..100) of measured samples; rounded to 0.01 ms for the JSON line. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) throw new Error("percentile of no samples");
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return Math.round(s[i]! * 100) / 100;
}

/** Times `fn` `n` times with `conc` workers in flight; returns per-call wall times in ms. */
export async function timed(n: number, conc: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const t0 = performance.now();
      await fn(i);
      out.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
  return out;
}

/** Runs `cmd` inside the test host (scripts/testhost run), then prints its stdout and exits with its status.
 *  The output is held back until the test host is gone, so a benchmark's JSON stays the last line even with 2>&1. */
export async function rerunInTesthost(cmd: string, testhostArgs: string[] = []): Promise<never> {
  const p = Bun.spawn([join(REPO, "scripts/testhost"), "run", ...testhostArgs, cmd], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const out = await new Response(p.stdout).text();
  const code = await p.exited;
  process.stdout.write(out);
  process.exit(code);
}

/** The built binary if present (what users run), else the sources through bun. */
export function oneboxCmd(): string[] {
  const bin = join(REPO, "dist", "onebox");
  return existsSync(bin) ? [bin] : ["bun", join(REPO, "src", "main.ts")];
}

export interface Daemon {
  url: string;
  key: string;
  proc: ReturnType<typeof Bun.spawn>;
  stop(): Promise<void>;
}

/** Starts `onebox serve` on a free-ish random port and waits for /health and the admin key. */
export async function startDaemon(o: { dataDir: string; runRoot: string; extra?: string[]; quiet?: boolean }): Promise<Daemon> {
  const port = 20000 + Math.floor(Math.random() * 30000);
  const url = `http://127.0.0.1:${port}`;
  const proc = Bun.spawn(
    // --no-default-templates: a bench registers what it boots; a background debootstrap would skew it.
    [...oneboxCmd(), "serve", "--port", String(port), "--data-dir", o.dataDir, "--run-root", o.runRoot, "--no-default-templates", ...(o.extra ?? [])],
    // Daemon logs go to stderr so stdout keeps only the bench's own lines and the final JSON.
    { cwd: REPO, stdout: o.quiet ? "ignore" : Bun.stderr, stderr: o.quiet ? "ignore" : "inherit" },
  );
  const stop = async (): Promise<void> => {
    proc.kill("SIGTERM");
    const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(15_000).then(() => false)]);
    if (!done) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  };
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url + "/health")).status === 200) {
        const key = readFileSync(join(o.dataDir, "admin-key"), "utf8").trim();
        return { url, key, proc, stop };
      }
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null) throw new Error(`onebox serve exited with ${proc.exitCode} before answering /health`);
    await Bun.sleep(100);
  }
  await stop();
  throw new Error("onebox serve did not answer /health within 30 s");
}

/** Logs a human line to stderr; stdout is reserved for the result table and last-line JSON. */
export const note = (s: string): void => void process.stderr.write(s + "\n");

/** Last resort: SIGKILL the VMs a bench daemon started under runRoot, by their recorded pid, so nothing
 *  outlives the bench. */
export function killLeftoverVms(runRoot: string): void {
  const vms = join(runRoot, "vms");
  if (!existsSync(vms)) return;
  for (const id of readdirSync(vms)) {
    try {
      process.kill((JSON.parse(readFileSync(join(vms, id, "vmm.json"), "utf8")) as { pid: number }).pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Runs a shell command in the repo; its stdout, or an error with both outputs. */
export function sh(cmd: string): string {
  const r = Bun.spawnSync(["sh", "-c", cmd], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed (${r.exitCode}): ${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

/** Builds a template image into out with scripts/mkrootfs.sh, outside the test host: it has no network for
 *  debootstrap (mkrootfs.sh's cache makes a rebuild seconds). The image takes this checkout's agent bundle
 *  (dist/guest/agent.js): every `bun run bench:*` runs scripts/build.sh before the bench (package.json), which a
 *  fresh clone needs even to import src/ (templates/builder-files.ts embeds guest/init/build). */
export async function buildImageOutside(out: string, variant: "minimal" | "base" | "code-interpreter"): Promise<void> {
  const p = Bun.spawn(["bash", "scripts/mkrootfs.sh", "--out", out, "--variant", variant], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error(`building the ${variant} image failed (see above)`);
}

/** Inside the test host: the initramfs of its test kernel (onebox-init and the kernel's modules), made in dir. */
export function testInitramfs(dir: string): string {
  const initrd = join(dir, "initramfs.cpio.gz");
  sh(`bash scripts/mkinitramfs.sh --modules ${join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules")} --out ${initrd}`);
  return initrd;
}
