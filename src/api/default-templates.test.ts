// Tests that a default template whose build failed makes create answer 503 saying why and what to do.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
const src = join(tmpdir(), `onebox-nosrc-${process.pid}`);
beforeAll(async () => {
  // A source dir without the image scripts: the build fails at once, before any work.
  mkdirSync(src, { recursive: true });
  d = await startTestDaemon({ sourceDir: src, buildDefaultTemplates: true });
});
afterAll(async () => {
  await d.stop();
  rmSync(src, { recursive: true, force: true });
});

test("create of a default template that could not be built → 503 naming the cause and the fix", async () => {
  for (let i = 0; i < 50 && d.templateBuilds?.statusOf("code-interpreter-v1")?.state !== "failed"; i++) await Bun.sleep(20);
  expect(d.templateBuilds?.statusOf("base")?.state).toBe("failed");
  const res = await d.api("/v2/sandboxes", { method: "POST", body: JSON.stringify({ templateID: "base" }) });
  expect(res.status).toBe(503);
  const body = (await res.json()) as { code: number; message: string };
  expect(body.code).toBe(503);
  expect(body.message).toContain("template 'base' could not be built");
  expect(body.message).toContain("mkrootfs.sh not found");
  expect(body.message).toContain("onebox template build base");
  // Other unknown templates still get the plain 404.
  expect((await d.api("/v2/sandboxes", { method: "POST", body: JSON.stringify({ templateID: "other" }) })).status).toBe(404);
});
