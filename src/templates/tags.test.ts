// Tags through the real create path (the machine layer faked, real store and files): a sandbox of "name:tag" runs
// that tag's build; a build whose last tag goes while a sandbox of it runs keeps its files until that sandbox ends.
import { afterEach, expect, test } from "bun:test";
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { assignTags, removeTags } from "./tags.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

/** Another build of the fake template with its tags, as the build API registers one (a row with a build id). */
function build(id: string, buildId: string, createdAt: number, tags: string[]): void {
  const dir = join(s.dir, "templates", id);
  cpSync(s.template.dir, dir, { recursive: true });
  s.state.templates.insert({ ...s.template, id, dir, aliases: "[]", buildId, createdAt, updatedAt: createdAt });
  assignTags(s.state, "base", tags, id);
}

test("a create of name:tag runs that tag's build; a bare name its default tag; latest the newest build", async () => {
  s = await fakeSandboxes();
  build("tplv1", "b-v1", s.template.createdAt + 1, ["v1"]);
  build("tplv2", "b-v2", s.template.createdAt + 2, ["v2", "canary"]);
  const of = async (ref: string) => (await s.create({ templateID: ref })).templateId;
  expect(await of("base:v1")).toBe("tplv1");
  expect(await of("base:canary")).toBe("tplv2");
  expect(await of("base")).toBe("tpl"); // the default tag stayed on the first registration
  expect(await of("base:latest")).toBe("tplv2");
  expect(await of("base:b-v1")).toBe("tplv1");
  const e = await Promise.resolve().then(() => s.create({ templateID: "base:v3" })).catch((x: unknown) => x as Error);
  expect(e).toBeInstanceOf(Error);
  expect((e as Error).message).toContain("'base:v3' not found");
  // The sandbox row keeps the name it was created with.
  const row = await s.create({ templateID: "base:v1" });
  expect(row.alias).toBe("base:v1");
});

test("a build whose last tag is removed stays while its sandbox runs, and goes at the next tag change after", async () => {
  s = await fakeSandboxes();
  build("tplv1", "b-v1", s.template.createdAt + 1, ["v1"]);
  const sb = await s.create({ templateID: "base:v1" });
  removeTags(s.state, "base", ["v1"]);
  expect(s.state.templates.byId("tplv1")).toBeDefined();
  expect(existsSync(join(s.dir, "templates", "tplv1", "rootfs.ext4"))).toBe(true);
  await s.manager.kill(sb.id);
  assignTags(s.state, "base", ["other"], "tpl");
  expect(s.state.templates.byId("tplv1")).toBeUndefined();
  expect(existsSync(join(s.dir, "templates", "tplv1"))).toBe(false);
  // The template registered otherwise (no build id) keeps its name and files throughout.
  expect(s.state.templates.resolve("base")?.id).toBe("tpl");
});
