// e2e (issue 3 item 4): a Linux guest keeps a process running and has written a file; it is paused into a diff
// snapshot (the VM process stopped), resumed, paused and resumed again; the process, the file and dirtied memory are
// intact each time.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ONEBOX_TEST_ECHO_PORT } from "../../guest/protocol.ts";
import { VmProcess, type VmSpec } from "../../src/vmm/index.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, bootToMarker, dialWhenListening, scratchRoot, type TestVm } from "./lib/harness.ts";
import { StateClient } from "./lib/state-guest.ts";

const DIRTY_MIB = 16;
let source: TestVm | undefined;
const live: VmProcess[] = [];
afterAll(async () => {
  for (const vm of live) await vm.stop().catch(() => undefined);
  await source?.dispose();
});

/** A clone's spec: the source's devices and CID (as the daemon gives every VM one CID), its own run dir; a diff
 *  is restored over `base`, named by the caller as the daemon names it from its own record (--restore-base). */
function cloneSpec(src: VmSpec, name: string, from: string, base: string): VmSpec {
  const runDir = join(scratchRoot(), name);
  mkdirSync(runDir, { recursive: true });
  return { ...src, id: `${src.id}-${name}`, runDir, consolePath: join(runDir, "console.log"), exitFile: join(runDir, "exit.json"), restoreFrom: from, restoreBase: base };
}

/** Resumes from `dir` and returns the VM and a state connection (retried: the transport reset may drop the first). */
async function resume(spec: VmSpec): Promise<{ vm: VmProcess; st: StateClient }> {
  const vm = await VmProcess.spawn(spec);
  live.push(vm);
  const vsock = join(spec.runDir, "vsock.sock");
  (await dialWhenListening(vsock, ONEBOX_TEST_ECHO_PORT, 60_000)).destroy();
  for (let i = 0; ; i++) {
    try {
      const st = await StateClient.dial(vsock, 10_000);
      await st.check();
      return { vm, st };
    } catch (e) {
      if (i >= 5) throw e;
      await Bun.sleep(500);
    }
  }
}

/** Pauses into a diff snapshot and frees the VM; returns the diff's allocated bytes. */
async function pause(vm: VmProcess, dir: string): Promise<number> {
  await vm.pause();
  await vm.snapshot(dir, { diff: true });
  await vm.stop();
  expect((await vm.exited).reason).toBe("stopped");
  return statSync(join(dir, "memory")).blocks * 512;
}

describe.skipIf(!IN_TESTHOST)("pause and resume (Linux, diff snapshots)", () => {
  test("a running process, a written file and dirtied memory survive pause/resume twice", async () => {
    source = await bootToMarker({ test: "echo", memMib: 256 });
    (await dialWhenListening(source.vsockPath, ONEBOX_TEST_ECHO_PORT)).destroy();
    await source.vm.pause();
    const base = join(scratchRoot(), "base");
    await source.vm.snapshot(base);
    await source.vm.stop();

    // The sandbox: a clone of the template snapshot that starts a process, writes a file and dirties memory.
    let { vm, st } = await resume(cloneSpec(source.spec, "run0", base, base));
    const pid = await st.spawnTicker();
    await st.writeFile(7);
    await st.dirty(DIRTY_MIB, 11);
    await Bun.sleep(300);
    let before = await st.check();
    expect(before).toMatchObject({ memBad: 0, fileBad: 0, pid, alive: true });
    expect(before.ticks).toBeGreaterThan(0);
    st.close();

    let prev = base;
    for (let round = 1; round <= 2; round++) {
      const dir = join(scratchRoot(), `paused${round}`);
      const bytes = await pause(vm, dir);
      // The diff holds the clone's own pages (its dirtied region, the file, page tables, ...), far less than RAM.
      expect(bytes).toBeGreaterThanOrEqual(DIRTY_MIB << 20);
      expect(bytes).toBeLessThan(128 << 20);
      // Round 2 resumes from a diff of a diff, flattened onto the base: the first diff is no longer needed.
      if (prev !== base) rmSync(prev, { recursive: true, force: true });
      prev = dir;
      ({ vm, st } = await resume(cloneSpec(source.spec, `run${round}`, dir, base)));
      const after = await st.check();
      expect(after).toMatchObject({ memBad: 0, fileBad: 0, pid, alive: true });
      expect(after.ticks).toBeGreaterThanOrEqual(before.ticks);
      await Bun.sleep(500);
      const later = await st.check();
      expect(later.ticks).toBeGreaterThan(after.ticks); // the process runs again, not just exists
      before = later;
      st.close();
    }
    await vm.stop();
    expect((await vm.exited).reason).toBe("stopped");
  }, BOOT_TIMEOUT_MS * 4);
});
