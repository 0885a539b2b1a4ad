// First-result benchmark (issue 6): the time from Sandbox.create() to the first runCode('1+1') result
// with the official @e2b/code-interpreter SDK against `onebox serve` in the test host, sequentially
// and N at once; the same flow against a second daemon started with ONEBOX_TEMPLATE_SNAPSHOTS=0
// (every create cold-boots the template), as a ratio; the template image's build time and sizes.
//
// usage: bun run bench:first-result [--runs 5] [--concurrency 10]
//   Outside the test host it builds (or finds in mkrootfs.sh's cache) the code-interpreter image,
//   timing it, then re-runs itself inside scripts/testhost. Last line on stdout: JSON (ms; emulated).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { killLeftoverVms, note, oneboxCmd, pct, REPO, rerunInTesthost, startDaemon, type Daemon } from "./bench-lib.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    concurrency: { type: "string", default: "10" },
    inside: { type: "boolean", default: false },
    "build-ms": { type: "string", default: "" },
    "build-cached": { type: "string", default: "" },
    /** rootfs apparent,disk,layer apparent,disk in MiB, measured outside (the test host's copy of the repo is not sparse-exact). */
    sizes: { type: "string", default: "" },
  },
});
const RUNS = Number(values.runs);
const CONC = Number(values.concurrency);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be an integer >= 1, got '${values.runs}'`);
if (!Number.isInteger(CONC) || CONC < 1 || CONC > 32) throw new Error(`--concurrency must be 1..32, got '${values.concurrency}'`);
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
    `bun scripts/bench-first-result.ts --inside --runs ${RUNS} --concurrency ${CONC} --build-ms ${buildMs} --build-cached ${cached.test(err) ? 1 : 0} --sizes ${sz}`,
    ["--timeout", "5400", "--mem", "8192"],
  );
}

const { Sandbox } = await import("@e2b/code-interpreter");
const BOOT_MS = 900_000;
const root = `/tmp/obx-bench-first-${process.pid}`;

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
}


/** Registers code-interpreter-v1 (the shape of src/templates/build-default.ts) in dataDir; returns how long it took. */
function registerTemplate(dataDir: string, initrd: string): number {
  const t0 = performance.now();
  run([...oneboxCmd(), "template", "add", "--name", "code-interpreter-v1", "--from", IMAGE, "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "",
    "--initrd", initrd, "--cpus", "2", "--memory-mib", "1024", "--disk-mib", "2048", "--ready-port", "49999", "--data-dir", dataDir]);
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

async function measure(label: string, env: Record<string, string>, initrd: string): Promise<Figures & { register_ms: number }> {
  const dir = join(root, label);
  const dataDir = join(dir, "data");
  const runRoot = join(dir, "run");
  mkdirSync(dir, { recursive: true });
  const registerMs = registerTemplate(dataDir, initrd);
  // startDaemon spawns with process.env: the variable reaches only this daemon.
  Object.assign(process.env, env);
  let daemon: Daemon | null = null;
  try {
    daemon = await startDaemon({ dataDir, runRoot, extra: ["--boot-timeout-ms", String(BOOT_MS)] });
    const opts = { apiKey: daemon.key, apiUrl: daemon.url, sandboxUrl: daemon.url, requestTimeoutMs: BOOT_MS };
    const first = await firstResult(opts);
    note(`${label}: first create -> result ${first.toFixed(0)} ms`);
    const seq: number[] = [];
    for (let i = 0; i < RUNS; i++) seq.push(await firstResult(opts));
    note(`${label}: sequential x${RUNS}: p50 ${pct(seq, 50)} p99 ${pct(seq, 99)} ms`);
    const conc = await Promise.all(Array.from({ length: CONC }, () => firstResult(opts)));
    note(`${label}: ${CONC} at once: p50 ${pct(conc, 50)} p99 ${pct(conc, 99)} ms`);
    return { seq, conc, first_ms: first, register_ms: registerMs };
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
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
  const snap = await measure("snapshot", {}, initrd);
  const cold = await measure("cold", { ONEBOX_TEMPLATE_SNAPSHOTS: "0" }, initrd);
  const fig = (f: Figures) => ({
    first_ms: r0(f.first_ms),
    seq_p50_ms: pct(f.seq, 50),
    seq_p99_ms: pct(f.seq, 99),
    conc_p50_ms: pct(f.conc, 50),
    conc_p99_ms: pct(f.conc, 99),
  });
  const manifest = JSON.parse(readFileSync(join(IMAGE, "manifest.json"), "utf8")) as { packages: string[] };
  console.log(
    JSON.stringify({
      bench: "first-result",
      emulated: true,
      runs: RUNS,
      concurrency: CONC,
      snapshot: fig(snap),
      cold: fig(cold),
      // How many times slower a cold boot is than the default path (1.0 = snapshots not in use).
      cold_over_snapshot_seq_p50: ratio(pct(cold.seq, 50), pct(snap.seq, 50)),
      cold_over_snapshot_conc_p50: ratio(pct(cold.conc, 50), pct(snap.conc, 50)),
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
