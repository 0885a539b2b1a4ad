// The dashboard's routes over a real store, the machine layer faked: only the admin key (the first key) manages keys
// and reads the audit log, and it cannot revoke itself; the sandbox list holds ended rows with their reason; a build
// log is read only by its own file name.
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { Admission } from "../scheduler/admission.ts";
import { createApi } from "./app.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

async function setup() {
  s = await fakeSandboxes({ auth: true });
  const admin = s.state.keys.create("admin");
  const user = s.state.keys.create("team");
  const app = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  const call = (key: string, method: string, path: string, body?: unknown) =>
    app.request(path, { method, headers: { "x-api-key": key, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { admin, user, call };
}

test("a key that is not the admin key cannot list, mint or revoke keys, nor read the audit log: 403", async () => {
  const { admin, user, call } = await setup();
  expect(await (await call(user.key, "GET", "/onebox/whoami")).json()).toEqual({ keyId: user.info.id, admin: false });
  expect(await (await call(admin.key, "GET", "/onebox/whoami")).json()).toEqual({ keyId: admin.info.id, admin: true });
  expect((await call(user.key, "GET", "/onebox/keys")).status).toBe(403);
  const mint = await call(user.key, "POST", "/onebox/keys", { name: "mine" });
  expect(mint.status).toBe(403);
  expect(((await mint.json()) as { message: string }).message).toContain("only the admin key");
  expect((await call(user.key, "DELETE", `/onebox/keys/${admin.info.id}`)).status).toBe(403);
  expect((await call(user.key, "GET", "/onebox/audit")).status).toBe(403);
  expect(s.state.keys.list().map((k) => [k.name, k.revokedAt])).toEqual([["admin", null], ["team", null]]);
  expect((await call("e2b_wrong", "GET", "/onebox/whoami")).status).toBe(401);
});

test("the admin key creates a key (shown once), revokes it by id only, cannot revoke itself; all of it audited", async () => {
  const { admin, user, call } = await setup();
  const res = await call(admin.key, "POST", "/onebox/keys", { name: user.info.id }); // named like another key's id
  expect(res.status).toBe(201);
  const made = (await res.json()) as { id: string; key: string };
  expect(s.state.keys.identify(made.key)).toBe(made.id);
  expect((await call(admin.key, "POST", "/onebox/keys", { name: "<script>" })).status).toBe(400);
  // DELETE by the other key's id revokes that key only, not the one named after it.
  expect((await call(admin.key, "DELETE", `/onebox/keys/${user.info.id}`)).status).toBe(204);
  expect(s.state.keys.identify(user.key)).toBeNull();
  expect(s.state.keys.identify(made.key)).toBe(made.id);
  expect((await call(admin.key, "DELETE", `/onebox/keys/${user.info.id}`)).status).toBe(404);
  expect((await call(admin.key, "DELETE", `/onebox/keys/${admin.info.id}`)).status).toBe(409);
  expect(s.state.keys.identify(admin.key)).toBe(admin.info.id);
  const listed = (await (await call(admin.key, "GET", "/onebox/keys")).json()) as { id: string; admin: boolean; hash?: string }[];
  expect(listed.map((k) => k.admin)).toEqual([true, false, false]);
  expect(listed.every((k) => k.hash === undefined)).toBe(true);
  const audit = (await (await call(admin.key, "GET", "/onebox/audit?limit=2")).json()) as { op: string; status: number; detail: string }[];
  expect(audit.map((a) => [a.op, a.status])).toEqual([["DELETE /onebox/keys/" + admin.info.id, 409], ["DELETE /onebox/keys/" + user.info.id, 404]]);
  expect(JSON.stringify(audit)).not.toContain(made.key);
});

test("GET /onebox/sandboxes lists ended rows with their reason, filtered by state; one sandbox's page answers after it ended", async () => {
  const { admin, call } = await setup();
  const a = await s.create();
  const b = await s.create();
  await s.manager.kill(b.id);
  const all = (await (await call(admin.key, "GET", "/onebox/sandboxes")).json()) as { sandboxID: string; state: string; endReason: string | null }[];
  expect(all.map((r) => [r.sandboxID, r.state, r.endReason])).toEqual([[b.id, "ended", "killed"], [a.id, "running", null]]);
  const ended = (await (await call(admin.key, "GET", "/onebox/sandboxes?state=ended")).json()) as { sandboxID: string }[];
  expect(ended.map((r) => r.sandboxID)).toEqual([b.id]);
  expect((await call(admin.key, "GET", "/onebox/sandboxes?state=dead")).status).toBe(400);
  const one = (await (await call(admin.key, "GET", `/onebox/sandboxes/${b.id}`)).json()) as { sandbox: { endReason: string }; events: { kind: string }[] };
  expect(one.sandbox.endReason).toBe("killed");
  expect(one.events.map((e) => e.kind)).toContain("end");
  expect((await call(admin.key, "GET", `/sandboxes/${b.id}`)).status).toBe(404); // the E2B route stays as E2B's
  expect((await call(admin.key, "GET", "/onebox/sandboxes/nope")).status).toBe(404);
});

test("builds: the API's builds, and the build logs of DATA/templates/logs, read by their own name only", async () => {
  const { admin, call } = await setup();
  const dir = join(s.config.dataDir, "templates", "logs");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "build-base-2026-12-07T00-00-00-000Z.log"), "step debootstrap\nok\n");
  writeFileSync(join(s.config.dataDir, "secret.log"), "no");
  expect((await call(admin.key, "POST", "/v3/templates", { name: "mine:v1" })).status).toBe(202);
  const list = (await (await call(admin.key, "GET", "/onebox/builds")).json()) as { logs: { file: string }[]; api: { alias: string; tags: string[]; status: string }[] };
  expect(list.logs.map((l) => l.file)).toEqual(["build-base-2026-12-07T00-00-00-000Z.log"]);
  expect(list.api.map((b) => [b.alias, b.tags, b.status])).toEqual([["mine", ["v1"], "waiting"]]);
  expect(await (await call(admin.key, "GET", "/onebox/builds/build-base-2026-12-07T00-00-00-000Z.log")).text()).toBe("step debootstrap\nok\n");
  for (const f of ["..%2F..%2Fsecret.log", "build-..%2F..%2Fsecret.log", "secret.log", "build-missing.log"]) expect((await call(admin.key, "GET", `/onebox/builds/${f}`)).status).toBe(404);
});

test("the dashboard's page and bundle need no key and carry a strict CSP; the API behind them does", async () => {
  const { call } = await setup();
  const app = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  const page = await app.request("/dashboard/");
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<script type="module" src="app.js">');
  expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  expect((await app.request("/dashboard/app.js")).headers.get("content-type")).toStartWith("text/javascript");
  expect((await app.request("/dashboard")).status).toBe(301);
  expect((await app.request("/dashboard/constructor")).status).toBe(404);
  expect((await app.request("/onebox/sandboxes")).status).toBe(401);
  expect((await call("e2b_wrong", "GET", "/onebox/sandboxes")).status).toBe(401);
});
