// The build cache's bound through the API with a real daemon (--build-cache-mib 3): uploads fill it, the least
// recently used go, an upload that cannot fit is a 413 that removes nothing; a running build's files (and a
// waiting build's, while its link lasts) are never removed; a cached build's step entries are used, not pruned.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileId } from "../builds/step-cache.ts";
import { baseHash, chain } from "../builds/step-hash.ts";
import { templateFiles } from "../machine/vm-config.ts";
import { registerTemplate } from "../templates/register.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

const SOURCE = join(import.meta.dir, "..", "..");
const KIB = 1024;
let d: TestDaemon;
const made: string[] = [];
const json = (body: unknown): RequestInit => ({ method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

beforeAll(async () => {
  // A pull from a registry that never answers keeps a build running until its 3 s are out.
  d = await startTestDaemon({ sourceDir: SOURCE, templateSnapshots: false, buildDefaultTemplates: false, buildCacheBytes: 3 * 1024 * KIB, buildTimeoutMs: 3000 });
  const src = join(d.dataDir, "fake");
  mkdirSync(src, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(src, f), f);
  await registerTemplate(d.state, d.dataDir, { name: "base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 });
});
afterAll(async () => {
  await d.stop();
  for (const p of made) rmSync(p, { recursive: true, force: true });
});

/** A tar of `kib` KiB of random bytes (it does not compress) and a hash of its own. */
function tarOf(kib: number): { tar: Uint8Array; hash: string } {
  const dir = mkdtempSync(join(tmpdir(), "obx-tar-"));
  made.push(dir);
  writeFileSync(join(dir, "blob"), randomBytes(kib * KIB));
  Bun.spawnSync(["tar", "-cf", join(dir, "t.tar"), "-C", dir, "blob"]);
  const tar = new Uint8Array(readFileSync(join(dir, "t.tar")));
  return { tar, hash: new Bun.CryptoHasher("sha256").update(tar).digest("hex") };
}

const clearUploads = () => {
  const dir = join(d.dataDir, "builds", "files");
  for (const f of existsSync(dir) ? readdirSync(dir) : []) rmSync(join(dir, f));
};
const stored = (hash: string) => existsSync(join(d.dataDir, "builds", "files", `${hash}.tar`));

/** Uploads as the SDK does: GET /templates/{id}/files/{hash} for the link (id: a build's template id, whose
 *  waiting build then holds the files; any other id holds nothing), then PUT. */
async function upload(id: string, f: { tar: Uint8Array; hash: string }): Promise<Response> {
  const link = (await (await d.api(`/templates/${id}/files/${f.hash}`)).json()) as { present: boolean; url?: string };
  if (link.present) return new Response(null, { status: 200 });
  const res = await fetch(link.url!, { method: "PUT", body: f.tar });
  await Bun.sleep(15); // distinct mtimes: the LRU order
  return res;
}

async function requestBuild(name: string): Promise<{ templateID: string; buildID: string }> {
  return (await (await d.api("/v3/templates", json({ name, cpuCount: 1, memoryMB: 256 }))).json()) as never;
}

async function status(b: { templateID: string; buildID: string }): Promise<{ status: string; reason?: { message: string; step?: string } }> {
  return (await (await d.api(`/templates/${b.templateID}/builds/${b.buildID}/status`)).json()) as never;
}

test("uploads fill the cache; the least recently used go first; one that cannot fit is a 413 and removes nothing", async () => {
  const [a, b, c, e] = [tarOf(900), tarOf(900), tarOf(900), tarOf(900)];
  for (const f of [a, b, c]) expect((await upload("nobuild", f)).status).toBe(201);
  // Asking for b's link again is a use: c is now the least recently used after a.
  expect((await upload("nobuild", b)).status).toBe(200);
  expect((await upload("nobuild", e)).status).toBe(201);
  expect([a, b, c, e].map((f) => stored(f.hash))).toEqual([false, true, true, true]);
  const big = tarOf(3200);
  const res = await upload("nobuild", big);
  expect(res.status).toBe(413);
  const body = (await res.json()) as { code: number; message: string };
  expect(body.code).toBe(413);
  expect(body.message).toContain("the build cache is full");
  expect(body.message).toContain("--build-cache-mib 3");
  expect([b, c, e].map((f) => stored(f.hash))).toEqual([true, true, true]);
  // The next one that fits takes the oldest's place (c: b was used after it).
  expect((await upload("nobuild", tarOf(900))).status).toBe(201);
  expect([b, c, e].map((f) => stored(f.hash))).toEqual([true, false, true]);
});

test("a running build's files and a waiting build's are never removed; once the build ends they may go", async () => {
  clearUploads();
  const hung = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const running = await requestBuild("runs");
    const waiting = await requestBuild("waits");
    const [x, y, z] = [tarOf(900), tarOf(900), tarOf(900)];
    expect((await upload(running.templateID, x)).status).toBe(201);
    expect((await upload(waiting.templateID, y)).status).toBe(201);
    expect((await upload("nobuild", z)).status).toBe(201);
    const start = await d.api(`/v2/templates/${running.templateID}/builds/${running.buildID}`, json({ fromImage: `127.0.0.1:${hung.port}/x:1`, steps: [{ type: "COPY", args: ["blob", "/blob", "", ""], filesHash: x.hash }] }));
    expect(start.status).toBe(202);
    expect((await status(running)).status).toBe("building");
    // x (oldest, the running build's) and y (the waiting build's) stay: z goes for v.
    const v = tarOf(900);
    expect((await upload("nobuild", v)).status).toBe(201);
    expect([x, y, z, v].map((f) => stored(f.hash))).toEqual([true, true, false, true]);
    // 1.5 MiB cannot fit beside the held 1.8: a 413 that leaves v too.
    const u = tarOf(1500);
    expect((await upload("nobuild", u)).status).toBe(413);
    expect([x, y, v].map((f) => stored(f.hash))).toEqual([true, true, true]);
    // The build times out: it lets go of x, which is the oldest.
    for (let i = 0; i < 200 && (await status(running)).status === "building"; i++) await Bun.sleep(50);
    expect((await status(running)).reason?.message).toContain("timed out");
    expect((await upload("nobuild", u)).status).toBe(201);
    expect([x, y, v, u].map((f) => stored(f.hash))).toEqual([false, true, false, true]);
  } finally {
    hung.stop(true);
  }
}, 30_000);

test("a build served from the step cache uses its entries (now the newest) and registers; older entries go first", async () => {
  clearUploads();
  const base = d.state.templates.resolve("base")!;
  const files = templateFiles(base);
  const steps = [{ type: "ENV" as const, args: ["A", "1"] }, { type: "RUN" as const, args: ["echo hi"] }];
  const hashes = chain(baseHash({ templateId: base.id, createdAt: base.createdAt }), steps);
  const cache = join(d.dataDir, "builds", "cache");
  const entry = (h: string, kib: number) => {
    mkdirSync(join(cache, h), { recursive: true });
    writeFileSync(join(cache, h, "layer.ext4"), new Uint8Array(kib * KIB).fill(1));
    writeFileSync(join(cache, h, "state.json"), JSON.stringify({ rootfs: files.rootfs, rootfsId: fileId(files.rootfs), envVars: { A: "1" }, user: "user" }));
  };
  const old = "0".repeat(64);
  entry(old, 900);
  await Bun.sleep(15);
  for (const h of hashes) entry(h, 900);
  await Bun.sleep(15);
  const past = new Date(Date.now() - 3600_000);
  for (const h of hashes) utimesSync(join(cache, h), past, past); // used long ago, before `old`
  const b = await requestBuild("cached");
  expect((await d.api(`/v2/templates/${b.templateID}/builds/${b.buildID}`, json({ fromTemplate: "base", steps }))).status).toBe(202);
  for (let i = 0; i < 100 && ["waiting", "building"].includes((await status(b)).status); i++) await Bun.sleep(20);
  expect(await status(b)).toMatchObject({ status: "ready" });
  // Its entries were used just now: a new upload that needs room takes `old`, not them.
  expect((await upload("nobuild", tarOf(900))).status).toBe(201);
  expect(existsSync(join(cache, old))).toBe(false);
  for (const h of hashes) expect(existsSync(join(cache, h))).toBe(true);
  expect(d.state.templates.resolve("cached")).toBeDefined();
});
