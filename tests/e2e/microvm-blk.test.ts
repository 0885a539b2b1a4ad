// e2e: the guest writes 64 MiB of the seeded pattern to /dev/vdb through virtio-blk, reads it back
// with O_DIRECT and reports its sha256; both that and the disk file on the host must match.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ONEBOX_TEST_BLK_BYTES, ONEBOX_TEST_BLK_PREFIX, blkTestPattern } from "../../guest/protocol.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, scratchRoot, sha256Hex, startTestVm, type TestVm } from "./lib/harness.ts";

const SEED = 0x5eed_0b0b_cafe_f00dn;
let t: TestVm | undefined;
afterAll(async () => t?.dispose());

function fileSha256(path: string, bytes: number): string {
  const h = new Bun.CryptoHasher("sha256");
  const buf = Buffer.alloc(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (let off = 0; off < bytes; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - off), off);
      if (n <= 0) throw new Error(`${path}: short read at ${off}`);
      h.update(buf.subarray(0, n));
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

describe.skipIf(!IN_TESTHOST)("virtio-blk", () => {
  test("64 MiB seeded write/read-back checksum, on the guest and in the disk file", async () => {
    const expected = sha256Hex(blkTestPattern(SEED, ONEBOX_TEST_BLK_BYTES));
    const root = join(scratchRoot(), "blk-root.img"); // vda: unused, so the scratch disk is vdb
    const scratch = join(scratchRoot(), "blk-scratch.img");
    writeFileSync(root, Buffer.alloc(1 << 20));
    writeFileSync(scratch, Buffer.alloc(0));
    Bun.spawnSync(["truncate", "-s", `${ONEBOX_TEST_BLK_BYTES + (1 << 20)}`, scratch]);
    t = await startTestVm({
      test: "blk",
      seed: SEED,
      disks: [
        { path: root, readOnly: true },
        { path: scratch, readOnly: false },
      ],
    });
    const exit = await t.vm.exited;
    // The disk file first: it shows whether the data went through virtio-blk at all.
    expect(fileSha256(scratch, ONEBOX_TEST_BLK_BYTES)).toBe(expected);
    const line = t.console().split("\n").find((l) => l.includes(ONEBOX_TEST_BLK_PREFIX));
    expect(line, `no blk result on the console:\n${t.console().slice(-2000)}`).toBeDefined();
    const guestSha = line!.slice(line!.indexOf(ONEBOX_TEST_BLK_PREFIX) + ONEBOX_TEST_BLK_PREFIX.length).trim();
    expect(guestSha).toBe(expected);
    expect(exit.reason).toBe("poweroff");
  }, BOOT_TIMEOUT_MS * 3);
});
