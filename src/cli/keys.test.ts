// Tests `onebox keys` against the database of a running daemon: a created key works, a revoked one is refused.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import { keysCommand } from "./keys.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
});
afterAll(() => d.stop());

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = orig;
  }
}

test("create → works against the daemon; list shows it; revoke → 401; revoking again fails", async () => {
  const created = await capture(() => keysCommand(["create", "--name", "ci", "--json", "--data-dir", d.dataDir]));
  expect(created.code).toBe(0);
  const { key, id } = JSON.parse(created.out) as { key: string; id: string };
  expect(key).toMatch(/^e2b_[0-9a-f]{40}$/);
  expect((await fetch(d.url + "/v2/sandboxes", { headers: { "x-api-key": key } })).status).toBe(200);

  const listed = await capture(() => keysCommand(["list", "--json", "--data-dir", d.dataDir]));
  const keys = JSON.parse(listed.out) as { id: string; name: string; revokedAt: number | null; hash?: string }[];
  expect(keys.map((k) => k.name).sort()).toEqual(["admin", "ci"]);
  expect(keys.every((k) => k.hash === undefined)).toBe(true);
  expect(listed.out).not.toContain(key);

  expect((await capture(() => keysCommand(["revoke", id, "--data-dir", d.dataDir]))).code).toBe(0);
  const res = await fetch(d.url + "/v2/sandboxes", { headers: { "x-api-key": key } });
  expect(res.status).toBe(401);
  expect(((await res.json()) as { code: number }).code).toBe(401);
  const errs: string[] = [];
  const origErr = console.error;
  console.error = (s: string) => errs.push(s);
  try {
    expect(await keysCommand(["revoke", id, "--data-dir", d.dataDir])).toBe(1);
  } finally {
    console.error = origErr;
  }
  expect(errs.join("")).toContain("keys list");
});
