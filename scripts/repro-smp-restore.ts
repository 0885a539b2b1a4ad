// Reproducer for the 2-vCPU triple fault (issue 20): inside the test host, boot 2-vCPU echo guests cold (optionally
// under CPU load) and restore a 2-vCPU snapshot into pooled vmms in a loop, each clone getting clone hygiene (the
// daemon's warm-pool path), and count the VMs that die. With --trace the kvm tracepoints of the test host's kernel
// are recorded and, at a death, the faulting vmm's last KVM entries/exits are printed (SVM resets a vCPU on a
// SHUTDOWN exit, so its registers are gone by the time the vmm could read them).
//
// usage: scripts/testhost run --timeout 3000 'bun scripts/repro-smp-restore.ts --restores 30 --boots 5 [--snapshots N --busy]
//          [--parallel P] [--load N] [--trace]'   (--load N: N busy loops in the test host for the whole run)
// Last stdout line: {"boots":…,"boot_deaths":…,"restores":…,"restore_deaths":…}
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ONEBOX_TEST_ECHO_PORT } from "../guest/protocol.ts";
import { sendHygiene } from "../src/machine/hygiene.ts";
import { VmProcess, dialVsock, type VmSpec } from "../src/vmm/index.ts";

const REPO = join(import.meta.dir, "..");
const { values } = parseArgs({
  options: {
    restores: { type: "string", default: "20" },
    boots: { type: "string", default: "3" },
    load: { type: "string", default: "0" },
    vcpus: { type: "string", default: "2" },
    "settle-ms": { type: "string", default: "3000" },
    snapshots: { type: "string", default: "1" },
    busy: { type: "boolean", default: false },
    parallel: { type: "string", default: "1" },
    trace: { type: "boolean", default: false },
  },
});
const restores = Number(values.restores);
const boots = Number(values.boots);
const vcpus = Number(values.vcpus);
const settleMs = Number(values["settle-ms"]);
const log = (s: string): void => void process.stderr.write(`repro: ${s}\n`);

const harness = (await import(join(REPO, "tests/e2e/lib/harness.ts"))) as typeof import("../tests/e2e/lib/harness.ts");
const { StateClient } = (await import(join(REPO, "tests/e2e/lib/state-guest.ts"))) as typeof import("../tests/e2e/lib/state-guest.ts");
const scratch = harness.scratchRoot();
const initrd = harness.testInitramfs();
let n = 0;

const T = "/sys/kernel/tracing";
function traceOn(): void {
  if (!existsSync(join(T, "trace"))) Bun.spawnSync(["mount", "-t", "tracefs", "nodev", T]);
  writeFileSync(join(T, "buffer_size_kb"), "8192");
  for (const e of ["kvm_entry", "kvm_exit", "kvm_inj_exception", "kvm_inj_virq", "kvm_apic_ipi", "kvm_msr", "kvm_pv_eoi", "kvm_async_pf_not_present", "kvm_async_pf_ready"]) {
    const f = join(T, "events/kvm", e, "enable");
    if (existsSync(f)) writeFileSync(f, "1");
  }
  writeFileSync(join(T, "trace"), "");
  writeFileSync(join(T, "tracing_on"), "1");
}
/** The trace lines of one vmm (its threads' comms are onebox-vmm-…; filter by the pid's threads). */
function traceDump(pid: number): void {
  if (!values.trace) return;
  writeFileSync(join(T, "tracing_on"), "0");
  const tids = new Set<string>();
  try {
    for (const t of Bun.spawnSync(["ls", `/proc/${pid}/task`]).stdout.toString().split("\n")) if (t) tids.add(t);
  } catch {}
  const lines = readFileSync(join(T, "trace"), "utf8").split("\n");
  // Thread ids are gone once the vmm exited: match "-<pid>" and any tid we saw, else print the tail.
  const mine = lines.filter((l) => /-(\d+)\s+\[/.test(l) && (l.includes(`-${pid} `) || [...tids].some((t) => l.includes(`-${t} `))));
  const out = (mine.length ? mine : lines).slice(-120);
  process.stderr.write(`repro: --- kvm trace (last ${out.length} lines${mine.length ? ` of pid ${pid}` : ", all"}) ---\n${out.join("\n")}\n`);
  writeFileSync(join(T, "trace"), "");
  writeFileSync(join(T, "tracing_on"), "1");
}

function specFor(restoreFrom?: string): VmSpec {
  const runDir = join(scratch, `r${n++}`);
  mkdirSync(runDir, { recursive: true });
  return {
    id: `repro-${n}`,
    runDir,
    consolePath: join(runDir, "console.log"),
    exitFile: join(runDir, "exit.json"),
    memMib: 256,
    vcpus,
    kernel: harness.testKernel(),
    initrd,
    cmdline: harness.testCmdline("echo"),
    disks: [],
    rng: true,
    vsock: { cid: 3, forwardPorts: [] },
    restoreFrom,
  };
}

interface Death {
  what: string;
  detail: string;
}
/** Watches a VM: the first exit that was not our stop is a death (reason + detail + console tail printed). */
function watch(vm: VmProcess, spec: VmSpec, what: string, deaths: Death[]): { stopping: () => void } {
  let stopping = false;
  void vm.exited.then((e) => {
    if (stopping) return;
    const detail = `${e.reason}: ${e.detail}`;
    deaths.push({ what, detail });
    const con = existsSync(spec.consolePath) ? readFileSync(spec.consolePath, "utf8") : "";
    log(`DEATH ${what}: ${detail}\n--- console tail ---\n${con.slice(-3000)}\n--- vmm stderr ---\n${
      existsSync(join(spec.runDir, "vmm.stderr")) ? readFileSync(join(spec.runDir, "vmm.stderr"), "utf8").slice(-2000) : ""}`);
    traceDump(vm.pid);
  });
  return { stopping: () => (stopping = true) };
}

async function echo(spec: VmSpec, vm: VmProcess, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const dead = await Promise.race([vm.exited.then(() => true), Bun.sleep(1).then(() => false)]);
    if (dead) return false;
    try {
      const s = await dialVsock(join(spec.runDir, "vsock.sock"), ONEBOX_TEST_ECHO_PORT, 30_000);
      const back = await harness.echoOver(s, Buffer.from("repro-smp-16byte"));
      if (back.length >= 16) return true;
    } catch {
      await Bun.sleep(200);
    }
  }
  return false;
}

if (values.trace) traceOn();
const hogs: Bun.Subprocess[] = [];
for (let i = 0; i < Number(values.load); i++) hogs.push(Bun.spawn(["sh", "-c", "while :; do :; done"]));

const bootDeaths: Death[] = [];
const restoreDeaths: Death[] = [];
const bases: string[] = [];
for (let i = 0; i < Math.max(boots, 1); i++) {
  const spec = specFor();
  const vm = await VmProcess.spawn(spec);
  const w = watch(vm, spec, `cold boot ${i}`, bootDeaths);
  const ok = await echo(spec, vm, 300_000);
  const con = existsSync(spec.consolePath) ? readFileSync(spec.consolePath, "utf8") : "";
  const smp = con.split("\n").filter((l) => /smp|CPU ?1|boot_cpu|APIC|x86:/i.test(l)).slice(0, 8);
  log(`cold boot ${i}: ${ok ? "echo ok" : "NO ECHO"}${smp.length ? `; console: ${smp.join(" | ")}` : ""}`);
  if (ok && !bases.length) {
    // The snapshots for the restore loop: with --busy the guest works (a ticker every 10 ms, memory dirtied in a
    // loop) and is paused at --snapshots different points, resumed after each; else it is left to
    // settle (both vCPUs idle) and snapshotted once.
    let busy = true;
    if (values.busy) {
      const st = await StateClient.dial(join(spec.runDir, "vsock.sock"));
      await st.spawnTicker();
      void (async () => {
        for (let k = 0; busy; k++) await st.dirty(24, k).catch(() => (busy = false));
      })();
    }
    for (let k = 0; k < Number(values.snapshots); k++) {
      await Bun.sleep(values.busy ? 300 + Math.floor(Math.random() * 1500) : settleMs);
      await vm.pause();
      const dir = join(scratch, `base${k}`);
      await vm.snapshot(dir);
      await vm.resume();
      bases.push(dir);
    }
    busy = false;
    log(`${bases.length} snapshot(s) of cold boot ${i}`);
  }
  w.stopping();
  await vm.stop().catch(() => undefined);
  rmSync(spec.runDir, { recursive: true, force: true });
}
if (!bases.length) throw new Error("no cold boot answered: no snapshot to restore");

let next = 0;
async function worker(): Promise<void> {
  for (let i = next++; i < restores; i = next++) {
    const spec = specFor();
    const vm = await VmProcess.spawnPooled(spec);
    const w = watch(vm, spec, `restore ${i}`, restoreDeaths);
    const base = bases[i % bases.length]!;
    await vm.restore(base);
    let ok = await echo(spec, vm, 120_000);
    if (ok) {
      await sendHygiene(join(spec.runDir, "vsock.sock"), { id: `clone-${i}`, hostname: `clone${i}` }).catch((e: unknown) => log(`hygiene ${i}: ${String(e)}`));
      await Bun.sleep(settleMs); // the fault came right after "hygiene applied": give it time to happen
      ok = await echo(spec, vm, 60_000);
    }
    log(`restore ${i} (${base}): ${ok ? "ok" : "FAILED"}`);
    w.stopping();
    await vm.stop().catch(() => undefined);
    rmSync(spec.runDir, { recursive: true, force: true });
  }
}
await Promise.all(Array.from({ length: Number(values.parallel) }, () => worker()));
for (const h of hogs) h.kill();
console.log(JSON.stringify({ vcpus, boots, boot_deaths: bootDeaths.length, restores, restore_deaths: restoreDeaths.length, deaths: [...bootDeaths, ...restoreDeaths] }));
