// The e2b SDK's Template.build() against onebox, unmodified, from an image in a real registry inside the test host:
// Debian's docker-registry, started here with basic auth, gets the glibc OCI image (made on the outer host by
// scripts/oci-e2e-images.ts, its layout copied in with the repo) pushed by skopeo, and the daemon's own pull path
// (skopeo, umoci, mkrootfs.sh's tree variant) runs here. fromImage() with the registry's login, RUN, COPY, ENV, WORKDIR
// steps and a start command with a ready check, its logs followed through the status route; a sandbox of it sees the
// copied file, env, workdir and the started process, and restores from the ready snapshot; a second identical build
// is served from the step cache; a failing RUN reports its step, exit code and output and leaves no template; and
// `onebox template build --dockerfile` builds FROM the same image (its pull cached) with RUN, COPY, ENV, WORKDIR.
// Runs only inside the test host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, Template } from "e2b";
import { startTestRegistry, type TestRegistry } from "../../src/templates/oci/test-registry.ts";
import { REPO } from "./lib/harness.ts";
import { BOOT_MS, onebox, run, ServeDaemon } from "./lib/serve-daemon.ts";

const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const IMAGE = join(REPO, ".cache", "oci-e2e", "glibc");
/** The same image as an OCI layout (tag `t`), for the registry in here. */
const LAYOUT = join(REPO, ".cache", "oci-e2e", "glibc-layout");
/** The registry's login: the builds pass it as fromImage()'s credentials (the API's fromImageRegistry). */
const LOGIN = { username: "builder", password: "e2e-registry-pw" };

const built = existsSync(join(IMAGE, "rootfs.ext4")) && existsSync(join(LAYOUT, "index.json"));
if (IN_TESTHOST && !built) console.warn("template-build: skipped: no image in .cache/oci-e2e; run bun scripts/oci-e2e-images.ts on the outer host");

const d = new ServeDaemon(`/tmp/obx-build-${process.pid}`, 11);
const context = join(d.root, "context");
const opts = () => d.opts();
let reg: TestRegistry | null = null;
/** The glibc image in the registry in here. */
const imageRef = () => `${reg!.host}/e2e/glibc:1`;

/** The template of the first two builds: the same steps each time. */
function appTemplate() {
  return Template({ fileContextPath: context })
    .fromImage(imageRef(), LOGIN)
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
    reg = await startTestRegistry(LOGIN);
    reg.push(LAYOUT, "t", "e2e/glibc:1");
    // The OCI builds boot their build VM with a registered template's kernel and initramfs: this one's.
    d.addTemplate("oci-glibc", IMAGE);
    await d.start();
  }, 120_000);

  afterAll(async () => {
    await d.cleanup();
    await reg?.stop();
  });

  test("fromImage without the registry's login fails at its base step; nothing is left", async () => {
    const err = await Template.build(Template().fromImage(imageRef()).runCmd("true"), "no-login", { ...opts(), cpuCount: 1, memoryMB: 512 }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    console.log(`template-build: without the login: ${err?.message.split("\n")[0]}`);
    expect(err?.name).toBe("BuildError");
    expect(err!.message).toMatch(/unauthorized|authentication required/i);
    expect(await Template.exists("no-login", opts())).toBe(false);
  }, BOOT_MS);

  test("build: steps run in a build VM with their output in the logs; a sandbox sees the file, env, workdir and the started process", async () => {
    const first = await build(appTemplate(), "built-app");
    console.log(`template-build: first build ${(first.ms / 1000).toFixed(1)} s`);
    expect(first.logs.join("\n")).toContain(`FROM ${imageRef()}: pulling and unpacking`);
    expect(first.logs.join("\n")).toContain("step-one");
    expect(first.logs).toContain("user"); // `id -un` of the first RUN: the template's default user
    expect(first.logs).toContain("/opt/app");
    expect(await Template.exists("built-app", opts())).toBe(true);

    const s = await Sandbox.create("built-app", { ...opts(), timeoutMs: 600_000 });
    const r = await s.commands.run('cat hello.txt; echo "$APP_MODE|$GREETING"; pwd; cat mode.txt ~/one /tmp/started; stat -c %U hello.txt; for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done | grep -c "^sleep 86400"');
    expect(r.stdout).toBe("hello from the build context\nbuilt|hello from debian\n/opt/app\nbuilt\nstep-one\nstarted built\nuser\n1\n");
    const logs = run([...onebox(), "sandbox", "logs", s.sandboxId, "--data-dir", d.dataDir]);
    expect(logs).toContain("lifecycle restore");
    await s.kill();
  }, 4 * BOOT_MS);

  test("a second build with the same steps is served from the step cache", async () => {
    const again = await build(appTemplate(), "built-app");
    console.log(`template-build: cached build ${(again.ms / 1000).toFixed(1)} s`);
    expect(again.logs.filter((l) => l.startsWith("CACHED [")).length).toBe(5);
    expect(again.logs.join("\n")).not.toContain("Booting the build VM");
    expect(again.logs).toContain(`CACHED FROM ${imageRef()}`);
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
    const names = (await (await fetch(`${d.url}/templates`, { headers: { "x-api-key": d.key } })).json()) as { aliases: string[] }[];
    expect(names.map((n) => n.aliases.join(",")).sort()).toEqual(["built-app", "oci-glibc"]);
  }, 4 * BOOT_MS);

  test("the CLI builds FROM the registry's image from a Dockerfile (RUN, COPY, ENV, WORKDIR); a sandbox of it sees the results", async () => {
    const dir = join(d.root, "dockerfile");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "note.txt"), "note from the Dockerfile's context\n");
    // FROM carries no login (a Dockerfile has no place for one): the image pulled by the builds above is served from the pull cache.
    writeFileSync(join(dir, "Dockerfile"), [
      `FROM ${imageRef()}`,
      "ENV CLI_MODE=dockerfile",
      "WORKDIR /srv/cli",
      "COPY note.txt ./note.txt",
      'RUN echo "ran as $(id -un) in $(pwd) with $CLI_MODE" > ran.txt',
      "",
    ].join("\n"));
    const t0 = performance.now();
    const p = Bun.spawn([...onebox(), "template", "build", "--dockerfile", join(dir, "Dockerfile"), "--name", "cli-app", "--url", d.url, "--api-key", d.key, "--memory-mib", "512"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
    console.log(`template-build: CLI Dockerfile build ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (code !== 0) console.error(out, err);
    expect(code).toBe(0);
    expect(out).toContain(`CACHED FROM ${imageRef()}`);
    expect(out).toMatch(/built template cli-app \(/);

    const s = await Sandbox.create("cli-app", { ...opts(), timeoutMs: 600_000 });
    const r = await s.commands.run('cat /srv/cli/note.txt /srv/cli/ran.txt; echo "$CLI_MODE|$GREETING"; pwd; id -un');
    // The SDK's Dockerfile parse ends with USER user and WORKDIR /home/user unless the file said otherwise (WORKDIR here).
    expect(r.stdout).toBe("note from the Dockerfile's context\nran as root in /srv/cli with dockerfile\ndockerfile|hello from debian\n/srv/cli\nuser\n");
    await s.kill();
  }, 4 * BOOT_MS);
});
