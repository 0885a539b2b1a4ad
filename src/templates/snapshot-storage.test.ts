// Snapshot storage: counted from the files (a hard-linked base image not at all, a twice-linked layer once), and the
// bounds refuse a snapshot (507, nothing made) before anything is written; deleting a snapshot frees its share.
import { afterEach, expect, test } from "bun:test";
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { snapshotBytes } from "./snapshot-storage.ts";

const MIB = 1024 * 1024;
let s: FakeSandboxes | null = null;
const dirs: string[] = [];
afterEach(() => {
  s?.close();
  s = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** n MiB of real (allocated) bytes. */
const fill = (path: string, mib: number) => writeFileSync(path, Buffer.alloc(mib * MIB, 1));

test("snapshotBytes: own files once each; a root image hard-linked to the base is the base's", () => {
  const root = mkdtempSync(join(tmpdir(), "snap-bytes-"));
  dirs.push(root);
  fill(join(root, "base-rootfs"), 3);
  const dir = join(root, "snap");
  mkdirSync(join(dir, "snapshots", "k", "vm"), { recursive: true });
  linkSync(join(root, "base-rootfs"), join(dir, "rootfs.ext4"));
  fill(join(dir, "snapshots", "k", "layer.ext4"), 2);
  linkSync(join(dir, "snapshots", "k", "layer.ext4"), join(dir, "layer.ext4"));
  fill(join(dir, "snapshots", "k", "vm", "memory"), 5);
  const b = snapshotBytes(dir);
  expect(b).toBeGreaterThanOrEqual(7 * MIB);
  expect(b).toBeLessThan(8 * MIB);
});

test("per-sandbox bound: the sandbox's next snapshot is refused (507, nothing made), another sandbox's is not", async () => {
  // Estimate per snapshot: 128 MiB of guest RAM (+ the tiny fake layer); 140 MiB per sandbox leaves room for one.
  s = await fakeSandboxes({ snapshotStoragePerSandboxMib: 140 });
  const a = await s.create();
  const first = await s.manager.snapshot(a.id);
  fill(join(first.dir, "pad"), 13); // as if the capture had written 13 MiB: 13 + 128 > 140
  const before = readdirSync(join(s.dir, "templates")).sort();
  const refused = s.manager.snapshot(a.id);
  await expect(refused).rejects.toMatchObject({ kind: "insufficient-storage" });
  await expect(refused).rejects.toThrow(new RegExp(`sandbox ${a.id}'s snapshots hold 1[34] MiB of the 140 MiB allowed per sandbox and this one may need 129 MiB`));
  expect(readdirSync(join(s.dir, "templates")).sort()).toEqual(before);
  expect(s.manager.get(a.id)?.state).toBe("running");
  const b = await s.create();
  expect((await s.manager.snapshot(b.id)).snapshotOf).toBe(b.id);
});

test("total bound: full storage refuses every sandbox's snapshot; deleting one frees it", async () => {
  s = await fakeSandboxes({ snapshotStorageMaxMib: 140 });
  const a = await s.create();
  const b = await s.create();
  const first = await s.manager.snapshot(a.id);
  fill(join(first.dir, "pad"), 13);
  await expect(s.manager.snapshot(b.id)).rejects.toThrow(/snapshot storage is full: snapshots hold 1[34] MiB of the 140 MiB allowed/);
  rmSync(first.dir, { recursive: true, force: true });
  s.state.templates.delete(first.id);
  expect((await s.manager.snapshot(b.id)).snapshotOf).toBe(b.id);
});
