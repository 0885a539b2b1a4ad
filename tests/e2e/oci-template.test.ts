// Templates from OCI images boot and create like the built-in ones: a musl image (busybox, no glibc,
// no bash) and a glibc one (Debian), each built by `onebox template build --from-image --out` on the
// outer host from a local docker-registry (scripts/oci-e2e-images.ts; the test host has no registry),
// registered here with `template add --from` (which reads defaults.json), and driven with the e2b SDK
// through `onebox serve`: the image's files and whiteouts, ENV, WORKDIR and the default user.
// Runs only inside the test host (scripts/test-e2e.sh).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { REPO } from "./lib/harness.ts";
import { BOOT_MS, onebox, run, ServeDaemon } from "./lib/serve-daemon.ts";

const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const IMAGES = join(REPO, ".cache", "oci-e2e");

const built = ["musl", "glibc"].every((n) => existsSync(join(IMAGES, n, "rootfs.ext4")));
if (IN_TESTHOST && !built) console.warn("oci-template: skipped: no images in .cache/oci-e2e; run bun scripts/oci-e2e-images.ts on the outer host");

const d = new ServeDaemon(`/tmp/obx-oci-${process.pid}`, 7);
const opts = () => d.opts();

describe.skipIf(!IN_TESTHOST || !built)("templates from OCI images in real microVMs", () => {
  beforeAll(async () => {
    for (const n of ["musl", "glibc"]) d.addTemplate(`oci-${n}`, join(IMAGES, n));
    await d.start();
  }, 120_000);

  afterAll(() => d.cleanup());

  test("the musl image (busybox, no glibc, no bash): the agent runs on onebox's own libc; files, whiteouts, ENV, WORKDIR, user", async () => {
    const s = await Sandbox.create("oci-musl", { ...opts(), envs: { FROM_CREATE: "yes" }, timeoutMs: 600_000 });
    const r = await s.commands.run('echo "$FOO|$FROM_CREATE"; pwd; id -un; cat /etc/added; test -e /etc/deleted || echo deleted; test -e /lib64/ld-linux-x86-64.so.2 || echo no-glibc');
    expect(r.stdout).toBe("from the musl image|yes\n/srv/work\nuser\nadded\ndeleted\nno-glibc\n");
    await s.kill();
  }, 2 * BOOT_MS);

  test("the glibc image (Debian): ENV under the create's envs, WORKDIR, user `user`; a second create restores its snapshot", async () => {
    const a = await Sandbox.create("oci-glibc", { ...opts(), timeoutMs: 600_000 });
    expect((await a.commands.run('echo "$GREETING"; pwd; whoami; cat /etc/debian_version')).stdout).toMatch(/^hello from debian\n\/workspace\nuser\n12\.\d+\n$/);
    const b = await Sandbox.create("oci-glibc", { ...opts(), envs: { GREETING: "from create" }, timeoutMs: 600_000 });
    expect((await b.commands.run('echo "$GREETING"')).stdout).toBe("from create\n");
    const logs = run([...onebox(), "sandbox", "logs", b.sandboxId, "--data-dir", d.dataDir]);
    expect(logs).toContain("lifecycle restore");
    await Promise.all([a.kill(), b.kill()]);
  }, 3 * BOOT_MS);
});
