// bun run bench:density [--n 200] [--idle-min 10]: what an idle sandbox costs the host (issue 18), in the test host.
// N `base`-shaped sandboxes (minimal image, 1 vCPU, 512 MiB) created through the real e2b SDK, each after one
// `commands.run("echo hi")`; then the sum of the vmm processes' PSS (their guest pages included: guest RAM is the vmm's
// private mapping) per sandbox, and the drop of the host's MemAvailable per sandbox; again after --idle-min minutes
// idle (does it grow?). And where it goes (scripts/vmm-memory.ts): the guest RAM mapping's private pages (what the
// guest dirtied) and its share of the template's page cache, the rest of the vmm process, its page tables, its
// cgroup's kernel memory (KVM's page tables, slab), the daemon's RSS growth, and which guest pages are dirty and
// what they hold. Last line JSON.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { startTestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";
import { buildImageOutside, note, REPO, rerunInTesthost, testInitramfs } from "./bench-lib.ts";
import { dirtyPages, GUEST_PAGE_KINDS_CMD, guestMapping, guestOwnBytes, memoryStat, restByKind, smaps, statusBytes, sumField } from "./vmm-memory.ts";

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
const vmmJson = (id: string) =>
  JSON.parse(readFileSync(join(d.config.runRoot, "vms", id, "vmm.json"), "utf8")) as { pid: number; cgroup?: { version?: number; dirs?: { memory?: string } } };
const vmmPid = (id: string) => vmmJson(id).pid;
const BUCKET = 32 * MIB; // guest physical buckets of the dirty-page histogram
const CLASSIFY = 3; // vmms whose dirty pages are read and compared (zero / same as the template): cheap enough

/** Where the memory of the N vmms goes, per sandbox, in MiB (see the header). */
function breakdown(ids: string[]) {
  const acc: Record<string, number> = {};
  const add = (k: string, v: number) => void (acc[k] = (acc[k] ?? 0) + v);
  const buckets: number[] = [];
  const cls = { total: 0, zero: 0, same: 0, other: 0 };
  ids.forEach((id, i) => {
    const j = vmmJson(id);
    const maps = smaps(j.pid);
    const g = guestMapping(maps);
    if (!g) return;
    const rest = maps.filter((m) => m !== g);
    const gPriv = guestOwnBytes(g);
    add("guest_private", gPriv);
    add("guest_shared_pss", (g.f.Pss ?? 0) - gPriv);
    add("vmm_rest_pss", sumField(rest, "Pss"));
    add("vmm_rest_private", sumField(rest, "Private_Dirty") + sumField(rest, "Private_Clean"));
    for (const [k, v] of Object.entries(restByKind(rest))) add(`rest_${k}`, v);
    add("vmpte", statusBytes(j.pid, "VmPTE"));
    const ms = memoryStat(j.cgroup?.version === 2 ? j.cgroup.dirs?.memory : undefined);
    for (const k of ["anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu", "sock", "slab"]) add(`cg_${k}`, ms[k] ?? 0);
    const dp = dirtyPages(j.pid, g, BUCKET, i < CLASSIFY, g.path);
    dp.buckets.forEach((n, b) => (buckets[b] = (buckets[b] ?? 0) + n));
    if (i < CLASSIFY) {
      cls.total += dp.total;
      cls.zero += dp.zero;
      cls.same += dp.sameAsFile;
      cls.other += dp.other;
    }
  });
  const per: Record<string, number> = {};
  for (const [k, v] of Object.entries(acc)) per[k] = v / ids.length / MIB;
  return {
    per,
    dirtyMibByBucket: buckets.map((n) => (n * 4096) / ids.length / MIB),
    dirtyClass: { zeroPct: (100 * cls.zero) / (cls.total || 1), sameAsTemplatePct: (100 * cls.same) / (cls.total || 1), otherPct: (100 * cls.other) / (cls.total || 1) },
  };
}

try {
  await registerTemplate(d.state, d.dataDir, { name: "bench-density", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 });
  await d.manager.warmTemplates();
  await (await Sandbox.create("bench-density", opts)).kill(); // the template snapshot exists from here
  await Bun.sleep(5000); // the pool's refill settles
  // Stages, on one extra sandbox (killed before the baseline): what the guest dirties by the create (hygiene, /init),
  // by the first command, by 10 s idle, by a second command; and what the guest itself says it holds.
  const stages: Record<string, number> = {};
  {
    const guestPrivate = (id: string) => guestOwnBytes(guestMapping(smaps(vmmPid(id)))) / MIB;
    const s = await Sandbox.create("bench-density", { ...opts, timeoutMs: 600_000 });
    stages.after_create = guestPrivate(s.sandboxId);
    await s.commands.run("echo hi");
    stages.after_first_command = guestPrivate(s.sandboxId);
    await Bun.sleep(10_000);
    stages.after_10s_idle = guestPrivate(s.sandboxId);
    await s.commands.run("echo hi");
    stages.after_second_command = guestPrivate(s.sandboxId);
    const probe = await s.commands.run(
      "grep -E '^(MemFree|Buffers|Cached|AnonPages|Shmem|Slab|PageTables|KernelStack):' /proc/meminfo | tr -s ' ' | tr '\\n' ';'; echo; " +
        "for f in /proc/[0-9]*/status; do awk '/^(Name|VmRSS|RssAnon|RssFile):/{printf \"%s=%s \", $1, $2} END{print \"\"}' $f; done | grep VmRSS",
    );
    // What the guest's dirtied frames are now, by the guest kernel's page flags (as root: /proc/kpageflags).
    const g = guestMapping(smaps(vmmPid(s.sandboxId)));
    if (g) {
      const dp = dirtyPages(vmmPid(s.sandboxId), g, BUCKET, false, undefined, true);
      const split = async (pfns: number[], what: string) => {
        await s.files.write("/tmp/obx-dirty-pfns", pfns.join("\n") + "\n", { user: "root" });
        const r = await s.commands.run(GUEST_PAGE_KINDS_CMD("/tmp/obx-dirty-pfns"), { user: "root", timeoutMs: 300_000 });
        say(`guest's own pages ${what} (${pfns.length}), by the guest's page flags now: ${r.stdout.trim()}`);
      };
      await split(dp.pfns, "all");
      await split(dp.pfns.filter((p) => p * 4096 >= 64 * MIB && p * 4096 < 96 * MIB), "in 64-96 MiB");
      const iomem = await s.commands.run("grep -E 'Kernel|System RAM' /proc/iomem", { user: "root" });
      say(`guest /proc/iomem: ${iomem.stdout.trim().replace(/\n\s*/g, " | ")}`);
    }
    say(`stages (guest RAM private, MiB): ${Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
    say(`guest after 2 commands: ${probe.stdout.replace(/\n+$/, "").replace(/\n/g, " | ")}`);
    await s.kill();
    await Bun.sleep(5000); // the pool refills after that create
  }
  Bun.gc(true);
  const daemonRssBefore = statusBytes("self", "VmRSS");
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
  Bun.gc(true);
  const daemonRssMib = (statusBytes("self", "VmRSS") - daemonRssBefore) / N / MIB;
  const bd = breakdown(made.map((s) => s.sandboxId));
  const f2 = (x: number | undefined) => (x ?? 0).toFixed(2);
  const p = bd.per;
  say(
    `breakdown per sandbox (MiB): guest RAM private ${f2(p.guest_private)} + its share of the template's page cache ${f2(p.guest_shared_pss)}; ` +
      `vmm rest PSS ${f2(p.vmm_rest_pss)} (private ${f2(p.vmm_rest_private)}; heap ${f2(p.rest_heap)}, anon ${f2(p.rest_anon)}, kvm ${f2(p.rest_kvm)}, files ${f2(p.rest_files)}, other ${f2(p.rest_other)}); ` +
      `VmPTE ${f2(p.vmpte)}; cgroup kernel ${f2(p.cg_kernel)} (sec_pagetables ${f2(p.cg_sec_pagetables)}, pagetables ${f2(p.cg_pagetables)}, slab ${f2(p.cg_slab)}, kernel_stack ${f2(p.cg_kernel_stack)}, percpu ${f2(p.cg_percpu)}, sock ${f2(p.cg_sock)}), cgroup anon ${f2(p.cg_anon)}, file ${f2(p.cg_file)}; ` +
      `daemon RSS +${f2(daemonRssMib)}`,
  );
  say(`guest pages dirtied per sandbox, MiB per 32 MiB of guest physical memory: ${bd.dirtyMibByBucket.map((x) => x.toFixed(2)).join(" ")}`);
  say(
    `dirtied pages of ${Math.min(CLASSIFY, N)} vmms: ${bd.dirtyClass.zeroPct.toFixed(1)}% all zero, ${bd.dirtyClass.sameAsTemplatePct.toFixed(1)}% equal to the template's page, ${bd.dirtyClass.otherPct.toFixed(1)}% changed`,
  );
  await Bun.sleep(IDLE_MIN * 60_000);
  const later = measure();
  say(`idle after ${IDLE_MIN} min: ${later.pssMib.toFixed(2)} MiB PSS per sandbox, MemAvailable -${later.dropMib.toFixed(2)} MiB per sandbox`);
  const laterGuest = breakdown(made.map((s) => s.sandboxId)).per.guest_private ?? 0;
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
      guest_private_mib: r2(p.guest_private ?? 0),
      guest_private_mib_10min: r2(laterGuest),
      guest_shared_pss_mib: r2(p.guest_shared_pss ?? 0),
      vmm_rest_pss_mib: r2(p.vmm_rest_pss ?? 0),
      vmm_rest_private_mib: r2(p.vmm_rest_private ?? 0),
      vmpte_mib: r2(p.vmpte ?? 0),
      cgroup_kernel_mib: r2(p.cg_kernel ?? 0),
      cgroup_sec_pagetables_mib: r2(p.cg_sec_pagetables ?? 0),
      cgroup_slab_mib: r2(p.cg_slab ?? 0),
      daemon_rss_mib: r2(daemonRssMib),
      dirty_zero_pct: r2(bd.dirtyClass.zeroPct),
      dirty_same_as_template_pct: r2(bd.dirtyClass.sameAsTemplatePct),
      stage_after_create_mib: r2(stages.after_create ?? 0),
      stage_after_first_command_mib: r2(stages.after_first_command ?? 0),
      stage_after_10s_idle_mib: r2(stages.after_10s_idle ?? 0),
      stage_after_second_command_mib: r2(stages.after_second_command ?? 0),
      emulated: true,
    }),
  );
} finally {
  await d.stop();
  rmSync(root, { recursive: true, force: true });
}
