// Template build benchmark inside the test host: the e2b SDK's Template.build() of the glibc OCI template
// (scripts/oci-e2e-images.ts: a local docker-registry on the outer host; the test host has no registry, skopeo or
// umoci, so the build starts fromTemplate) with 3 steps (RUN, COPY, RUN), cold and then all from the step cache;
// then the first create of the built template (its ready snapshot was taken by the build) vs a create of `base`
// (the minimal image, its snapshot made beforehand): both restores.
//
// usage: bun run bench:template   (re-runs itself inside scripts/testhost unless ONEBOX_TESTHOST=1)
// Last line on stdout: JSON with build_cold_ms, build_cached_ms, first_create_ms, base_create_ms (emulated: TCG).
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildImageOutside, killLeftoverVms, note, oneboxCmd, rerunInTesthost, REPO, sh, startDaemon, testInitramfs, type Daemon } from "./bench-lib.ts";

const GLIBC = join(REPO, ".cache", "oci-e2e", "glibc");
const MINIMAL = join(REPO, ".cache", "api-e2e-template");

if (process.env.ONEBOX_TESTHOST !== "1") {
  sh("bun scripts/oci-e2e-images.ts >&2");
  await buildImageOutside(MINIMAL, "minimal");
  await rerunInTesthost("bun scripts/bench-template.ts", ["--timeout", "2400"]);
}

const { Sandbox, Template } = await import("e2b");
const BOOT_MS = 600_000;
const root = `/tmp/obx-bench-template-${process.pid}`;
const dataDir = join(root, "data");
const runRoot = join(root, "run");
const context = join(root, "context");
const r0 = (x: number): number => Math.round(x);

let daemon: Daemon | null = null;
let failed = false;
try {
  mkdirSync(context, { recursive: true });
  writeFileSync(join(context, "app.txt"), "the app\n");
  const initrd = testInitramfs(root);
  for (const [name, dir] of [["oci-glibc", GLIBC], ["base", MINIMAL]] as const) {
    if (!existsSync(join(dir, "rootfs.ext4"))) throw new Error(`${dir} has no image: run this on the outer host`);
    sh(`${oneboxCmd().join(" ")} template add --name ${name} --from ${dir} --kernel ${process.env.ONEBOX_TEST_KERNEL} --initrd ${initrd} --memory-mib 512 --data-dir ${dataDir}`);
  }
  daemon = await startDaemon({ dataDir, runRoot, extra: ["--boot-timeout-ms", String(BOOT_MS)] });
  const opts = { apiKey: daemon.key, apiUrl: daemon.url, sandboxUrl: daemon.url, requestTimeoutMs: BOOT_MS };
  const template = () =>
    Template({ fileContextPath: context })
      .fromTemplate("oci-glibc")
      .runCmd("echo built > ~/built.txt")
      .copy("app.txt", "/home/user/app.txt")
      .runCmd("cat ~/app.txt ~/built.txt > ~/both.txt");
  const build = async (): Promise<number> => {
    const t0 = performance.now();
    await Template.build(template(), "bench-app", { ...opts, cpuCount: 1, memoryMB: 512 });
    return performance.now() - t0;
  };
  const cold = await build();
  note(`build cold: ${r0(cold)} ms`);
  const cached = await build();
  note(`build cached: ${r0(cached)} ms`);

  let t0 = performance.now();
  const s = await Sandbox.create("bench-app", { ...opts, timeoutMs: 600_000 });
  const firstCreate = performance.now() - t0;
  const both = (await s.commands.run("cat ~/both.txt")).stdout;
  if (both !== "the app\nbuilt\n") throw new Error(`the built template has ${JSON.stringify(both)} in ~/both.txt`);
  await s.kill();
  note(`first create of the built template: ${r0(firstCreate)} ms`);

  // base: its snapshot first (the daemon's start warms it; a create waits for it otherwise), then a timed create.
  const warm = await Sandbox.create("base", { ...opts, timeoutMs: 600_000 });
  await warm.kill();
  t0 = performance.now();
  const b = await Sandbox.create("base", { ...opts, timeoutMs: 600_000 });
  const baseCreate = performance.now() - t0;
  await b.kill();
  note(`create of base (restore): ${r0(baseCreate)} ms`);

  console.log(JSON.stringify({ emulated: true, build_cold_ms: r0(cold), build_cached_ms: r0(cached), first_create_ms: r0(firstCreate), base_create_ms: r0(baseCreate), steps: 3 }));
} catch (e) {
  failed = true;
  console.error("bench:template failed:", e);
} finally {
  if (daemon) await daemon.stop().catch(() => undefined);
  killLeftoverVms(runRoot);
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
