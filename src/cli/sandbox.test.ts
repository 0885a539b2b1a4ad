// Tests `onebox sandbox info|logs|ls` on the database and files of a data dir, and `kill` through the daemon.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import { sandboxCommand } from "./sandbox.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
  d.state.sandboxes.insert({
    id: "clisb", templateId: "t", state: "running", cpuCount: 1, memoryMb: 128, diskSizeMb: 256, envdVersion: "0.6.13",
    envdAccessToken: "secret-token", metadata: "{}", envVars: '{"K":"secret"}', secure: true, startedAt: Date.now(),
    endAt: Date.now() + 60_000,
  });
  d.state.sandboxes.addEvent("clisb", "create", "template t");
  mkdirSync(join(d.dataDir, "sandboxes", "clisb"), { recursive: true });
  writeFileSync(join(d.dataDir, "sandboxes", "clisb", "console.log"), "[    0.000000] Linux version 6.1\nONEBOX-INIT: booted\n");
});
afterAll(() => d.stop());

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await sandboxCommand([...args, "--data-dir", d.dataDir]), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("info shows the row without secrets", async () => {
  const r = await run(["info", "clisb", "--json"]);
  expect(r.code).toBe(0);
  const row = JSON.parse(r.out) as Record<string, unknown>;
  expect(row.id).toBe("clisb");
  expect(r.out).not.toContain("secret");
  expect((await run(["info", "nope"])).code).toBe(1);
});

test("logs show lifecycle events and the console", async () => {
  const r = await run(["logs", "clisb"]);
  expect(r.code).toBe(0);
  expect(r.out).toContain("create: template t");
  expect(r.out).toContain("ONEBOX-INIT: booted");
});

test("kill goes through the daemon; ls --all then shows the reason", async () => {
  const r = await run(["kill", "clisb", "--url", d.url, "--api-key", d.key]);
  expect(r.code).toBe(0);
  expect((await run(["kill", "clisb", "--url", d.url, "--api-key", d.key])).code).toBe(1);
  const ls = await run(["ls", "--all"]);
  expect(ls.out).toMatch(/clisb\s.*ended.*killed/);
  expect((await run(["ls"])).out).not.toContain("clisb");
});
