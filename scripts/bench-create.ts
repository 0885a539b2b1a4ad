// bun run bench:create [--runs 10]: a user's create as the SDK sees it (issue 18), in the test host. Warm-pool create
// -> the first `commands.run("echo hi")` answered, sequential (the pool refilled before each) and 20 and 50 at once
// (the pool filled before each round), through the real e2b SDK; next to `linux_restore_ms` measured right before in
// the same kind of test host (bench:restore part b: a pooled vmm's restore until the guest echoes on vsock), the
// machine's floor for a create.
// Last line JSON (ms; emulated: the test host runs under TCG, its guests nested, so only ratios carry over).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { startTestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";
import { AgentClient } from "../src/machine/agent-client.ts";
import { sendHygiene } from "../src/machine/hygiene.ts";
import { vsockPath } from "../src/machine/vm-driver.ts";
import { sandboxPaths } from "../src/sandbox/paths.ts";
import { buildImageOutside, note, pct, REPO, rerunInTesthost, testInitramfs } from "./bench-lib.ts";
import { runLinuxPart } from "./bench-restore-linux.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" }, "linux-restore-ms": { type: "string" } } });
const RUNS = Number(values.runs);
const IMAGE = join(REPO, ".cache", "api-e2e-template");
const POOL = 32; // the most a pool holds (config max): the rounds at once take what they find, restore the rest
const ROUNDS = [20, 50];

if (process.env.ONEBOX_TESTHOST !== "1") {
  await buildImageOutside(IMAGE, "minimal");
  // The floor first, in a test host of its own (runLinuxPart boots one): a pooled vmm's Linux restore until the guest
  // echoes (bench:restore part b). Its figure goes into the second test host's run, which does the creates.
  const linux = await runLinuxPart(5, 16);
  note(`bench-create: linux_restore_ms ${linux.linux_restore_ms}`);
  await rerunInTesthost(`bun scripts/bench-create.ts --runs ${RUNS} --linux-restore-ms ${linux.linux_restore_ms}`, ["--timeout", "1800", "--stall", "420", "--mem", "12288"]);
}
const LINUX_RESTORE_MS = Number(values["linux-restore-ms"]);
if (!(LINUX_RESTORE_MS > 0)) throw new Error("--linux-restore-ms is set by the outer run (bun run bench:create)");

// The daemon runs in this process and logs each create's stages (`sandbox started`, ms by stage) to stderr: the lines
// are kept here too, per round, for the stage breakdown in the JSON (the daemon's own figures, not the SDK's).
type Stages = Record<string, number>;
let roundStages: Stages[] = [];
const stderrWrite = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
  for (const line of text.split("\n")) {
    const i = line.indexOf(" info sandbox started {");
    if (i >= 0) roundStages.push((JSON.parse(line.slice(i + " info sandbox started ".length)) as { ms: Stages }).ms);
  }
  return (stderrWrite as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stderr.write;
/** p50 of each stage over a round's creates (ms), and how many creates logged one. */
function stagesP50(xs: Stages[]): Record<string, number> {
  const names = [...new Set(xs.flatMap((x) => Object.keys(x)))];
  return Object.fromEntries([["n", xs.length], ...names.map((k) => [k, pct(xs.map((x) => x[k]).filter((v): v is number => v !== undefined), 50)])]);
}

const T0 = performance.now();
const say = (s: string) => note(`bench-create: [+${Math.round((performance.now() - T0) / 1000)}s] ${s}`);

const root = `/tmp/obx-bench-create-${process.pid}`;
mkdirSync(root, { recursive: true });
const initrd = testInitramfs(root);
const d = await startTestDaemon(
  { network: false, warmPoolSize: POOL, maxConcurrentCreates: 64, cpuBudget: 256, memoryBudgetMib: 1 << 20, bootTimeoutMs: 600_000 },
  mkdtempSync(join(root, "data-")),
);
const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 600_000 };

/** Waits until the pool holds `n` entries for the template (it refills one at a time while no create runs). */
async function poolAt(templateId: string, n: number): Promise<void> {
  const end = Date.now() + 600_000;
  while (d.manager.warmPoolReady(templateId) < n) {
    if (Date.now() > end) throw new Error(`the warm pool did not reach ${n} entries in 10 min (${d.manager.warmPoolReady(templateId)})`);
    await Bun.sleep(100);
  }
}

/** One user's create: Sandbox.create until the first command's answer; the sandbox is returned for the kill. */
async function createAndRun(): Promise<{ ms: number; s: Sandbox; createMs: number }> {
  const t0 = performance.now();
  const s = await Sandbox.create("bench-create", opts);
  const createMs = performance.now() - t0;
  // Under 50 creates at once the emulated guest answers in minutes, past the SDK's default 60 s.
  const r = await s.commands.run("echo hi", { timeoutMs: 600_000, requestTimeoutMs: 600_000 });
  const ms = performance.now() - t0;
  if (r.stdout !== "hi\n") throw new Error(`echo hi answered ${JSON.stringify(r.stdout)}`);
  return { ms, s, createMs };
}

try {
  const t = await registerTemplate(d.state, d.dataDir, { name: "bench-create", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 256, diskSizeMb: 2048 });
  await d.manager.warmTemplates();
  await (await createAndRun()).s.kill(); // the first create after the snapshot: not timed
  await poolAt(t.id, 1);
  say("template snapshot and pool ready");

  const seq: number[] = [];
  const seqCreate: number[] = []; // Sandbox.create alone; the rest of each sample is the first commands.run
  roundStages = [];
  for (let i = 0; i < RUNS; i++) {
    await poolAt(t.id, 1);
    const { ms, s, createMs } = await createAndRun();
    seq.push(ms);
    seqCreate.push(createMs);
    await s.kill();
  }
  const seqStages = stagesP50(roundStages);
  say(`sequential: p50 ${pct(seq, 50)} ms (Sandbox.create p50 ${pct(seqCreate, 50)} ms), p99 ${pct(seq, 99)} ms; daemon stages p50 ${JSON.stringify(seqStages)}`);

  // The same two guest exchanges as a create's bring-up, on a guest that has been running (not just restored): what
  // an exchange costs by itself, so the stages above split into the exchange and the restored guest's wake-up.
  const live = await createAndRun();
  // The clone took its identity (hygiene, with /init since issue 18): its sandbox id and hostname are its own.
  const who = (await live.s.commands.run("cat /run/onebox/sandbox-id; hostname", { timeoutMs: 600_000 })).stdout;
  if (who !== `${live.s.sandboxId}\n${live.s.sandboxId}\n`) throw new Error(`the clone's id and hostname are ${JSON.stringify(who)}, not ${live.s.sandboxId}`);
  const runDir = sandboxPaths(d.config, live.s.sandboxId).runDir;
  const token = d.manager.get(live.s.sandboxId)?.envdAccessToken ?? undefined;
  const hyg: number[] = [];
  const ini: number[] = [];
  const cmd: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    await sendHygiene(vsockPath(runDir), { id: live.s.sandboxId, hostname: live.s.sandboxId, timeoutMs: 60_000 });
    hyg.push(performance.now() - t);
    t = performance.now();
    await new AgentClient(runDir).init({ envVars: {}, defaultUser: "user", accessToken: token }, token);
    ini.push(performance.now() - t);
    t = performance.now();
    await live.s.commands.run("echo hi", { timeoutMs: 600_000 });
    cmd.push(performance.now() - t);
  }
  await live.s.kill();
  say(`running guest: hygiene p50 ${pct(hyg, 50)} ms, /init p50 ${pct(ini, 50)} ms, commands.run p50 ${pct(cmd, 50)} ms`);

  const conc: Record<number, number[]> = {};
  const concStages: Record<number, Record<string, number>> = {};
  for (const n of ROUNDS) {
    await poolAt(t.id, Math.min(n, POOL));
    roundStages = [];
    const made = await Promise.all(Array.from({ length: n }, () => createAndRun()));
    conc[n] = made.map((m) => m.ms);
    await Promise.all(made.map((m) => m.s.kill()));
    concStages[n] = stagesP50(roundStages);
    say(`${n} at once: p50 ${pct(conc[n]!, 50)} ms, p99 ${pct(conc[n]!, 99)} ms; daemon stages p50 ${JSON.stringify(concStages[n])}`);
  }

  const seq50 = pct(seq, 50);
  const c50p99 = pct(conc[50]!, 99);
  console.log(
    JSON.stringify({
      bench: "create",
      runs: RUNS,
      warm_pool: POOL,
      create_p50_ms: seq50,
      create_p99_ms: pct(seq, 99),
      linux_restore_ms: LINUX_RESTORE_MS,
      create_over_restore_p50: Math.round((seq50 / LINUX_RESTORE_MS) * 100) / 100,
      c20_p50_ms: pct(conc[20]!, 50),
      c20_p99_ms: pct(conc[20]!, 99),
      c50_p50_ms: pct(conc[50]!, 50),
      c50_p99_ms: c50p99,
      c50_p99_over_seq_p50: Math.round((c50p99 / seq50) * 100) / 100,
      // The daemon's own stages (its `sandbox started` lines), p50 per round: vmm = the restore request into a
      // pooled vmm; hygiene and init run at once from the restore on, total = the whole start.
      seq_stages_p50_ms: seqStages,
      // Sandbox.create alone (sequential), and each sample's rest: the first commands.run of a fresh clone.
      seq_sdk_create_p50_ms: pct(seqCreate, 50),
      seq_first_cmd_p50_ms: pct(seq.map((x, i) => x - seqCreate[i]!), 50),
      c20_stages_p50_ms: concStages[20],
      c50_stages_p50_ms: concStages[50],
      // The same exchanges with a guest that has been running: an exchange's own cost.
      running_hygiene_p50_ms: pct(hyg, 50),
      running_init_p50_ms: pct(ini, 50),
      running_cmd_p50_ms: pct(cmd, 50),
      emulated: true,
    }),
  );
} finally {
  await d.stop();
  rmSync(root, { recursive: true, force: true });
}
