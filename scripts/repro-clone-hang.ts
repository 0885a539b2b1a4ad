// Reproducer for the clone that goes silent (issue 20): in e2e runs, one of four sandboxes created at once from
// the template snapshot sometimes stops answering (its create never finishes, or its agent stops answering right
// after /init). Inside the test host this starts `onebox serve`, creates --concurrency sandboxes at once, runs one
// command in each under a deadline, kills them, and repeats for --rounds. A sandbox that does not answer is
// examined before it is killed: its vmm's threads (state, CPU and guest time over 3 s), whether the guest's own
// control port answers over vsock, the console's end, and 3 s of the test host's kvm trace for that vmm.
//
// usage: scripts/testhost run --timeout 3000 'bun scripts/repro-clone-hang.ts --rounds 10 --concurrency 4'
// Last stdout line: {"rounds":…,"sandboxes":…,"silent":…,"createFailed":…}
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { guestStatus } from "../src/machine/hygiene.ts";
import { vsockPath } from "../src/vmm/vm-spec.ts";

const REPO = join(import.meta.dir, "..");
const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "4" },
    cpus: { type: "string", default: "1" },
    "probe-ms": { type: "string", default: "30000" },
  },
});
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const probeMs = Number(values["probe-ms"]);
const log = (s: string): void => void process.stderr.write(`repro: ${new Date().toISOString()} ${s}\n`);

const root = `/tmp/obx-hang-${process.pid}`;
const dataDir = join(root, "data");
const runRoot = join(root, "run");
const port = 30000 + (process.pid % 20000);
const url = `http://127.0.0.1:${port}`;
const bin = existsSync(join(REPO, "dist", "onebox")) ? [join(REPO, "dist", "onebox")] : ["bun", join(REPO, "src", "main.ts")];

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

mkdirSync(root, { recursive: true });
const image = process.env.ONEBOX_E2E_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-template");
const initrd = join(root, "initramfs.cpio.gz");
run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
run([...bin, "template", "add", "--name", "base", "--from", image, "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "", "--initrd", initrd,
  "--memory-mib", "512", "--cpus", values.cpus!, "--data-dir", dataDir]);
const daemon = Bun.spawn([...bin, "serve", "--port", String(port), "--data-dir", dataDir, "--run-root", runRoot, "--boot-timeout-ms", "120000", "--no-default-templates"], {
  cwd: REPO,
  stdout: "inherit",
  stderr: "inherit",
});
for (let i = 0; i < 200; i++) {
  if (await fetch(url + "/health").then((r) => r.status === 200, () => false)) break;
  await Bun.sleep(100);
}
const key = readFileSync(join(dataDir, "admin-key"), "utf8").trim();
const opts = { apiKey: key, apiUrl: url, sandboxUrl: url, requestTimeoutMs: 180_000 };

interface ThreadSample { comm: string; state: string; cpuTicks: number; guestTicks: number; wchan: string }
function threads(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] = field 3 (state)
      const wchan = readFileSync(`/proc/${pid}/task/${tid}/wchan`, "utf8");
      out.set(tid, { comm, state: f[0]!, cpuTicks: Number(f[11]) + Number(f[12]), guestTicks: Number(f[40]), wchan });
    } catch {
      // the thread ended
    }
  }
  return out;
}

const T = "/sys/kernel/tracing";
function kvmTrace(pid: number, ms: number): string[] {
  if (!existsSync(join(T, "trace"))) Bun.spawnSync(["mount", "-t", "tracefs", "nodev", T]);
  writeFileSync(join(T, "buffer_size_kb"), "8192");
  writeFileSync(join(T, "events/kvm/enable"), "1");
  writeFileSync(join(T, "trace"), "");
  writeFileSync(join(T, "tracing_on"), "1");
  Bun.sleepSync(ms);
  writeFileSync(join(T, "tracing_on"), "0");
  const tids = readdirSync(`/proc/${pid}/task`);
  const lines = readFileSync(join(T, "trace"), "utf8").split("\n");
  writeFileSync(join(T, "events/kvm/enable"), "0");
  return lines.filter((l) => tids.some((t) => l.includes(`-${t} `) || l.includes(`-${t}  `)));
}

/** The pid the daemon recorded for a VM's vmm (0 if it has no record). */
function vmmPid(id: string): number {
  try {
    return (JSON.parse(readFileSync(join(runRoot, "vms", id, "vmm.json"), "utf8")) as { pid: number }).pid;
  } catch {
    return 0;
  }
}

async function examine(id: string, why: string): Promise<void> {
  log(`SILENT ${id}: ${why}`);
  const runDir = join(runRoot, "vms", id);
  const pid = vmmPid(id);
  if (!pid) log("  no vmm.json");
  if (pid && existsSync(`/proc/${pid}`)) {
    const a = threads(pid);
    await Bun.sleep(3000);
    const b = threads(pid);
    for (const [tid, s] of b) {
      const s0 = a.get(tid);
      log(`  thread ${tid} ${s.comm} state ${s.state} wchan ${s.wchan} cpu +${s.cpuTicks - (s0?.cpuTicks ?? 0)} guest +${s.guestTicks - (s0?.guestTicks ?? 0)} ticks in 3 s`);
    }
  }
  const st = await guestStatus(vsockPath(runDir), 5000).then((s) => JSON.stringify(s), (e: unknown) => `no answer: ${String(e)}`);
  log(`  guest control status: ${st}`);
  try {
    const con = readFileSync(join(dataDir, "sandboxes", id, "console.log"), "utf8");
    log(`  console end:\n${con.slice(-1500)}`);
  } catch (e) {
    log(`  no console: ${String(e)}`);
  }
  if (pid && existsSync(`/proc/${pid}`)) {
    const tr = kvmTrace(pid, 3000);
    const counts = new Map<string, number>();
    for (const l of tr) {
      const m = /\s(kvm_[a-z_]+):/.exec(l);
      if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    }
    log(`  kvm events in 3 s: ${JSON.stringify(Object.fromEntries(counts))}`);
    log(`  kvm trace, last 60:\n${tr.slice(-60).join("\n")}`);
  }
}

async function probe(s: Sandbox): Promise<string | null> {
  try {
    const r = await s.commands.run("echo ok", { timeoutMs: probeMs, requestTimeoutMs: probeMs });
    return r.stdout.trim() === "ok" ? null : `answered '${r.stdout.trim()}'`;
  } catch (e) {
    return String(e).slice(0, 200);
  }
}

let made = 0, silent = 0, createFailed = 0;
for (let r = 1; r <= rounds; r++) {
  const t0 = performance.now();
  const done = new Set<string>(); // ids of the creates that have returned
  const settledAll = Promise.allSettled(
    Array.from({ length: concurrency }, () =>
      Sandbox.create("base", { ...opts, timeoutMs: 600_000 }).then((s) => (done.add(s.sandboxId), s)),
    ),
  );
  // A create still running after --probe-ms is examined while it hangs (the daemon's own deadline would tear it down).
  if (!(await Promise.race([settledAll.then(() => true), Bun.sleep(probeMs).then(() => false)]))) {
    for (const id of existsSync(join(runRoot, "vms")) ? readdirSync(join(runRoot, "vms")) : []) {
      if (!done.has(id) && existsSync(join(dataDir, "sandboxes", id))) await examine(id, `its create has not finished after ${probeMs} ms`);
    }
  }
  const boxes: Sandbox[] = [];
  for (const c of await settledAll) {
    if (c.status === "fulfilled") boxes.push(c.value);
    else {
      createFailed++;
      log(`create failed: ${String(c.reason).slice(0, 300)}`);
    }
  }
  made += boxes.length;
  const probes = await Promise.all(boxes.map(probe));
  for (let i = 0; i < boxes.length; i++) {
    if (probes[i]) {
      silent++;
      await examine(boxes[i]!.sandboxId, probes[i]!);
    }
  }
  log(`round ${r}: ${boxes.length}/${concurrency} created, ${probes.filter((p) => p).length} silent, ${Math.round(performance.now() - t0)} ms`);
  for (const s of await Sandbox.list({ ...opts }).nextItems()) await Sandbox.kill(s.sandboxId, opts).catch(() => false);
}
daemon.kill("SIGTERM");
await daemon.exited;
for (const d of existsSync(join(runRoot, "vms")) ? readdirSync(join(runRoot, "vms")) : []) {
  try {
    const pid = vmmPid(d);
    if (pid) process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}
rmSync(root, { recursive: true, force: true });
console.log(JSON.stringify({ rounds, sandboxes: made, silent, createFailed }));
