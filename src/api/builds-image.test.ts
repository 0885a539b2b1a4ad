// A build over the API from an OCI image (fromImage): Debian's docker-registry on 127.0.0.1 with a musl image the test
// makes, pulled and unpacked by the `template build --from-image` path (skopeo, umoci, scripts/mkrootfs.sh), the
// template registered with the image's ENV and WORKDIR; the image's files are cached by reference, so a second build
// does not pull. No steps: the steps' build VM needs a guest kernel (tests/e2e/template-build.test.ts).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerTemplate } from "../templates/register.ts";
import { makeImage, muslTree } from "../templates/oci/test-images.ts";
import { startTestRegistry, type TestRegistry } from "../templates/oci/test-registry.ts";
import { templateDefaults } from "../store/template-defaults.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

const SOURCE = join(import.meta.dir, "..", "..");
let d: TestDaemon;
let reg: TestRegistry;
const json = (body: unknown): RequestInit => ({ method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

/** Temp dirs this file makes, removed at the end. */
const made: string[] = [];
beforeAll(async () => {
  // Snapshots off: this host cannot boot the fake kernel; the build's last step is then the registration.
  d = await startTestDaemon({ sourceDir: SOURCE, templateSnapshots: false, buildDefaultTemplates: false });
  const src = join(d.dataDir, "fake");
  mkdirSync(src, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(src, f), f);
  await registerTemplate(d.state, d.dataDir, { name: "base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 });
  reg = await startTestRegistry();
  const dir = mkdtempSync(join(tmpdir(), "obx-img-"));
  made.push(dir);
  reg.push(makeImage(join(dir, "musl"), { layers: [muslTree], env: ["FOO=from image", "PATH=/bin"], workdir: "/srv/work", cmd: ["sh"] }), "t", "musl:1");
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await d?.stop();
  for (const p of made) rmSync(p, { recursive: true, force: true });
});

async function buildImage(name: string, image = `${reg.host}/musl:1`, daemon = d, login?: { username: string; password: string }): Promise<{ status: string; logs: string[]; reason?: { message: string; step?: string } }> {
  const { templateID, buildID } = (await (await daemon.api("/v3/templates", json({ name, cpuCount: 1, memoryMB: 256 }))).json()) as { templateID: string; buildID: string };
  expect((await daemon.api(`/v2/templates/${templateID}/builds/${buildID}`, json({ fromImage: image, steps: [], ...(login ? { fromImageRegistry: { type: "registry", ...login } } : {}) }))).status).toBe(202);
  for (;;) {
    const s = (await (await daemon.api(`/templates/${templateID}/builds/${buildID}/status`)).json()) as { status: string; logs: string[]; reason?: { message: string; step?: string } };
    if (s.status === "ready" || s.status === "error") return s;
    await Bun.sleep(100);
  }
}

test("fromImage: pulled, unpacked and registered with the image's ENV and WORKDIR; the second build does not pull", async () => {
  const first = await buildImage("from-img");
  expect(first.reason).toBeUndefined();
  expect(first.status).toBe("ready");
  expect(first.logs.join("\n")).toContain("pulling and unpacking");
  const t = d.state.templates.resolve("from-img")!;
  expect(templateDefaults(t)).toMatchObject({ envVars: { FOO: "from image", PATH: "/bin" }, workdir: "/srv/work", user: "user" });
  expect(templateDefaults(t).startCmd).toBeUndefined(); // the image's CMD is not a build's start command
  const again = await buildImage("from-img");
  expect(again.status).toBe("ready");
  expect(again.logs.join("\n")).toContain("CACHED FROM");
  // The name moved to the new build; the old template (unused) is gone.
  expect(d.state.templates.list().filter((x) => x.aliases.includes("from-img")).length).toBe(1);
  expect(d.state.templates.resolve("from-img")!.id).not.toBe(t.id);
}, 120_000);

test("the build timeout stops a hung pull and names its step; builds past maxConcurrentBuilds wait; nothing is left", async () => {
  // A registry that accepts connections and never answers: skopeo waits until the build's time runs out.
  const hung = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const t = await startTestDaemon({ sourceDir: SOURCE, templateSnapshots: false, buildDefaultTemplates: false, buildTimeoutMs: 2000, maxConcurrentBuilds: 1 });
  try {
    const src = join(t.dataDir, "fake");
    mkdirSync(src, { recursive: true });
    for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(src, f), f);
    await registerTemplate(t.state, t.dataDir, { name: "base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 });
    const image = `127.0.0.1:${hung.port}/x:1`;
    const t0 = performance.now();
    const [a, b] = await Promise.all([buildImage("hung-a", image, t), Bun.sleep(300).then(() => buildImage("hung-b", image, t))]);
    const ms = performance.now() - t0;
    for (const r of [a, b]) {
      expect(r.status).toBe("error");
      expect(r.reason).toMatchObject({ step: "base", message: "the build timed out after 2 s (--build-timeout-s)" });
    }
    expect(b.logs.join("\n")).toContain("waiting for 1 other build(s) to finish (at most 1 at once)");
    expect(ms).toBeGreaterThan(4000); // one after the other, each its own 2 s
    expect(ms).toBeLessThan(30_000);
    await Bun.sleep(500); // the pull's undo (its staging dir) runs as the timeout fires
    const images = join(t.dataDir, "builds", "images");
    expect(existsSync(images) ? readdirSync(images) : []).toEqual([]);
    expect(t.state.templates.list().map((x) => x.aliases)).toEqual(['["base"]']);
  } finally {
    hung.stop(true);
    await t.stop();
  }
}, 60_000);

test("fromImageRegistry: a private registry's login reaches the pull; without it the build fails at base", async () => {
  const login = { username: "team", password: "s3cret-pw" };
  const priv = await startTestRegistry(login);
  try {
    const dir = mkdtempSync(join(tmpdir(), "obx-img-"));
    made.push(dir);
    priv.push(makeImage(join(dir, "musl"), { layers: [muslTree], env: ["PATH=/bin"], cmd: ["sh"] }), "t", "private/musl:1");
    const image = `${priv.host}/private/musl:1`;
    const denied = await buildImage("priv-img", image);
    expect(denied.status).toBe("error");
    expect(denied.reason?.step).toBe("base");
    const ok = await buildImage("priv-img", image, d, login);
    expect(ok.reason).toBeUndefined();
    expect(ok.status).toBe("ready");
    // The password is in no log line.
    expect([...denied.logs, ...ok.logs].join("\n")).not.toContain(login.password);
  } finally {
    await priv.stop();
  }
}, 120_000);
