// `onebox doctor` reports snapshot storage from the data dir's database, as the daemon counts it, and makes nothing
// in a data dir that has none.
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { diagnose, formatReport } from "./doctor.ts";

let s: FakeSandboxes | null = null;
const dirs: string[] = [];
afterEach(() => {
  s?.close();
  s = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("snapshot storage: count, MiB used of the bound, the largest sandbox's share", async () => {
  s = await fakeSandboxes();
  const a = await s.create();
  const snap = await s.manager.snapshot(a.id);
  writeFileSync(join(snap.dir, "pad"), Buffer.alloc(3 * 1024 * 1024, 1));
  const r = await diagnose({ dataDir: s.dir });
  expect(r.snapshots).toEqual({ count: 1, mib: 3, maxMib: 65536, perSandboxMib: 16384, largestSandboxMib: 3 });
  expect(formatReport(r)).toContain("snapshots     1, 3 MiB of 65536 MiB (one sandbox's at most 3 of 16384 MiB)");
});

test("no database yet: no snapshot line, nothing made", async () => {
  const dir = mkdtempSync(join(tmpdir(), "doctor-"));
  dirs.push(dir);
  const r = await diagnose({ dataDir: dir });
  expect(r.snapshots).toBeUndefined();
  expect(readdirSync(dir)).toEqual([]);
  expect(existsSync(join(dir, "onebox.db"))).toBe(false);
});

test("getHost names: the system resolver is asked for a <port>-<id>.localhost name; when it fails, the fix is named", async () => {
  const dir = mkdtempSync(join(tmpdir(), "doctor-"));
  dirs.push(dir);
  const r = await diagnose({ dataDir: dir });
  const getent = Bun.spawnSync(["getent", "hosts", "49983-abc.localhost"]).exitCode === 0;
  expect(r.localhostNames).toBe(getent);
  expect(formatReport(r)).toContain(getent ? "getHost names <port>-<id>.localhost resolves" : "getHost names <port>-<id>.localhost does not resolve");
  expect(r.notes.some((n) => n.includes("libnss-myhostname"))).toBe(!getent);
});
