// The template builder embedded in dist/onebox: its file list covers what mkrootfs.sh copies, extraction is
// content-addressed and atomic, and a copy of the compiled binary in a directory with no checkout finds and extracts
// its builder, whose scripts then run without make or the sources (mkinitramfs.sh builds an initramfs).
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILDER_FILES, extractBuilder, templateBuilder, type TemplateBuilder } from "./builder-files.ts";
import { muslTree } from "./oci/test-images.ts";
import { startChrootAgent } from "./oci/test-chroot-agent.ts";

const repo = join(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "onebox-builder-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test("the embedded list has every guest/interpreter file mkrootfs.sh copies (its *.py, *.mjs, *.java glob)", () => {
  const dir = join(repo, "guest/interpreter");
  const copied = readdirSync(dir).filter((f) => /\.(py|mjs|java)$/.test(f)).map((f) => `guest/interpreter/${f}`);
  for (const f of [...copied, "guest/interpreter/packages.txt", "guest/interpreter/service.conf"]) expect(Object.keys(BUILDER_FILES)).toContain(f);
  // And every listed file is the checkout's (from source, the import is the file's own path).
  for (const [rel, f] of Object.entries(BUILDER_FILES)) expect(f.embedded).toBe(join(repo, rel));
});

test("from source, the builder is the checkout; a sourceDir wins", async () => {
  expect(await templateBuilder(join(work, "unused"))).toEqual({ dir: repo, from: "checkout", mkrootfsArgs: [] });
  expect(await templateBuilder(join(work, "unused"), "/src/onebox")).toEqual({ dir: "/src/onebox", from: "checkout", mkrootfsArgs: [] });
  expect(existsSync(join(work, "unused"))).toBe(false); // nothing extracted
});

test("extraction: the checkout's layout and modes, content-addressed, reused, older versions removed", async () => {
  const root = join(work, "x", "builder");
  const dir = await extractBuilder(root);
  for (const [rel, f] of Object.entries(BUILDER_FILES)) {
    expect(readFileSync(join(dir, rel)).equals(readFileSync(f.embedded))).toBe(true);
    expect(statSync(join(dir, rel)).mode & 0o777).toBe(f.mode);
  }
  expect(await extractBuilder(root)).toBe(dir);
  // A changed file (an upgraded binary) gets a new dir; the old one goes.
  const changed = join(work, "changed.sh");
  writeFileSync(changed, "#!/bin/sh\necho v2\n");
  const next = await extractBuilder(root, { ...BUILDER_FILES, "scripts/mkrootfs.sh": { embedded: changed, mode: 0o755 } });
  expect(next).not.toBe(dir);
  expect(readdirSync(root)).toEqual([next.slice(root.length + 1)]);
});

const dist = join(repo, "dist/onebox");
let extracted: TemplateBuilder | undefined;

test("a copy of dist/onebox alone (no checkout around it) extracts its builder and runs its scripts", async () => {
  expect(existsSync(dist)).toBe(true); // `bun run build` makes it (the CI builds before testing)
  const box = join(work, "box");
  const data = join(box, "data");
  mkdirSync(box);
  const bin = join(box, "onebox");
  copyFileSync(dist, bin);
  Bun.spawnSync(["chmod", "0755", bin]);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: box }; // no ONEBOX_SOURCE_DIR
  const r = Bun.spawnSync([bin, "template", "builder", "--json", "--data-dir", data], { cwd: box, env });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  const b = JSON.parse(r.stdout.toString()) as TemplateBuilder;
  extracted = b;
  expect(b.from).toBe("embedded");
  expect(b.dir.startsWith(join(data, "builder") + "/")).toBe(true);
  expect(b.mkrootfsArgs).toEqual(["--bun", bin, "--bun-be-bun"]);
  for (const rel of Object.keys(BUILDER_FILES)) {
    // Equal to this checkout's files: a stale dist/onebox fails here (rebuild it).
    expect(readFileSync(join(b.dir, rel)).equals(readFileSync(join(repo, rel)))).toBe(true);
  }
  // The binary is the guest's Bun: with BUN_BE_BUN=1 (agent.conf) it runs a script as Bun does, through a loader
  // as onebox-init starts the agent.
  writeFileSync(join(box, "hello.js"), "console.log('bun ' + Bun.version)\n");
  const asBun = Bun.spawnSync(["/lib64/ld-linux-x86-64.so.2", bin, join(box, "hello.js")], { env: { ...env, BUN_BE_BUN: "1" } });
  expect(asBun.stdout.toString()).toBe(`bun ${Bun.version}\n`);
  // The extracted mkinitramfs.sh builds an initramfs: onebox-init from the builder, no make, no sources.
  const mods = join(box, "modules");
  mkdirSync(join(mods, "kernel"), { recursive: true });
  const names = ["virtio_mmio", "virtio_blk", "virtio-rng", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport", "overlay", "virtio_net"];
  for (const n of names) writeFileSync(join(mods, "kernel", `${n}.ko`), "");
  writeFileSync(join(mods, "modules.dep"), names.map((n) => `kernel/${n}.ko:`).join("\n") + "\n");
  const out = join(box, "initramfs.cpio.gz");
  const mk = Bun.spawnSync(["bash", join(b.dir, "scripts/mkinitramfs.sh"), "--modules", mods, "--out", out], { cwd: box, env });
  expect(mk.stderr.toString()).not.toContain("error");
  expect(mk.exitCode).toBe(0);
  const x = join(box, "x");
  mkdirSync(x);
  expect(Bun.spawnSync(["sh", "-c", `zcat '${out}' | cpio -id --quiet`], { cwd: x }).exitCode).toBe(0);
  expect(readFileSync(join(x, "init")).equals(readFileSync(join(repo, "guest/init/build/onebox-init")))).toBe(true);
}, 60_000);

test("an image made by the extracted builder, with the binary as its Bun, runs its agent (as onebox-init starts it)", async () => {
  const b = extracted!;
  expect(b).toBeDefined(); // the test above extracted it
  const tree = join(work, "tree");
  muslTree(tree); // no glibc, no bash: the agent runs on the binary and the loader onebox puts in the image
  const out = join(work, "img");
  const mk = Bun.spawnSync(["bash", join(b.dir, "scripts/mkrootfs.sh"), "--out", out, "--variant", "tree", "--tree", tree, ...b.mkrootfsArgs], {
    cwd: work,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ONEBOX_ROOTFS_CACHE: join(work, "cache") },
  });
  expect(mk.exitCode === 0 ? "" : mk.stderr.toString()).toBe("");
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as { bun: string };
  expect(manifest.bun).toBe(Bun.version);
  const agent = await startChrootAgent(join(out, "rootfs.ext4"), join(work, "root"));
  try {
    expect((await agent.init({})).status).toBe(204);
    const r = await agent.sandbox().commands.run("id -un; cat /opt/onebox/agent/agent.js | wc -c", { user: "user", cwd: "/home/user" });
    expect(r.stdout.split("\n")[0]).toBe("user");
    expect(Number(r.stdout.split("\n")[1])).toBe(statSync(join(repo, "dist/guest/agent.js")).size);
  } finally {
    await agent.stop();
  }
}, 60_000);
