// The doctor's route parsing and overlap check (the live checks run in `onebox doctor`).
import { expect, test } from "bun:test";
import { overlappingRoutes, parseProcRoutes } from "./host-checks.ts";
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
