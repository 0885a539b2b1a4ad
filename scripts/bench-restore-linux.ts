// bench:restore part b (docs/benchmarks.md): inside the test host, the Debian kernel + onebox-init's echo test mode.
// Restore until the guest answers on vsock vs a cold boot of the same kernel + initramfs until it answers (medians,
// interleaved runs), and pause/resume of a clone that dirtied 64 MiB. The restore timed for the ratio is the create
// path: a pooled vmm made ahead (`restore DIR` -> echo); a fresh vmm process (`--restore`) is timed too.
// Last stdout line: one JSON object.
//
// usage: bun scripts/bench-restore-linux.ts [--runs N] [--dirty-mib M]   (re-runs itself inside scripts/testhost)
//        bun run bench:restore runs it after part a through runLinuxPart() below.
import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ONEBOX_TEST_ECHO_PORT } from "../guest/protocol.ts";
import { VmProcess, dialVsock, type VmSpec } from "../src/vmm/index.ts";
import { REPO, note } from "./bench-lib.ts";

const DEFAULT_RUNS = 5;
const DEFAULT_DIRTY_MIB = 64;
const MEM_MIB = 256;
const TIMEOUT_MS = 300_000;
const GUEST_CID = 3;

export interface LinuxResult {
  /** Pooled vmm (made ahead): `restore DIR` sent -> the guest's vsock echo answered. */
  linux_restore_ms: number;
  /** Its stages: `restore DIR` round trip (the vmm's work), then the hybrid CONNECT answered (`OK`: the guest ran,
   *  handled TRANSPORT_RESET and accepted), then the 16-byte echo back. */
  linux_restore_vmm_ms: number;
  linux_restore_connect_ms: number;
  linux_restore_echo_ms: number;
  /** A fresh vmm process per restore (`--restore DIR`): spawn -> echo, and its main() -> first guest exit. */
  linux_restore_spawn_ms: number;
  linux_restore_spawn_vmm_ms: number;
  linux_coldboot_ms: number;
  coldboot_over_restore: number;
  coldboot_over_spawn_restore: number;
  /** Echo attempts that failed before the one that answered, over all pooled restores (0 = no redial). */
  linux_restore_redials: number;
  pause_ms: number;
  resume_ms: number;
  pause_diff_kib: number;
  pause_full_memory_kib: number;
  dirty_mib: number;
  linux_runs: number;
}

/** Outside the test host: runs this script there and returns its JSON line. Its stderr passes through live. */
export async function runLinuxPart(runs = DEFAULT_RUNS, dirtyMib = DEFAULT_DIRTY_MIB): Promise<LinuxResult> {
  const cmd = `bun scripts/bench-restore-linux.ts --runs ${runs} --dirty-mib ${dirtyMib}`;
  const p = Bun.spawn([join(REPO, "scripts/testhost"), "run", "--timeout", "3000", cmd], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const out = await new Response(p.stdout).text();
  const code = await p.exited;
  const last = out.trim().split("\n").pop() ?? "";
  if (code !== 0 || !last.startsWith("{")) throw new Error(`bench-restore-linux in the test host failed (exit ${code}):\n${out.slice(-2000)}`);
  process.stderr.write(out.slice(0, out.length - last.length - 1) + "\n");
  return JSON.parse(last) as LinuxResult;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

interface Echo {
  okAt: number; // performance.now() when the vmm answered OK on the attempt that succeeded
  failures: number; // attempts before it
}

/** Polls guest vsock echo until a 16-byte round trip succeeds: "the guest answers on the host-guest channel". */
async function untilEcho(vm: VmProcess, vsockPath: string): Promise<Echo> {
  const end = performance.now() + TIMEOUT_MS;
  const probe = Buffer.from("onebox-bench-16b");
  let failures = 0;
  for (;;) {
    const t0 = performance.now();
    try {
      const sock = await dialVsock(vsockPath, ONEBOX_TEST_ECHO_PORT, 30_000);
      const okAt = performance.now();
      const back = await new Promise<Buffer>((resolve, reject) => {
        let got = Buffer.alloc(0);
        sock.on("data", (c: Buffer) => {
          got = Buffer.concat([got, c]);
          if (got.length >= probe.length) resolve(got);
        });
        sock.on("error", reject);
        sock.on("close", () => reject(new Error("echo closed early")));
        sock.write(probe);
      });
      sock.destroy();
      if (back.subarray(0, probe.length).equals(probe)) return { okAt, failures };
      failures++;
    } catch (e) {
      failures++;
      // Not up yet: no socket, nothing listening, or reset by the transport-reset event. A slow failure is a stall.
      const took = performance.now() - t0;
      if (took > 1000) note(`bench-restore-linux: echo attempt failed after ${took.toFixed(0)} ms: ${(e as Error).message}`);
    }
    if (performance.now() > end) throw new Error(`no vsock echo after ${TIMEOUT_MS} ms`);
    if (await Promise.race([vm.exited.then(() => true), Bun.sleep(5).then(() => false)])) {
      throw new Error("the VM exited before its echo answered");
    }
  }
}

async function inside(runs: number, dirtyMib: number): Promise<void> {
  // The harness and the state client live under tests/ (outside the typecheck); loaded at run time, in the test host.
  const harness = (await import(join(REPO, "tests/e2e/lib/harness.ts"))) as typeof import("../tests/e2e/lib/harness.ts");
  const { StateClient } = (await import(join(REPO, "tests/e2e/lib/state-guest.ts"))) as typeof import("../tests/e2e/lib/state-guest.ts");
  const scratch = harness.scratchRoot();
  harness.testInitramfs(); // built outside the timed region
  let n = 0;

  /** A spec for a fresh VM (cold boot) or a clone (restoreFrom): same devices either way (rng + vsock). */
  const specFor = (restoreFrom?: string): VmSpec => {
    const runDir = join(scratch, `b${n++}`);
    mkdirSync(runDir, { recursive: true });
    return {
      id: `bench-linux-${n}`,
      runDir,
      consolePath: join(runDir, "console.log"),
      exitFile: join(runDir, "exit.json"),
      memMib: MEM_MIB,
      vcpus: 1,
      kernel: harness.testKernel(),
      initrd: harness.testInitramfs(),
      cmdline: harness.testCmdline("echo"),
      disks: [],
      rng: true,
      // One CID for every VM, as the daemon does (src/sandbox/runtime.ts): a clone keeps the snapshot's CID.
      vsock: { cid: GUEST_CID, forwardPorts: [] },
      restoreFrom,
    };
  };
  /** Spawn -> echo answered, in ms; returns the live VM too, and the vmm's own part (main() to first guest exit). */
  const startTimed = async (restoreFrom?: string, restoreBase?: string): Promise<{ vm: VmProcess; spec: VmSpec; ms: number; vmmMs: number }> => {
    const spec = { ...specFor(restoreFrom), restoreBase };
    const t0 = performance.now();
    const vm = await VmProcess.spawn(spec);
    await untilEcho(vm, join(spec.runDir, "vsock.sock"));
    const ms = performance.now() - t0;
    return { vm, spec, ms, vmmMs: (await vm.stats()).startUs / 1000 };
  };
  /** The create path: a pooled vmm made ahead (untimed, then left to settle), `restore DIR` -> echo answered. */
  const restorePooled = async (dir: string) => {
    const spec = specFor(dir); // a pooled vmm reads the snapshot it is made for at start
    const vm = await VmProcess.spawnPooled(spec);
    await Bun.sleep(200);
    const t0 = performance.now();
    await vm.restore(dir);
    const restored = performance.now();
    const echo = await untilEcho(vm, join(spec.runDir, "vsock.sock"));
    const done = performance.now();
    return {
      vm,
      spec,
      ms: done - t0,
      vmmMs: restored - t0,
      connectMs: echo.okAt - restored,
      echoMs: done - echo.okAt,
      failures: echo.failures,
    };
  };
  const dispose = async (x: { vm: VmProcess; spec: VmSpec }): Promise<void> => {
    await x.vm.stop();
    rmSync(x.spec.runDir, { recursive: true, force: true });
  };

  // The base snapshot: a cold-booted echo guest, paused once its echo answers.
  const first = await startTimed();
  await first.vm.pause();
  const base = join(scratch, "base");
  await first.vm.snapshot(base);
  await dispose(first);

  const cold: number[] = [];
  const restore: number[] = [];
  const restoreVmm: number[] = [];
  const restoreConnect: number[] = [];
  const restoreEcho: number[] = [];
  const spawnRestore: number[] = [];
  const spawnRestoreVmm: number[] = [];
  let redials = 0;
  for (let i = 0; i < runs; i++) {
    // Interleaved, so that drift in the emulated host's speed hits all alike.
    const c = await startTimed();
    cold.push(c.ms);
    await dispose(c);
    const r = await restorePooled(base);
    restore.push(r.ms);
    restoreVmm.push(r.vmmMs);
    restoreConnect.push(r.connectMs);
    restoreEcho.push(r.echoMs);
    redials += r.failures;
    await dispose(r);
    const s = await startTimed(base);
    spawnRestore.push(s.ms);
    spawnRestoreVmm.push(s.vmmMs);
    await dispose(s);
    note(
      `bench-restore-linux: run ${i + 1}/${runs}: cold boot ${c.ms.toFixed(0)} ms; pooled restore ${r.ms.toFixed(0)} ms ` +
        `(restore ${r.vmmMs.toFixed(0)} + connect ${r.connectMs.toFixed(0)} + echo ${r.echoMs.toFixed(0)}, ` +
        `${r.failures} failed attempts); fresh-process restore ${s.ms.toFixed(0)} ms (vmm part ${s.vmmMs.toFixed(0)} ms)`,
    );
  }

  // Pause/resume: a clone of the base dirties dirtyMib, is paused into its own snapshot and freed, then resumed.
  const pause: number[] = [];
  const resume: number[] = [];
  let diffKib = 0;
  let fullKib = 0;
  for (let i = 0; i < runs; i++) {
    const clone = await startTimed(base);
    const st = await StateClient.dial(join(clone.spec.runDir, "vsock.sock"));
    await st.dirty(dirtyMib, 1000 + i);
    st.close();
    const dir = join(scratch, `paused${i}`);
    const t0 = performance.now();
    await clone.vm.pause();
    await clone.vm.snapshot(dir, { diff: true }); // only what the clone changed since its restore
    await clone.vm.stop(); // pause frees the VM
    pause.push(performance.now() - t0);
    rmSync(clone.spec.runDir, { recursive: true, force: true });
    const back = await startTimed(dir, base); // a diff names its base from the caller's record
    resume.push(back.ms);
    const chk = await StateClient.dial(join(back.spec.runDir, "vsock.sock"));
    const c = await chk.check();
    chk.close();
    if (c.memBad !== 0) throw new Error(`resumed guest: ${c.memBad} pages of the dirtied region differ`);
    await dispose(back);
    diffKib = statSync(join(dir, "memory")).blocks * 0.5; // allocated, holes excluded
    fullKib = statSync(join(dir, "memory")).size / 1024;
    rmSync(dir, { recursive: true, force: true });
    note(`bench-restore-linux: pause ${pause[i]!.toFixed(0)} ms, resume ${resume[i]!.toFixed(0)} ms, memory file ${diffKib} KiB allocated`);
  }
  rmSync(base, { recursive: true, force: true });

  const r = median(restore);
  const c = median(cold);
  const result: LinuxResult = {
    linux_restore_ms: round(r),
    linux_restore_vmm_ms: round(median(restoreVmm)),
    linux_restore_connect_ms: round(median(restoreConnect)),
    linux_restore_echo_ms: round(median(restoreEcho)),
    linux_restore_spawn_ms: round(median(spawnRestore)),
    linux_restore_spawn_vmm_ms: round(median(spawnRestoreVmm)),
    linux_coldboot_ms: round(c),
    coldboot_over_restore: round(c / r),
    coldboot_over_spawn_restore: round(c / median(spawnRestore)),
    linux_restore_redials: redials,
    pause_ms: round(median(pause)),
    resume_ms: round(median(resume)),
    pause_diff_kib: Math.round(diffKib),
    pause_full_memory_kib: Math.round(fullKib),
    dirty_mib: dirtyMib,
    linux_runs: runs,
  };
  note("bench-restore-linux: times are emulated (TCG, nested KVM); only ratios taken in this run mean anything");
  console.log(JSON.stringify(result));
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: String(DEFAULT_RUNS) },
      "dirty-mib": { type: "string", default: String(DEFAULT_DIRTY_MIB) },
    },
  });
  const runs = Number(values.runs);
  const dirtyMib = Number(values["dirty-mib"]);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got '${values.runs}'`);
  if (!Number.isInteger(dirtyMib) || dirtyMib < 1 || dirtyMib > MEM_MIB / 2) {
    throw new Error(`--dirty-mib must be 1..${MEM_MIB / 2}, got '${values["dirty-mib"]}'`);
  }
  if (process.env.ONEBOX_TESTHOST === "1") await inside(runs, dirtyMib);
  else console.log(JSON.stringify(await runLinuxPart(runs, dirtyMib)));
}
