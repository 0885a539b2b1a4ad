// Builds the OCI templates of tests/e2e/oci-template.test.ts on the outer host (the test host has no
// network, so no debootstrap): a local docker-registry gets two images made here, a musl one
// (busybox-static + musl's loader, two layers with whiteouts) and a glibc one (the cached debootstrap
// minimal tree of scripts/mkrootfs.sh), and `onebox template build --from-image --out` builds each
// into .cache/oci-e2e/<name>/ (rootfs.ext4, layer.ext4, defaults.json). The glibc image's OCI layout
// is also kept, as .cache/oci-e2e/glibc-layout (tag `t`): tests/e2e/template-build.test.ts pushes it
// to a registry of its own inside the test host, from which the daemon there pulls it.
// usage: bun scripts/oci-e2e-images.ts   (root; run by scripts/test-e2e.sh when that file is listed)
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeImage, muslTree } from "../src/templates/oci/test-images.ts";
import { startTestRegistry } from "../src/templates/oci/test-registry.ts";

const REPO = join(import.meta.dir, "..");
const OUT = join(REPO, ".cache", "oci-e2e");
const CACHE = process.env.ONEBOX_ROOTFS_CACHE ?? "/var/cache/onebox/rootfs";

function sh(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode})`);
}

/** The newest complete debootstrap tree of mkrootfs.sh's minimal variant (it builds one if there is none). */
function minimalTree(): string {
  const find = () =>
    readdirSync(CACHE)
      .filter((d) => d.startsWith("debootstrap-minimal-") && existsSync(join(CACHE, d, ".done")))
      .map((d) => join(CACHE, d))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (existsSync(CACHE) && find()) return find()!;
  const tmp = mkdtempSync(join(tmpdir(), "onebox-minimal-"));
  sh(["bash", "scripts/mkrootfs.sh", "--out", tmp, "--variant", "minimal"]);
  rmSync(tmp, { recursive: true, force: true });
  return find()!;
}

const work = mkdtempSync(join(tmpdir(), "onebox-oci-e2e-"));
const reg = await startTestRegistry();
try {
  const musl = makeImage(join(work, "musl"), {
    layers: [
      (r) => {
        muslTree(r);
        writeFileSync(join(r, "etc/deleted"), "gone\n");
      },
      (r) => {
        unlinkSync(join(r, "etc/deleted"));
        writeFileSync(join(r, "etc/added"), "added\n");
      },
    ],
    env: ["FOO=from the musl image", "PATH=/bin"],
    workdir: "/srv/work",
    cmd: ["sh"],
  });
  reg.push(musl, "t", "e2e/musl:1");
  const tree = minimalTree();
  const glibc = makeImage(join(work, "glibc"), {
    layers: [(r) => sh(["cp", "-a", `${tree}/.`, r]), (r) => rmSync(join(r, ".done"), { force: true })],
    env: ["GREETING=hello from debian", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    workdir: "/workspace",
    cmd: ["bash"],
  });
  reg.push(glibc, "t", "e2e/glibc:1");
  mkdirSync(OUT, { recursive: true });
  rmSync(join(OUT, "glibc-layout"), { recursive: true, force: true });
  sh(["cp", "-a", glibc, join(OUT, "glibc-layout")]);
  for (const name of ["musl", "glibc"]) {
    rmSync(join(OUT, name), { recursive: true, force: true });
    sh(["bun", "src/main.ts", "template", "build", "--from-image", `${reg.host}/e2e/${name}:1`, "--name", `e2e-${name}`, "--insecure-registry", "--out", join(OUT, name), "--data-dir", join(work, "data")]);
  }
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
