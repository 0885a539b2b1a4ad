// guest/protocol.ts is the one source of the constants host, vmm and guest share: every C header that restates one
// (the guest's init, the vmm's legacy devices and vsock, the flat test guests) must say the same value.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as protocol from "./protocol";

const repo = join(import.meta.dir, "..");

/** C name -> protocol.ts name where the two differ. */
const C_ALIASES: Record<string, keyof typeof protocol> = {
  ONEBOX_BLK_TEST_BYTES: "ONEBOX_TEST_BLK_BYTES",
  ONEBOX_BLK_TEST_SEED_ZERO: "ONEBOX_BLK_SEED_ZERO",
};

/** Each header and the constants it must define (so that renaming one cannot take it out of the check). */
const HEADERS: Record<string, string[]> = {
  "guest/init/protocol.h": [
    "ONEBOX_MARKER_BOOTED", "ONEBOX_MARKER_READY", "ONEBOX_TEST_BLK_PREFIX", "ONEBOX_PORT_POWEROFF", "ONEBOX_POWEROFF_VALUE",
    "ONEBOX_VSOCK_FORWARD_PORT", "ONEBOX_VSOCK_CONTROL_PORT", "ONEBOX_TEST_ECHO_PORT", "ONEBOX_BLK_TEST_BYTES",
    "ENVD_PORT", "ONEBOX_BLK_TEST_SEED_ZERO", "ONEBOX_TEST_NET_PREFIX",
  ],
  "ffi/vmm/legacy.h": ["ONEBOX_PORT_POWEROFF", "ONEBOX_POWEROFF_VALUE"],
  "ffi/vmm/virtio/vsock/vsock.h": ["ONEBOX_VSOCK_FORWARD_PORT"],
  "ffi/tests/guests/guest.h": ["ONEBOX_PORT_POWEROFF", "ONEBOX_POWEROFF_VALUE"],
};

/** `#define NAME VALUE` lines, comments dropped. */
function defines(path: string): Map<string, string> {
  const text = readFileSync(join(repo, path), "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^#define (\w+)[ \t]+(.+)$/gm)) out.set(m[1]!, m[2]!.trim());
  return out;
}

/** A C value as protocol.ts would hold it: a string literal, or an integer literal or product like (64u * 1024). */
function cValue(v: string): string | bigint {
  if (v.startsWith('"')) return JSON.parse(v) as string;
  return v
    .replace(/[()]/g, "")
    .split("*")
    .reduce((acc, t) => acc * BigInt(t.trim().replace(/[uUlL]+$/, "")), 1n);
}

for (const [path, required] of Object.entries(HEADERS)) {
  test(`${path} says what guest/protocol.ts says`, () => {
    const defs = defines(path);
    for (const name of required) expect(defs.has(name), `${path} lacks ${name}`).toBe(true);
    let checked = 0;
    for (const [name, raw] of defs) {
      const key = C_ALIASES[name] ?? (name in protocol ? (name as keyof typeof protocol) : undefined);
      if (!key) continue;
      const want = protocol[key];
      const got = cValue(raw);
      expect(got, `${path} ${name}`).toEqual(typeof want === "string" ? want : BigInt(want as number | bigint));
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(required.length);
  });
}
