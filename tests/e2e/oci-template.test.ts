// Templates from OCI images boot and create like the built-in ones: a musl image (busybox, no glibc,
// no bash) and a glibc one (Debian), each built by `onebox template build --from-image --out` on the
// outer host from a local docker-registry (scripts/oci-e2e-images.ts; the test host has no registry),
// registered here with `template add --from` (which reads defaults.json), and driven with the e2b SDK
// through `onebox serve`: the image's files and whiteouts, ENV, WORKDIR and the default user.
// Runs only inside the test host (scripts/test-e2e.sh).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const BOOT_MS = 300_000;
const IMAGES = join(REPO, ".cache", "oci-e2e");

function onebox(): string[] {
  const bin = join(REPO, "dist", "onebox");
  return existsSync(bin) ? [bin] : ["bun", join(REPO, "src", "main.ts")];
}

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

const built = ["musl", "glibc"].every((n) => existsSync(join(IMAGES, n, "rootfs.ext4")));
if (IN_TESTHOST && !built) console.warn("oci-template: skipped: no images in .cache/oci-e2e; run bun scripts/oci-e2e-images.ts on the outer host");

const root = `/tmp/obx-oci-${process.pid}`;
const dataDir = join(root, "data");
const runRoot = join(root, "run");
const port = 30000 + ((process.pid + 7) % 20000);
const url = `http://127.0.0.1:${port}`;
let daemon: ReturnType<typeof Bun.spawn> | null = null;
let key = "";
const opts = () => ({ apiKey: key, apiUrl: url, sandboxUrl: url, requestTimeoutMs: BOOT_MS });

describe.skipIf(!IN_TESTHOST || !built)("templates from OCI images in real microVMs", () => {
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    const initrd = join(root, "initramfs.cpio.gz");
    run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
    for (const n of ["musl", "glibc"]) {
      run([...onebox(), "template", "add", "--name", `oci-${n}`, "--from", join(IMAGES, n), "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "", "--initrd", initrd, "--memory-mib", "512", "--data-dir", dataDir]);
    }
    daemon = Bun.spawn([...onebox(), "serve", "--port", String(port), "--data-dir", dataDir, "--run-root", runRoot, "--boot-timeout-ms", String(BOOT_MS), "--no-default-templates"], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
    for (let i = 0; i < 200 && !(await fetch(url + "/health").then((r) => r.ok, () => false)); i++) await Bun.sleep(100);
    key = readFileSync(join(dataDir, "admin-key"), "utf8").trim();
  }, 120_000);

  afterAll(async () => {
    try {
      for (const s of await Sandbox.list(opts()).nextItems()) await Sandbox.kill(s.sandboxId, opts());
    } catch (e) {
      console.error("cleanup through the API failed:", e);
    }
    daemon?.kill("SIGTERM");
    await Promise.race([daemon?.exited, Bun.sleep(15_000)]);
    daemon?.kill("SIGKILL");
    const vms = join(runRoot, "vms");
    for (const id of existsSync(vms) ? readdirSync(vms) : []) {
      try {
        process.kill((JSON.parse(readFileSync(join(vms, id, "vmm.json"), "utf8")) as { pid: number }).pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    rmSync(root, { recursive: true, force: true });
  });

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
    const logs = run([...onebox(), "sandbox", "logs", b.sandboxId, "--data-dir", dataDir]);
    expect(logs).toContain("lifecycle restore");
    await Promise.all([a.kill(), b.kill()]);
  }, 3 * BOOT_MS);
});
