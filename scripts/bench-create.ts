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
async function createAndRun(): Promise<{ ms: number; s: Sandbox }> {
  const t0 = performance.now();
  const s = await Sandbox.create("bench-create", opts);
  // Under 50 creates at once the emulated guest answers in minutes, past the SDK's default 60 s.
  const r = await s.commands.run("echo hi", { timeoutMs: 600_000, requestTimeoutMs: 600_000 });
  const ms = performance.now() - t0;
  if (r.stdout !== "hi\n") throw new Error(`echo hi answered ${JSON.stringify(r.stdout)}`);
  return { ms, s };
}

try {
  const t = await registerTemplate(d.state, d.dataDir, { name: "bench-create", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 256, diskSizeMb: 2048 });
  await d.manager.warmTemplates();
  await (await createAndRun()).s.kill(); // the first create after the snapshot: not timed
  await poolAt(t.id, 1);
  say("template snapshot and pool ready");

  const seq: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await poolAt(t.id, 1);
    const { ms, s } = await createAndRun();
    seq.push(ms);
    await s.kill();
  }
  say(`sequential: p50 ${pct(seq, 50)} ms, p99 ${pct(seq, 99)} ms`);

  const conc: Record<number, number[]> = {};
  for (const n of ROUNDS) {
    await poolAt(t.id, Math.min(n, POOL));
    const made = await Promise.all(Array.from({ length: n }, () => createAndRun()));
    conc[n] = made.map((m) => m.ms);
    await Promise.all(made.map((m) => m.s.kill()));
    say(`${n} at once: p50 ${pct(conc[n]!, 50)} ms, p99 ${pct(conc[n]!, 99)} ms`);
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
      emulated: true,
    }),
  );
} finally {
  await d.stop();
  rmSync(root, { recursive: true, force: true });
}
