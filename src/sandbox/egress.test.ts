// The egress policy's wiring into the lifecycle, with the machine layer faked (FakeNet records every policy a slot
// is given, in order with the machine's steps): written into the slot before the vmm spawns (or, for a warm pool
// entry, before the restore), at once on PUT /network, at resume from the row as it is then, and again after a
// daemon restart; a slot that cannot take it fails the start and leaves nothing.
import { afterEach, expect, test } from "bun:test";
import { metricJson, sandboxJson } from "../api/serialize.ts";
import { describePolicy } from "../machine/fake-machine.ts";
import { fakeSandboxes, until, type FakeSandboxes } from "./fake-sandboxes.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

const ONLY_10 = JSON.stringify({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] });
const OPEN_20 = JSON.stringify({ allowOut: ["203.0.113.10", "203.0.113.20"], denyOut: ["0.0.0.0/0"] });
const P_ONLY_10 = "allow=203.0.113.10/32 deny=0.0.0.0/0 domains=";
const P_OPEN_20 = "allow=203.0.113.10/32,203.0.113.20/32 deny=0.0.0.0/0 domains=";
const P_OPEN = "allow= deny= domains=";

/** The policy the slot of sandbox id's live VM holds now. */
function slotPolicy(id: string): string | undefined {
  const fd = s.fm.vm(s.manager.get(id)!.runDir!)!.spec.net!.tapFd;
  const p = s.fm.net.policies.get(fd);
  return p && describePolicy(p);
}

test("create: the stored policy is in the slot before the vmm spawns; allow_internet_access false denies all", async () => {
  s = await fakeSandboxes();
  const a = await s.create({ network: ONLY_10 });
  expect(slotPolicy(a.id)).toBe(P_ONLY_10);
  const tap = `obx${s.fm.vm(a.runDir!)!.spec.net!.tapFd}`;
  expect(s.fm.net.policySetAt.get(tap)![0]).toBeLessThanOrEqual(s.fm.calls.indexOf("spawn"));
  const b = await s.create({ allowInternetAccess: false });
  expect(slotPolicy(b.id)).toBe("allow= deny=0.0.0.0/0 domains=");
  const c = await s.create(); // no policy: E2B's default (open), written all the same
  expect(slotPolicy(c.id)).toBe(P_OPEN);
});

test("PUT /network on a running sandbox replaces its slot's policy at once; on a paused one, resume's new slot gets it", async () => {
  s = await fakeSandboxes();
  const row = await s.create({ network: ONLY_10 });
  s.manager.setNetwork(row.id, OPEN_20, null);
  expect(slotPolicy(row.id)).toBe(P_OPEN_20);
  s.manager.setNetwork(row.id, "{}", false);
  expect(slotPolicy(row.id)).toBe("allow= deny=0.0.0.0/0 domains=");
  await s.manager.pause(row.id);
  await until(() => s.fm.net.held.size === 0);
  s.manager.setNetwork(row.id, ONLY_10, null); // paused: stored only
  expect(s.manager.get(row.id)!.network).toBe(ONLY_10);
  await s.manager.resume(row.id);
  expect(slotPolicy(row.id)).toBe(P_ONLY_10);
  const tap = `obx${s.fm.vm(s.manager.get(row.id)!.runDir!)!.spec.net!.tapFd}`;
  const resumedAt = s.fm.calls.lastIndexOf("spawn");
  expect(s.fm.net.policySetAt.get(tap)![0]).toBeLessThanOrEqual(resumedAt); // before the resumed guest runs
});

test("a PUT while the create boots is not lost: the slot ends with the PUT's policy", async () => {
  s = await fakeSandboxes();
  let open!: () => void;
  s.fm.gate.init = new Promise<void>((r) => (open = r));
  const creating = s.create({ network: ONLY_10 });
  await until(() => s.fm.calls.includes("ready"));
  const id = s.state.sandboxes.inStates(["starting"])[0]!.id;
  s.manager.setNetwork(id, OPEN_20, null); // no live VM yet: stored only
  open();
  const row = await creating;
  expect(slotPolicy(row.id)).toBe(P_OPEN_20);
});

test("a daemon restart writes each adopted sandbox's stored policy into the slot it holds", async () => {
  s = await fakeSandboxes();
  const a = await s.create({ network: ONLY_10 });
  const fd = s.fm.vm(a.runDir!)!.spec.net!.tapFd;
  s.fm.net.policyLog.length = 0;
  await s.restart();
  expect(s.fm.net.policyLog).toEqual([`obx${fd} ${P_ONLY_10}`]);
  s.manager.setNetwork(a.id, OPEN_20, null); // the new daemon finds the adopted slot for a PUT too
  expect(slotPolicy(a.id)).toBe(P_OPEN_20);
});

test("a warm pool entry's slot gets the create's policy before the restore runs its guest", async () => {
  s = await fakeSandboxes({ templateSnapshots: true, warmPoolSize: 1 });
  await s.create();
  await until(() => [...s.fm.vms.values()].some((v) => v.state === "pooled"));
  const pooled = [...s.fm.vms.values()].find((v) => v.state === "pooled")!;
  const row = await s.create({ network: ONLY_10 });
  expect(s.fm.vm(row.runDir!)).toBe(pooled); // it did take the entry
  expect(slotPolicy(row.id)).toBe(P_ONLY_10);
  const setAt = s.fm.net.policySetAt.get(`obx${pooled.spec.net!.tapFd}`)![0]!;
  expect(s.fm.calls.slice(setAt)).toContain("restore"); // the pooled vmm's restore came after
});

test("a slot that cannot take the policy fails the create before any vmm runs, and leaves nothing", async () => {
  s = await fakeSandboxes();
  s.fm.net.failSetPolicy = true;
  await expect(s.create({ network: ONLY_10 })).rejects.toThrow("fake setPolicy failed");
  expect(s.fm.calls).not.toContain("spawn");
  expect(s.fm.net.held.size).toBe(0);
  expect(s.state.sandboxes.inStates(null)).toEqual([]);
});

test("metrics: the packets the sandbox's slot dropped, by reason, in its metrics sample (networkDrops)", async () => {
  s = await fakeSandboxes();
  const row = await s.create({ network: ONLY_10 });
  s.fm.net.dropsByFd.set(s.fm.vm(row.runDir!)!.spec.net!.tapFd, { policy: 3, "gateway-port": 1 });
  const { guest, netDrops } = await s.manager.metrics(row.id);
  expect(netDrops).toEqual({ policy: 3, host: 0, reserved: 0, gatewayPort: 1 });
  const sample = metricJson(guest, netDrops);
  expect(sample.networkDrops).toEqual({ policy: 3, host: 0, reserved: 0, gatewayPort: 1 });
  expect(sample.cpuCount).toBe(1); // E2B's fields as before
  expect("networkDrops" in metricJson(guest)).toBe(false); // no network: no field
});

test("allowPublicTraffic: false issues a trafficAccessToken, returned with the sandbox; otherwise none", async () => {
  s = await fakeSandboxes();
  const priv = await s.create({ network: JSON.stringify({ allowPublicTraffic: false }), allowPublicTraffic: false });
  expect(priv.trafficAccessToken).toMatch(/^.{16,}$/);
  expect(sandboxJson(priv, "localhost").trafficAccessToken).toBe(priv.trafficAccessToken);
  const pub = await s.create();
  expect(pub.trafficAccessToken).toBeNull();
  expect(sandboxJson(pub, "localhost").trafficAccessToken).toBeNull();
});
