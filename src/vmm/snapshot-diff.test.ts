// Diff snapshots on this host's /dev/kvm with the counting test guest (ffi/tests/guests/counter.S): a clone restored
// from a snapshot is paused into a diff holding only the pages it wrote; clones of the diff continue its exact count.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmProcess } from "./vm-process.ts";
import type { VmSpec } from "./vm-spec.ts";
import { TEST_GUESTS_DIR, haveTestGuest, testGuestSpec } from "./test-guest.ts";

const haveKvm = haveTestGuest("counter.bin");
const COUNTER = join(TEST_GUESTS_DIR, "counter.bin");
const MEM_MIB = 32;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "vmm-diff-"));
  dirs.push(d);
  return d;
}

/** The full snapshot every diff here lies over: a restore names it as the daemon does (--restore-base). */
let baseDir: string | undefined;

function spec(extra: Partial<VmSpec> = {}): VmSpec {
  return testGuestSpec(tmp(), null, { id: "diff", memMib: MEM_MIB, restoreBase: baseDir, ...extra });
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const counts = (text: string) => [...text.matchAll(/^count ([0-9a-f]{8})$/gm)].map((m) => Number.parseInt(m[1] ?? "", 16));
const allocated = (p: string) => statSync(p).blocks * 512;
const version = (dir: string) => readFileSync(join(dir, "state")).readUInt32LE(8); // header: magic[8], version

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

/** Starts a VM (cold or from a snapshot), lets it print `more` counts, pauses it and writes a snapshot (diff or
 *  full) into a fresh dir, then stops it. Returns the dir and everything the VM printed. */
async function runAndSnapshot(from: string | undefined, diff: boolean, more = 10): Promise<{ dir: string; console: string }> {
  const s = from ? spec({ restoreFrom: from }) : spec({ testGuest: COUNTER });
  const vm = await VmProcess.spawn(s);
  await waitFor(() => counts(read(s.consolePath)).length >= more);
  await vm.pause();
  const dir = join(tmp(), "snap");
  await vm.snapshot(dir, { diff });
  await vm.stop();
  return { dir, console: read(s.consolePath) };
}

/** Restores `from` and checks that the count continues unbroken from `history` (all consoles so far). */
async function expectContinues(from: string, history: string): Promise<string> {
  const s = spec({ restoreFrom: from });
  const vm = await VmProcess.spawn(s);
  await waitFor(() => counts(read(s.consolePath)).length >= 10);
  await vm.stop();
  const before = counts(history);
  const last = before[before.length - 1] ?? -1;
  // The pause may fall mid-line: the clone then prints the rest of that line.
  const seen = counts(history + read(s.consolePath));
  const after = seen.slice(seen.lastIndexOf(last));
  expect(after.length).toBeGreaterThanOrEqual(10);
  expect(after).toEqual(after.map((_, i) => last + i));
  expect(read(s.consolePath)).not.toContain("mismatch");
  expect(JSON.parse(read(s.exitFile)).reason).toBe("stopped");
  return read(s.consolePath);
}

async function refusal(s: VmSpec): Promise<string> {
  // A restore that should have been refused is stopped before the test fails, so it leaves no VM running.
  const refused = await VmProcess.spawn(s).then(
    async (vm) => (await vm.stop(), null),
    (e: Error) => e,
  );
  expect(refused?.message ?? "the restore was accepted").toMatch(/exited during start: error/);
  return JSON.parse(read(s.exitFile)).detail as string;
}

describe.skipIf(!haveKvm)("diff snapshots (test guest)", () => {
  let base: { dir: string; console: string };
  let d1: { dir: string; console: string };

  test("a restored clone pauses into a small diff; two clones of it continue the exact count", async () => {
    base = await runAndSnapshot(undefined, false, 20);
    baseDir = base.dir;
    expect(version(base.dir)).toBe(1);
    d1 = await runAndSnapshot(base.dir, true);
    expect(version(d1.dir)).toBe(2);
    // Same apparent size (pages sit at their guest-physical offsets), but only the clone's written pages are stored.
    expect(statSync(join(d1.dir, "memory")).size).toBe(MEM_MIB << 20);
    expect(allocated(join(d1.dir, "memory"))).toBeLessThan(256 * 1024);
    const history = base.console + d1.console;
    for (let i = 0; i < 2; i++) await expectContinues(d1.dir, history);
  });

  test("a diff of a diff is flattened onto the same base: it restores without the first diff", async () => {
    const d2 = await runAndSnapshot(d1.dir, true);
    expect(version(d2.dir)).toBe(2);
    expect(readFileSync(join(d2.dir, "state")).includes(Buffer.from(base.dir))).toBe(true);
    expect(readFileSync(join(d2.dir, "state")).includes(Buffer.from(d1.dir))).toBe(false);
    const history = base.console + d1.console + d2.console;
    rmSync(d1.dir, { recursive: true, force: true });
    await expectContinues(d2.dir, history);
  });

  test("a diff is refused for a cold-booted VM and into its own base", async () => {
    const s = spec({ testGuest: COUNTER });
    const vm = await VmProcess.spawn(s);
    await waitFor(() => counts(read(s.consolePath)).length >= 2);
    await vm.pause();
    await expect(vm.snapshot(join(tmp(), "snap"), { diff: true })).rejects.toThrow(/not restored from a snapshot: take a full snapshot/);
    await vm.stop();
    const c = spec({ restoreFrom: base.dir });
    const clone = await VmProcess.spawn(c);
    await clone.pause();
    // Every snapshot goes into a new directory (the vmm also refuses to write over its base memory file).
    await expect(clone.snapshot(base.dir, { diff: true })).rejects.toThrow(/already exists: a snapshot goes into a new one/);
    await clone.stop();
  });

  test("the base path a diff's state names (written by a vmm) is opened only if it is the daemon's own record", async () => {
    // A vmm that its guest took over writes the diff's state: the base path in it could name any file of the
    // right size (a swap file), which the restoring vmm, still root, would map into the next guest.
    const d = await runAndSnapshot(base.dir, true);
    expect(await refusal(spec({ restoreFrom: d.dir, restoreBase: undefined }))).toMatch(/lies over .*, not over --restore-base \(none given\)/);
    const other = await runAndSnapshot(undefined, false, 2);
    expect(await refusal(spec({ restoreFrom: d.dir, restoreBase: other.dir }))).toMatch(/lies over .*, not over --restore-base/);
  });

  test("a diff whose base changed or is gone is refused", async () => {
    const d = await runAndSnapshot(base.dir, true);
    const mem = join(base.dir, "memory");
    const st = statSync(mem);
    utimesSync(mem, st.atime, new Date(st.mtimeMs + 5000));
    expect(await refusal(spec({ restoreFrom: d.dir }))).toMatch(/base snapshot .* changed since this diff was taken/);
    rmSync(base.dir, { recursive: true, force: true });
    expect(await refusal(spec({ restoreFrom: d.dir }))).toMatch(/lies over .*, not over --restore-base/);
  });
});
