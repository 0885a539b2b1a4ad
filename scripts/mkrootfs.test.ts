// scripts/mkrootfs.sh --variant tree (an OCI image's tree) on a host without debootstrap: it builds the image, as
// the test host (skopeo and umoci, no debootstrap) must for the daemon's fromImage builds. Root only.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { muslTree } from "../src/templates/oci/test-images.ts";

const REPO = join(import.meta.dir, "..");
const root = process.getuid?.() === 0;
const work = mkdtempSync(join(tmpdir(), "obx-mkrootfs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A PATH dir with every command of the system's PATH dirs linked in, except `without`. */
function pathWithout(without: string): string {
  const dir = join(work, "path");
  mkdirSync(dir);
  for (const d of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    if (!existsSync(d) || statSync(d).isSymbolicLink()) continue;
    for (const f of readdirSync(d)) {
      if (f === without || existsSync(join(dir, f))) continue;
      symlinkSync(join(d, f), join(dir, f));
    }
  }
  return dir;
}

test.skipIf(!root)("the tree variant builds with no debootstrap on PATH", () => {
  const tree = join(work, "tree");
  muslTree(tree);
  const path = pathWithout("debootstrap");
  expect(Bun.which("debootstrap", { PATH: path })).toBeNull();
  const out = join(work, "out");
  const r = Bun.spawnSync(["bash", join(REPO, "scripts", "mkrootfs.sh"), "--out", out, "--variant", "tree", "--tree", tree, "--bun", Bun.which("bun")!], {
    cwd: REPO,
    env: { ...process.env, PATH: path, ONEBOX_ROOTFS_CACHE: join(work, "cache") },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.stderr.toString()).not.toContain("not found");
  expect(r.exitCode).toBe(0);
  expect(existsSync(join(out, "rootfs.ext4"))).toBe(true);
}, 120_000);
