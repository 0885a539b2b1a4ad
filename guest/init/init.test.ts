// Builds onebox-init and runs its native unit tests (parsers, forwarder over Unix/TCP sockets,
// supervisor).
import { beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as protocol from "../protocol";

const dir = import.meta.dir;
const bin = (name: string) => join(dir, "build", name);

beforeAll(() => {
  const r = Bun.spawnSync(["make", "-s", "-C", dir, "all", "tests"]);
  if (r.exitCode !== 0) throw new Error(`make failed: ${r.stderr.toString()}`);
}, 120000); // a build from clean takes ~10 s on a busy 2-core machine

test("parsers_test passes", () => {
  const r = Bun.spawnSync([bin("tests/parsers_test")]);
  expect(r.stdout.toString()).toContain("parsers_test: ok");
  expect(r.exitCode).toBe(0);
});

test("forwarder_test passes", () => {
  const r = Bun.spawnSync([bin("tests/forwarder_test")]);
  expect(r.stdout.toString()).toContain("forwarder_test: ok");
  expect(r.exitCode).toBe(0);
});

test("services_test passes (restart with backoff, env/cwd/log, in-process services)", () => {
  const r = Bun.spawnSync([bin("tests/services_test")]);
  expect(r.stdout.toString()).toContain("services_test: ok");
  expect(r.exitCode).toBe(0);
});

test("onebox-init is static and refuses to run as anything but PID 1", () => {
  const elf = readFileSync(bin("onebox-init"));
  // No PT_INTERP program header = no dynamic loader needed inside the initramfs.
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) expect(elf.readUInt32LE(phoff + i * phentsize)).not.toBe(3);
  const r = Bun.spawnSync([bin("onebox-init")]);
  expect(r.exitCode).toBe(2);
  expect(r.stderr.toString()).toContain("must run as PID 1");
});

test("blkTestPattern in protocol.ts matches the guest's C pattern", () => {
  for (const seed of ["0", "42", "0xdeadbeefcafef00d"]) {
    const r = Bun.spawnSync([bin("tests/parsers_test"), "pattern-sha256", seed]);
    expect(r.exitCode).toBe(0);
    const want = r.stdout.toString().trim();
    const got = new Bun.CryptoHasher("sha256").update(protocol.blkTestPattern(BigInt(seed), 1 << 20)).digest("hex");
    expect(got).toBe(want);
  }
});
