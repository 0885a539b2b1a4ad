// Scenario (run by src/net/packet-path.test.ts in its own namespaces): frames written into two slots' TAP fds as a
// guest would, through the eBPF translation, host routing and nft masquerade to servers on TEST-NET addresses, and
// the replies read back from the TAPs. "The internet" is 203.0.113.10 on this namespace's lo, and 203.0.113.20 in a
// second namespace behind a veth (reached through the masquerade). Prints what each exchange saw.
import { join } from "node:path";
import { Network } from "../network.ts";
import { compilePolicy, formatCidr } from "../policy.ts";
import { applySteering } from "../masquerade.ts";
import { PROXY_MARK } from "../../sys/bpf-net.ts";
import { readQuestion } from "../dns-forwarder.ts";
import type { NetSlot } from "../slot.ts";
import { readFrame, setTapOffload, TUN_F, VNET_HDR_SIZE } from "../../sys/tap.ts";
import { formatMac, parseIpv4, parseMac } from "../../util/ipv4.ts";
import { arp, checksum, eth, ETH_P_ARP, icmp, ipv4, l4ChecksumOk, onesSum, parseIpv4Frame, PROTO, udp } from "../../util/test-frames.ts";
import { GUEST_NET } from "../addresses.ts";
import { sh } from "./run-in-netns.ts";
import { writeSync } from "node:fs";

const work = process.argv[2]!;
const here = import.meta.dir;
sh("ip link set lo up && ip addr add 203.0.113.10/32 dev lo");

async function waitReady(p: Bun.Subprocess<"ignore", "pipe", "inherit">): Promise<void> {
  const reader = p.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error("an echo server did not start");
  reader.releaseLock();
}

async function spawnReady(cmd: string[]): Promise<Bun.Subprocess<"ignore", "pipe", "inherit">> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "inherit" });
  await waitReady(p);
  return p;
}

// The upstream namespace (a child in a network namespace of its own) and the veth to it.
// Its server binds 203.0.113.20 once the address is there, so its replies come from that address.
const upstream = Bun.spawn(["unshare", "--net", "--", process.execPath, `${here}/echo-server.ts`, "203.0.113.20"], { stdout: "pipe", stderr: "inherit" });
await Bun.sleep(200); // its namespace exists once unshare has exec'd
sh(`ip link add up0 type veth peer name up1 && ip link set up1 netns ${upstream.pid}`);
sh("ip addr add 198.51.100.2/24 dev up0 && ip link set up0 up && ip route add 203.0.113.20/32 via 198.51.100.1");
sh(`nsenter -t ${upstream.pid} -n sh -c 'ip link set lo up && ip addr add 198.51.100.1/24 dev up1 && ip link set up1 up && ip addr add 203.0.113.20/32 dev lo'`);
await waitReady(upstream);
const local = await spawnReady([process.execPath, `${here}/echo-server.ts`, "203.0.113.10"]);

// The host's resolver, standing for /etc/resolv.conf's: answers every A query with 203.0.113.10.
const resolverAsked: string[] = [];
const resolver = await Bun.udpSocket({
  hostname: "127.0.0.1",
  socket: {
    data(s, buf, port, addr) {
      const q = new Uint8Array(buf);
      resolverAsked.push(readQuestion(q)?.name ?? "?");
      const r = new Uint8Array(q.length + 16);
      r.set(q);
      r[2] = 0x81;
      r[3] = 0x80;
      r[7] = 1;
      r.set([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 10], q.length);
      s.send(r, port, addr);
    },
  },
});

const net = await Network.start({
  sandboxCidr: "198.18.0.0/24",
  slotPoolSize: 2,
  bpffsRoot: join(work, "bpffs"),
  stateDir: join(work, "state"),
  dnsUpstreams: [{ host: "127.0.0.1", port: resolver.port }],
  openRanges: ["203.0.113.10/32"], // "the internet" of this test is a host address: opened as an operator would
});
const { host, pool } = net;
await pool.whenFilled();
const a = await pool.acquire();
const b = await pool.acquire();

const GUEST_IP = parseIpv4(GUEST_NET.ip);
const GUEST_MAC = parseMac(GUEST_NET.mac);
const GW_MAC = parseMac(GUEST_NET.gatewayMac);

/** Writes a frame as the VMM will: a zeroed virtio-net header (no offloads) then the Ethernet frame. */
function send(slot: NetSlot, frame: Uint8Array): void {
  const buf = new Uint8Array(VNET_HDR_SIZE + frame.length);
  buf.set(frame, VNET_HDR_SIZE);
  writeSync(slot.fd!, buf);
}

/** The next frame the guest would receive, without blocking the event loop (servers answer in this process). */
async function recv(slot: NetSlot, timeoutMs = 3000): Promise<Uint8Array | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const f = await readFrame(slot.fd!, 0);
    if (f) return f.subarray(VNET_HDR_SIZE);
    await Bun.sleep(5);
  }
  return null;
}

async function recvWithHeader(slot: NetSlot, timeoutMs = 3000): Promise<{ hdr: Uint8Array; frame: Uint8Array } | null> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const f = await readFrame(slot.fd!, 0);
    if (f) return { hdr: f.subarray(0, VNET_HDR_SIZE), frame: f.subarray(VNET_HDR_SIZE) };
    await Bun.sleep(5);
  }
  return null;
}

function describe(f: Uint8Array | null) {
  if (!f) return null;
  const type = (f[12]! << 8) | f[13]!;
  if (type === ETH_P_ARP) return { arp: true, dstMac: formatMac(f.subarray(0, 6)), frame: Array.from(f) };
  const p = parseIpv4Frame(f);
  const l4 = p.payload;
  const out: Record<string, unknown> = {
    dstMac: formatMac(p.dstMac), srcMac: formatMac(p.srcMac), src: p.src, dst: p.dst, proto: p.proto, ipChecksumOk: p.ipChecksumOk,
  };
  if (p.proto === PROTO.UDP) {
    out.l4ChecksumOk = l4ChecksumOk(parseIpv4(p.src), parseIpv4(p.dst), p.proto, l4);
    out.text = new TextDecoder().decode(l4.subarray(8));
  } else if (p.proto === PROTO.TCP) {
    out.l4ChecksumOk = l4ChecksumOk(parseIpv4(p.src), parseIpv4(p.dst), p.proto, l4);
    out.flags = l4[13];
    out.ack = new DataView(l4.buffer, l4.byteOffset).getUint32(8);
  } else if (p.proto === PROTO.ICMP) {
    out.icmpType = l4[0];
    out.icmpChecksumOk = checksum(l4) === 0;
  }
  return out;
}

const fromGuest = (payload: Uint8Array) => eth(GW_MAC, GUEST_MAC, 0x0800, payload);
function udpFrame(dst: string, sport: number, text: string): Uint8Array {
  const d = parseIpv4(dst);
  return fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.UDP, payload: udp(GUEST_IP, d, sport, 7777, new TextEncoder().encode(text)) }));
}

const results: Record<string, unknown> = { slots: [a, b].map((s) => ({ tap: s.tapName, ip: s.slotIp })) };

send(a, eth(new Uint8Array(6).fill(0xff), GUEST_MAC, ETH_P_ARP, arp(1, GUEST_MAC, GUEST_IP, new Uint8Array(6), parseIpv4(GUEST_NET.gateway))));
results.arp = describe(await recv(a));

send(a, udpFrame("203.0.113.10", 40000, "hello from a"));
results.udpLocalA = describe(await recv(a));
send(b, udpFrame("203.0.113.10", 40000, "hello from b"));
results.udpLocalB = describe(await recv(b));

send(a, udpFrame("203.0.113.20", 40001, "hello upstream"));
results.udpUpstreamA = describe(await recv(a));
send(b, udpFrame("203.0.113.20", 40001, "hello upstream"));
results.udpUpstreamB = describe(await recv(b));

const r10 = parseIpv4("203.0.113.10");
send(a, fromGuest(ipv4({ src: GUEST_IP, dst: r10, proto: PROTO.ICMP, payload: icmp(8, 0, 0x00420001, new Uint8Array(16).fill(7)) })));
results.ping = describe(await recv(a));

const fixed = tcpWithFlags(GUEST_IP, r10, 40002, 8080, 0x02, 5000);
send(a, fromGuest(ipv4({ src: GUEST_IP, dst: r10, proto: PROTO.TCP, payload: fixed })));
results.synAck = describe(await recv(a));
// Reset it: its retransmitted SYN-ACKs (1 s, 3 s later) would otherwise answer a later probe on slot a.
send(a, fromGuest(ipv4({ src: GUEST_IP, dst: r10, proto: PROTO.TCP, payload: tcpWithFlags(GUEST_IP, r10, 40002, 8080, 0x04, 5001) })));

// A guest that offloads its checksums (virtio-net VIRTIO_NET_F_CSUM: vnet header NEEDS_CSUM, the L4 checksum field
// holding only the pseudo-header sum) to the other slot's address: both programs fix the partial checksum, and since
// the other TAP has no offloads the kernel completes it before that "VMM" reads it, so the reader sees the real one.
const slotB = parseIpv4(b.slotIp);
// One guest never reaches another's slot address (always denied, reason "host")...
const hostDropsBefore = host.bpf.drops().host;
send(a, fromGuest(ipv4({ src: GUEST_IP, dst: slotB, proto: PROTO.UDP, payload: udp(GUEST_IP, slotB, 41002, 9002, new Uint8Array(4)) })));
results.toOtherSlot = { dropped: host.bpf.drops().host - hostDropsBefore, slotDrops: host.bpf.slotDrops(a.ifindex).host, received: (await recv(b, 200)) !== null };
// ...unless the operator opens the range, as this offload check does to have a second TAP read what the first sent.
host.bpf.globalRangeAdd("onebox_open", host.range.cidr);
for (const [proto, csumOffset, l4] of [
  [PROTO.UDP, 6, udp(GUEST_IP, slotB, 41000, 9000, new TextEncoder().encode("partial udp"))],
  [PROTO.TCP, 16, tcpWithFlags(GUEST_IP, slotB, 41001, 9001, 0x18, 1)],
] as const) {
  const seg = l4.slice();
  const pseudo = new Uint8Array(12);
  const pv = new DataView(pseudo.buffer);
  pv.setUint32(0, GUEST_IP);
  pv.setUint32(4, slotB);
  pv.setUint8(9, proto);
  pv.setUint16(10, seg.length);
  new DataView(seg.buffer).setUint16(csumOffset, onesSum(pseudo)); // what a guest's stack leaves for the device
  const frame = fromGuest(ipv4({ src: GUEST_IP, dst: slotB, proto, payload: seg }));
  const hdr = new Uint8Array(VNET_HDR_SIZE);
  const hv = new DataView(hdr.buffer);
  hv.setUint8(0, 1); // VIRTIO_NET_HDR_F_NEEDS_CSUM
  hv.setUint16(6, 34, true); // csum_start: Ethernet 14 + IP 20
  hv.setUint16(8, csumOffset, true);
  writeSync(a.fd!, new Uint8Array([...hdr, ...frame]));
  const got = await recvWithHeader(b);
  results[`partialCsum${proto === PROTO.UDP ? "Udp" : "Tcp"}`] = got && { vnetFlags: got.hdr[0], ...describe(got.frame), text: undefined, ack: undefined, flags: undefined };
}

host.bpf.globalRangeDel("onebox_open", host.range.cidr);

// The other way with the offloads the VMM sets (partial checksums toward the guest): the reply leaves the host's
// UDP stack CHECKSUM_PARTIAL, the egress program fixes its pseudo-header part, and the guest completes it.
await setTapOffload(a.fd!, TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6);
send(a, udpFrame("203.0.113.10", 40003, "offloaded reply"));
const off = await recvWithHeader(a);
if (off) {
  const hv = new DataView(off.hdr.buffer, off.hdr.byteOffset);
  const flags = off.hdr[0]!;
  const frame = off.frame.slice();
  if (flags & 1) {
    // What the guest driver does for VIRTIO_NET_HDR_F_NEEDS_CSUM: sum from csum_start, store the complement.
    const start = hv.getUint16(6, true);
    const at = start + hv.getUint16(8, true);
    const sum = checksum(frame.subarray(start));
    frame[at] = sum >> 8;
    frame[at + 1] = sum & 255;
  }
  results.offloadedReply = { needsCsum: (flags & 1) === 1, ...describe(frame) };
}
await setTapOffload(a.fd!, 0);

// DNS to the gateway: answered by the daemon's forwarder (through the host's resolver), from the gateway address.
const gw = parseIpv4(GUEST_NET.gateway);
const dnsQuery = new Uint8Array([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, ...new TextEncoder().encode("example"), 3, 99, 111, 109, 0, 0, 1, 0, 1]);
send(b, fromGuest(ipv4({ src: GUEST_IP, dst: gw, proto: PROTO.UDP, payload: udp(GUEST_IP, gw, 5353, 53, dnsQuery) })));
const dnsReply = await recv(b);
results.dns = dnsReply && { ...describe(dnsReply), text: undefined, id: (dnsReply[42]! << 8) | dnsReply[43]!, answer: Array.from(dnsReply.subarray(dnsReply.length - 4)), resolverAsked: [...resolverAsked] };

// The egress policy on slot b (Network.setPolicy): internet off refuses every name without asking the resolver (no
// query leaves the host) and drops b's packets to "the internet", counted for b; a domain allowlist resolves its
// names; clearing it restores both.
const rcodeOf = (f: Uint8Array | null) => (f ? f[45]! & 0x0f : null);
const askDns = async () => {
  send(b, fromGuest(ipv4({ src: GUEST_IP, dst: gw, proto: PROTO.UDP, payload: udp(GUEST_IP, gw, 5353, 53, dnsQuery) })));
  return rcodeOf(await recv(b));
};
const toInternet = async () => {
  const dropsBefore = host.bpf.slotDrops(b.ifindex).policy;
  send(b, udpFrame("203.0.113.10", 40010, "policy probe"));
  const echoed = (await recv(b, 300)) !== null;
  return { echoed, policyDrops: host.bpf.slotDrops(b.ifindex).policy - dropsBefore };
};
const askedBefore = resolverAsked.length;
net.setPolicy(b.slotIp, compilePolicy({ allowInternetAccess: false }));
results.internetOff = { rcode: await askDns(), resolverAsked: resolverAsked.length - askedBefore, ...(await toInternet()) };
net.setPolicy(b.slotIp, compilePolicy({ allowOut: ["*.com"], denyOut: ["0.0.0.0/0"] }));
const beforeResolving = await toInternet(); // 203.0.113.10 is not learned yet
const rcode = await askDns(); // example.com -> 203.0.113.10, learned into b's allow trie before b gets the answer
results.domainAllowed = {
  rcode, resolverAsked: resolverAsked.length - askedBefore, beforeResolving, afterResolving: await toInternet(),
  learned: host.bpf.slotRules("onebox_allow_out", b.ifindex).map((c) => `${c.base >>> 24}.${(c.base >>> 16) & 255}.${(c.base >>> 8) & 255}.${c.base & 255}/${c.prefix}`),
  notForA: host.bpf.slotRules("onebox_allow_out", a.ifindex).length,
};
// TCP 80/443 to the learned address goes to the daemon's name proxy (the eBPF mark, nft's DNAT): the SYN-ACK comes
// from the proxy (nothing listens on 203.0.113.10:80/443 here; without the steering the kernel answers RST), seen by
// the guest from the address it chose. Another port goes straight there (the echo server's 8080).
let synPort = 40200;
const synFromB = async (dst: string, port: number) => {
  const d = parseIpv4(dst);
  const sport = synPort++;
  send(b, fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.TCP, payload: tcpWithFlags(GUEST_IP, d, sport, port, 0x02, 7) })));
  const f = describe(await recv(b, 500)) as { src?: string; flags?: number } | null;
  if (f?.flags === 0x12) send(b, fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.TCP, payload: tcpWithFlags(GUEST_IP, d, sport, port, 0x04, 8) })));
  return f && { src: f.src, flags: f.flags };
};
results.steered = { http: await synFromB("203.0.113.10", 80), tls: await synFromB("203.0.113.10", 443), other: await synFromB("203.0.113.10", 8080) };
// Without the DNAT rules (a restart between the table and the proxy): dropped by the guard, never sent on unchecked.
sh("nft flush chain ip onebox prerouting");
results.unsteered = await synFromB("203.0.113.10", 80);
await applySteering(GUEST_NET.gateway, PROXY_MARK, net.proxy.ports);
net.expireLearned(Date.now() + 2 * 86_400_000); // past the TTL: unlearned
results.afterTtl = { ...(await toInternet()), learned: host.bpf.slotRules("onebox_allow_out", b.ifindex).length };
net.setPolicy(b.slotIp, compilePolicy({}));
results.policyCleared = { rcode: await askDns(), ...(await toInternet()) };
// Allowed by an IP rule (and a domain): the fast path, not the proxy (its answer is not learned: the rule covers it).
net.setPolicy(b.slotIp, compilePolicy({ allowOut: ["203.0.113.10", "*.com"], denyOut: ["0.0.0.0/0"] }));
await askDns();
results.ruleNotSteered = { learned: b.learned.size, http: await synFromB("203.0.113.10", 80) };
net.setPolicy(b.slotIp, compilePolicy({}));

// Conntrack on a PUT /network: the entries of b's flows the new policy denies are deleted (ctnetlink), the others
// kept. b has flows to .10 (local), .20 (through the masquerade) and the gateway (DNS).
for (const [dst, sport] of [["203.0.113.20", 40020], ["203.0.113.10", 40021]] as const) {
  send(b, udpFrame(dst, sport, "conntrack"));
  await recv(b);
}
results.conntrack = {
  denyUpstream: await net.setPolicy(b.slotIp, compilePolicy({ denyOut: ["203.0.113.20/32"] })),
  nothingLeftThere: await net.setPolicy(b.slotIp, compilePolicy({ denyOut: ["203.0.113.20/32", "198.51.100.99/32"] })),
  allowedKept: await net.setPolicy(b.slotIp, compilePolicy({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] })),
  internetOff: await net.setPolicy(b.slotIp, compilePolicy({ allowInternetAccess: false })),
  cleared: await net.setPolicy(b.slotIp, compilePolicy({})),
};

// A spoofed source never leaves, and nothing answers it.
const before = host.bpf.drops().spoof;
send(a, fromGuest(ipv4({ src: parseIpv4("169.254.68.7"), dst: r10, proto: PROTO.UDP, payload: udp(parseIpv4("169.254.68.7"), r10, 1, 7777, new Uint8Array(4)) })));
// (The SYN-ACK step's half-open connection retransmits to a meanwhile: TCP frames are not an answer to this UDP.)
results.spoofReply = null;
for (let f = await recv(a, 300); f; f = await recv(a, 300)) {
  const got = describe(f) as { proto?: number } | null;
  if (got?.proto === 6) continue;
  results.spoofReply = got;
  break;
}
results.spoofDropped = host.bpf.drops().spoof - before;

// The host's own addresses are always denied (reason "host"), whatever port: a TCP listener on every address stands
// for the daemon's port. 198.51.100.2 is this namespace's (up0); 203.0.113.10 (lo) passes only because the operator
// opened it (openRanges above), and gets the listener's SYN-ACK.
const daemonPort = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
const hostDrops = () => host.bpf.slotDrops(a.ifindex).host;
async function synTo(dst: string): Promise<{ dropped: number; synAck: boolean }> {
  const d = parseIpv4(dst);
  const h0 = hostDrops();
  send(a, fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.TCP, payload: tcpWithFlags(GUEST_IP, d, 40100, daemonPort.port, 0x02, 7) })));
  const f = await recv(a, 500);
  const synAck = f !== null && describe(f)?.flags === 0x12;
  // Reset the half-open connection: its retransmitted SYN-ACK would otherwise answer the next probe.
  if (synAck) send(a, fromGuest(ipv4({ src: GUEST_IP, dst: d, proto: PROTO.TCP, payload: tcpWithFlags(GUEST_IP, d, 40100, daemonPort.port, 0x04, 8) })));
  return { dropped: hostDrops() - h0, synAck };
}
results.hostAddr = await synTo("198.51.100.2");
results.openedHostAddr = await synTo("203.0.113.10");
// An address the host gets while running is denied from the next slot made on (and the 10 s sweep).
sh("ip addr add 203.0.113.99/32 dev lo");
const c = await pool.acquire(); // takes a ready slot; the refill makes the next one
await pool.whenFilled();
results.addedLater = { inMap: host.bpf.globalRanges("onebox_host_deny").map(formatCidr).includes("203.0.113.99/32"), ...(await synTo("203.0.113.99")) };
await pool.release(c);
daemonPort.stop(true);

local.kill();
upstream.kill();
await pool.release(a);
await pool.release(b);
results.stopErrors = (await net.stop({ final: true })).map((e) => e.message);
resolver.close();
console.log(JSON.stringify(results));

function tcpWithFlags(src: number, dst: number, sport: number, dport: number, flags: number, seq: number): Uint8Array {
  const s = new Uint8Array(20);
  const v = new DataView(s.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, seq);
  v.setUint8(12, 5 << 4);
  v.setUint8(13, flags);
  v.setUint16(14, 65535);
  const pseudo = new Uint8Array(12);
  const pv = new DataView(pseudo.buffer);
  pv.setUint32(0, src);
  pv.setUint32(4, dst);
  pv.setUint8(9, PROTO.TCP);
  pv.setUint16(10, 20);
  const sum = checksum(new Uint8Array([...pseudo, ...s]));
  v.setUint16(16, sum);
  return s;
}
