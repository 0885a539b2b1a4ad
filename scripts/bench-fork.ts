// bun run bench:fork [--runs 8] [--fork10-runs 3]: what snapshots and forks cost (issue 16), in the test host.
// Through the real e2b SDK against one daemon (warm pool off: forks have no pool yet, so both sides restore into a
// fresh vmm and the ratio compares like with like): plain creates from the template; a snapshot of a running sandbox
// after it dirtied 64 MiB and then 256 MiB of guest memory (random bytes into a guest tmpfs); forks of 1 and of 10
// of a fresh sandbox; the PSS of a fork's vmm right after the fork. Last line JSON (ms; emulated: the test host
// runs under TCG, its guests nested, so only the ratios carry over to real hardware).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { startTestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";
import { buildImageOutside, note, pct, REPO, rerunInTesthost, testInitramfs } from "./bench-lib.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "8" }, "fork10-runs": { type: "string", default: "3" } } });
const RUNS = Number(values.runs);
const FORK10_RUNS = Number(values["fork10-runs"]);
const IMAGE = join(REPO, ".cache", "api-e2e-template");
const MEMORY_MB = 512; // room for 256 MiB dirtied in a guest tmpfs next to the guest's own use

if (process.env.ONEBOX_TESTHOST !== "1") {
  await buildImageOutside(IMAGE, "minimal");
  await rerunInTesthost(`bun scripts/bench-fork.ts --runs ${RUNS} --fork10-runs ${FORK10_RUNS}`, ["--timeout", "1800", "--stall", "420", "--mem", "12288"]);
}

const T0 = performance.now();
const say = (s: string) => note(`bench-fork: [+${Math.round((performance.now() - T0) / 1000)}s] ${s}`);
const root = `/tmp/obx-bench-fork-${process.pid}`;
mkdirSync(root, { recursive: true });
const initrd = testInitramfs(root);
const d = await startTestDaemon({ network: false, warmPoolSize: 0, bootTimeoutMs: 600_000 }, mkdtempSync(join(root, "data-")));
const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 600_000 };

/** PSS (KiB) of the vmm of sandbox id, from its vmm.json pid: the host memory a fork costs while it runs. */
function vmmPssKib(id: string): number {
  const { pid } = JSON.parse(readFileSync(join(d.config.runRoot, "vms", id, "vmm.json"), "utf8")) as { pid: number };
  const kib = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1];
  if (kib === undefined) throw new Error(`no Pss in /proc/${pid}/smaps_rollup`);
  return Number(kib);
}

/** Writes mib MiB of random bytes into a tmpfs in the guest: pages the guest dirtied, which a snapshot must write. */
async function dirty(s: Sandbox, file: string, mib: number): Promise<void> {
  const r = await s.commands.run(`mkdir -p /mnt/dirty && (mountpoint -q /mnt/dirty || mount -t tmpfs -o size=400m tmpfs /mnt/dirty) && head -c ${mib}M /dev/urandom > /mnt/dirty/${file}`, { user: "root", timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw new Error(`dirtying ${mib} MiB failed: ${r.stderr}`);
}

/** Wall time of createSnapshot (the sandbox runs on after it); the snapshot is deleted after. */
async function snapshotMs(s: Sandbox): Promise<number> {
  const t0 = performance.now();
  const snap = await s.createSnapshot();
  const ms = performance.now() - t0;
  if (!(await Sandbox.deleteSnapshot(snap.snapshotId, opts))) throw new Error(`snapshot ${snap.snapshotId} was not deleted`);
  return ms;
}

/** Forks parent count times at once and checks every entry is a sandbox; returns the wall time and the forks. */
async function fork(parent: Sandbox, count: number): Promise<{ ms: number; forks: Sandbox[] }> {
  const t0 = performance.now();
  const results = await parent.fork({ count, timeoutMs: 600_000 });
  const ms = performance.now() - t0;
  const forks = results.filter((r): r is Sandbox => r instanceof Sandbox);
  if (forks.length !== count) throw new Error(`fork of ${count}: ${forks.length} sandboxes, errors: ${JSON.stringify(results.filter((r) => !(r instanceof Sandbox)))}`);
  return { ms, forks };
}

try {
  await registerTemplate(d.state, d.dataDir, { name: "bench-fork", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: MEMORY_MB, diskSizeMb: 2048 });
  await d.manager.warmTemplates(); // the template snapshot, before anything is timed
  say("template snapshot ready");
  await (await Sandbox.create("bench-fork", opts)).kill(); // first create after the snapshot: not timed

  const createMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const s = await Sandbox.create("bench-fork", opts);
    createMs.push(performance.now() - t0);
    await s.kill();
  }
  say(`creates: p50 ${pct(createMs, 50)} ms`);

  // Snapshot time against dirtied memory: one sandbox, 64 MiB written, snapshot; 192 MiB more, snapshot again.
  const big = await Sandbox.create("bench-fork", opts);
  await dirty(big, "a", 64);
  const snapshot64 = await snapshotMs(big);
  await dirty(big, "b", 192);
  const snapshot256 = await snapshotMs(big);
  await big.kill();
  say(`snapshots: 64 MiB dirtied ${Math.round(snapshot64)} ms, 256 MiB ${Math.round(snapshot256)} ms`);

  // Forks of a fresh sandbox (the state a create has), each fork checked alive, PSS read right after the fork.
  const parent = await Sandbox.create("bench-fork", opts);
  const fork1Ms: number[] = [];
  const pss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { ms, forks } = await fork(parent, 1);
    fork1Ms.push(ms);
    for (const f of forks) pss.push(vmmPssKib(f.sandboxId));
    for (const f of forks) {
      const r = await f.commands.run("echo forked");
      if (r.stdout.trim() !== "forked") throw new Error(`fork ${f.sandboxId} answered ${JSON.stringify(r.stdout)}`);
      await f.kill();
    }
  }
  say(`fork of 1: p50 ${pct(fork1Ms, 50)} ms, PSS p50 ${pct(pss, 50)} KiB`);
  const fork10Ms: number[] = [];
  for (let i = 0; i < FORK10_RUNS; i++) {
    const { ms, forks } = await fork(parent, 10);
    fork10Ms.push(ms);
    await Promise.all(forks.map((f) => f.kill()));
  }
  say(`fork of 10: p50 ${pct(fork10Ms, 50)} ms, p99 ${pct(fork10Ms, 99)} ms`);
  await parent.kill();

  const create50 = pct(createMs, 50);
  const fork1p50 = pct(fork1Ms, 50);
  console.log(
    JSON.stringify({
      bench: "fork",
      runs: RUNS,
      fork10_runs: FORK10_RUNS,
      memory_mb: MEMORY_MB,
      warm_pool: 0,
      snapshot_64_ms: Math.round(snapshot64 * 100) / 100,
      snapshot_256_ms: Math.round(snapshot256 * 100) / 100,
      create_p50_ms: create50,
      create_p99_ms: pct(createMs, 99),
      fork1_p50_ms: fork1p50,
      fork1_p99_ms: pct(fork1Ms, 99),
      fork10_p50_ms: pct(fork10Ms, 50),
      fork10_p99_ms: pct(fork10Ms, 99),
      fork1_over_create: Math.round((fork1p50 / create50) * 100) / 100,
      fork_pss_kib: pct(pss, 50),
      emulated: true,
    }),
  );
} finally {
  await d.stop();
  rmSync(root, { recursive: true, force: true });
}
