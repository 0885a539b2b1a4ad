// e2e: a Linux guest (echo test mode) is snapshotted while its vsock echo server listens; clones restored from
// that snapshot (two fresh vmm processes, one pooled vmm) each answer new vsock echo connections, the first one dialled
// right after the restore included: the device holds it until the guest handled TRANSPORT_RESET (reset_hold.c).
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ONEBOX_TEST_ECHO_PORT } from "../../guest/protocol.ts";
import { guestStatus, sendHygiene } from "../../src/machine/hygiene.ts";
import { RUN_FILES, VmProcess, dialVsock, type VmSpec } from "../../src/vmm/index.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, bootToMarker, dialWhenListening, echoOver, scratchRoot, type TestVm } from "./lib/harness.ts";

const BYTES = 64 * 1024;

let source: TestVm | undefined;
const clones: VmProcess[] = [];
afterAll(async () => {
  for (const c of clones) await c.stop().catch(() => undefined);
  await source?.dispose();
});

describe.skipIf(!IN_TESTHOST)("snapshot and restore (Linux)", () => {
  test("clones of a paused echo guest answer new vsock connections, the first one dialled at once", async () => {
    source = await bootToMarker({ test: "echo", memMib: 256 });
    const first = await dialWhenListening(source.vsockPath, ONEBOX_TEST_ECHO_PORT);
    const probe = randomBytes(BYTES);
    expect((await echoOver(first, probe)).equals(probe)).toBe(true);
    await source.vm.pause();
    const snapDir = join(scratchRoot(), "snap");
    await source.vm.snapshot(snapDir);
    await source.vm.stop();

    for (let i = 0; i < 3; i++) {
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
      // Clone 2 is the create path: a pooled vmm made ahead for that snapshot (read at its start), then `restore DIR`.
      const vm = i < 2 ? await VmProcess.spawn(spec) : await VmProcess.spawnPooled(spec);
      clones.push(vm);
      if (i === 2) await vm.restore(snapDir);
      // Dialled once, at once, with a new CID: a REQUEST the guest saw before it handled TRANSPORT_RESET would be
      // answered from the old CID (dropped) or reset with the pre-snapshot sockets; the device holds it instead.
      const sock = await dialVsock(join(runDir, "vsock.sock"), ONEBOX_TEST_ECHO_PORT, 60_000);
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
    for (let i = 0; i < 3; i++) {
      const vsock = join(scratchRoot(), `clone${i}`, "vsock.sock");
      await sendHygiene(vsock, { id: `clone-${i}`, hostname: `clone${i}` });
      statuses.push(await guestStatus(vsock));
    }
    expect(statuses.map((s) => s.id)).toEqual(["clone-0", "clone-1", "clone-2"]);
    expect(statuses[0]?.random).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(statuses.map((s) => s.random)).size).toBe(3);
    for (const s of statuses) expect(Math.abs(s.time_ns / 1e6 - Date.now())).toBeLessThan(60_000);
    for (const c of clones) await c.stop();
    for (const c of clones) expect((await c.exited).reason).toBe("stopped");
    for (let i = 0; i < 3; i++) {
      // The guest released each hold itself (its event-queue kick), not the device's timeout.
      const stderr = readFileSync(join(scratchRoot(), `clone${i}`, RUN_FILES.stderr), "utf8");
      expect(stderr).not.toContain("did not handle TRANSPORT_RESET");
    }
    rmSync(snapDir, { recursive: true, force: true });
  }, BOOT_TIMEOUT_MS * 4);
});
