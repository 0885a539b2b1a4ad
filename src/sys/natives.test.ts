// Tests resolution and content-addressed extraction of embedded native executables.
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { extractNative, isEmbedded, nativePath } from "./natives.ts";

test("in a checkout onebox-vmm resolves to ffi/build/onebox-vmm", async () => {
  const path = await nativePath("onebox-vmm");
  expect(path.endsWith("ffi/build/onebox-vmm")).toBe(true);
  expect(statSync(path).mode & 0o111).not.toBe(0);
});

test("extraction is content-addressed, executable and idempotent", async () => {
  const dir = mkdtempSync(join(tmpdir(), "natives-"));
  const src1 = join(dir, "v1");
  const src2 = join(dir, "v2");
  writeFileSync(src1, "#!/bin/sh\necho one\n");
  writeFileSync(src2, "#!/bin/sh\necho two\n");
  const bin = join(dir, "bin");
  const a = await extractNative(src1, "tool", bin, 0o755);
  const again = await extractNative(src1, "tool", bin, 0o755);
  const b = await extractNative(src2, "tool", bin, 0o755);
  expect(again).toBe(a);
  expect(b).not.toBe(a); // an upgrade gets a new file; the running one is untouched
  expect(basename(a)).toMatch(/^tool-[0-9a-f]{16}$/);
  expect(statSync(a).mode & 0o777).toBe(0o755);
  expect(readFileSync(a, "utf8")).toContain("one");
  expect(Bun.spawnSync([a]).stdout.toString()).toBe("one\n");
});

test("embedded paths are recognised", () => {
  expect(isEmbedded("/$bunfs/root/onebox-vmm")).toBe(true);
  expect(isEmbedded("/work/ffi/build/onebox-vmm")).toBe(false);
});
