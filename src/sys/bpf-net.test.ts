// The eBPF translation programs under BPF_PROG_TEST_RUN on crafted frames: bytes and checksums, both ways.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BpfNet, PROXY_MARK, TC_ACT, type DropReason } from "./bpf-net.ts";
import { readdirSync, readFileSync } from "node:fs";
import { formatIpv4, parseCidr, parseIpv4, parseMac } from "../util/ipv4.ts";
import {
  arp, checksum, eth, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, icmp, ipv4, l4ChecksumOk, parseIpv4Frame, PROTO, tcp, udp,
} from "../util/test-frames.ts";

const root = process.getuid?.() === 0;
const GUEST_IP = parseIpv4("169.254.68.6");
const GATEWAY_IP = parseIpv4("169.254.68.5");
const SLOT_IP = parseIpv4("198.18.0.7");
const REMOTE = parseIpv4("203.0.113.10");
const GUEST_MAC = parseMac("02:00:a9:fe:44:06");
const GATEWAY_MAC = parseMac("02:00:a9:fe:44:05");
const OTHER_MAC = parseMac("02:00:00:00:00:99");
/** test_run puts the frame on a real device: loopback (ifindex 1) stands for the TAP. */
const IFINDEX = 1;

let bpf: BpfNet;
beforeAll(async () => {
  if (!root) return;
  bpf = await BpfNet.open(null); // unpinned: this test's own maps
  bpf.setSlot(IFINDEX, { slotIp: SLOT_IP, guestIp: GUEST_IP, gatewayIp: GATEWAY_IP, guestMac: GUEST_MAC, gatewayMac: GATEWAY_MAC, flags: 0 });
});
afterAll(() => bpf?.close());

const fromGuest = (payload: Uint8Array, type = ETH_P_IP, src = GUEST_MAC, dst = GATEWAY_MAC) => eth(dst, src, type, payload);
const toGuest = (payload: Uint8Array) => eth(GATEWAY_MAC, OTHER_MAC, ETH_P_IP, payload); // as the host kernel sends it

/** Runs a program and checks which drop counter moved (or that none did). */
function run(which: "from-guest" | "to-guest", frame: Uint8Array, dropped?: DropReason) {
  const before = bpf.drops();
  const r = bpf.testRun(which, IFINDEX, frame);
  const after = bpf.drops();
  const moved = (Object.keys(after) as DropReason[]).filter((k) => after[k] !== before[k]);
  expect(moved).toEqual(dropped ? [dropped] : []);
  expect(r.verdict).toBe(dropped ? TC_ACT.SHOT : r.verdict);
  return r;
}

/** Bytes that differ between two frames of equal length, as offsets. */
function diffOffsets(a: Uint8Array, b: Uint8Array): number[] {
  expect(b.length).toBe(a.length);
  const d: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d.push(i);
  return d;
}

describe.skipIf(!root)("from the guest (tc ingress of the TAP)", () => {
  test("TCP: source guest IP -> slot IP, IP and TCP checksums valid, nothing else changed", () => {
    const seg = tcp(GUEST_IP, REMOTE, 40000, 80, new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    const frame = fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.TCP, payload: seg }));
    const r = run("from-guest", frame);
    expect(r.verdict).toBe(TC_ACT.OK);
    const p = parseIpv4Frame(r.frame);
    expect([p.src, p.dst]).toEqual(["198.18.0.7", "203.0.113.10"]);
    expect(p.ipChecksumOk).toBe(true);
    expect(l4ChecksumOk(SLOT_IP, REMOTE, PROTO.TCP, p.payload)).toBe(true);
    // Only the source address (26-29), the IP checksum (24-25) and the TCP checksum (14+20+16..17) may change.
    for (const o of diffOffsets(frame, r.frame)) expect([24, 25, 26, 27, 28, 29, 50, 51]).toContain(o);
  });

  test("UDP: checksum fixed; a UDP checksum of 0 (none) stays 0", () => {
    const seg = udp(GUEST_IP, REMOTE, 5353, 53, new Uint8Array([1, 2, 3, 4, 5]));
    const r = run("from-guest", fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.UDP, payload: seg })));
    const p = parseIpv4Frame(r.frame);
    expect(p.src).toBe("198.18.0.7");
    expect(p.ipChecksumOk).toBe(true);
    expect(new DataView(p.payload.buffer).getUint16(6)).not.toBe(0);
    expect(l4ChecksumOk(SLOT_IP, REMOTE, PROTO.UDP, p.payload)).toBe(true);

    const none = udp(GUEST_IP, REMOTE, 5353, 53, new Uint8Array([9, 9]), false);
    const r0 = run("from-guest", fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.UDP, payload: none })));
    const p0 = parseIpv4Frame(r0.frame);
    expect(p0.src).toBe("198.18.0.7");
    expect(new DataView(p0.payload.buffer).getUint16(6)).toBe(0);
  });

  test("ICMP echo: source rewritten, the ICMP checksum (no pseudo-header) untouched and valid", () => {
    const msg = icmp(8, 0, 0x00010001, new Uint8Array(32).fill(0x61));
    const frame = fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.ICMP, payload: msg }));
    const r = run("from-guest", frame);
    const p = parseIpv4Frame(r.frame);
    expect(p.src).toBe("198.18.0.7");
    expect(p.ipChecksumOk).toBe(true);
    expect(p.payload).toEqual(msg);
  });

  test("ICMP error from the guest: the quoted header's destination (the guest) becomes the slot address", () => {
    const quotedPkt = ipv4({ src: REMOTE, dst: GUEST_IP, proto: PROTO.UDP, payload: udp(REMOTE, GUEST_IP, 53, 9999, new Uint8Array(4)) });
    const msg = icmp(3, 3, 0, quotedPkt.subarray(0, 28)); // port unreachable: IP header + 8 bytes
    const r = run("from-guest", fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.ICMP, payload: msg })));
    const p = parseIpv4Frame(r.frame);
    expect(p.src).toBe("198.18.0.7");
    expect(p.ipChecksumOk).toBe(true);
    expect(checksum(p.payload)).toBe(0); // the ICMP checksum covers the rewritten quote
    const quoted = p.payload.subarray(8, 28);
    expect(Array.from(quoted.subarray(16, 20))).toEqual([198, 18, 0, 7]);
    expect(checksum(quoted)).toBe(0);
  });

  test("IP options: the TCP header is found after them and its checksum fixed", () => {
    const seg = tcp(GUEST_IP, REMOTE, 40001, 443, new Uint8Array([7, 7, 7]));
    const options = new Uint8Array([1, 1, 1, 0]); // NOP NOP NOP EOL
    const r = run("from-guest", fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.TCP, payload: seg, options })));
    const p = parseIpv4Frame(r.frame);
    expect(p.hlen).toBe(24);
    expect(p.src).toBe("198.18.0.7");
    expect(p.ipChecksumOk).toBe(true);
    expect(l4ChecksumOk(SLOT_IP, REMOTE, PROTO.TCP, p.payload)).toBe(true);
  });

  test("fragments: the first carries the fixed UDP checksum of the whole datagram, later ones only a new IP header", () => {
    const data = new Uint8Array(40).map((_, i) => i);
    const whole = udp(GUEST_IP, REMOTE, 7000, 7001, data); // 48 bytes: fragments of 24 + 24
    const f1 = fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.UDP, payload: whole.subarray(0, 24), id: 77, moreFragments: true }));
    const f2 = fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.UDP, payload: whole.subarray(24), id: 77, fragOffset: 3 }));
    const p1 = parseIpv4Frame(run("from-guest", f1).frame);
    const r2 = run("from-guest", f2);
    const p2 = parseIpv4Frame(r2.frame);
    expect([p1.src, p2.src]).toEqual(["198.18.0.7", "198.18.0.7"]);
    expect(p1.ipChecksumOk && p2.ipChecksumOk).toBe(true);
    const reassembled = new Uint8Array(48);
    reassembled.set(p1.payload, 0);
    reassembled.set(p2.payload, 24);
    expect(l4ChecksumOk(SLOT_IP, REMOTE, PROTO.UDP, reassembled)).toBe(true);
    expect(p2.payload).toEqual(whole.subarray(24)); // the payload of a later fragment is never touched
  });

  test("a first fragment too short to hold the TCP checksum is dropped (RFC 1858)", () => {
    const seg = tcp(GUEST_IP, REMOTE, 1, 2, new Uint8Array(0)).subarray(0, 8);
    run("from-guest", fromGuest(ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.TCP, payload: seg, moreFragments: true })), "tiny-fragment");
  });

  test("ARP request for the gateway: answered from the TAP with the gateway MAC (redirected back out)", () => {
    const req = arp(1, GUEST_MAC, GUEST_IP, new Uint8Array(6), GATEWAY_IP);
    const r = run("from-guest", fromGuest(req, ETH_P_ARP, GUEST_MAC, new Uint8Array(6).fill(0xff)));
    expect(r.verdict).toBe(TC_ACT.REDIRECT);
    expect(r.frame).toEqual(eth(GUEST_MAC, GATEWAY_MAC, ETH_P_ARP, arp(2, GATEWAY_MAC, GATEWAY_IP, GUEST_MAC, GUEST_IP)));
    // ...and the egress program lets exactly that reply pass to the guest.
    expect(run("to-guest", r.frame).verdict).toBe(TC_ACT.OK);
  });

  test("ARP for another address, and ARP replies, are dropped", () => {
    const other = arp(1, GUEST_MAC, GUEST_IP, new Uint8Array(6), parseIpv4("169.254.68.7"));
    run("from-guest", fromGuest(other, ETH_P_ARP, GUEST_MAC, new Uint8Array(6).fill(0xff)), "arp");
    run("to-guest", eth(GUEST_MAC, OTHER_MAC, ETH_P_ARP, arp(1, OTHER_MAC, SLOT_IP, new Uint8Array(6), GUEST_IP)), "arp");
  });

  test("to the gateway address only DNS and ping pass: no other host service is reachable through it", () => {
    const dns = ipv4({ src: GUEST_IP, dst: GATEWAY_IP, proto: PROTO.UDP, payload: udp(GUEST_IP, GATEWAY_IP, 5353, 53, new Uint8Array(12)) });
    expect(parseIpv4Frame(run("from-guest", fromGuest(dns)).frame).src).toBe("198.18.0.7");
    const dnsTcp = ipv4({ src: GUEST_IP, dst: GATEWAY_IP, proto: PROTO.TCP, payload: tcp(GUEST_IP, GATEWAY_IP, 40000, 53, new Uint8Array(0)) });
    expect(run("from-guest", fromGuest(dnsTcp)).verdict).toBe(TC_ACT.OK);
    const ping = ipv4({ src: GUEST_IP, dst: GATEWAY_IP, proto: PROTO.ICMP, payload: icmp(8, 0, 1, new Uint8Array(8)) });
    expect(run("from-guest", fromGuest(ping)).verdict).toBe(TC_ACT.OK);
    const api = ipv4({ src: GUEST_IP, dst: GATEWAY_IP, proto: PROTO.TCP, payload: tcp(GUEST_IP, GATEWAY_IP, 40001, 3000, new Uint8Array(0)) });
    run("from-guest", fromGuest(api), "gateway-port");
    const ssh = ipv4({ src: GUEST_IP, dst: GATEWAY_IP, proto: PROTO.TCP, payload: tcp(GUEST_IP, GATEWAY_IP, 40002, 22, new Uint8Array(0)) });
    run("from-guest", fromGuest(ssh), "gateway-port");
    const frag = ipv4({ src: GUEST_IP, dst: GATEWAY_IP, proto: PROTO.UDP, payload: new Uint8Array(16), fragOffset: 2 });
    run("from-guest", fromGuest(frag), "gateway-port");
  });

  test("too short, spoofed, IPv6 and not-to-the-gateway frames are dropped", () => {
    const good = ipv4({ src: GUEST_IP, dst: REMOTE, proto: PROTO.UDP, payload: udp(GUEST_IP, REMOTE, 1, 2, new Uint8Array(2)) });
    // The kernel's test_run refuses an IPv4 frame shorter than 20 bytes of IP header; the program sees short ones as
    // an IP header claiming 60 bytes in a 20-byte frame, and as a truncated ARP.
    const claimsOptions = good.slice(0, 20);
    claimsOptions[0] = 0x4f;
    run("from-guest", fromGuest(claimsOptions), "short");
    run("to-guest", eth(GATEWAY_MAC, OTHER_MAC, ETH_P_IP, claimsOptions), "short");
    run("from-guest", fromGuest(new Uint8Array(10), ETH_P_ARP, GUEST_MAC, new Uint8Array(6).fill(0xff)), "short");
    run("from-guest", fromGuest(good, ETH_P_IP, OTHER_MAC), "spoof");
    const spoofIp = ipv4({ src: parseIpv4("169.254.68.9"), dst: REMOTE, proto: PROTO.UDP, payload: new Uint8Array(8) });
    run("from-guest", fromGuest(spoofIp), "spoof");
    run("from-guest", fromGuest(new Uint8Array(60), ETH_P_IPV6), "not-ipv4");
    run("from-guest", fromGuest(good, ETH_P_IP, GUEST_MAC, new Uint8Array(6).fill(0xff)), "not-gateway");
    const badVersion = good.slice();
    badVersion[0] = 0x65;
    run("from-guest", fromGuest(badVersion), "bad-ip");
  });
});

describe.skipIf(!root)("to the guest (tc egress of the TAP)", () => {
  test("TCP: destination slot IP -> guest IP, MACs gateway -> guest, checksums valid", () => {
    const seg = tcp(REMOTE, SLOT_IP, 80, 40000, new TextEncoder().encode("HTTP/1.1 200 OK\r\n"));
    const r = run("to-guest", toGuest(ipv4({ src: REMOTE, dst: SLOT_IP, proto: PROTO.TCP, payload: seg })));
    expect(r.verdict).toBe(TC_ACT.OK);
    const p = parseIpv4Frame(r.frame);
    expect([p.src, p.dst]).toEqual(["203.0.113.10", "169.254.68.6"]);
    expect(p.dstMac).toEqual(GUEST_MAC);
    expect(p.srcMac).toEqual(GATEWAY_MAC);
    expect(p.ipChecksumOk).toBe(true);
    expect(l4ChecksumOk(REMOTE, GUEST_IP, PROTO.TCP, p.payload)).toBe(true);
  });

  test("UDP back to the guest", () => {
    const seg = udp(REMOTE, SLOT_IP, 53, 5353, new Uint8Array([1, 2, 3]));
    const p = parseIpv4Frame(run("to-guest", toGuest(ipv4({ src: REMOTE, dst: SLOT_IP, proto: PROTO.UDP, payload: seg }))).frame);
    expect(p.dst).toBe("169.254.68.6");
    expect(l4ChecksumOk(REMOTE, GUEST_IP, PROTO.UDP, p.payload)).toBe(true);
  });

  test("ICMP fragmentation-needed about the guest's packet: the quoted source becomes the guest address (PMTU works)", () => {
    const sent = ipv4({ src: SLOT_IP, dst: REMOTE, proto: PROTO.TCP, payload: tcp(SLOT_IP, REMOTE, 40000, 80, new Uint8Array(0)) });
    const msg = icmp(3, 4, 1400, sent.subarray(0, 28));
    const p = parseIpv4Frame(run("to-guest", toGuest(ipv4({ src: REMOTE, dst: SLOT_IP, proto: PROTO.ICMP, payload: msg }))).frame);
    expect(p.dst).toBe("169.254.68.6");
    expect(checksum(p.payload)).toBe(0);
    const quoted = p.payload.subarray(8, 28);
    expect(Array.from(quoted.subarray(12, 16))).toEqual([169, 254, 68, 6]);
    expect(checksum(quoted)).toBe(0);
  });

  test("a frame not for the slot's address, and IPv6, never reach the guest", () => {
    const stray = ipv4({ src: REMOTE, dst: parseIpv4("198.18.0.8"), proto: PROTO.UDP, payload: new Uint8Array(8) });
    run("to-guest", toGuest(stray), "not-slot");
    run("to-guest", eth(GATEWAY_MAC, OTHER_MAC, ETH_P_IPV6, new Uint8Array(60)), "not-ipv4");
  });

  test("a TAP without a slot entry passes nothing", () => {
    bpf.deleteSlot(IFINDEX);
    try {
      const seg = udp(REMOTE, SLOT_IP, 53, 5353, new Uint8Array(3));
      run("to-guest", toGuest(ipv4({ src: REMOTE, dst: SLOT_IP, proto: PROTO.UDP, payload: seg })), "no-slot");
    } finally {
      bpf.setSlot(IFINDEX, { slotIp: SLOT_IP, guestIp: GUEST_IP, gatewayIp: GATEWAY_IP, guestMac: GUEST_MAC, gatewayMac: GATEWAY_MAC, flags: 0 });
    }
  });
});

describe.skipIf(!root)("the egress policy (from the guest, after the spoof checks)", () => {
  const cidr = (s: string) => parseCidr(s.includes("/") ? s : `${s}/32`);
  const udpTo = (dst: string) => {
    const d = parseIpv4(dst);
    return fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.UDP, payload: udp(GUEST_IP, d, 40000, 9, new Uint8Array(4)) }));
  };
  const passes = (dst: string, ifindex = IFINDEX) => {
    const before = bpf.drops();
    const r = bpf.testRun("from-guest", ifindex, udpTo(dst));
    expect({ dst, verdict: r.verdict }).toEqual({ dst, verdict: TC_ACT.OK });
    expect(bpf.drops()).toEqual(before);
    expect(parseIpv4Frame(r.frame).src).toBe("198.18.0.7");
  };
  const dropped = (dst: string, reason: DropReason, ifindex = IFINDEX) => {
    const before = bpf.slotDrops(ifindex)[reason];
    const r = bpf.testRun("from-guest", ifindex, udpTo(dst));
    expect({ dst, verdict: r.verdict }).toEqual({ dst, verdict: TC_ACT.SHOT });
    expect(bpf.slotDrops(ifindex)[reason]).toBe(before + 1); // counted for this slot, under this reason
  };
  const clearRules = (ifindex = IFINDEX) => {
    for (const m of ["onebox_allow_out", "onebox_deny_out"] as const) for (const c of bpf.slotRules(m, ifindex)) bpf.slotRuleDel(m, ifindex, c);
  };

  test("every row of the always-denied list is dropped with no policy at all; their neighbours pass", () => {
    for (const dst of [
      "0.0.0.0", "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255",
      "192.168.0.1", "192.168.255.255", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255",
      "224.0.0.251", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    ]) dropped(dst, "reserved");
    for (const dst of ["11.0.0.1", "9.255.255.255", "172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1",
      "100.63.255.255", "100.128.0.1", "169.253.255.255", "223.255.255.255", "1.1.1.1", REMOTE_S]) passes(dst);
  });

  test("the host's addresses and the sandbox range (filled by the daemon) are dropped as host", () => {
    bpf.globalRangeAdd("onebox_host_deny", cidr("203.0.113.77"));
    bpf.globalRangeAdd("onebox_host_deny", cidr("198.18.0.0/16"));
    try {
      dropped("203.0.113.77", "host");
      dropped("198.18.0.8", "host"); // another sandbox's slot address
      dropped("198.18.0.7", "host"); // its own slot address too (hairpin through the host)
      passes("203.0.113.78");
      expect(bpf.globalRanges("onebox_host_deny").map((c) => `${formatIpv4(c.base)}/${c.prefix}`).sort()).toEqual(["198.18.0.0/16", "203.0.113.77/32"]);
    } finally {
      bpf.globalRangeDel("onebox_host_deny", cidr("203.0.113.77"));
      bpf.globalRangeDel("onebox_host_deny", cidr("198.18.0.0/16"));
    }
  });

  test("the gateway's DNS still passes under deny 0.0.0.0/0 (the forwarder decides what resolves)", () => {
    bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("0.0.0.0/0"));
    try {
      const d = parseIpv4(GATEWAY_S);
      const dns = fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.UDP, payload: udp(GUEST_IP, d, 5353, 53, new Uint8Array(12)) }));
      expect(run("from-guest", dns).verdict).toBe(TC_ACT.OK);
      dropped("203.0.113.10", "policy");
    } finally {
      clearRules();
    }
  });

  test("an operator-opened range skips the always-denied list, and only that range; the slot's policy still applies", () => {
    bpf.globalRangeAdd("onebox_open", cidr("10.9.0.0/16"));
    try {
      passes("10.9.1.1");
      dropped("10.8.1.1", "reserved");
      bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("0.0.0.0/0"));
      dropped("10.9.1.1", "policy");
    } finally {
      bpf.globalRangeDel("onebox_open", cidr("10.9.0.0/16"));
      clearRules();
    }
    dropped("10.9.1.1", "reserved");
  });

  test("a policy allow does not open the always-denied list", () => {
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("0.0.0.0/0"));
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("169.254.169.254"));
    try {
      dropped("169.254.169.254", "reserved");
      dropped("127.0.0.1", "reserved");
    } finally {
      clearRules();
    }
  });

  test("internet off (deny 0.0.0.0/0) with one allowed /32: exactly that address passes; /32 edges", () => {
    bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("0.0.0.0/0"));
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("203.0.113.10"));
    try {
      passes("203.0.113.10");
      dropped("203.0.113.11", "policy");
      dropped("203.0.113.9", "policy");
      dropped("1.1.1.1", "policy");
      dropped("223.255.255.255", "policy");
    } finally {
      clearRules();
    }
  });

  test("TCP to an address learned for an allowed name is marked for the name proxy; one allowed by a rule is not", () => {
    const tcpTo = (dst: string, port: number) => {
      const d = parseIpv4(dst);
      return fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.TCP, payload: tcp(GUEST_IP, d, 40000, port, new Uint8Array(0)) }));
    };
    bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("0.0.0.0/0"));
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("203.0.113.10")); // allowOut: an IP rule (the fast path)
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("203.0.113.20"), true); // learned from an allowed name's answer
    try {
      for (const port of [80, 443]) {
        const learned = run("from-guest", tcpTo("203.0.113.20", port));
        expect({ verdict: learned.verdict, mark: learned.mark }).toEqual({ verdict: TC_ACT.OK, mark: PROXY_MARK });
        const rule = run("from-guest", tcpTo("203.0.113.10", port));
        expect({ verdict: rule.verdict, mark: rule.mark }).toEqual({ verdict: TC_ACT.OK, mark: 0 });
      }
      expect(run("from-guest", udpTo("203.0.113.20")).mark).toBe(0); // only TCP goes to the proxy (nft picks 80/443)
      dropped("203.0.113.30", "policy");
    } finally {
      clearRules();
    }
  });

  test("allow beats deny: a wider allow wins over a narrower deny, and a /32 deny inside a /24", () => {
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("203.0.113.0/24"));
    bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("203.0.113.10"));
    bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("198.51.100.0/24"));
    try {
      passes("203.0.113.10"); // denied by a /32, allowed by the /24: allowed
      dropped("198.51.100.1", "policy");
      passes("198.51.101.1"); // outside every rule: E2B's default is allow
    } finally {
      clearRules();
    }
  });

  test("per-slot isolation: slot A's allow does not open slot B, nor A's deny close B", () => {
    const other = otherIfindex();
    if (other === null) return; // no second device in this namespace
    bpf.setSlot(other, { slotIp: SLOT_IP, guestIp: GUEST_IP, gatewayIp: GATEWAY_IP, guestMac: GUEST_MAC, gatewayMac: GATEWAY_MAC, flags: 0 });
    try {
      bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("0.0.0.0/0"));
      bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("203.0.113.10"));
      bpf.slotRuleAdd("onebox_deny_out", other, cidr("203.0.113.0/24"));
      passes("203.0.113.10", IFINDEX);
      dropped("203.0.113.10", "policy", other); // A's allow is not B's
      passes("1.1.1.1", other); // A's deny-all is not B's
      dropped("1.1.1.1", "policy", IFINDEX);
      expect(bpf.slotRules("onebox_deny_out", other).map((c) => `${formatIpv4(c.base)}/${c.prefix}`)).toEqual(["203.0.113.0/24"]);
    } finally {
      clearRules();
      bpf.deleteSlot(other);
    }
    // deleteSlot took B's rules and counters with it: a later TAP with that ifindex starts clean.
    expect(bpf.slotRules("onebox_deny_out", other)).toEqual([]);
    expect(bpf.slotDrops(other).policy).toBe(0);
  });
});

describe.skipIf(!root)("the egress policy cuts established flows both ways (to the guest)", () => {
  const cidr = (s: string) => parseCidr(s.includes("/") ? s : `${s}/32`);
  const from = (src: string, proto: number = PROTO.TCP) => {
    const s = parseIpv4(src);
    const payload = proto === PROTO.TCP ? tcp(s, SLOT_IP, 80, 40000, new Uint8Array(8)) : proto === PROTO.UDP ? udp(s, SLOT_IP, 53, 40000, new Uint8Array(8)) : icmp(3, 4, 1400, new Uint8Array(28));
    return toGuest(ipv4({ src: s, dst: SLOT_IP, proto, payload }));
  };
  test("a reply from a peer the slot now denies is dropped as policy; an allowed one, ICMP errors and the gateway's DNS pass", () => {
    bpf.slotRuleAdd("onebox_deny_out", IFINDEX, cidr("0.0.0.0/0"));
    bpf.slotRuleAdd("onebox_allow_out", IFINDEX, cidr("203.0.113.10"));
    try {
      const before = bpf.slotDrops(IFINDEX).policy;
      run("to-guest", from("203.0.113.20"), "policy");
      run("to-guest", from("203.0.113.20", PROTO.UDP), "policy");
      expect(bpf.slotDrops(IFINDEX).policy).toBe(before + 2);
      expect(run("to-guest", from("203.0.113.10")).verdict).toBe(TC_ACT.OK);
      expect(run("to-guest", from("203.0.113.20", PROTO.ICMP)).verdict).toBe(TC_ACT.OK);
      expect(run("to-guest", from(GATEWAY_S, PROTO.UDP)).verdict).toBe(TC_ACT.OK);
    } finally {
      for (const m of ["onebox_allow_out", "onebox_deny_out"] as const) for (const c of bpf.slotRules(m, IFINDEX)) bpf.slotRuleDel(m, IFINDEX, c);
    }
    expect(run("to-guest", from("203.0.113.20")).verdict).toBe(TC_ACT.OK); // no policy: E2B's default
  });
});

const REMOTE_S = "203.0.113.10";
const GATEWAY_S = "169.254.68.5";

/** Another network device of this namespace (test_run needs a real ifindex), or null. */
function otherIfindex(): number | null {
  for (const name of readdirSync("/sys/class/net")) {
    const i = Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8"));
    if (i !== IFINDEX) return i;
  }
  return null;
}
