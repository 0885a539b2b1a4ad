// POST /init carrying a restored clone's hygiene (issue 18): applied once, confirmed by a header, gated by the token
// like the rest of /init. The system calls go to a recording HygieneSystem: this host's clock and name are shared.
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_HYGIENE_HEADER } from "../protocol.ts";
import type { HygieneSystem } from "./clone-hygiene.ts";
import { postInit } from "./init-http.ts";
import { newAgentState } from "./state.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function recorder(ok = true): HygieneSystem & { clock: bigint[]; entropy: string[]; hostname: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "onebox-hygiene-"));
  dirs.push(dir);
  const r = {
    clock: [] as bigint[],
    entropy: [] as string[],
    hostname: [] as string[],
    idFile: join(dir, "run", "onebox", "sandbox-id"),
    setClockNs: (ns: bigint) => (r.clock.push(ns), ok),
    addEntropy: (b: Uint8Array) => (r.entropy.push(Buffer.from(b).toString("hex")), ok),
    setHostname: (n: string) => (r.hostname.push(n), ok),
  };
  return r;
}

const init = (body: unknown, token?: string): Request =>
  new Request("http://sandbox/init", {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...(token ? { "x-access-token": token } : {}) },
  });

// What the host sends after a restore (src/machine/hygiene.ts initHygiene): ns past 2^53, 64 bytes of entropy.
const HYGIENE = { timeNs: "1900000000123456789", entropy: Buffer.alloc(64, 7).toString("base64"), id: "sbx_a-1", hostname: "sbx-a-1" };

test("one /init gives a restored clone its token, env vars, exact clock, entropy and identity, and says so", async () => {
  const state = newAgentState();
  const sys = recorder();
  const res = await postInit(init({ accessToken: "tok", envVars: { A: "1" }, defaultUser: "user", hygiene: HYGIENE }), state, sys);
  expect(res.status).toBe(204);
  expect(res.headers.get(AGENT_HYGIENE_HEADER)).toBe("applied");
  expect(state.accessToken).toBe("tok");
  expect(state.envVars).toEqual({ A: "1" });
  expect(sys.clock).toEqual([1900000000123456789n]); // to the ns: not through a double
  expect(sys.entropy).toEqual(["07".repeat(64)]);
  expect(sys.hostname).toEqual(["sbx-a-1"]);
  expect(readFileSync(sys.idFile, "utf8")).toBe("sbx_a-1\n");
});

test("an /init without hygiene (the SDK's, a cold boot's) applies none and does not confirm any", async () => {
  const sys = recorder();
  const res = await postInit(init({ envVars: {}, timestamp: new Date().toISOString() }), newAgentState(), sys);
  expect(res.status).toBe(204);
  expect(res.headers.get(AGENT_HYGIENE_HEADER)).toBeNull();
  expect([sys.clock, sys.entropy, sys.hostname]).toEqual([[], [], []]);
  expect(existsSync(sys.idFile)).toBe(false);
});

test("once a token is set, a caller without it cannot re-identify the clone or move its clock", async () => {
  const state = newAgentState();
  const sys = recorder();
  expect((await postInit(init({ accessToken: "tok", hygiene: HYGIENE }), state, sys)).status).toBe(204);
  const forged = { hygiene: { ...HYGIENE, id: "other", hostname: "other", timeNs: "1" } };
  expect((await postInit(init(forged), state, sys)).status).toBe(401);
  expect((await postInit(init(forged, "wrong"), state, sys)).status).toBe(401);
  expect(readFileSync(sys.idFile, "utf8")).toBe("sbx_a-1\n");
  expect(sys.clock).toEqual([1900000000123456789n]);
  // The host, with the token it holds (a resume's), can.
  const res = await postInit(init({ accessToken: "tok", hygiene: forged.hygiene }, "tok"), state, sys);
  expect(res.headers.get(AGENT_HYGIENE_HEADER)).toBe("applied");
  expect(readFileSync(sys.idFile, "utf8")).toBe("other\n");
});

test("malformed hygiene is refused whole (400), before anything is applied", async () => {
  const bad = [
    { ...HYGIENE, id: "../etc" },
    { ...HYGIENE, hostname: "a b" },
    { ...HYGIENE, hostname: "-x" },
    { ...HYGIENE, timeNs: 1900000000123456789 },
    { ...HYGIENE, timeNs: "-1" },
    { ...HYGIENE, entropy: "!!" },
    { ...HYGIENE, entropy: Buffer.alloc(513).toString("base64") },
    "hygiene",
  ];
  for (const h of bad) {
    const state = newAgentState();
    const sys = recorder();
    const res = await postInit(init({ accessToken: "tok", hygiene: h }), state, sys);
    expect(res.status).toBe(400);
    expect(state.accessToken).toBeUndefined();
    expect([sys.clock, sys.entropy, sys.hostname]).toEqual([[], [], []]);
  }
});

test("hygiene the kernel refuses fails the /init (500), so the host does not open a clone that shares its CRNG", async () => {
  const res = await postInit(init({ hygiene: HYGIENE }), newAgentState(), recorder(false));
  expect(res.status).toBe(500);
  expect(res.headers.get(AGENT_HYGIENE_HEADER)).toBeNull();
  expect(await res.text()).toContain("clone hygiene: clock_settime failed");
});

test("the agent binds libc when it starts, not at a clone's first /init (whose hygiene would then compile it)", () => {
  // A process of its own: another test file in this one may have loaded libc already.
  const code = `import { startAgent } from "./server.ts"; import { libcLoaded } from "./libc.ts";
    const before = libcLoaded(); const a = startAgent({ port: 0, hostname: "127.0.0.1" }); console.log(before, libcLoaded()); a.stop();`;
  const r = Bun.spawnSync(["bun", "-e", code], { cwd: import.meta.dir, stdout: "pipe", stderr: "pipe" });
  expect(r.stdout.toString().trim()).toBe("false true");
});
