// `network` on create and PUT /sandboxes/{id}/network through the API: bad input is a 400 naming the field and
// changes nothing; a valid config is stored and returned by GET /sandboxes/{id} as E2B's SandboxDetail.network.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { POLICY_LIMITS } from "../net/policy.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
});
afterAll(() => d.stop());

let n = 0;
function insert(network: unknown = null): string {
  const id = `nw${n++}x`;
  d.state.sandboxes.insert({
    id, templateId: "t", state: "running", cpuCount: 1, memoryMb: 128, diskSizeMb: 256, envdVersion: "0.6.13",
    envdAccessToken: "tok", metadata: "{}", envVars: "{}", secure: true, startedAt: Date.now(),
    endAt: Date.now() + 3_600_000, network: network === null ? null : JSON.stringify(network),
  });
  return id;
}
const send = (method: string, path: string, body: unknown) =>
  d.api(path, { method, body: JSON.stringify(body), headers: { "content-type": "application/json" } });

async function expect400(res: Response, field: string) {
  const body = (await res.json()) as { code: number; message: string };
  expect({ status: res.status, code: body.code }).toEqual({ status: 400, code: 400 });
  expect(body.message).toContain(field);
  return body.message;
}

const many = (k: number) => Array.from({ length: k }, (_, i) => `203.0.${i >> 8}.${i & 255}`);

test("create: every malformed network is a 400 naming the field, checked before the template (nothing is made)", async () => {
  const rows = d.state.sandboxes.count();
  const bad: [unknown, string][] = [
    [{ rules: { "api.example.com": [{ transform: { headers: { a: "b" } } }] } }, "network.rules"],
    [{ egressProxy: { address: "proxy:1080" } }, "network.egressProxy"],
    [{ allowOut: ["1.2.3.4", "no such thing!"] }, "network.allowOut[1]"],
    [{ allowOut: ["2001:db8::/32"] }, "network.allowOut[0]"],
    [{ denyOut: ["example.com"] }, "network.denyOut[0]"],
    [{ allowOut: ["example.com"] }, "0.0.0.0/0"],
    [{ allowOut: many(POLICY_LIMITS.entries + 1) }, `at most ${POLICY_LIMITS.entries}`],
    [{ allowOut: Array.from({ length: POLICY_LIMITS.domains + 1 }, (_, i) => `h${i}.example.com`), denyOut: ["0.0.0.0/0"] }, `at most ${POLICY_LIMITS.domains}`],
    [{ allowOut: "1.2.3.4" }, "network.allowOut"],
    [{ allowPublicTraffic: "no" }, "network.allowPublicTraffic"],
  ];
  for (const [network, field] of bad) {
    for (const path of ["/v2/sandboxes", "/sandboxes"]) await expect400(await send("POST", path, { templateID: "nope", network }), field);
  }
  expect(d.state.sandboxes.count()).toBe(rows);
});

test("GET returns the stored network as E2B's SandboxDetail.network; none stored, no field", async () => {
  const cfg = { allowOut: ["example.com", "203.0.113.10"], denyOut: ["0.0.0.0/0"], allowPublicTraffic: false, maskRequestHost: "x-${PORT}" };
  const got = (await (await d.api(`/sandboxes/${insert(cfg)}`)).json()) as { network?: unknown };
  expect(got.network).toEqual(cfg);
  expect("network" in ((await (await d.api(`/sandboxes/${insert()}`)).json()) as object)).toBe(false);
});

test("PUT /network replaces the rules (omitted fields clear), keeps the create-only fields; 204", async () => {
  const id = insert({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"], maskRequestHost: "h" });
  const res = await send("PUT", `/sandboxes/${id}/network`, { allowOut: ["198.51.100.0/24"], allow_internet_access: false });
  expect(res.status).toBe(204);
  const got = (await (await d.api(`/sandboxes/${id}`)).json()) as { network: unknown; allowInternetAccess: unknown };
  expect(got.network).toEqual({ allowOut: ["198.51.100.0/24"], maskRequestHost: "h" });
  expect(got.allowInternetAccess).toBe(false);
});

test("PUT /network: bad bodies are 400s naming the field and change nothing; unknown sandbox 404", async () => {
  const cfg = { allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] };
  const id = insert(cfg);
  await expect400(await send("PUT", `/sandboxes/${id}/network`, { rules: {} }), "body.rules");
  await expect400(await send("PUT", `/sandboxes/${id}/network`, { egressProxy: { address: "p:1" } }), "body.egressProxy");
  await expect400(await send("PUT", `/sandboxes/${id}/network`, { denyOut: ["*.example.com"] }), "body.denyOut[0]");
  await expect400(await send("PUT", `/sandboxes/${id}/network`, { allowOut: ["example.com"] }), "0.0.0.0/0");
  await expect400(await send("PUT", `/sandboxes/${id}/network`, { allowOut: [5] }), "allowOut");
  expect(JSON.parse(d.state.sandboxes.get(id)!.network!)).toEqual(cfg);
  const res = await send("PUT", "/sandboxes/nosuchbox/network", {});
  expect(res.status).toBe(404);
  expect(((await res.json()) as { code: number }).code).toBe(404);
});
