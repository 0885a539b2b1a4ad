// Deadlines with the machine layer faked: at its end time a sandbox is killed (reason timeout) or, created with
// autoPause, paused to disk; a deadline that finds the sandbox busy is tried again.
import { afterEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fakeSandboxes, until, type FakeSandboxes } from "./fake-sandboxes.ts";
import { FILESYSTEM_ONLY, sandboxPaths } from "./paths.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("at its end time a sandbox is killed with reason timeout", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  s.manager.setTimeout(row.id, 0.05);
  await until(() => s.manager.get(row.id)?.state === "ended");
  expect(s.manager.get(row.id)?.endReason).toBe("timeout");
});

test("with autoPause it is paused to disk instead, and not ended", async () => {
  s = await fakeSandboxes();
  const row = await s.create({ autoPause: true });
  s.manager.setTimeout(row.id, 0.05);
  await until(() => s.manager.get(row.id)?.state === "paused");
  expect(s.manager.get(row.id)?.endedAt).toBeNull();
  expect(s.files(row.id).paused).toBe(true);
});

test("with autoPause and autoPauseMemory false (E2B's keepMemory: false) the timeout's pause keeps only the files", async () => {
  s = await fakeSandboxes();
  const row = await s.create({ autoPause: true, autoPauseMemory: false });
  expect(row.autoPauseMemory).toBe(false);
  s.manager.setTimeout(row.id, 0.05);
  await until(() => s.manager.get(row.id)?.state === "paused");
  expect(s.fm.calls).toContain("sync");
  expect(s.fm.calls).not.toContain("snapshot");
  expect(existsSync(join(sandboxPaths(s.config, row.id).pauseDir, FILESYSTEM_ONLY))).toBe(true);
});

test("a deadline that finds the sandbox busy (a pause in flight) retries after it", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  let open!: () => void;
  s.fm.gate.snapshot = new Promise<void>((r) => (open = r));
  s.fm.failOnce.add("snapshot");
  const pausing = s.manager.pause(row.id).catch(() => "pause failed");
  await Bun.sleep(20);
  s.manager.setTimeout(row.id, 0.01);
  await Bun.sleep(100);
  expect(s.manager.get(row.id)?.state).toBe("pausing");
  open();
  expect(await pausing).toBe("pause failed");
  await until(() => s.manager.get(row.id)?.state === "ended", 3000);
  expect(s.manager.get(row.id)?.endReason).toBe("timeout");
});
