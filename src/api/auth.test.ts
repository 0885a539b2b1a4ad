// Tests control-plane auth: admin key on first start, 401 shapes, revoked keys, /health without a key.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
});
afterAll(() => d.stop());

test("first start creates an e2b_ + 40 hex admin key, file 0600, stored hashed", () => {
  expect(d.key).toMatch(/^e2b_[0-9a-f]{40}$/);
  expect(d.newAdminKey).toBe(d.key);
  expect(statSync(join(d.dataDir, "admin-key")).mode & 0o777).toBe(0o600);
  const row = d.state.sqlite.query<{ hash: string }, []>("SELECT hash FROM api_keys").get();
  expect(row?.hash).toMatch(/^[0-9a-f]{64}$/);
  expect(row?.hash).not.toContain(d.key.slice(4));
});

test("GET /health needs no key", async () => {
  const res = await fetch(d.url + "/health");
  expect(res.status).toBe(200);
});

test("missing key → 401 {code:401,message}", async () => {
  const res = await fetch(d.url + "/v2/sandboxes");
  expect(res.status).toBe(401);
  const body = (await res.json()) as { code: number; message: string };
  expect(body.code).toBe(401);
  expect(body.message).toContain("X-API-Key");
});

test("wrong key → 401; header name is case-insensitive", async () => {
  const bad = await fetch(d.url + "/v2/sandboxes", { headers: { "X-API-KEY": "e2b_" + "0".repeat(40) } });
  expect(bad.status).toBe(401);
  expect(((await bad.json()) as { code: number }).code).toBe(401);
  for (const name of ["X-API-KEY", "x-api-key", "X-Api-Key"]) {
    const ok = await fetch(d.url + "/v2/sandboxes", { headers: { [name]: d.key } });
    expect(ok.status).toBe(200);
  }
});

test("a revoked key is refused at once; a new key works", async () => {
  const { key } = d.state.keys.create("temp");
  expect((await d.api("/v2/sandboxes", { headers: { "x-api-key": key } })).status).toBe(200);
  expect(d.state.keys.revoke("temp")).toBe(1);
  const res = await d.api("/v2/sandboxes", { headers: { "x-api-key": key } });
  expect(res.status).toBe(401);
  expect(((await res.json()) as { message: string }).message).toContain("revoked");
});

test("unknown routes need the key too, then answer 404 JSON", async () => {
  expect((await fetch(d.url + "/no/such/route")).status).toBe(401);
  const res = await d.api("/no/such/route");
  expect(res.status).toBe(404);
  expect(((await res.json()) as { code: number }).code).toBe(404);
});

test("a second start on the same data dir does not create another key", async () => {
  await d.close();
  const again = await startTestDaemon({}, d.dataDir);
  try {
    expect(again.newAdminKey).toBeNull();
    expect(again.key).toBe(d.key);
    expect((await again.api("/v2/sandboxes")).status).toBe(200);
  } finally {
    await again.close();
  }
});
