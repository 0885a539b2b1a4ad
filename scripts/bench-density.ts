// bun run bench:density [--n 200] [--idle-min 10]: what an idle sandbox costs the host (issue 18), in the test host.
// N `base`-shaped sandboxes (minimal image, 1 vCPU, 512 MiB) created through the real e2b SDK, each after one
// `commands.run("echo hi")`; then the sum of the vmm processes' PSS (their guest pages included: guest RAM is the vmm's
// private mapping) per sandbox, and the drop of the host's MemAvailable per sandbox; again after --idle-min minutes
// idle (does it grow?). Last line JSON.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { startTestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";
import { buildImageOutside, note, REPO, rerunInTesthost, testInitramfs } from "./bench-lib.ts";

const { values } = parseArgs({ options: { n: { type: "string", default: "200" }, "idle-min": { type: "string", default: "10" } } });
const N = Number(values.n);
const IDLE_MIN = Number(values["idle-min"]);
const IMAGE = join(REPO, ".cache", "api-e2e-template");
const MIB = 1024 * 1024;

if (process.env.ONEBOX_TESTHOST !== "1") {
  await buildImageOutside(IMAGE, "minimal");
  await rerunInTesthost(`bun scripts/bench-density.ts --n ${N} --idle-min ${IDLE_MIN}`, ["--timeout", String(1800 + IDLE_MIN * 60 + N * 20), "--stall", "600", "--mem", "16384"]);
}

const T0 = performance.now();
const say = (s: string) => note(`bench-density: [+${Math.round((performance.now() - T0) / 1000)}s] ${s}`);

/** The host's MemAvailable in bytes. */
function memAvailable(): number {
  return Number(/^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? NaN) * 1024;
}

/** PSS in bytes of a process (0 if it is gone). */
function pss(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

const root = `/tmp/obx-bench-density-${process.pid}`;
mkdirSync(root, { recursive: true });
const initrd = testInitramfs(root);
// No history sampling: it would wake every guest every 5 s, which is not what an idle sandbox costs without it.
const d = await startTestDaemon(
  { network: false, warmPoolSize: 2, maxConcurrentCreates: 8, cpuBudget: 4096, memoryBudgetMib: 1 << 22, bootTimeoutMs: 600_000, metricsIntervalSec: 0 },
  mkdtempSync(join(root, "data-")),
);
const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 600_000 };
const vmmPid = (id: string) => (JSON.parse(readFileSync(join(d.config.runRoot, "vms", id, "vmm.json"), "utf8")) as { pid: number }).pid;

try {
  await registerTemplate(d.state, d.dataDir, { name: "bench-density", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 });
  await d.manager.warmTemplates();
  await (await Sandbox.create("bench-density", opts)).kill(); // the template snapshot exists from here
  await Bun.sleep(5000); // the pool's refill settles
  const before = memAvailable();
  const made: Sandbox[] = [];
  // 4 at a time: a create is mostly guest round trips, and the host should not thrash while it measures.
  for (let i = 0; i < N; i += 4) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(4, N - i) }, async () => {
        const s = await Sandbox.create("bench-density", { ...opts, timeoutMs: 3_600_000 });
        const r = await s.commands.run("echo hi");
        if (r.stdout !== "hi\n") throw new Error(`echo hi answered ${JSON.stringify(r.stdout)}`);
        return s;
      }),
    );
    made.push(...batch);
    if (made.length % 20 === 0) say(`${made.length} sandboxes`);
  }
  await Bun.sleep(10_000); // after the last command: let the guests go idle
  const measure = () => {
    const pids = made.map((s) => vmmPid(s.sandboxId));
    const pssSum = pids.reduce((a, p) => a + pss(p), 0);
    return { pssMib: pssSum / N / MIB, dropMib: (before - memAvailable()) / N / MIB };
  };
  const now = measure();
  say(`idle now: ${now.pssMib.toFixed(2)} MiB PSS per sandbox, MemAvailable -${now.dropMib.toFixed(2)} MiB per sandbox`);
  await Bun.sleep(IDLE_MIN * 60_000);
  const later = measure();
  say(`idle after ${IDLE_MIN} min: ${later.pssMib.toFixed(2)} MiB PSS per sandbox, MemAvailable -${later.dropMib.toFixed(2)} MiB per sandbox`);
  await Promise.all(made.map((s) => s.kill()));
  const r2 = (x: number) => Math.round(x * 100) / 100;
  console.log(
    JSON.stringify({
      bench: "density",
      n: N,
      idle_min: IDLE_MIN,
      memory_mb: 512,
      idle_mib_per_sandbox: r2(now.pssMib),
      idle_mib_per_sandbox_10min: r2(later.pssMib),
      memavailable_mib_per_sandbox: r2(now.dropMib),
      memavailable_mib_per_sandbox_10min: r2(later.dropMib),
      emulated: true,
    }),
  );
} finally {
  await d.stop();
  rmSync(root, { recursive: true, force: true });
}
