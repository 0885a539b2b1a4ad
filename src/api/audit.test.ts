// The control plane's audit log over a real store, the machine layer faked: requests that change something are
// recorded after their answer with the key's id, the operation (ids replaced), the sandbox and the status; reads are
// not; the sandbox row keeps the key it was created with; `onebox audit export` prints them as JSON lines.
import { afterEach, expect, test } from "bun:test";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { Admission } from "../scheduler/admission.ts";
import { createApi } from "./app.ts";
import { parseSince } from "../cli/audit.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("creates, pauses and kills are audited with the key's id and status; reads are not; the row keeps its key", async () => {
  s = await fakeSandboxes({ auth: true });
  const { key, info } = s.state.keys.create("agent-1");
  const app = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  const call = (method: string, path: string, body?: unknown) =>
    app.request(path, { method, headers: { "x-api-key": key, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const created = await call("POST", "/v2/sandboxes", { templateID: "tpl" });
  expect(created.status).toBe(201);
  const id = ((await created.json()) as { sandboxID: string }).sandboxID;
  expect(s.state.sandboxes.get(id)?.keyId).toBe(info.id);
  expect((await call("GET", `/sandboxes/${id}`)).status).toBe(200);
  expect((await call("POST", `/sandboxes/${id}/pause`)).status).toBe(204);
  expect((await call("DELETE", `/sandboxes/${id}`)).status).toBe(204);
  expect((await call("DELETE", "/sandboxes/nope")).status).toBe(404);
  expect((await app.request("/v2/sandboxes", { method: "POST" })).status).toBe(401); // no key: never reaches the log
  const rows = s.state.audit.since(0).map(({ keyId, plane, op, sandboxId, status }) => ({ keyId, plane, op, sandboxId, status }));
  expect(rows).toEqual([
    { keyId: info.id, plane: "control", op: "POST /v2/sandboxes", sandboxId: id, status: 201 },
    { keyId: info.id, plane: "control", op: "POST /sandboxes/{id}/pause", sandboxId: id, status: 204 },
    { keyId: info.id, plane: "control", op: "DELETE /sandboxes/{id}", sandboxId: id, status: 204 },
    { keyId: info.id, plane: "control", op: "DELETE /sandboxes/{id}", sandboxId: "nope", status: 404 },
  ]);
  // The retention deletes only what is older than it.
  expect(s.state.audit.prune(Date.now() - 60_000)).toBe(0);
  expect(s.state.audit.prune(Date.now() + 1)).toBe(4);
});

test("onebox audit export: JSON lines from --since, oldest first; a bad --since is refused", async () => {
  s = await fakeSandboxes();
  s.state.audit.append({ at: Date.parse("2026-12-01T00:00:00Z"), keyId: "k1", plane: "control", op: "POST /v2/sandboxes", sandboxId: "a", status: 201 });
  s.state.audit.append({ at: Date.now(), keyId: "k1", plane: "data", op: "command", sandboxId: "a", detail: "ls -la" });
  const run = (args: string[]) => Bun.spawnSync(["bun", "src/main.ts", "audit", "export", ...args, "--data-dir", s.dir], { cwd: `${import.meta.dir}/../..`, stdout: "pipe", stderr: "pipe" });
  const all = run([]);
  expect(all.exitCode).toBe(0);
  const lines = all.stdout.toString().trim().split("\n").map((l) => JSON.parse(l));
  expect(lines.map((l) => [l.op, l.at])).toEqual([["POST /v2/sandboxes", "2026-12-01T00:00:00.000Z"], ["command", lines[1].at]]);
  const recent = run(["--since", "1h"]).stdout.toString().trim().split("\n");
  expect(recent.map((l) => JSON.parse(l).detail)).toEqual(["ls -la"]);
  const bad = run(["--since", "yesterday"]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr.toString()).toContain("--since wants an ISO time");
  expect(parseSince("7d", 1_000_000_000_000)).toBe(1_000_000_000_000 - 7 * 86_400_000);
});
