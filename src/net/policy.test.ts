// The egress policy: E2B configs compiled (and refused with the field named), then applied to a slot's real maps and
// checked with BPF_PROG_TEST_RUN on frames from the guest.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BpfNet, TC_ACT } from "../sys/bpf-net.ts";
import { OneboxError } from "../util/errors.ts";
import { parseIpv4, parseMac } from "../util/ipv4.ts";
import { eth, ETH_P_IP, ipv4, PROTO, udp } from "../util/test-frames.ts";
import { alwaysDenied, applyPolicy, clearPolicy, compilePolicy, dnsVerdict, formatCidr, nameVerdict, parseIpEntry, POLICY_LIMITS, proxiesNames, syncHostDeny } from "./policy.ts";

const badField = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OneboxError);
    expect((e as OneboxError).kind).toBe("bad-request");
    return (e as Error).message;
  }
  throw new Error("expected a 400");
};

describe("compilePolicy", () => {
  test("IPs, CIDRs (host bits cleared), domains and wildcards; duplicates once; internet off = deny 0.0.0.0/0", () => {
    const p = compilePolicy({ allowOut: ["8.8.8.8", "10.1.2.3/8", "Example.COM", "*.example.com", "8.8.8.8/32"], denyOut: ["1.2.3.4/24"], allowInternetAccess: false });
    expect(p.allow.map(formatCidr)).toEqual(["8.8.8.8/32", "10.0.0.0/8"]);
    expect(p.deny.map(formatCidr)).toEqual(["1.2.3.0/24", "0.0.0.0/0"]);
    expect(p.domains).toEqual(["example.com", "*.example.com"]);
    expect(compilePolicy({})).toEqual({ allow: [], deny: [], domains: [] });
  });

  test("bad entries are 400s naming the field and index", () => {
    expect(badField(() => compilePolicy({ allowOut: ["1.2.3.4", "not a name"] }))).toContain("network.allowOut[1]");
    expect(badField(() => compilePolicy({ allowOut: ["::1"] }))).toContain("network.allowOut[0]");
    expect(badField(() => compilePolicy({ allowOut: ["1.2.3.999"] }))).toContain("network.allowOut[0]");
    expect(badField(() => compilePolicy({ allowOut: ["1.2.3.4/33"] }))).toContain("network.allowOut[0]");
    expect(badField(() => compilePolicy({ allowOut: ["*"] }))).toContain("network.allowOut[0]");
    expect(badField(() => compilePolicy({ denyOut: ["0.0.0.0/0", "example.com"] }))).toContain("network.denyOut[1]");
    expect(badField(() => compilePolicy({ denyOut: ["x"] }, "body"))).toContain("body.denyOut[0]");
  });

  test("a domain in allowOut requires 0.0.0.0/0 in denyOut (E2B's rule), or internet off", () => {
    expect(badField(() => compilePolicy({ allowOut: ["example.com"] }))).toContain("0.0.0.0/0");
    expect(badField(() => compilePolicy({ allowOut: ["example.com"], denyOut: ["1.0.0.0/8"] }))).toContain("network.allowOut");
    expect(compilePolicy({ allowOut: ["example.com"], denyOut: ["0.0.0.0/0"] }).domains).toEqual(["example.com"]);
    expect(compilePolicy({ allowOut: ["example.com"], allowInternetAccess: false }).domains).toEqual(["example.com"]);
  });

  test("limits: entries and domains", () => {
    const ips = (n: number) => Array.from({ length: n }, (_, i) => `203.0.${i >> 8}.${i & 255}`);
    expect(compilePolicy({ allowOut: ips(POLICY_LIMITS.entries) }).allow.length).toBe(POLICY_LIMITS.entries);
    expect(badField(() => compilePolicy({ allowOut: ips(POLICY_LIMITS.entries), denyOut: ["1.1.1.1"] }))).toContain(`at most ${POLICY_LIMITS.entries}`);
    const names = (n: number) => Array.from({ length: n }, (_, i) => `h${i}.example.com`);
    expect(compilePolicy({ allowOut: names(POLICY_LIMITS.domains), denyOut: ["0.0.0.0/0"] }).domains.length).toBe(POLICY_LIMITS.domains);
    expect(badField(() => compilePolicy({ allowOut: names(POLICY_LIMITS.domains + 1), denyOut: ["0.0.0.0/0"] }))).toContain(`at most ${POLICY_LIMITS.domains}`);
  });
});

describe("dnsVerdict: what the DNS forwarder resolves for a slot", () => {
  test("no policy, or one that does not deny 0.0.0.0/0: every name", () => {
    expect(dnsVerdict(null, "anything.example")).toBe("forward");
    expect(dnsVerdict(compilePolicy({ denyOut: ["203.0.113.0/24"] }), "anything.example")).toBe("forward");
  });

  test("internet off: nothing resolves (no query leaves the host), even with allowed IPs", () => {
    expect(dnsVerdict(compilePolicy({ allowInternetAccess: false }), "example.com")).toBe("refuse");
    expect(dnsVerdict(compilePolicy({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] }), "example.com")).toBe("refuse");
  });

  test("a domain allowlist: exact names, and wildcards for names under them at any depth but not the apex", () => {
    const p = compilePolicy({ allowOut: ["api.example.com", "*.cdn.example"], denyOut: ["0.0.0.0/0"] });
    expect(["api.example.com", "a.cdn.example", "x.y.cdn.example", "cdn.example", "example.com", "evilapi.example.com", "api.example.com.evil"].map((n) => dnsVerdict(p, n)))
      .toEqual(["forward", "forward", "forward", "refuse", "refuse", "refuse", "refuse"]);
  });
});

describe("nameVerdict: what the name proxy lets through (SNI or Host of TCP 80/443 to a learned address)", () => {
  const p = compilePolicy({ allowOut: ["allowed.test", "*.cdn.example", "203.0.113.20"], denyOut: ["0.0.0.0/0"] });

  test("a name an allowed domain matches, exactly or under a wildcard; any other name, or none, is refused", () => {
    expect(["allowed.test", "a.cdn.example", "x.y.cdn.example", "other.test", "cdn.example", "sub.allowed.test", "allowed.test.evil", "203.0.113.20"].map((n) => nameVerdict(p, n)))
      .toEqual(["allow", "allow", "allow", "refuse", "refuse", "refuse", "refuse", "refuse"]);
    expect(nameVerdict(p, null)).toBe("refuse"); // no SNI / no Host: a learned address may serve any name
    expect(nameVerdict(null, "allowed.test")).toBe("refuse"); // not a sandbox's connection
  });

  test("only a policy with domains sends traffic to the proxy; IP/CIDR rules alone keep the fast path", () => {
    expect(proxiesNames(p)).toBe(true);
    expect(proxiesNames(compilePolicy({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] }))).toBe(false);
    expect(proxiesNames(null)).toBe(false);
  });
});

describe("alwaysDenied: where the proxy (the host itself) must not connect for a sandbox", () => {
  const c = (s: string) => parseIpEntry(s)!;
  const hostDeny = [c("198.18.0.0/16"), c("198.51.100.77")];
  test("the reserved ranges, the host's addresses and the sandbox range; an operator-opened range is not", () => {
    const at = (ip: string, open: string[] = []) => alwaysDenied(parseIpv4(ip), hostDeny, open.map(c));
    expect(["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.9", "198.51.100.77"].filter((ip) => !at(ip))).toEqual([]);
    expect(["203.0.113.10", "1.1.1.1", "198.51.100.78", "172.32.0.1", "11.0.0.1"].filter((ip) => at(ip))).toEqual([]);
    expect(at("198.51.100.77", ["198.51.100.0/24"])).toBe(false);
    expect(at("10.1.2.3", ["10.1.2.3"])).toBe(false);
    expect(at("10.1.2.4", ["10.1.2.3"])).toBe(true);
  });
});

const root = process.getuid?.() === 0;
const GUEST_IP = parseIpv4("169.254.68.6");
const GUEST_MAC = parseMac("02:00:a9:fe:44:06");
const GATEWAY_MAC = parseMac("02:00:a9:fe:44:05");
const IFINDEX = 1; // loopback stands for the TAP under test_run

describe.skipIf(!root)("applyPolicy on a slot's maps (BPF_PROG_TEST_RUN)", () => {
  let bpf: BpfNet;
  beforeAll(async () => {
    bpf = await BpfNet.open(null);
    bpf.setSlot(IFINDEX, { slotIp: parseIpv4("198.18.0.7"), guestIp: GUEST_IP, gatewayIp: parseIpv4("169.254.68.5"), guestMac: GUEST_MAC, gatewayMac: GATEWAY_MAC, flags: 0 });
  });
  afterAll(() => bpf?.close());

  const verdict = (dst: string) => {
    const d = parseIpv4(dst);
    const frame = eth(GATEWAY_MAC, GUEST_MAC, ETH_P_IP, ipv4({ src: GUEST_IP, dst: d, proto: PROTO.UDP, payload: udp(GUEST_IP, d, 40000, 9, new Uint8Array(4)) }));
    return bpf.testRun("from-guest", IFINDEX, frame).verdict === TC_ACT.OK ? "pass" : "drop";
  };

  test("internet off + one allowed address; replaced by a deny-list; cleared", () => {
    applyPolicy(bpf, IFINDEX, compilePolicy({ allowOut: ["203.0.113.10"], allowInternetAccess: false }));
    expect([verdict("203.0.113.10"), verdict("203.0.113.11"), verdict("1.1.1.1")]).toEqual(["pass", "drop", "drop"]);

    applyPolicy(bpf, IFINDEX, compilePolicy({ denyOut: ["203.0.113.0/24"] }));
    expect([verdict("203.0.113.10"), verdict("203.0.113.11"), verdict("1.1.1.1")]).toEqual(["drop", "drop", "pass"]);
    expect(bpf.slotRules("onebox_allow_out", IFINDEX)).toEqual([]);
    expect(bpf.slotRules("onebox_deny_out", IFINDEX).map(formatCidr)).toEqual(["203.0.113.0/24"]);

    clearPolicy(bpf, IFINDEX);
    expect([verdict("203.0.113.10"), verdict("1.1.1.1")]).toEqual(["pass", "pass"]);
    expect(bpf.slotRules("onebox_deny_out", IFINDEX)).toEqual([]);
  });

  test("re-applying the same policy writes nothing new and keeps it", () => {
    const p = compilePolicy({ allowOut: ["203.0.113.10", "198.51.100.0/24"], denyOut: ["0.0.0.0/0"] });
    applyPolicy(bpf, IFINDEX, p);
    applyPolicy(bpf, IFINDEX, p);
    expect(bpf.slotRules("onebox_allow_out", IFINDEX).map(formatCidr).sort()).toEqual(["198.51.100.0/24", "203.0.113.10/32"]);
    expect([verdict("198.51.100.77"), verdict("8.8.8.8")]).toEqual(["pass", "drop"]);
    clearPolicy(bpf, IFINDEX);
  });

  test("a slot's first policy (fresh) is written without a walk of the tries, and enforced", () => {
    let walks = 0;
    const counting = new Proxy(bpf, {
      get(target, key) {
        if (key === "slotRules") walks++;
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    applyPolicy(counting, IFINDEX, compilePolicy({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] }), true);
    expect(walks).toBe(0);
    expect([verdict("203.0.113.10"), verdict("203.0.113.11")]).toEqual(["pass", "drop"]);
    clearPolicy(bpf, IFINDEX);
  });

  test("syncHostDeny: the sandbox range and host addresses are denied; a later sync replaces the set", () => {
    syncHostDeny(bpf, ["198.18.0.0/16", "203.0.113.10"]);
    expect([verdict("198.18.0.8"), verdict("203.0.113.10"), verdict("203.0.113.11")]).toEqual(["drop", "drop", "pass"]);
    syncHostDeny(bpf, ["198.18.0.0/16"]);
    expect([verdict("198.18.0.8"), verdict("203.0.113.10")]).toEqual(["drop", "pass"]);
    syncHostDeny(bpf, []);
    expect(bpf.globalRanges("onebox_host_deny")).toEqual([]);
  });
});
