// First-result benchmark (issue 6): the time from Sandbox.create() to the first runCode('1+1') result
// with the official @e2b/code-interpreter SDK against `onebox serve` in the test host, sequentially
// and N at once; the same flow against a second daemon started with --no-template-snapshots
// (every create cold-boots the template), as a ratio; the template image's build time and sizes.
//
// usage: bun run bench:first-result [--runs 5] [--concurrency 10] [--cold-runs N] [--cold-concurrency N]
//                                   [--cpus 2] [--memory-mib 1024] [--host-mem 8192] [--host-cpus 2]
//   Outside the test host it builds (or finds in mkrootfs.sh's cache) the code-interpreter image,
//   timing it, then re-runs itself inside scripts/testhost. Last line on stdout: JSON (ms; emulated).
//   --cpus/--memory-mib: the guest shape (default: code-interpreter-v1's, src/templates/build-default.ts).
//   --cold-*: the cold-boot daemon's runs (default: --runs, --concurrency). Emulated cold boots are
//   minutes each and N at once share the test host's 2 TCG vCPUs; a create that answers no byte
//   for 300 s is cut by Bun's fetch (its fixed idle timeout), so keep the cold concurrency low.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { killLeftoverVms, note, oneboxCmd, pct, REPO, rerunInTesthost, startDaemon, type Daemon } from "./bench-lib.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    concurrency: { type: "string", default: "10" },
    "cold-runs": { type: "string", default: "" },
    "cold-concurrency": { type: "string", default: "" },
    cpus: { type: "string", default: "2" },
    "memory-mib": { type: "string", default: "1024" },
    "host-mem": { type: "string", default: "8192" },
    "host-cpus": { type: "string", default: "2" },
    inside: { type: "boolean", default: false },
    "build-ms": { type: "string", default: "" },
    "build-cached": { type: "string", default: "" },
    /** rootfs apparent,disk,layer apparent,disk in MiB, measured outside (the test host's copy of the repo is not sparse-exact). */
    sizes: { type: "string", default: "" },
  },
});
function intArg(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer ${min}..${max}, got '${raw}'`);
  return n;
}
const RUNS = intArg("runs", values.runs, 1, 1000);
const CONC = intArg("concurrency", values.concurrency, 1, 32);
const COLD_RUNS = intArg("cold-runs", values["cold-runs"] || values.runs, 0, 1000);
const COLD_CONC = intArg("cold-concurrency", values["cold-concurrency"] || values.concurrency, 0, 32);
const CPUS = intArg("cpus", values.cpus, 1, 32);
const MEM_MIB = intArg("memory-mib", values["memory-mib"], 128, 65536);
const HOST_MEM = intArg("host-mem", values["host-mem"], 2048, 65536);
const HOST_CPUS = intArg("host-cpus", values["host-cpus"], 1, 16);
const IMAGE = join(REPO, ".cache", "api-e2e-ci-template");

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
function sizes(file: string): { apparent_mib: number; disk_mib: number } {
  const st = statSync(file);
  return { apparent_mib: mib(st.size), disk_mib: mib(st.blocks * 512) };
}

if (process.env.ONEBOX_TESTHOST !== "1") {
  // The test host has no network for debootstrap: the image is built out here, where its build is
  // timed (from mkrootfs.sh's cache when the debootstrap tree exists: `build_cached` says which).
  const cached = /phase debootstrap cached/;
  const t0 = performance.now();
  const p = Bun.spawn(["bash", "scripts/mkrootfs.sh", "--out", IMAGE, "--variant", "code-interpreter"], { cwd: REPO, stdout: "inherit", stderr: "pipe" });
  const err = await new Response(p.stderr).text();
  process.stderr.write(err);
  if ((await p.exited) !== 0) throw new Error("building the code-interpreter image failed (see above)");
  const buildMs = Math.round(performance.now() - t0);
  const r = sizes(join(IMAGE, "rootfs.ext4"));
  const l = sizes(join(IMAGE, "layer.ext4"));
  const sz = [r.apparent_mib, r.disk_mib, l.apparent_mib, l.disk_mib].join(",");
  await rerunInTesthost(
    `bun scripts/bench-first-result.ts --inside --runs ${RUNS} --concurrency ${CONC} --cold-runs ${COLD_RUNS} --cold-concurrency ${COLD_CONC} ` +
      `--cpus ${CPUS} --memory-mib ${MEM_MIB} --host-mem ${HOST_MEM} --host-cpus ${HOST_CPUS} ` +
      `--build-ms ${buildMs} --build-cached ${cached.test(err) ? 1 : 0} --sizes ${sz}`,
    ["--timeout", "5400", "--mem", String(HOST_MEM), "--cpus", String(HOST_CPUS)],
  );
}

const { Sandbox } = await import("@e2b/code-interpreter");
const BOOT_MS = 900_000;
const root = `/tmp/obx-bench-first-${process.pid}`;

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
}


/** Registers code-interpreter-v1 (by default the shape of src/templates/build-default.ts) in dataDir; returns how long it took. */
function registerTemplate(dataDir: string, initrd: string): number {
  const t0 = performance.now();
  run([...oneboxCmd(), "template", "add", "--name", "code-interpreter-v1", "--from", IMAGE, "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "",
    "--initrd", initrd, "--cpus", String(CPUS), "--memory-mib", String(MEM_MIB), "--disk-mib", "2048", "--ready-port", "49999", "--data-dir", dataDir]);
  return performance.now() - t0;
}

interface Figures {
  seq: number[];
  conc: number[];
  /** The first create of a daemon, kept apart: it may build the template's snapshot. */
  first_ms: number;
}

/** One create -> runCode('1+1') -> result, timed; the kill afterwards is not. */
async function firstResult(opts: object): Promise<number> {
  const t0 = performance.now();
  const sbx = await Sandbox.create({ ...opts, timeoutMs: 1_800_000 });
  try {
    const ex = await sbx.runCode("1+1", { timeoutMs: BOOT_MS });
    if (ex.text !== "2") throw new Error(`runCode('1+1') gave ${JSON.stringify(ex.toJSON())}`);
    return performance.now() - t0;
  } finally {
    await sbx.kill().catch(() => undefined);
  }
}

async function measure(label: string, flags: string[], initrd: string, runs: number, conc: number): Promise<Figures & { register_ms: number }> {
  const dir = join(root, label);
  const dataDir = join(dir, "data");
  const runRoot = join(dir, "run");
  mkdirSync(dir, { recursive: true });
  const registerMs = registerTemplate(dataDir, initrd);
  let daemon: Daemon | null = null;
  try {
    // The default create limit (4) would answer the rest of N creates at once with 429, which the SDK does not retry.
    const extra = ["--boot-timeout-ms", String(BOOT_MS), "--max-concurrent-creates", String(Math.max(4, conc)), ...flags];
    daemon = await startDaemon({ dataDir, runRoot, extra });
    const opts = { apiKey: daemon.key, apiUrl: daemon.url, sandboxUrl: daemon.url, requestTimeoutMs: BOOT_MS };
    const first = await firstResult(opts);
    note(`${label}: first create -> result ${first.toFixed(0)} ms`);
    const seq: number[] = [];
    for (let i = 0; i < runs; i++) seq.push(await firstResult(opts));
    if (runs) note(`${label}: sequential x${runs}: p50 ${pct(seq, 50)} p99 ${pct(seq, 99)} ms`);
    const together = await Promise.all(Array.from({ length: conc }, () => firstResult(opts)));
    if (conc) note(`${label}: ${conc} at once: p50 ${pct(together, 50)} p99 ${pct(together, 99)} ms`);
    return { seq, conc: together, first_ms: first, register_ms: registerMs };
  } finally {
    if (daemon) await daemon.stop().catch(() => undefined);
    killLeftoverVms(runRoot);
  }
}

function imageSizes(): { rootfs: ReturnType<typeof sizes>; layer: ReturnType<typeof sizes> } {
  const [ra, rd, la, ld] = values.sizes.split(",").map(Number);
  if (ld === undefined) return { rootfs: sizes(join(IMAGE, "rootfs.ext4")), layer: sizes(join(IMAGE, "layer.ext4")) };
  return { rootfs: { apparent_mib: ra!, disk_mib: rd! }, layer: { apparent_mib: la!, disk_mib: ld } };
}

const r0 = (x: number): number => Math.round(x);
const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
let failed = false;
try {
  if (!existsSync(join(IMAGE, "rootfs.ext4"))) throw new Error(`${IMAGE} has no image: run bun run bench:first-result outside the test host first`);
  mkdirSync(root, { recursive: true });
  const initrd = join(root, "initramfs.cpio.gz");
  run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
  const snap = await measure("snapshot", [], initrd, RUNS, CONC);
  const cold = await measure("cold", ["--no-template-snapshots"], initrd, COLD_RUNS, COLD_CONC);
  const p = (xs: number[], q: number): number | null => (xs.length ? pct(xs, q) : null);
  const fig = (f: Figures) => ({
    first_ms: r0(f.first_ms),
    runs: f.seq.length,
    concurrency: f.conc.length,
    seq_p50_ms: p(f.seq, 50),
    seq_p99_ms: p(f.seq, 99),
    conc_p50_ms: p(f.conc, 50),
    conc_p99_ms: p(f.conc, 99),
  });
  // The cold daemon's first create is a cold boot like the rest: it joins its sequential samples for the ratio.
  const coldSeq = [cold.first_ms, ...cold.seq];
  const manifest = JSON.parse(readFileSync(join(IMAGE, "manifest.json"), "utf8")) as { packages: string[] };
  console.log(
    JSON.stringify({
      bench: "first-result",
      emulated: true,
      shape: { cpus: CPUS, memory_mib: MEM_MIB },
      host: { mem_mib: HOST_MEM, cpus: HOST_CPUS },
      snapshot: fig(snap),
      cold: fig(cold),
      // How many times slower a cold boot is than the default path (1.0 = snapshots not in use).
      cold_over_snapshot_seq_p50: ratio(pct(coldSeq, 50), pct(snap.seq, 50)),
      // Only a like-for-like pair: null when the cold daemon ran a different number at once.
      cold_over_snapshot_conc_p50: cold.conc.length === snap.conc.length ? ratio(pct(cold.conc, 50), pct(snap.conc, 50)) : null,
      template: {
        build_ms: values["build-ms"] ? Number(values["build-ms"]) : null,
        build_cached: values["build-cached"] === "1",
        register_ms: r0(snap.register_ms),
        packages: manifest.packages.length,
        ...imageSizes(),
      },
    }),
  );
} catch (e) {
  failed = true;
  console.error("bench:first-result failed:", e);
} finally {
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
