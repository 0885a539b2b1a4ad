// The doctor's route parsing and overlap check, and how it reads nft's NAT check (the live checks run in `onebox doctor`).
import { expect, test } from "bun:test";
import { conntrackCheck, NAT_CHECK_SCRIPT, natCheck, overlappingRoutes, parseProcRoutes, runNatCheck } from "./host-checks.ts";
import { PROXY_MARK } from "../sys/bpf-net.ts";
import { parseCidr } from "../util/ipv4.ts";

const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wg0\t000012C6\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
obx3\t030012C6\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0
`;

test("/proc/net/route is read as CIDRs", () => {
  const r = parseProcRoutes(ROUTES).map((x) => `${x.iface} ${x.cidr.base.toString(16)}/${x.cidr.prefix}`);
  expect(r).toEqual(["eth0 0/0", "eth0 c0000200/24", "wg0 c6120000/16", "obx3 c6120003/32"]);
});

test("overlaps name the host's routes, not the default route or onebox's own TAPs", () => {
  expect(overlappingRoutes(parseCidr("198.18.0.0/16"), ROUTES)).toEqual(["198.18.0.0/16 dev wg0"]);
  expect(overlappingRoutes(parseCidr("198.19.0.0/16"), ROUTES)).toEqual([]);
  expect(overlappingRoutes(parseCidr("192.0.0.0/8"), ROUTES)).toEqual(["192.0.2.0/24 dev eth0"]);
});

test("nft's NAT: the check is the name proxy's own DNAT, and a kernel without nft_nat is a partial failure that says how to fix it", () => {
  // What is checked is what the daemon writes (a nat prerouting chain, DNAT of marked TCP 80/443 to the gateway).
  expect(NAT_CHECK_SCRIPT).toContain("type nat hook prerouting priority dstnat");
  expect(NAT_CHECK_SCRIPT).toContain("tcp dport 80 dnat to 169.254.68.5:1");
  expect(NAT_CHECK_SCRIPT).toContain(`meta mark 0x${PROXY_MARK.toString(16)} tcp dport 443 dnat to 169.254.68.5:2`);
  expect(natCheck({ code: 0, err: "" })).toMatchObject({ name: "nft nat", ok: true });
  // nft's own words when the kernel has no nat expression (nft_nat) or chain type (nft_chain_nat).
  for (const err of [
    "/dev/stdin:6:1-82: Error: Could not process rule: No such file or directory\nadd rule ip onebox prerouting meta mark 0x6f627870 tcp dport 80 dnat to 169.254.68.5:1\n",
    "/dev/stdin:2:3-53: Error: Could not process rule: Operation not supported\n",
  ]) {
    const c = natCheck({ code: 1, err });
    expect(c).toMatchObject({ ok: false, partial: true });
    expect(c.detail).toStartWith("nft's NAT is missing from the kernel (nft_nat, nft_chain_nat): domain rules fail closed");
    expect(c.detail).toContain("modprobe nft_nat nft_chain_nat");
  }
  const other = natCheck({ code: 1, err: "Error: Could not process rule: Permission denied\nmore\n" });
  expect(other.detail).toStartWith("nft could not write the name proxy's DNAT: Error: Could not process rule: Permission denied: domain rules fail closed");
});

test("on this host (root, nf_tables with NAT, ctnetlink): the live checks pass and change nothing", async () => {
  if (process.getuid?.() !== 0 || Bun.spawnSync(["nft", "list", "tables"]).exitCode !== 0) return;
  const before = Bun.spawnSync(["nft", "list", "ruleset"]).stdout.toString();
  expect(runNatCheck()).toMatchObject({ name: "nft nat", ok: true });
  expect(await conntrackCheck()).toMatchObject({ name: "conntrack", ok: true });
  expect(Bun.spawnSync(["nft", "list", "ruleset"]).stdout.toString()).toBe(before);
});
