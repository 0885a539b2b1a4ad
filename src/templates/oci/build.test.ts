// OCI builds with real parts: Debian's docker-registry on 127.0.0.1, images the test makes with umoci,
// skopeo, umoci and scripts/mkrootfs.sh; the built rootfs.ext4 is read back with debugfs, and the
// agent it carries is run from it (chroot) and driven with the e2b SDK.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openState, type State } from "../../store/index.ts";
import { initDefaults } from "../../store/template-defaults.ts";
import { BuildError } from "../build-steps.ts";
import type { ProgressReporter } from "../progress.ts";
import { registerTemplate } from "../register.ts";
import { buildOciFiles, buildOciTemplate, ociBuildDir, type OciBuildInput } from "./build.ts";
import { DEFAULT_OCI_LIMITS } from "./limits.ts";
import { glibcTree, makeImage, muslTree } from "./test-images.ts";
import { startTestRegistry, type TestRegistry } from "./test-registry.ts";
import { startChrootAgent } from "./test-chroot-agent.ts";

const SOURCE = join(import.meta.dir, "..", "..", "..");
const quiet: ProgressReporter = { begin() {}, detail() {}, end() {}, finish() {} };
let base: string;
let dataDir: string;
let state: State;
let reg: TestRegistry;

/** A data dir with a guest kernel where the kernel step looks (only its boot header is read here). */
function makeDataDir(dir: string): void {
  const k = join(dir, "kernels", "debian-cloud");
  mkdirSync(k, { recursive: true });
  const hdr = Buffer.alloc(0x400);
  hdr.write("HdrS", 0x202, "latin1");
  writeFileSync(join(k, "vmlinuz"), hdr);
  writeFileSync(join(k, "initramfs.cpio.gz"), "");
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "onebox-oci-test-"));
  dataDir = join(base, "data");
  makeDataDir(dataDir);
  state = openState(dataDir);
  reg = await startTestRegistry();
  // musl: layer 1 has /etc/deleted and /data/{a,b}; layer 2 removes both (a whiteout, and a dir
  // replaced by one with other contents) and adds /etc/added.
  const musl = makeImage(join(base, "musl"), {
    layers: [
      (r) => {
        muslTree(r);
        writeFileSync(join(r, "etc/deleted"), "gone\n");
        mkdirSync(join(r, "data"));
        writeFileSync(join(r, "data/a"), "a");
        writeFileSync(join(r, "data/b"), "b");
      },
      (r) => {
        unlinkSync(join(r, "etc/deleted"));
        rmSync(join(r, "data"), { recursive: true });
        mkdirSync(join(r, "data"));
        writeFileSync(join(r, "data/c"), "c");
        writeFileSync(join(r, "etc/added"), "added\n");
      },
    ],
    env: ["FOO=from image", "PATH=/opt/tool/bin:/bin"],
    workdir: "/srv/work",
    entrypoint: ["/bin/sh", "-c"],
    cmd: ["echo it's up"],
  });
  reg.push(musl, "t", "musl:1");
  const glibc = makeImage(join(base, "glibc"), { layers: [glibcTree], env: ["LANG=C.UTF-8"], user: "app" });
  reg.push(glibc, "t", "glibc:1");
});

afterAll(async () => {
  await reg?.stop();
  state?.close();
  rmSync(base, { recursive: true, force: true });
});

function input(name: string, image: string, patch: Partial<OciBuildInput> = {}): OciBuildInput {
  return { name, image, access: { insecure: true }, limits: DEFAULT_OCI_LIMITS, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048, ...patch };
}

/** A file of an ext4 image, read with debugfs (no mount). */
function ext4Cat(img: string, path: string): string | null {
  const r = Bun.spawnSync(["debugfs", "-R", `cat ${path}`, img], { stderr: "pipe" });
  const err = r.stderr.toString();
  return /File not found|not found by ext2_lookup/.test(err) ? null : r.stdout.toString();
}
function ext4Stat(img: string, path: string): string {
  return Bun.spawnSync(["debugfs", "-R", `stat ${path}`, img], { stderr: "pipe" }).stdout.toString();
}

/** Nothing of a failed build is left: no template row, no template dir, no build dir. */
function expectNothingLeft(name: string): void {
  expect(state.templates.resolve(name)).toBeUndefined();
  expect(existsSync(ociBuildDir(dataDir, name))).toBe(false);
  const dirs = readdirSync(join(dataDir, "templates")).filter((d) => d !== "logs" && !state.templates.byId(d));
  expect(dirs).toEqual([]);
}

describe("template build from an OCI image", () => {
  test("a musl image: layers and whiteouts applied, onebox's files added, the config becomes the defaults, and its agent runs commands", async () => {
    const row = await buildOciTemplate(state, dataDir, SOURCE, input("musl", `${reg.host}/musl:1`), { reporter: quiet });
    expect(JSON.parse(row.defaults)).toEqual({
      envVars: { FOO: "from image", PATH: "/opt/tool/bin:/bin" },
      workdir: "/srv/work",
      startCmd: "/bin/sh -c 'echo it'\"'\"'s up'",
    });
    expect(existsSync(ociBuildDir(dataDir, "musl"))).toBe(false);
    const img = join(row.dir, "rootfs.ext4");
    expect(ext4Cat(img, "/etc/added")).toBe("added\n");
    expect(ext4Cat(img, "/etc/deleted")).toBeNull();
    expect(ext4Cat(img, "/data/a")).toBeNull();
    expect(ext4Cat(img, "/data/c")).toBe("c");
    expect(ext4Cat(img, "/etc/passwd")).toContain("user:!:1000:1000::/home/user:/bin/bash");
    expect(ext4Stat(img, "/home/user")).toContain("User:  1000");
    expect(ext4Stat(img, "/srv/work")).toContain("Mode:  0755");
    expect(ext4Cat(img, "/bin/bash")).toContain('exec /bin/sh "$@"');
    expect(ext4Cat(img, "/etc/onebox/agent.conf")).toContain("exec=/opt/onebox/lib/ld-linux-x86-64.so.2 --library-path /opt/onebox/lib /opt/onebox/bin/bun /opt/onebox/agent/agent.js");
    expect(ext4Cat(img, "/lib64/ld-linux-x86-64.so.2")).toBeNull(); // still no glibc of the image's own
    // The agent the image carries, run from the image as onebox-init would, with the /init a create sends.
    const agent = await startChrootAgent(img, join(base, "musl-root"));
    try {
      const init = initDefaults(row, { FROM_CREATE: "yes" });
      expect((await agent.init({ ...init })).status).toBe(204);
      const r = await agent.sandbox().commands.run('echo "$FOO|$FROM_CREATE|$PATH"; pwd; id -un; cat /etc/added');
      expect(r.stdout).toBe("from image|yes|/opt/tool/bin:/bin\n/srv/work\nuser\nadded\n");
    } finally {
      await agent.stop();
    }
  }, 60_000);

  test("a glibc image (usrmerged, USER app with uid 1000): user `user` gets another uid, USER becomes the default user", async () => {
    const row = await buildOciTemplate(state, dataDir, SOURCE, input("glibc", `${reg.host}/glibc:1`), { reporter: quiet });
    expect(JSON.parse(row.defaults)).toEqual({ envVars: { LANG: "C.UTF-8" }, user: "app" });
    const img = join(row.dir, "rootfs.ext4");
    const passwd = ext4Cat(img, "/etc/passwd")!;
    expect(passwd).toContain("app:x:1000:1000:app:/srv/app:/bin/bash");
    expect(passwd).toMatch(/^user:!:(?!1000:)\d+:\d+::\/home\/user:\/bin\/bash$/m);
    expect(ext4Stat(img, "/bin")).toContain('Fast link dest: "usr/bin"'); // the image's layout is kept
    expect(initDefaults(row, {})).toEqual({ envVars: { LANG: "C.UTF-8" }, defaultUser: "app" });
    const agent = await startChrootAgent(img, join(base, "glibc-root"));
    try {
      await agent.init(initDefaults(row, {}));
      const r = await agent.sandbox().commands.run('echo "$LANG $USER"; pwd');
      expect(r.stdout).toBe("C.UTF-8 app\n/srv/app\n");
    } finally {
      await agent.stop();
    }
  }, 60_000);

  test("--out: the files and defaults.json go to a directory, and registering it from there keeps the defaults", async () => {
    const out = join(base, "out-musl");
    await buildOciFiles(state, dataDir, SOURCE, { ...input("musl-files", `${reg.host}/musl:1`), outDir: out }, { reporter: quiet });
    expect(readdirSync(out).sort()).toEqual(["defaults.json", "layer.ext4", "rootfs.ext4"]);
    expect(state.templates.resolve("musl-files")).toBeUndefined();
    expect(existsSync(ociBuildDir(dataDir, "musl-files"))).toBe(false);
    const kernel = join(dataDir, "kernels", "debian-cloud", "vmlinuz");
    const row = await registerTemplate(state, dataDir, { name: "musl-files", from: out, kernel, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 });
    expect(initDefaults(row, {})).toEqual({ envVars: { FOO: "from image", PATH: "/opt/tool/bin:/bin" }, defaultUser: "user", defaultWorkdir: "/srv/work" });
    writeFileSync(join(out, "defaults.json"), '{"user": 7}');
    await expect(registerTemplate(state, dataDir, { name: "musl-bad", from: out, kernel, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 })).rejects.toThrow(`${out}/defaults.json is not valid (user:`);
    expect(state.templates.resolve("musl-bad")).toBeUndefined();
  }, 60_000);

  test("a private registry: credentials reach skopeo through an auth file that goes with the build; a wrong password fails the pull", async () => {
    const priv = await startTestRegistry({ username: "alice", password: "s3cret-pw" });
    try {
      priv.push(join(base, "musl", "layout"), "t", "team/musl:1");
      const image = `${priv.host}/team/musl:1`;
      let err: unknown;
      try {
        await buildOciTemplate(state, dataDir, SOURCE, input("priv-bad", image, { access: { insecure: true, username: "alice", password: "wrong" } }), { reporter: quiet });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BuildError);
      expect((err as BuildError).step).toBe("pull");
      expect((err as BuildError).reason).toMatch(/skopeo inspect exited with status 1: .*(unauthorized|authentication required)/i);
      expectNothingLeft("priv-bad");
      const logFile = join(base, "priv.log");
      const row = await buildOciTemplate(state, dataDir, SOURCE, input("priv", image, { access: { insecure: true, username: "alice", password: "s3cret-pw" } }), { reporter: quiet, logFile });
      expect(JSON.parse(row.defaults).envVars.FOO).toBe("from image");
      expect(existsSync(ociBuildDir(dataDir, "priv"))).toBe(false);
      expect(await Bun.file(logFile).text()).not.toContain("s3cret-pw");
    } finally {
      await priv.stop();
    }
  }, 60_000);

  test("bad input fails with a clear error and leaves nothing behind", async () => {
    const fail = async (i: OciBuildInput) => {
      try {
        await buildOciTemplate(state, dataDir, SOURCE, i, { reporter: quiet });
      } catch (e) {
        expectNothingLeft(i.name);
        return e as Error;
      }
      throw new Error(`building ${i.image} did not fail`);
    };
    expect((await fail(input("bad-ref", "Not An Image!"))).message).toContain("'Not An Image!' is not an image reference");
    const missing = (await fail(input("missing", `${reg.host}/nope:1`))) as BuildError;
    expect(missing).toBeInstanceOf(BuildError);
    expect(missing.step).toBe("pull");
    expect(missing.reason).toMatch(/skopeo inspect exited with status 1: .*(manifest unknown|name unknown)/);
    const big = (await fail(input("big", `${reg.host}/musl:1`, { limits: { ...DEFAULT_OCI_LIMITS, maxImageBytes: 100 * 1024 } }))) as BuildError;
    expect(big.step).toBe("pull");
    expect(big.reason).toMatch(/^127\.0\.0\.1:\d+\/musl:1 is \d+ (KiB|MiB) compressed; the cap is 100 KiB \(--max-image-mib\)$/);
    const layers = (await fail(input("layers", `${reg.host}/musl:1`, { limits: { ...DEFAULT_OCI_LIMITS, maxLayers: 1 } }))) as BuildError;
    expect(layers.reason).toContain("has 2 layers; the cap is 1 (--max-layers)");
    const tree = (await fail(input("tree", `${reg.host}/musl:1`, { limits: { ...DEFAULT_OCI_LIMITS, maxRootfsBytes: 1024 * 1024 } }))) as BuildError;
    expect(tree.step).toBe("unpack");
    expect(tree.reason).toContain("unpacks to 3 MiB; the cap is 1 MiB (--max-rootfs-mib)");
    const slow = (await fail(input("slow", `${reg.host}/musl:1`, { limits: { ...DEFAULT_OCI_LIMITS, timeoutMs: 5 } }))) as BuildError;
    expect(slow.reason).toBe("timed out after 5 ms (--timeout-s)");
    const creds = (await fail(input("creds", `${reg.host}/musl:1`, { access: { insecure: true, username: "u" } }))) as BuildError;
    expect(creds.reason).toBe("--registry-user and --registry-password go together");
    // A name that is taken fails before anything is pulled, and the existing template is untouched.
    const before = state.templates.resolve("musl");
    await expect(buildOciTemplate(state, dataDir, SOURCE, input("musl", `${reg.host}/musl:1`), { reporter: quiet })).rejects.toThrow("a template named 'musl' exists");
    expect(state.templates.resolve("musl")).toEqual(before!);
  }, 60_000);
});
