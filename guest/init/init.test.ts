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

test("protocol.h matches guest/protocol.ts", () => {
  const h = readFileSync(join(dir, "protocol.h"), "utf8");
  const defs = new Map<string, string>();
  for (const m of h.matchAll(/^#define (\w+) (.+)$/gm)) defs.set(m[1]!, m[2]!.trim());
  const str = (k: string) => JSON.parse(defs.get(k)!);
  // Values are literals or products like (64u * 1024 * 1024).
  const num = (k: string) =>
    defs.get(k)!.replace(/[()u]/g, "").split("*").reduce((acc, t) => acc * Number(t.trim()), 1);
  expect(str("ONEBOX_MARKER_BOOTED")).toBe(protocol.ONEBOX_MARKER_BOOTED);
  expect(str("ONEBOX_MARKER_READY")).toBe(protocol.ONEBOX_MARKER_READY);
  expect(str("ONEBOX_TEST_BLK_PREFIX")).toBe(protocol.ONEBOX_TEST_BLK_PREFIX);
  expect(num("ONEBOX_PORT_POWEROFF")).toBe(protocol.ONEBOX_PORT_POWEROFF);
  expect(num("ONEBOX_POWEROFF_VALUE")).toBe(protocol.ONEBOX_POWEROFF_VALUE);
  expect(num("ONEBOX_VSOCK_FORWARD_PORT")).toBe(protocol.ONEBOX_VSOCK_FORWARD_PORT);
  expect(num("ONEBOX_VSOCK_CONTROL_PORT")).toBe(protocol.ONEBOX_VSOCK_CONTROL_PORT);
  expect(num("ONEBOX_TEST_ECHO_PORT")).toBe(protocol.ONEBOX_TEST_ECHO_PORT);
  expect(num("ONEBOX_BLK_TEST_BYTES")).toBe(protocol.ONEBOX_TEST_BLK_BYTES);
  expect(num("ENVD_PORT")).toBe(protocol.ENVD_PORT);
  expect(BigInt(defs.get("ONEBOX_BLK_TEST_SEED_ZERO")!.replace(/ull$/, ""))).toBe(protocol.ONEBOX_BLK_SEED_ZERO);
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
