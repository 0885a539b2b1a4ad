// The e2b SDK's Template.build() against onebox, unmodified: a template built from the glibc OCI template
// (tests/e2e/oci-template.test.ts's image, made from a local docker-registry on the outer host by
// scripts/oci-e2e-images.ts) with RUN, COPY, ENV, WORKDIR steps and a start command with a ready check, its logs
// followed through the status route; a sandbox of it sees the copied file, env, workdir and the started process,
// and restores from the ready snapshot; a second identical build is served from the step cache; a failing RUN
// reports its step, exit code and output and leaves no template. Runs only inside the test host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, Template } from "e2b";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const BOOT_MS = 300_000;
const IMAGE = join(REPO, ".cache", "oci-e2e", "glibc");

function onebox(): string[] {
  const bin = join(REPO, "dist", "onebox");
  return existsSync(bin) ? [bin] : ["bun", join(REPO, "src", "main.ts")];
}

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

const built = existsSync(join(IMAGE, "rootfs.ext4"));
if (IN_TESTHOST && !built) console.warn("template-build: skipped: no image in .cache/oci-e2e; run bun scripts/oci-e2e-images.ts on the outer host");

const root = `/tmp/obx-build-${process.pid}`;
const dataDir = join(root, "data");
const runRoot = join(root, "run");
const context = join(root, "context");
const port = 30000 + ((process.pid + 11) % 20000);
const url = `http://127.0.0.1:${port}`;
let daemon: ReturnType<typeof Bun.spawn> | null = null;
let key = "";
const opts = () => ({ apiKey: key, apiUrl: url, sandboxUrl: url, requestTimeoutMs: BOOT_MS });

/** The template of the first two builds: the same steps each time. */
function appTemplate() {
  return Template({ fileContextPath: context })
    .fromTemplate("oci-glibc")
    .runCmd("echo step-one > ~/one && id -un")
    .copy("hello.txt", "/opt/app/hello.txt")
    .setEnvs({ APP_MODE: "built" })
    .setWorkdir("/opt/app")
    .runCmd('echo "$APP_MODE" > mode.txt && pwd')
    .setStartCmd('echo "started $APP_MODE" > /tmp/started && exec sleep 86400', "test -s /tmp/started");
}

async function build(t: ReturnType<typeof appTemplate>, name: string): Promise<{ logs: string[]; ms: number }> {
  const logs: string[] = [];
  const t0 = performance.now();
  await Template.build(t, name, { ...opts(), cpuCount: 1, memoryMB: 512, onBuildLogs: (e) => logs.push(e.message) });
  return { logs, ms: performance.now() - t0 };
}

describe.skipIf(!IN_TESTHOST || !built)("Template.build() with the e2b SDK in real microVMs", () => {
  beforeAll(async () => {
    mkdirSync(context, { recursive: true });
    writeFileSync(join(context, "hello.txt"), "hello from the build context\n");
    const initrd = join(root, "initramfs.cpio.gz");
    run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
    run([...onebox(), "template", "add", "--name", "oci-glibc", "--from", IMAGE, "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "", "--initrd", initrd, "--memory-mib", "512", "--data-dir", dataDir]);
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

  test("build: steps run in a build VM with their output in the logs; a sandbox sees the file, env, workdir and the started process", async () => {
    const first = await build(appTemplate(), "built-app");
    console.log(`template-build: first build ${(first.ms / 1000).toFixed(1)} s`);
    expect(first.logs.join("\n")).toContain("step-one");
    expect(first.logs).toContain("user"); // `id -un` of the first RUN: the template's default user
    expect(first.logs).toContain("/opt/app");
    expect(await Template.exists("built-app", opts())).toBe(true);

    const s = await Sandbox.create("built-app", { ...opts(), timeoutMs: 600_000 });
    const r = await s.commands.run('cat hello.txt; echo "$APP_MODE|$GREETING"; pwd; cat mode.txt ~/one /tmp/started; stat -c %U hello.txt; for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done | grep -c "^sleep 86400"');
    expect(r.stdout).toBe("hello from the build context\nbuilt|hello from debian\n/opt/app\nbuilt\nstep-one\nstarted built\nuser\n1\n");
    const logs = run([...onebox(), "sandbox", "logs", s.sandboxId, "--data-dir", dataDir]);
    expect(logs).toContain("lifecycle restore");
    await s.kill();
  }, 4 * BOOT_MS);

  test("a second build with the same steps is served from the step cache", async () => {
    const again = await build(appTemplate(), "built-app");
    console.log(`template-build: cached build ${(again.ms / 1000).toFixed(1)} s`);
    expect(again.logs.filter((l) => l.startsWith("CACHED [")).length).toBe(5);
    expect(again.logs.join("\n")).not.toContain("Booting the build VM");
    const s = await Sandbox.create("built-app", { ...opts(), timeoutMs: 600_000 });
    expect((await s.commands.run("cat /opt/app/hello.txt /tmp/started")).stdout).toBe("hello from the build context\nstarted built\n");
    await s.kill();
  }, 4 * BOOT_MS);

  test("a failing RUN fails the build with its step, exit code and output; no template is left", async () => {
    const t = Template().fromTemplate("oci-glibc").runCmd("echo ok").runCmd("echo out-$((6 * 7)) && exit 7");
    const err = await Template.build(t, "broken-app", { ...opts(), cpuCount: 1, memoryMB: 512 }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe("BuildError");
    expect(err!.message).toContain("step 2 failed");
    expect(err!.message).toContain("exited with 7");
    expect(err!.message).toContain("out-42"); // the output's tail, not the command
    expect(await Template.exists("broken-app", opts())).toBe(false);
    // Nothing of it is left: the only templates are the base and the built one.
    const names = (await (await fetch(`${url}/templates`, { headers: { "x-api-key": key } })).json()) as { aliases: string[] }[];
    expect(names.map((n) => n.aliases.join(",")).sort()).toEqual(["built-app", "oci-glibc"]);
  }, 4 * BOOT_MS);
});
