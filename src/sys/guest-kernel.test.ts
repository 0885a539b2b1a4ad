// Tests kernel format detection and the default kernel/initramfs resolution.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelFormat, resolveGuestKernel } from "./guest-kernel.ts";

const dir = mkdtempSync(join(tmpdir(), "onebox-gk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("recognises ELF, bzImage, other and missing files", () => {
  const elf = Buffer.alloc(64);
  elf.set([0x7f, 0x45, 0x4c, 0x46]);
  writeFileSync(join(dir, "vmlinux"), elf);
  const bz = Buffer.alloc(0x400);
  bz.write("HdrS", 0x202, "latin1");
  writeFileSync(join(dir, "bzImage"), bz);
  writeFileSync(join(dir, "junk"), "not a kernel");
  expect(kernelFormat(join(dir, "vmlinux"))).toBe("elf");
  expect(kernelFormat(join(dir, "bzImage"))).toBe("bzImage");
  expect(kernelFormat(join(dir, "junk"))).toBe("unknown");
  expect(kernelFormat(join(dir, "nothing"))).toBe("missing");
});

test("the default kernel comes from kernels/debian-cloud with its kernel.json and initramfs", () => {
  const data = join(dir, "data");
  const k = join(data, "kernels", "debian-cloud");
  mkdirSync(k, { recursive: true });
  const bz = Buffer.alloc(0x400);
  bz.write("HdrS", 0x202, "latin1");
  writeFileSync(join(k, "vmlinuz"), bz);
  writeFileSync(join(k, "kernel.json"), JSON.stringify({ version: "6.1.0-test" }));
  writeFileSync(join(k, "initramfs.cpio.gz"), "x");
  const saved = { k: process.env.ONEBOX_KERNEL, p: process.env.ONEBOX_PVM_KERNEL };
  process.env.ONEBOX_KERNEL = ""; // empty counts as unset
  delete process.env.ONEBOX_PVM_KERNEL;
  try {
    expect(resolveGuestKernel({ dataDir: data })).toEqual({
      path: join(k, "vmlinuz"), source: "default", format: "bzImage", version: "6.1.0-test", initrd: join(k, "initramfs.cpio.gz"),
    });
    expect(resolveGuestKernel({ dataDir: data, kernel: join(dir, "vmlinux") })).toMatchObject({ source: "flag", format: "elf", version: null });
  } finally {
    if (saved.k !== undefined) process.env.ONEBOX_KERNEL = saved.k;
    else delete process.env.ONEBOX_KERNEL;
    if (saved.p !== undefined) process.env.ONEBOX_PVM_KERNEL = saved.p;
  }
});
