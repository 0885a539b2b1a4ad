// Snapshot and restore on this host's /dev/kvm with the counting test guest (ffi/tests/guests/counter.S).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmProcess } from "./vm-process.ts";
import type { VmSpec } from "./vm-spec.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";

const haveKvm = haveTestGuest("counter.bin");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "vmm-snap-"));
  dirs.push(d);
  return d;
}

function spec(extra: Partial<VmSpec> = {}): VmSpec {
  return testGuestSpec(tmp(), "counter.bin", { id: "snap", ...extra });
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const counts = (text: string) => [...text.matchAll(/^count ([0-9a-f]{8})$/gm)].map((m) => Number.parseInt(m[1] ?? "", 16));

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

/** CRC32C (Castagnoli), as the vmm stamps DIR/state: lets a test forge a valid file with one field changed. */
function crc32c(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Boots the counter, lets it count, pauses, snapshots into a fresh dir and stops it. Returns dir and last count. */
async function takeSnapshot(): Promise<{ dir: string; last: number; console: string }> {
  const s = spec();
  const vm = await VmProcess.spawn(s);
  await waitFor(() => counts(read(s.consolePath)).length >= 20);
  await vm.pause();
  const dir = join(tmp(), "snap");
  await vm.snapshot(dir);
  await vm.stop();
  const seen = counts(read(s.consolePath));
  expect(read(s.consolePath)).not.toContain("mismatch");
  return { dir, last: seen[seen.length - 1] ?? -1, console: read(s.consolePath) };
}

/** Copies a snapshot dir, lets mutate change its state file, and returns the restore's refusal detail. */
async function refusal(dir: string, mutate: (state: Buffer, copy: string) => Buffer | null): Promise<string> {
  const copy = join(tmp(), "snap");
  Bun.spawnSync(["cp", "-r", "--reflink=auto", dir, copy]);
  const out = mutate(readFileSync(join(copy, "state")), copy);
  if (out) writeFileSync(join(copy, "state"), out);
  const s = spec({ testGuest: undefined, restoreFrom: copy });
  await expect(VmProcess.spawn(s)).rejects.toThrow(/exited during start: error/);
  return JSON.parse(read(s.exitFile)).detail as string;
}

describe.skipIf(!haveKvm)("snapshot and restore (test guest)", () => {
  test("virtio devices are part of the snapshot: restore needs the same --disk/--rng/--vsock", async () => {
    const s = spec({ rng: true });
    const vm = await VmProcess.spawn(s);
    await waitFor(() => counts(read(s.consolePath)).length >= 5);
    await vm.pause();
    const dir = join(tmp(), "snap");
    await vm.snapshot(dir);
    await vm.stop();
    const bad = spec({ testGuest: undefined, restoreFrom: dir });
    await expect(VmProcess.spawn(bad)).rejects.toThrow(/exited during start: error/);
    expect(JSON.parse(read(bad.exitFile)).detail).toContain("the snapshot has 1 virtio devices, this command line 0");
    const good = spec({ testGuest: undefined, restoreFrom: dir, rng: true });
    const clone = await VmProcess.spawn(good);
    await waitFor(() => counts(read(good.consolePath)).length >= 5);
    await clone.stop();
    expect(JSON.parse(read(good.exitFile)).reason).toBe("stopped");
  });

  let snap: { dir: string; last: number; console: string };

  test("snapshot of a paused VM; two clones continue from the same count", async () => {
    snap = await takeSnapshot();
    expect(snap.last).toBeGreaterThanOrEqual(20);
    const clones = [spec({ testGuest: undefined, restoreFrom: snap.dir }), spec({ testGuest: undefined, restoreFrom: snap.dir })];
    const vms = await Promise.all(clones.map((s) => VmProcess.spawn(s)));
    for (const s of clones) await waitFor(() => counts(read(s.consolePath)).length >= 10);
    for (const vm of vms) await vm.stop();
    for (const s of clones) {
      // The pause may fall mid-line: the clone then prints the rest of that line. Original console + clone
      // console must read as one unbroken count, i.e. registers, RAM and the UART all came back.
      const seen = counts(snap.console + read(s.consolePath));
      const after = seen.slice(seen.indexOf(snap.last));
      expect(after.length).toBeGreaterThanOrEqual(10);
      expect(after).toEqual(after.map((_, i) => snap.last + i));
      expect(read(s.consolePath)).not.toContain("mismatch");
      expect(JSON.parse(read(s.exitFile)).reason).toBe("stopped");
    }
  });

  test("snapshot is refused while the VM runs", async () => {
    const s = spec();
    const vm = await VmProcess.spawn(s);
    await expect(vm.snapshot(join(tmp(), "snap"))).rejects.toThrow(/pause the VM first/);
    await vm.stop();
  });

  test("a flipped byte, a wrong magic, a truncated file or a short memory file is refused", async () => {
    expect(await refusal(snap.dir, (b) => (b.writeUInt8(b.readUInt8(b.length - 100) ^ 0x40, b.length - 100), b))).toContain("checksum mismatch");
    expect(await refusal(snap.dir, (b) => (b.write("NOTASNAP", 0), b))).toContain("bad magic");
    expect(await refusal(snap.dir, (b) => b.subarray(0, 20))).toContain("truncated");
    expect(await refusal(snap.dir, (b) => b.subarray(0, b.length - 8))).toContain("checksum mismatch");
    expect(
      await refusal(snap.dir, (_b, copy) => {
        truncateSync(join(copy, "memory"), 4096);
        return null;
      }),
    ).toMatch(/memory is 4096 bytes/);
  });

  test("a snapshot stamped with the other host kind is refused", async () => {
    const detail = await refusal(snap.dir, (b) => {
      const kind = b.readUInt32LE(12); // header: magic[8], version, host_kind (ffi/vmm/snapshot/format.h)
      b.writeUInt32LE(kind === 1 ? 2 : 1, 12);
      b.writeUInt32LE(0, 32); // crc32c field, zero while summing
      b.writeUInt32LE(crc32c(b), 32);
      return b;
    });
    expect(detail).toMatch(/snapshot was taken on a (pvm|hardware) KVM host, this host is (pvm|hardware)/);
  });
});

describe.skipIf(!haveKvm)("pooled restore (test guest)", () => {
  let snap: { dir: string; last: number; console: string };
  const pooledSpec = (extra: Partial<VmSpec> = {}) => spec({ testGuest: undefined, ...extra });

  test("a pooled vmm waits without a guest, then restore continues the exact count", async () => {
    snap = await takeSnapshot();
    const s = pooledSpec({ restoreFrom: snap.dir });
    const vm = await VmProcess.spawnPooled(s);
    expect((await vm.ping()).state).toBe("pooled");
    expect((await vm.stats()).startUs).toBe(0);
    await expect(vm.pause()).rejects.toThrow(/pooled: send restore DIR first/);
    const t = await vm.restore(snap.dir);
    expect(t.totalNs).toBeGreaterThan(0);
    expect(t.totalNs).toBeGreaterThanOrEqual(t.readNs + t.validateNs + t.mmapNs + t.vmNs + t.vcpuNs + t.devicesNs);
    await waitFor(() => counts(read(s.consolePath)).length >= 10);
    expect((await vm.ping()).state).toBe("running");
    expect((await vm.stats()).startUs).toBeGreaterThan(0);
    await expect(vm.restore(snap.dir)).rejects.toThrow(/needs a pooled vmm/);
    await vm.stop();
    const seen = counts(snap.console + read(s.consolePath));
    const after = seen.slice(seen.indexOf(snap.last));
    expect(after.length).toBeGreaterThanOrEqual(10);
    expect(after).toEqual(after.map((_, i) => snap.last + i));
    expect(read(s.consolePath)).not.toContain("mismatch");
    expect(JSON.parse(read(s.exitFile)).reason).toBe("stopped");
  });

  test("a corrupted, foreign or other-shape snapshot is refused and the vmm stays pooled", async () => {
    const copy = (mutate: (state: Buffer) => Buffer) => {
      const dir = join(tmp(), "snap");
      Bun.spawnSync(["cp", "-r", "--reflink=auto", snap.dir, dir]);
      writeFileSync(join(dir, "state"), mutate(readFileSync(join(dir, "state"))));
      return dir;
    };
    const flipped = copy((b) => (b.writeUInt8(b.readUInt8(b.length - 100) ^ 0x40, b.length - 100), b));
    const foreign = copy((b) => {
      b.writeUInt32LE(b.readUInt32LE(12) === 1 ? 2 : 1, 12); // header: magic[8], version, host_kind
      b.writeUInt32LE(0, 32);
      b.writeUInt32LE(crc32c(b), 32);
      return b;
    });
    // Each pooled vmm is made for one snapshot (read at its start, as root); a refusal leaves it pooled.
    const refused = async (dir: string, re: RegExp, extra: Partial<VmSpec> = {}) => {
      const vm = await VmProcess.spawnPooled(pooledSpec({ restoreFrom: dir, ...extra }));
      await expect(vm.restore(dir)).rejects.toThrow(re);
      expect((await vm.ping()).state).toBe("pooled");
      return vm;
    };
    const vms = await Promise.all([
      refused(flipped, /checksum mismatch/),
      refused(foreign, /taken on a (pvm|hardware) KVM host, this host is/),
      refused(join(tmp(), "missing"), /open .*missing\/state/),
      refused(snap.dir, /32 MiB, this vmm was prepared for 1 vCPUs and 64 MiB/, { memMib: 64 }),
      refused(snap.dir, /the snapshot has 0 virtio devices, this command line 1/, { rng: true }),
    ]);
    await Promise.all(vms.map((vm) => vm.stop()));
    // And one made for the good snapshot restores it.
    const s = pooledSpec({ restoreFrom: snap.dir });
    const vm = await VmProcess.spawnPooled(s);
    await vm.restore(snap.dir);
    await waitFor(() => counts(read(s.consolePath)).length >= 3);
    await vm.stop();
    expect(JSON.parse(read(s.exitFile)).reason).toBe("stopped");
  });

  test("a pooled vmm that is never used exits cleanly on stop", async () => {
    const s = pooledSpec({ rng: true, vsock: { cid: 7, forwardPorts: [] } });
    const vm = await VmProcess.spawnPooled(s);
    await vm.stop();
    const exit = await vm.exited;
    expect(exit.reason).toBe("stopped");
    expect(existsSync(join(s.runDir, "ctl.sock"))).toBe(false);
    expect(existsSync(join(s.runDir, "vsock.sock"))).toBe(false);
  });
});
