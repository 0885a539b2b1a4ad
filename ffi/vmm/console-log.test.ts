// Runs the native console log test (ffi/vmm/console_log_test.c) built by `make -C ffi`.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("native console_log_test passes: the console log stays under --console-max and keeps the newest output", () => {
  const r = Bun.spawnSync([join(import.meta.dir, "../build/tests/console_log_test")]);
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString()).toContain("console_log_test: ok");
  expect(r.exitCode).toBe(0);
});
