// Tests the E2B build API's routes with a real daemon: build requests, COPY uploads (signature, size cap, tar
// checks, stored by hash), build bodies checked at the edge, and a failing build's status, reason and logs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
const HASH = "a".repeat(64);
const json = (body: unknown): RequestInit => ({ method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

beforeAll(async () => {
  d = await startTestDaemon({ maxBuildUploadBytes: 64 * 1024 });
});
/** Temp dirs and files this file makes, removed at the end. */
const made: string[] = [];
afterAll(async () => {
  await d.stop();
  for (const p of made) rmSync(p, { recursive: true, force: true });
});

/** A tar made by the host's tar of files named as given (relative to a temp dir), gzipped or not. */
function tarOf(files: Record<string, string>, gzip = true, extra: string[] = []): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "obx-tar-"));
  made.push(dir, `${dir}.tar`);
  for (const [n, c] of Object.entries(files)) {
    mkdirSync(join(dir, n, ".."), { recursive: true });
    writeFileSync(join(dir, n), c);
  }
  const out = join(dir, "..", `${dir.split("/").pop()}.tar`);
  const r = Bun.spawnSync(["tar", gzip ? "-czf" : "-cf", out, "-C", dir, ...extra, ...Object.keys(files)], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return new Uint8Array(require("node:fs").readFileSync(out));
}

async function request(name = "app"): Promise<{ templateID: string; buildID: string; tags: string[]; names: string[] }> {
  const res = await d.api("/v3/templates", json({ name, cpuCount: 1, memoryMB: 512 }));
  expect(res.status).toBe(202);
  return (await res.json()) as never;
}

test("POST /v3/templates answers the ids, name and tags; a bad name is a 400", async () => {
  const r = await request("web:v1");
  expect(r.templateID).toMatch(/^[a-z0-9]+$/);
  expect(r.buildID).toMatch(/^[0-9a-f-]{36}$/);
  expect(r.names).toEqual(["web"]);
  expect(r.tags).toEqual(["v1"]);
  for (const name of ["Bad Name", "a:b:c", ""]) expect((await d.api("/v3/templates", json({ name }))).status).toBe(400);
  expect((await d.api("/v3/templates", json({}))).status).toBe(400);
  // A second build of a name while one waits: 409, not two builds racing for the name.
  expect((await d.api("/v3/templates", json({ name: "web" }))).status).toBe(409);
});

test("upload: the link is signed and capped, the body must be a tar inside the copy, then it is present", async () => {
  const { templateID } = await request("up");
  const ask = async (h: string) => (await (await d.api(`/templates/${templateID}/files/${h}`)).json()) as { present: boolean; url?: string };
  const first = await ask(HASH);
  expect(first.present).toBe(false);
  const url = new URL(first.url!);
  expect(url.origin).toBe(d.url);
  const put = (u: string, body: Uint8Array | string) => fetch(u, { method: "PUT", body });
  // No API key is needed (the SDK sends none there), but the signature is.
  expect((await put(`${d.url}${url.pathname}`, tarOf({ "a.txt": "x" }))).status).toBe(401);
  expect((await put(url.href.replace(/signature=[0-9a-f]/, "signature=z"), tarOf({ "a.txt": "x" }))).status).toBe(401);
  // Another hash's link does not take this one.
  expect((await put(url.href.replace(HASH, "b".repeat(64)), tarOf({ "a.txt": "x" }))).status).toBe(401);
  expect((await (await d.api(`/templates/${templateID}/files/NOTAHASH`)).json()) as unknown).toMatchObject({ code: 400 });
  expect((await put(url.href, "not a tar at all")).status).toBe(400);
  expect((await put(url.href, new Uint8Array(65 * 1024))).status).toBe(413);
  expect((await put(url.href, tarOf({ "evil": "x" }, false, ["-P", "--transform", "s,^,../,"]))).status).toBe(400);
  expect((await ask(HASH)).present).toBe(false);
  expect((await put(url.href, tarOf({ "dir/a.txt": "hello" }))).status).toBe(201);
  expect(await ask(HASH)).toEqual({ present: true });
  expect(existsSync(join(d.dataDir, "builds", "files", `${HASH}.tar`))).toBe(true);
});

test("a build body is checked before anything runs: one base, known steps, uploaded COPY files", async () => {
  const { templateID, buildID } = await request("checked");
  const start = (body: unknown) => d.api(`/v2/templates/${templateID}/builds/${buildID}`, json(body));
  expect((await start({ steps: [] })).status).toBe(400); // no base
  expect((await start({ fromImage: "x", fromTemplate: "y" })).status).toBe(400);
  expect((await start({ fromTemplate: "y", steps: [{ type: "EXPOSE", args: ["80"] }] })).status).toBe(400);
  expect((await start({ fromTemplate: "y", steps: [{ type: "ENV", args: ["A"] }] })).status).toBe(400);
  expect((await start({ fromTemplate: "y", steps: [{ type: "USER", args: ["x; rm -rf /"] }] })).status).toBe(400);
  expect((await start({ fromTemplate: "y", fromImageRegistry: { type: "aws", awsAccessKeyId: "k" } })).status).toBe(400);
  const copy = await start({ fromTemplate: "y", steps: [{ type: "COPY", args: ["a", "/a", "", ""], filesHash: "c".repeat(64) }] });
  expect(copy.status).toBe(400);
  expect(((await copy.json()) as { message: string }).message).toContain("not uploaded");
  expect((await d.api(`/v2/templates/${templateID}/builds/nope`, json({ fromTemplate: "y" }))).status).toBe(404);
  expect((await d.api(`/templates/${templateID}/builds/nope/status`)).status).toBe(404);
});

test("a failing build reports error with its step, message and log entries; status pages by logsOffset", async () => {
  const { templateID, buildID } = await request("fails");
  expect((await d.api(`/v2/templates/${templateID}/builds/${buildID}`, json({ fromTemplate: "no-such-template", steps: [{ type: "RUN", args: ["true"] }] }))).status).toBe(202);
  // Started once only.
  expect((await d.api(`/v2/templates/${templateID}/builds/${buildID}`, json({ fromTemplate: "x" }))).status).toBe(400);
  let s: { status: string; logEntries: { message: string; level: string; step?: string }[]; logs: string[]; reason?: { message: string; step?: string } } = { status: "", logEntries: [], logs: [] };
  for (let i = 0; i < 100; i++) {
    s = (await (await d.api(`/templates/${templateID}/builds/${buildID}/status`)).json()) as typeof s;
    if (s.status === "error" || s.status === "ready") break;
    await Bun.sleep(20);
  }
  expect(s.status).toBe("error");
  expect(s.reason?.step).toBe("base");
  expect(s.reason?.message).toContain("'no-such-template' not found");
  expect(s.logEntries.at(-1)).toMatchObject({ level: "error", step: "base" });
  expect(s.logs.length).toBe(s.logEntries.length);
  const later = (await (await d.api(`/templates/${templateID}/builds/${buildID}/status?logsOffset=${s.logEntries.length}`)).json()) as typeof s;
  expect(later.logEntries).toEqual([]);
  const logs = (await (await d.api(`/templates/${templateID}/builds/${buildID}/logs?level=error`)).json()) as { logs: unknown[] };
  expect(logs.logs.length).toBe(1);
  // Nothing is left: no template of that name.
  expect((await d.api("/templates/aliases/fails")).status).toBe(404);
});

test("the real SDK's Template.build(): its COPY upload lands through the signed link, the build's error is its BuildError", async () => {
  const { Template } = await import("e2b");
  const ctx = mkdtempSync(join(tmpdir(), "obx-ctx-"));
  made.push(ctx);
  writeFileSync(join(ctx, "hello.txt"), "hello\n");
  const opts = { apiKey: d.key, apiUrl: d.url, requestTimeoutMs: 10_000 };
  const t = () => Template({ fileContextPath: ctx }).fromTemplate("not-registered").copy("hello.txt", "/opt/hello.txt").runCmd("true");
  const logs: string[] = [];
  const err = await Template.build(t(), "sdk-app", { ...opts, onBuildLogs: (e) => logs.push(e.message) }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err?.name).toBe("BuildError");
  expect(err!.message).toContain("template 'not-registered' not found");
  expect(logs).toContain("Uploaded 'hello.txt'");
  const files = join(d.dataDir, "builds", "files");
  const sdkTar = readdirSync(files).find((f) => f.endsWith(".tar") && f !== `${HASH}.tar`)!;
  const stored = Bun.spawnSync(["tar", "-tzf", join(files, sdkTar)]);
  expect(stored.stdout.toString()).toBe("hello.txt\n");
  const again: string[] = [];
  await Template.build(t(), "sdk-app", { ...opts, onBuildLogs: (e) => again.push(e.message) }).catch(() => undefined);
  expect(again).toContain("Skipping upload of 'hello.txt', already cached");
});

test("the build VM is admitted like a create: a build bigger than the host's budget fails at 'base', leaving nothing", async () => {
  const src = join(d.dataDir, "fake-image");
  mkdirSync(src, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(src, f), f);
  const { registerTemplate } = await import("../templates/register.ts");
  const base = await registerTemplate(d.state, d.dataDir, { name: "small-base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 });
  const before = readdirSync(join(d.dataDir, "templates")).sort();
  const res = await d.api("/v3/templates", json({ name: "too-big", cpuCount: 1, memoryMB: 65536 }));
  const { templateID, buildID } = (await res.json()) as { templateID: string; buildID: string };
  expect((await d.api(`/v2/templates/${templateID}/builds/${buildID}`, json({ fromTemplate: "small-base", steps: [{ type: "RUN", args: ["true"] }] }))).status).toBe(202);
  let s: { status: string; reason?: { message: string; step?: string } } = { status: "" };
  for (let i = 0; i < 200 && s.status !== "error" && s.status !== "ready"; i++) {
    await Bun.sleep(20);
    s = (await (await d.api(`/templates/${templateID}/builds/${buildID}/status`)).json()) as typeof s;
  }
  expect(s.status).toBe("error");
  expect(s.reason?.step).toBe("base");
  expect(s.reason?.message).toContain("the build VM could not start: host is full");
  expect(readdirSync(join(d.dataDir, "templates")).sort()).toEqual(before);
  expect(d.state.templates.list().map((t) => t.id)).toEqual([base.id]);
});
