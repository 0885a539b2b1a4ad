// Runs the native virtio persistence round-trip test (rng ring continues, refusals, vsock TRANSPORT_RESET).
import { expect, test } from "bun:test";
import { join } from "node:path";

test("native virtio_persist_test passes", () => {
  const bin = join(import.meta.dir, "../../build/tests/virtio_persist_test");
  const r = Bun.spawnSync([bin]);
  expect(r.stderr.toString()).toBe("");
  expect(r.stdout.toString()).toContain("virtio_persist_test: ok");
  expect(r.exitCode).toBe(0);
});
