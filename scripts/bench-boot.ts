// Boot benchmark: onebox-vmm vs `qemu-system-x86_64 -M microvm -accel kvm`, same Debian kernel and
// initramfs, time from spawn to onebox-init's booted marker; N interleaved runs each, inside the
// test host. Last line on stdout: {"onebox_ms":…,"qemu_ms":…,"ratio":…} (medians; ratio = onebox/qemu).
//
// usage: bun run bench:boot [--runs N]     (re-runs itself inside scripts/testhost unless already there)
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ONEBOX_MARKER_BOOTED } from "../guest/protocol.ts";
import { rerunInTesthost } from "./bench-lib.ts";

const REPO = join(import.meta.dir, "..");

const { values } = parseArgs({ options: { runs: { type: "string", default: process.env.BENCH_RUNS ?? "5" } } });
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive integer, got '${values.runs}'`);
const TIMEOUT_MS = 300_000;

if (process.env.ONEBOX_TESTHOST !== "1") {
  // Outside: run this same script inside the test host, passing its output and status through.
  await rerunInTesthost(`bun scripts/bench-boot.ts --runs ${RUNS}`);
}

// Loaded only inside the test host; it pulls in src/vmm (tests/ is outside the typecheck's scope).
const harnessPath = join(REPO, "tests/e2e/lib/harness.ts");
const { startTestVm, testCmdline, testInitramfs, testKernel } = (await import(harnessPath)) as Harness;

interface Harness {
  startTestVm(o: { test: "boot"; vsock: boolean; rng: boolean }): Promise<{
    spec: { consolePath: string };
    vm: { exited: Promise<unknown> };
    dispose(): Promise<void>;
  }>;
  testCmdline(test: "boot"): string;
  testInitramfs(): string;
  testKernel(): string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** onebox: VmProcess.spawn -> marker in the console file. Devices off, like the qemu run. */
async function bootOnebox(): Promise<number> {
  const t0 = performance.now();
  const t = await startTestVm({ test: "boot", vsock: false, rng: false });
  let exited = false;
  void t.vm.exited.then(
    () => (exited = true),
    () => (exited = true),
  );
  try {
    const end = t0 + TIMEOUT_MS;
    for (;;) {
      const text = existsSync(t.spec.consolePath) ? readFileSync(t.spec.consolePath, "utf8") : "";
      if (text.includes(ONEBOX_MARKER_BOOTED)) return performance.now() - t0;
      if (exited && !readFileSync(t.spec.consolePath, "utf8").includes(ONEBOX_MARKER_BOOTED)) {
        throw new Error(`onebox: the VM exited without the marker:\n${text.slice(-2000)}`);
      }
      if (performance.now() > end) throw new Error(`onebox: no marker after ${TIMEOUT_MS} ms:\n${text.slice(-2000)}`);
      await Bun.sleep(5);
    }
  } finally {
    await t.dispose();
  }
}

/** qemu microvm with KVM: spawn -> marker on its serial (stdout). */
async function bootQemu(): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(
    ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
     "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
     "-kernel", testKernel(), "-initrd", testInitramfs(), "-append", testCmdline("boot")],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const timer = setTimeout(() => p.kill("SIGKILL"), TIMEOUT_MS);
  try {
    let seen = "";
    const decoder = new TextDecoder();
    for await (const chunk of p.stdout) {
      seen += decoder.decode(chunk, { stream: true });
      if (seen.includes(ONEBOX_MARKER_BOOTED)) return performance.now() - t0;
    }
    throw new Error(`qemu ended without the marker (exit ${await p.exited}):\n${seen.slice(-2000)}${await new Response(p.stderr).text()}`);
  } finally {
    clearTimeout(timer);
    p.kill("SIGKILL");
    await p.exited;
  }
}

testInitramfs(); // build it outside the timed region
const onebox: number[] = [];
const qemu: number[] = [];
for (let i = 0; i < RUNS; i++) {
  // Interleaved, so that drift in the emulated host's speed hits both sides alike.
  onebox.push(await bootOnebox());
  qemu.push(await bootQemu());
  console.error(`bench-boot: run ${i + 1}/${RUNS}: onebox ${onebox[i]!.toFixed(0)} ms, qemu ${qemu[i]!.toFixed(0)} ms`);
}
const o = median(onebox);
const q = median(qemu);
console.error("bench-boot: times are emulated (TCG, nested KVM); only the ratio means anything");
console.log(JSON.stringify({ onebox_ms: Math.round(o), qemu_ms: Math.round(q), ratio: Number((o / q).toFixed(3)) }));
