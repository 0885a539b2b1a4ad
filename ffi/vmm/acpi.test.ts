// Runs the native ACPI table test (ffi/vmm/acpi_test.c) built by `make -C ffi`.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("native acpi_test passes", () => {
  const r = Bun.spawnSync([join(import.meta.dir, "../build/tests/acpi_test")]);
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString()).toContain("acpi_test: ok");
  expect(r.exitCode).toBe(0);
});
