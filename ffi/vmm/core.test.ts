// Runs the native unit test of the VMM core helpers (bus, irq, evloop) built by `make -C ffi`.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("native core_test passes", () => {
  const bin = join(import.meta.dir, "../build/tests/core_test");
  const r = Bun.spawnSync([bin]);
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString()).toContain("core_test: ok");
  expect(r.exitCode).toBe(0);
});
