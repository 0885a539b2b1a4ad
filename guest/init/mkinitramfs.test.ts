// Tests scripts/mkinitramfs.sh on a fake modules directory: dependency order (from .modinfo and
// from modules.dep), built-ins skipped, compressed modules unpacked, --extra, the cpio layout.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "onebox-mkinitramfs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The modules onebox-init needs, with Debian 6.1's real dependencies (modinfo "depends=").
const DEPS: Record<string, string[]> = {
  virtio_ring: [], virtio: ["virtio_ring"], virtio_mmio: ["virtio", "virtio_ring"],
  virtio_blk: ["virtio", "virtio_ring"], "virtio-rng": ["virtio", "virtio_ring"], vsock: [],
  vmw_vsock_virtio_transport_common: ["vsock"],
  vmw_vsock_virtio_transport: ["virtio", "vmw_vsock_virtio_transport_common", "virtio_ring", "vsock"],
  overlay: [], failover: [], net_failover: ["failover"], virtio_net: ["virtio_ring", "virtio", "net_failover"],
};

/** A fake .ko: an ELF object whose .modinfo section holds "depends=..." like a real module.
 *  Compiled once with a placeholder that each module's copy overwrites (gcc is the slow part). */
const PLACEHOLDER = "P".repeat(200);
let template: Buffer | undefined;
function fakeModule(dir: string, name: string, deps: string[]): void {
  if (!template) {
    const src = join(work, "fake-module.c");
    writeFileSync(src, `__attribute__((section(".modinfo"), used)) static const char mi[] = "depends=${PLACEHOLDER}";\n`);
    const obj = join(work, "fake-module.o");
    const r = Bun.spawnSync(["gcc", "-c", src, "-o", obj]);
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
    template = readFileSync(obj);
  }
  const at = template.indexOf(PLACEHOLDER);
  const ko = Buffer.from(template);
  ko.fill(0, at, at + PLACEHOLDER.length);
  ko.write(deps.join(","), at, "latin1");
  writeFileSync(join(dir, `${name}.ko`), ko);
}

function unpack(cpioGz: string): string {
  const out = mkdtempSync(join(work, "x-"));
  const r = Bun.spawnSync(["sh", "-c", `zcat '${cpioGz}' | cpio -id --quiet`], { cwd: out });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return out;
}

function mk(args: string[]) {
  return Bun.spawnSync(["bash", join(repo, "scripts/mkinitramfs.sh"), ...args], { cwd: repo });
}

function checkOrder(list: string[], want: Record<string, string[]> = DEPS): void {
  const pos = (f: string) => list.indexOf(f);
  for (const [m, deps] of Object.entries(want)) {
    expect(pos(`${m}.ko`)).toBeGreaterThanOrEqual(0);
    for (const d of deps) expect(pos(`${d}.ko`)).toBeLessThan(pos(`${m}.ko`));
  }
  expect(new Set(list).size).toBe(list.length);
}

test("resolves dependencies from .modinfo (no modules.dep) and lays out the initramfs", () => {
  const mods = join(work, "mods-modinfo");
  for (const [m, deps] of Object.entries(DEPS)) {
    const sub = join(mods, "kernel", m.startsWith("v") ? "drivers" : "fs");
    mkdirSync(sub, { recursive: true });
    fakeModule(sub, m, deps);
  }
  writeFileSync(join(work, "hello.txt"), "hi\n");
  const out = join(work, "a.cpio.gz");
  const r = mk(["--modules", mods, "--out", out, "--extra", `${join(work, "hello.txt")}:/etc/hello.txt`]);
  expect(r.stderr.toString()).toContain("wrote");
  expect(r.exitCode).toBe(0);
  const x = unpack(out);
  const list = readFileSync(join(x, "lib/modules/onebox/load.list"), "utf8").trim().split("\n");
  expect(list.length).toBe(Object.keys(DEPS).length);
  checkOrder(list);
  expect(readFileSync(join(x, "etc/hello.txt"), "utf8")).toBe("hi\n");
  expect(readFileSync(join(x, "init")).subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  // Reproducible: the same inputs give the same bytes.
  const again = join(work, "b.cpio.gz");
  expect(mk(["--modules", mods, "--out", again, "--extra", `${join(work, "hello.txt")}:/etc/hello.txt`]).exitCode).toBe(0);
  expect(Bun.hash(readFileSync(again))).toBe(Bun.hash(readFileSync(out)));
}, 30000);

test("uses modules.dep when present, unpacks compressed modules, skips built-ins", () => {
  const mods = join(work, "mods-dep");
  mkdirSync(join(mods, "kernel"), { recursive: true });
  const lines: string[] = [];
  for (const [m, deps] of Object.entries(DEPS)) {
    if (m === "overlay") continue; // built in here
    fakeModule(join(mods, "kernel"), m, []); // .modinfo says nothing: modules.dep must be used
    lines.push(`kernel/${m}.ko${m === "vsock" ? ".xz" : ""}: ${deps.map((d) => `kernel/${d}.ko${d === "vsock" ? ".xz" : ""}`).join(" ")}`);
  }
  expect(Bun.spawnSync(["xz", join(mods, "kernel/vsock.ko")]).exitCode).toBe(0);
  writeFileSync(join(mods, "modules.dep"), lines.join("\n") + "\n");
  writeFileSync(join(mods, "modules.builtin"), "kernel/fs/overlayfs/overlay.ko\n");
  const out = join(work, "c.cpio.gz");
  const r = mk(["--modules", mods, "--out", out]);
  expect(r.exitCode).toBe(0);
  expect(r.stderr.toString()).toContain("overlay is built into the kernel");
  const x = unpack(out);
  const list = readFileSync(join(x, "lib/modules/onebox/load.list"), "utf8").trim().split("\n");
  const { overlay: _builtin, ...rest } = DEPS;
  expect(list).not.toContain("overlay.ko");
  checkOrder(list, rest);
  expect(readFileSync(join(x, "lib/modules/onebox/vsock.ko")).subarray(0, 4).toString("latin1")).toBe("\x7fELF");
}, 30000);

test("fails clearly on a missing module and leaves no output", () => {
  const mods = join(work, "mods-empty");
  mkdirSync(mods, { recursive: true });
  const out = join(work, "d.cpio.gz");
  const r = mk(["--modules", mods, "--out", out]);
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr.toString()).toContain("module virtio_mmio not found");
  expect(Bun.spawnSync(["sh", "-c", `ls '${work}' | grep -c '^d.cpio.gz'`]).stdout.toString().trim()).toBe("0");
});
