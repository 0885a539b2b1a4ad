// Tests template tags with a real daemon and real SQLite, the real e2b SDK as the client: builds (fromTemplate with no
// steps: no build VM, and no ready snapshot with templateSnapshots off) give their tags; Template.getTags /
// assignTags / removeTags; "name:tag" resolves; a build no tag names goes unless a sandbox uses it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { templateCommand } from "../cli/template.ts";
import { registerTemplate } from "../templates/register.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
let opts: { apiKey: string; apiUrl: string; requestTimeoutMs: number };
const json = (method: string, body: unknown): RequestInit => ({ method, body: JSON.stringify(body), headers: { "content-type": "application/json" } });

beforeAll(async () => {
  d = await startTestDaemon({ templateSnapshots: false, buildDefaultTemplates: false });
  opts = { apiKey: d.key, apiUrl: d.url, requestTimeoutMs: 10_000 };
  const src = join(d.dataDir, "fake-image");
  mkdirSync(src, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(src, f), f);
  await registerTemplate(d.state, d.dataDir, { name: "small-base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 });
});
afterAll(() => d.stop());

/** A build through the SDK, to ready; its template id and build id. */
async function build(name: string, tags?: string[]): Promise<{ templateId: string; buildId: string }> {
  const { Template } = await import("e2b");
  const info = await Template.build(Template().fromTemplate("small-base"), name, { ...opts, ...(tags ? { tags } : {}) });
  return { templateId: info.templateId, buildId: info.buildId };
}

const resolved = async (ref: string) => {
  const res = await d.api(`/templates/${encodeURIComponent(ref)}`);
  return res.status === 200 ? ((await res.json()) as { templateID: string }).templateID : res.status;
};

test("builds carry their tags; name:tag, a bare name (default), latest and name:buildID resolve to their build", async () => {
  const { Template } = await import("e2b");
  const v1 = await build("app:v1");
  const v2 = await build("app", ["stable"]);
  const tags = await Template.getTags("app", opts);
  expect(tags.map((t) => [t.tag, t.buildId])).toEqual([
    ["v1", v1.buildId],
    ["default", v2.buildId],
    ["stable", v2.buildId],
  ]);
  expect(tags[0]!.createdAt).toBeInstanceOf(Date);
  // By a build's template id, or name:tag, the same list.
  expect((await Template.getTags(v1.templateId, opts)).length).toBe(3);
  expect(await resolved("app:v1")).toBe(v1.templateId);
  expect(await resolved("app")).toBe(v2.templateId);
  expect(await resolved("app:default")).toBe(v2.templateId);
  expect(await resolved("app:stable")).toBe(v2.templateId);
  expect(await resolved("app:latest")).toBe(v2.templateId); // no `latest` tag: the newest build
  expect(await resolved(`app:${v1.buildId}`)).toBe(v1.templateId);
  expect(await resolved("app:nope")).toBe(404);
  // Both builds keep their files (the v1 build is addressable by its tag), and the SDK sees the name.
  expect(existsSync(join(d.dataDir, "templates", v1.templateId, "rootfs.ext4"))).toBe(true);
  expect(await Template.exists("app", opts)).toBe(true);
  // The template list shows the bare name on the default build only.
  const list = (await (await d.api("/templates")).json()) as { templateID: string; aliases: string[]; buildID: string }[];
  expect(list.find((t) => t.templateID === v2.templateId)).toMatchObject({ aliases: ["app"], buildID: v2.buildId });
  expect(list.find((t) => t.templateID === v1.templateId)?.aliases).toEqual([]);
});

test("assignTags points tags at the target's build, moving them; removeTags drops them; an untagged build goes", async () => {
  const { Template } = await import("e2b");
  const a = await build("svc:v1");
  const b = await build("svc:v2");
  expect(await Template.assignTags("svc:v1", ["prod", "stable"], opts)).toEqual({ buildId: a.buildId, tags: ["prod", "stable"] });
  expect(await resolved("svc:prod")).toBe(a.templateId);
  // Moving prod to v2: v1 keeps its own tag and stable.
  expect(await Template.assignTags("svc:v2", "prod", opts)).toEqual({ buildId: b.buildId, tags: ["prod"] });
  expect(await resolved("svc:prod")).toBe(b.templateId);
  // Promoting a build to the default tag gives it the bare name.
  await Template.assignTags(`svc:${a.buildId}`, "default", opts);
  expect(await resolved("svc")).toBe(a.templateId);
  await Template.removeTags("svc", ["v1", "stable"], opts);
  expect(await resolved("svc:v1")).toBe(404);
  expect(await resolved("svc")).toBe(a.templateId); // still the default
  expect(existsSync(join(d.dataDir, "templates", a.templateId))).toBe(true);
  await Template.removeTags("svc", "default", opts);
  // No tag names the v1 build any more and nothing uses it: its row and files are gone.
  expect(d.state.templates.byId(a.templateId)).toBeUndefined();
  expect(existsSync(join(d.dataDir, "templates", a.templateId))).toBe(false);
  expect(await resolved("svc")).toBe(404);
  expect((await Template.getTags("svc", opts)).map((t) => [t.tag, t.buildId])).toEqual([
    ["v2", b.buildId],
    ["prod", b.buildId],
  ]);
  // A name without its default tag still exists (its builds do).
  expect(await Template.exists("svc", opts)).toBe(true);
});

test("a rebuild of the default tag replaces the previous build, which stays while a sandbox uses it", async () => {
  const first = await build("web");
  const now = Date.now();
  d.state.sandboxes.insert({
    id: "usesfirst", templateId: first.templateId, state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: null, metadata: "{}", envVars: "{}", secure: false, startedAt: now, endAt: now + 60_000,
  });
  const second = await build("web");
  expect(await resolved("web")).toBe(second.templateId);
  // Unnamed, but kept for its sandbox.
  expect(d.state.templates.byId(first.templateId)?.aliases).toBe("[]");
  expect(existsSync(join(d.dataDir, "templates", first.templateId))).toBe(true);
  d.state.sandboxes.update("usesfirst", { state: "ended", endedAt: Date.now(), endReason: "killed" });
  // The next tag change sweeps it.
  const third = await build("web");
  expect(d.state.templates.byId(first.templateId)).toBeUndefined();
  expect(d.state.templates.byId(second.templateId)).toBeUndefined();
  expect(existsSync(join(d.dataDir, "templates", first.templateId))).toBe(false);
  expect(await resolved("web")).toBe(third.templateId);
});

test("templates registered before tags: their name is their default tag, and can be tagged", async () => {
  const { Template } = await import("e2b");
  const base = d.state.templates.resolve("small-base")!;
  expect(await Template.getTags("small-base", opts)).toEqual([{ tag: "default", buildId: base.id, createdAt: new Date(base.createdAt) }]);
  expect(await Template.assignTags("small-base", "pinned", opts)).toEqual({ buildId: base.id, tags: ["pinned"] });
  expect(await resolved("small-base:pinned")).toBe(base.id);
  expect(await resolved("small-base")).toBe(base.id);
});

test("bad names and tags are 400, unknown templates and tags 404, E2B-shaped; the SDK raises its errors", async () => {
  const { Template } = await import("e2b");
  await build("errs:v1");
  const cases: [RequestInit, string, number][] = [
    [json("POST", { target: "errs:v1", tags: ["bad tag!"] }), "/templates/tags", 400],
    [json("POST", { target: "Bad Name", tags: ["x"] }), "/templates/tags", 400],
    [json("POST", { target: "errs:v1:x", tags: ["x"] }), "/templates/tags", 400],
    [json("POST", { target: "errs:v1", tags: [] }), "/templates/tags", 400],
    [json("POST", { target: "errs:v1" }), "/templates/tags", 400],
    [json("POST", { target: "nope:v1", tags: ["x"] }), "/templates/tags", 404],
    [json("POST", { target: "errs:v9", tags: ["x"] }), "/templates/tags", 404],
    [json("DELETE", { name: "nope", tags: ["x"] }), "/templates/tags", 404],
    [json("DELETE", { name: "errs", tags: ["v1", "missing"] }), "/templates/tags", 404],
    [json("DELETE", { name: "errs", tags: ["a b"] }), "/templates/tags", 400],
    [{ method: "GET" }, "/templates/nope/tags", 404],
    [{ method: "GET" }, "/templates/Bad%20Name/tags", 400],
  ];
  for (const [init, path, status] of cases) {
    const res = await d.api(path, init);
    const body = (await res.json()) as { code: number; message: string };
    expect({ path, body: init.body, status: res.status }).toEqual({ path, body: init.body, status });
    expect(body.code).toBe(status);
    expect(body.message.length).toBeGreaterThan(10);
  }
  // The failed removal removed nothing (all or nothing).
  expect(await resolved("errs:v1")).not.toBe(404);
  const err = await Template.assignTags("nope:v1", "x", opts).then(() => null, (e: unknown) => e as Error);
  expect(err?.name).toBe("TemplateError");
  expect(err!.message).toContain("404");
  // Bad tags in a build request are refused before a build exists.
  expect((await d.api("/v3/templates", json("POST", { name: "errs", tags: ["no spaces"] }))).status).toBe(400);
  expect((await d.api("/v3/templates", json("POST", { name: "errs:bad!" }))).status).toBe(400);
  // A sandbox of an unknown tag: 404, not a create attempt.
  const sb = await d.api("/sandboxes", json("POST", { templateID: "errs:nope" }));
  expect(sb.status).toBe(404);
});

test("the audit log names the tag routes as themselves", async () => {
  const ops = new Set(d.state.audit.latest(1000).map((r) => r.op));
  expect(ops.has("POST /templates/tags")).toBe(true);
  expect(ops.has("DELETE /templates/tags")).toBe(true);
  expect(ops.has("POST /templates/{id}")).toBe(false);
});

test("`onebox template ls` names each build by its alias and its name:tag tags", async () => {
  const v1 = await build("cli:v1");
  const main = await build("cli", ["stable"]);
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    expect(await templateCommand(["ls", "--json", "--data-dir", d.dataDir])).toBe(0);
  } finally {
    console.log = log;
  }
  const rows = JSON.parse(out.join("\n")) as { id: string; aliases: string[]; tags: string[] }[];
  expect(rows.find((r) => r.id === v1.templateId)).toMatchObject({ aliases: [], tags: ["cli:v1"] });
  expect(rows.find((r) => r.id === main.templateId)).toMatchObject({ aliases: ["cli"], tags: ["cli:stable"] });
});
