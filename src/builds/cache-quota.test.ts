// The build cache's bound on real files: what an entry costs (allocated blocks, a hard-linked file not at all), the
// least recently used go first, never one a build holds or one being written; a hold can lapse.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildCacheQuota } from "./cache-quota.ts";

const MIB = 1024 * 1024;
let root = "";
let q: BuildCacheQuota;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "obx-quota-"));
  q = new BuildCacheQuota({ steps: join(root, "cache"), uploads: join(root, "files"), images: join(root, "images") }, 4 * MIB);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** An entry of `mib` MiB of real (allocated) data, last used `ageS` seconds ago. */
function entry(kind: "cache" | "files" | "images", name: string, mib: number, ageS: number): string {
  const dir = join(root, kind);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  if (kind === "files") writeFileSync(path, new Uint8Array(mib * MIB).fill(7));
  else {
    mkdirSync(path);
    writeFileSync(join(path, "layer.ext4"), new Uint8Array(mib * MIB).fill(7));
  }
  const t = new Date(Date.now() - ageS * 1000);
  utimesSync(path, t, t);
  return path;
}

test("an entry costs its allocated blocks; a file hard-linked elsewhere (a template's root image) costs nothing", () => {
  const img = entry("images", "img", 1, 10);
  writeFileSync(join(img, "rootfs.ext4"), new Uint8Array(2 * MIB).fill(1));
  linkSync(join(img, "rootfs.ext4"), join(root, "template-rootfs.ext4"));
  writeFileSync(join(root, "sparse"), "");
  const items = q.items();
  expect(items.map((i) => [i.kind, Math.round(i.bytes / MIB)])).toEqual([["image", 1]]);
  expect(q.usage().used).toBeGreaterThanOrEqual(MIB);
  expect(q.usage().used).toBeLessThan(1.1 * MIB);
});

test("past the bound the least recently used go first, of every kind, until the new bytes fit", () => {
  const oldest = entry("files", "a.tar", 1, 50);
  const step = entry("cache", "s1", 1, 40);
  const image = entry("images", "i1", 1, 30);
  const newest = entry("files", "b.tar", 1, 20);
  expect(q.makeRoom(0).fits).toBe(true);
  // 4 MiB used, 4 MiB allowed: one more MiB takes the oldest only.
  const r = q.makeRoom(MIB);
  expect(r.fits).toBe(true);
  expect([oldest, step, image, newest].map(existsSync)).toEqual([false, true, true, true]);
  // A use moves an entry to the end of the line: the image is now the oldest.
  q.touch(step);
  expect(q.makeRoom(2 * MIB).fits).toBe(true);
  expect([step, image, newest].map(existsSync)).toEqual([true, false, true]);
});

test("an entry a build holds is never removed, nor one being written; when only they are left it does not fit", () => {
  const held = entry("cache", "s-held", 2, 100);
  const staging = entry("cache", "s-new.tmp", 1, 90);
  const pulling = entry("images", ".pull-abc", 1, 80);
  const free = entry("files", "c.tar", 1, 10);
  q.pin("build-1", held);
  const r = q.makeRoom(MIB);
  expect(r.fits).toBe(false);
  expect(Math.round(r.held / MIB)).toBe(4);
  // It could never fit: nothing was removed for it, not even the free entry.
  expect([held, staging, pulling, free].map(existsSync)).toEqual([true, true, true, true]);
  // Once the staging entry is done (gone here), a MiB fits beside the held ones, in the free one's place.
  rmSync(staging, { recursive: true });
  expect(q.makeRoom(MIB).fits).toBe(true);
  expect([held, pulling, free].map(existsSync)).toEqual([true, true, false]);
  // Let go: the held entry is the oldest and goes first.
  q.unpinAll("build-1");
  expect(q.makeRoom(2 * MIB).fits).toBe(true);
  expect([held, pulling].map(existsSync)).toEqual([false, true]);
});

test("a hold with a deadline (an upload link handed to a build not started yet) lapses", () => {
  const a = entry("files", "a.tar", 3, 100);
  q.pin("waiting", a, Date.now() + 60_000);
  expect(q.makeRoom(2 * MIB).fits).toBe(false);
  expect(existsSync(a)).toBe(true);
  q.pin("stale", a, Date.now() - 1);
  q.unpinAll("waiting");
  expect(q.makeRoom(2 * MIB).fits).toBe(true);
  expect(existsSync(a)).toBe(false);
});

test("a staging entry older than any build can run (left by a killed daemon) is pruned like any other", () => {
  q = new BuildCacheQuota(q.dirs, 4 * MIB, 60_000);
  const leftover = entry("cache", "s-old.tmp", 2, 3600);
  const live = entry("images", ".pull-new", 2, 5);
  expect(q.makeRoom(MIB).fits).toBe(true);
  expect([leftover, live].map(existsSync)).toEqual([false, true]);
});
