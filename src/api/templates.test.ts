// Tests the template routes: list, get by id or alias, alias lookup (Template.exists), delete.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { registerTemplate } from "../templates/register.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
let id = "";
let src = "";
beforeAll(async () => {
  d = await startTestDaemon();
  src = join(d.dataDir, "build");
  mkdirSync(src, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(src, f), f);
  id = (await registerTemplate(d.state, d.dataDir, { name: "base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 })).id;
});
afterAll(() => d.stop());

test("registration copies the image into $DATA/templates/<id>/ and refuses a duplicate name", async () => {
  expect(existsSync(join(d.dataDir, "templates", id, "rootfs.ext4"))).toBe(true);
  await expect(
    registerTemplate(d.state, d.dataDir, { name: "base", from: src, kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 }),
  ).rejects.toMatchObject({ kind: "conflict" });
  await expect(
    registerTemplate(d.state, d.dataDir, { name: "other", from: join(src, "missing"), kernel: join(src, "vmlinuz"), cpuCount: 1, memoryMb: 256, diskSizeMb: 512 }),
  ).rejects.toMatchObject({ kind: "bad-request" });
});

test("list, get by id and alias, alias lookup", async () => {
  const list = (await (await d.api("/templates")).json()) as { templateID: string; aliases: string[] }[];
  expect(list.map((t) => t.templateID)).toEqual([id]);
  expect(list[0]!.aliases).toEqual(["base"]);
  expect((await d.api(`/templates/${id}`)).status).toBe(200);
  expect((await d.api(`/templates/base`)).status).toBe(200);
  const alias = await d.api("/templates/aliases/base");
  expect(alias.status).toBe(200);
  expect(await alias.json()).toEqual({ templateID: id, public: false });
  const missing = await d.api("/templates/aliases/nope");
  expect(missing.status).toBe(404);
  expect(((await missing.json()) as { code: number }).code).toBe(404);
});

test("delete: 409 while a live sandbox uses it, then 204 and its files are gone, then 404", async () => {
  d.state.sandboxes.insert({
    id: "usesbase", templateId: id, state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: null, metadata: "{}", envVars: "{}", secure: false, startedAt: Date.now(), endAt: Date.now() + 60_000,
  });
  expect((await d.api(`/templates/${id}`, { method: "DELETE" })).status).toBe(409);
  expect((await d.api("/sandboxes/usesbase", { method: "DELETE" })).status).toBe(204);
  expect((await d.api(`/templates/${id}`, { method: "DELETE" })).status).toBe(204);
  expect(existsSync(join(d.dataDir, "templates", id))).toBe(false);
  expect((await d.api(`/templates/${id}`, { method: "DELETE" })).status).toBe(404);
});
