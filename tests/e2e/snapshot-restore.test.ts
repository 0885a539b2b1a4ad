// e2e: a Linux guest (echo test mode) is snapshotted while its vsock echo server listens; two clones restored from
// that snapshot each answer new vsock echo connections.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ONEBOX_TEST_ECHO_PORT } from "../../guest/protocol.ts";
import { VmProcess, dialVsock, guestStatus, sendHygiene, type VmSpec } from "../../src/vmm/index.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, bootToMarker, dialWhenListening, echoOver, scratchRoot, type TestVm } from "./lib/harness.ts";

const BYTES = 64 * 1024;

let source: TestVm | undefined;
const clones: VmProcess[] = [];
afterAll(async () => {
  for (const c of clones) await c.stop().catch(() => undefined);
  await source?.dispose();
});

describe.skipIf(!IN_TESTHOST)("snapshot and restore (Linux)", () => {
  test("two clones of a paused echo guest answer new vsock connections", async () => {
    source = await bootToMarker({ test: "echo", memMib: 256 });
    const first = await dialWhenListening(source.vsockPath, ONEBOX_TEST_ECHO_PORT);
    const probe = randomBytes(BYTES);
    expect((await echoOver(first, probe)).equals(probe)).toBe(true);
    await source.vm.pause();
    const snapDir = join(scratchRoot(), "snap");
    await source.vm.snapshot(snapDir);
    await source.vm.stop();

    for (let i = 0; i < 2; i++) {
      const runDir = join(scratchRoot(), `clone${i}`);
      mkdirSync(runDir, { recursive: true });
      // Same devices as the source (rng + vsock), its own run dir and CID; memory and vCPUs come from the snapshot.
      const spec: VmSpec = {
        ...source.spec,
        id: `${source.spec.id}-clone${i}`,
        runDir,
        consolePath: join(runDir, "console.log"),
        exitFile: join(runDir, "exit.json"),
        restoreFrom: snapDir,
        vsock: { cid: 100 + i, forwardPorts: [] },
      };
      const vm = await VmProcess.spawn(spec);
      clones.push(vm);
      const sock = await dialWhenListening(join(runDir, "vsock.sock"), ONEBOX_TEST_ECHO_PORT, 60_000);
      const data = randomBytes(BYTES);
      const back = await echoOver(sock, data);
      expect(back.subarray(0, BYTES).equals(data)).toBe(true);
      // A second connection on the same clone: the guest's vsock transport works after the reset event.
      const again = await dialVsock(join(runDir, "vsock.sock"), ONEBOX_TEST_ECHO_PORT);
      expect((await echoOver(again, data)).subarray(0, BYTES).equals(data)).toBe(true);
      expect((await vm.ping()).state).toBe("running");
    }
    // Clone hygiene: each clone gets the host clock, fresh entropy and its own id; before it, both clones would
    // continue the snapshot's CRNG state. Read back through the control channel's status op.
    const statuses = [];
    for (let i = 0; i < 2; i++) {
      const vsock = join(scratchRoot(), `clone${i}`, "vsock.sock");
      await sendHygiene(vsock, { id: `clone-${i}`, hostname: `clone${i}` });
      statuses.push(await guestStatus(vsock));
    }
    expect(statuses.map((s) => s.id)).toEqual(["clone-0", "clone-1"]);
    expect(statuses[0]?.random).toMatch(/^[0-9a-f]{32}$/);
    expect(statuses[0]?.random).not.toBe(statuses[1]?.random);
    for (const s of statuses) expect(Math.abs(s.time_ns / 1e6 - Date.now())).toBeLessThan(60_000);
    for (const c of clones) await c.stop();
    for (const c of clones) expect((await c.exited).reason).toBe("stopped");
    rmSync(snapDir, { recursive: true, force: true });
  }, BOOT_TIMEOUT_MS * 4);
});
