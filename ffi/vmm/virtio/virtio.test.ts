// Runs the native virtio tests (transport + rings + rng, blk, vsock, vsock reset hold) built by `make -C ffi` into ffi/build/tests.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

const testsDir = join(import.meta.dir, "../../build/tests");

for (const name of ["virtio_mmio_test", "virtio_blk_test", "virtio_vsock_test", "virtio_vsock_reset_test"]) {
  test(`native ${name} passes`, () => {
    const bin = join(testsDir, name);
    expect(existsSync(bin), `${bin} missing: run make -C ffi`).toBe(true);
    const r = Bun.spawnSync([bin], { timeout: 60_000 });
    if (r.exitCode !== 0) console.error(r.stderr.toString());
    expect(r.stdout.toString()).toContain(`${name}: ok`);
    expect(r.exitCode).toBe(0);
  }, 90_000);
}
