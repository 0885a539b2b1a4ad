// Runs the native virtio tests built by `make -C ffi` into ffi/build/tests: the transport (virtio_mmio_test), and for
// every device folder its own test, which must pass the device contract (contract.h) first; checks that every device
// folder has the same shape (docs/virtio.md "Adding a device").
import { expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const virtioDir = import.meta.dir;
const testsDir = join(virtioDir, "../../build/tests");
/** Folders under virtio/ that are not devices. */
const NOT_DEVICES = new Set(["fuzz"]);
const devices = readdirSync(virtioDir).filter((n) => !NOT_DEVICES.has(n) && statSync(join(virtioDir, n)).isDirectory());

function runNative(name: string): string {
  const bin = join(testsDir, name);
  expect(existsSync(bin), `${bin} missing: run make -C ffi`).toBe(true);
  const r = Bun.spawnSync([bin], { timeout: 60_000 });
  if (r.exitCode !== 0) console.error(r.stderr.toString());
  expect(r.exitCode).toBe(0);
  const out = r.stdout.toString();
  expect(out).toContain(`${name}: ok`);
  return out;
}

test("the device folders are blk, net, rng and vsock, and each has <dev>.h, device.c, persist.c, <dev>_test.c", () => {
  expect(devices.sort()).toEqual(["blk", "net", "rng", "vsock"]);
  for (const dev of devices)
    for (const file of [`${dev}.h`, "device.c", "persist.c", `${dev}_test.c`])
      expect(existsSync(join(virtioDir, dev, file)), `virtio/${dev}/${file}`).toBe(true);
});

for (const dev of devices) {
  test(`native ${dev}_test passes, the device contract first`, () => {
    expect(runNative(`${dev}_test`)).toContain(`${dev} contract: ok`);
  }, 90_000);
}

for (const name of ["virtio_mmio_test", "vsock_reset_test", "net_rx_test", "net_tap_test"]) {
  test(`native ${name} passes`, () => {
    runNative(name);
  }, 90_000);
}
