// `bun run release` (scripts/release.sh) and install.sh's release paths: the tarball holds the binary, install.sh and
// the README with a sha256 that checks; install.sh installs it into a prefix from a local file, a URL (checked against
// its .sha256) and an unpacked release, and refuses a tarball whose sha256 does not match.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dir, "..");
const version = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string }).version;
const name = `onebox-${version}-linux-x64`;
const work = mkdtempSync(join(tmpdir(), "onebox-release-"));
const out = join(work, "out");
const tarball = join(out, `${name}.tar.gz`);
const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", TMPDIR: work };

beforeAll(() => {
  // The CI has built dist/onebox already; packaging it is what is tested here.
  const r = Bun.spawnSync(["bash", join(repo, "scripts/release.sh"), "--no-build", "--out", out], { cwd: repo, env });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  expect(r.stdout.toString()).toBe(`${tarball}\n`);
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

function install(args: string[], extra: Record<string, string> = {}, cwd = work) {
  const prefix = mkdtempSync(join(work, "prefix-"));
  const r = Bun.spawnSync(["bash", ...args], { cwd, env: { ...env, PREFIX: prefix, ONEBOX_INSTALL_ONLY: "1", ONEBOX_DATA_DIR: join(prefix, "data"), ...extra } });
  return { prefix, code: r.exitCode, err: r.stderr.toString() };
}
const installedIsDist = (prefix: string) => readFileSync(join(prefix, "bin/onebox")).equals(readFileSync(join(repo, "dist/onebox")));

test("the tarball: <name>/onebox, install.sh and README.md, root-owned, and a .sha256 that sha256sum -c accepts", () => {
  const list = Bun.spawnSync(["tar", "-tvzf", tarball]).stdout.toString().trim().split("\n");
  const entries = list.map((l) => {
    const f = l.split(/\s+/);
    return `${f[0]} ${f[1]} ${f[5]}`;
  });
  expect(entries).toEqual([`drwxr-xr-x 0/0 ${name}/`, `-rw-r--r-- 0/0 ${name}/README.md`, `-rwxr-xr-x 0/0 ${name}/install.sh`, `-rwxr-xr-x 0/0 ${name}/onebox`]);
  const x = join(work, "x");
  mkdirSync(x);
  expect(Bun.spawnSync(["tar", "-xzf", tarball, "-C", x]).exitCode).toBe(0);
  expect(readFileSync(join(x, name, "onebox")).equals(readFileSync(join(repo, "dist/onebox")))).toBe(true);
  expect(readFileSync(join(x, name, "install.sh"), "utf8")).toBe(readFileSync(join(repo, "install.sh"), "utf8"));
  const check = Bun.spawnSync(["sha256sum", "-c", `${name}.tar.gz.sha256`], { cwd: out });
  expect(check.stdout.toString()).toBe(`${name}.tar.gz: OK\n`);
});

test("install.sh TARBALL: checked against TARBALL.sha256, the binary installed into PREFIX, onebox's packages there", () => {
  const r = install([join(repo, "install.sh"), tarball]);
  expect(r.err).toContain("sha256 ok");
  expect(r.code).toBe(0);
  expect(installedIsDist(r.prefix)).toBe(true);
});

test("a tarball whose sha256 does not match is refused, and nothing is installed", () => {
  const bad = join(work, "bad");
  mkdirSync(bad);
  const t = join(bad, `${name}.tar.gz`);
  copyFileSync(tarball, t);
  writeFileSync(t, Buffer.concat([readFileSync(t), Buffer.from("tampered")]));
  copyFileSync(`${tarball}.sha256`, `${t}.sha256`);
  const r = install([join(repo, "install.sh")], { ONEBOX_RELEASE_TARBALL: t });
  expect(r.code).not.toBe(0);
  expect(r.err).toContain("does not match the release's");
  expect(existsSync(join(r.prefix, "bin/onebox"))).toBe(false);
});

test("ONEBOX_RELEASE_URL: downloaded, checked against <url>.sha256 (which must exist), installed", async () => {
  let served = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const path = new URL(req.url).pathname;
      // /r/ has the .sha256 beside the tarball, /s/ only the tarball.
      const file = path === `/r/${name}.tar.gz` || path === `/s/${name}.tar.gz` ? tarball : path === `/r/${name}.tar.gz.sha256` ? `${tarball}.sha256` : null;
      served++;
      return file ? new Response(Bun.file(file)) : new Response("not found", { status: 404 });
    },
  });
  try {
    // Bun.spawnSync would block the event loop this server answers on.
    const run = async (url: string) => {
      const prefix = mkdtempSync(join(work, "prefix-"));
      const p = Bun.spawn(["bash", join(repo, "install.sh")], { cwd: work, env: { ...env, PREFIX: prefix, ONEBOX_INSTALL_ONLY: "1", ONEBOX_RELEASE_URL: url }, stderr: "pipe" });
      const err = await new Response(p.stderr).text();
      return { prefix, code: await p.exited, err };
    };
    const ok = await run(`http://127.0.0.1:${server.port}/r/${name}.tar.gz`);
    expect(ok.err).toContain("sha256 ok");
    expect(ok.code).toBe(0);
    expect(installedIsDist(ok.prefix)).toBe(true);
    // The same bytes under a name with no .sha256 beside it: not installed.
    const none = await run(`http://127.0.0.1:${server.port}/s/${name}.tar.gz`);
    expect(none.err).toContain(".sha256 to check the download against");
    expect(none.code).not.toBe(0);
    expect(existsSync(join(none.prefix, "bin/onebox"))).toBe(false);
    expect(served).toBeGreaterThanOrEqual(3);
  } finally {
    server.stop(true);
  }
}, 60_000);

test("an unpacked release: its install.sh installs the onebox beside it (no checkout, no build)", () => {
  const x = join(work, "unpacked");
  mkdirSync(x);
  expect(Bun.spawnSync(["tar", "-xzf", tarball, "-C", x]).exitCode).toBe(0);
  const r = install([join(x, name, "install.sh")], {}, x);
  expect(r.err).not.toContain("building dist/onebox");
  expect(r.code).toBe(0);
  expect(installedIsDist(r.prefix)).toBe(true);
});
