// Runs the native snapshot round-trip test (format, core devices, vCPU state through /dev/kvm) built by make -C ffi.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("native snapshot_test passes", () => {
  const bin = join(import.meta.dir, "../../build/tests/snapshot_test");
  const r = Bun.spawnSync([bin]);
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString()).toContain("snapshot_test: ok");
  expect(r.exitCode).toBe(0);
});
