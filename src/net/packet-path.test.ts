// Real packets without a VM: frames written into slot TAPs as a guest would, through eBPF, routing and masquerade
// to TEST-NET servers inside the test's own namespaces, and the replies read back.
import { describe, expect, test } from "bun:test";
import { canRunNetns, runInNetns } from "./testing/run-in-netns.ts";

const here = import.meta.dir;
const GUEST = { dstMac: "02:00:a9:fe:44:06", srcMac: "02:00:a9:fe:44:05", dst: "169.254.68.6" };

describe.skipIf(!canRunNetns)("packet path through two slots", () => {
  test("ARP, UDP both ways with distinct slot sources, masquerade out, ICMP echo, TCP SYN-ACK, guest checksum offload, DNS at the gateway, spoofing dropped", async () => {
    const { result: r } = await runInNetns<any>(`${here}/testing/scenario-packet-path.ts`);
    expect(r.slots).toEqual([{ tap: "obx0", ip: "198.18.0.1" }, { tap: "obx1", ip: "198.18.0.2" }]);
    expect(r.arp.arp).toBe(true);
    expect(r.arp.dstMac).toBe(GUEST.dstMac);
    // The server on the host sees each clone by its own slot address; the guest sees the reply to its shared address.
    expect(r.udpLocalA).toEqual({ ...GUEST, src: "203.0.113.10", proto: 17, ipChecksumOk: true, l4ChecksumOk: true, text: "from 198.18.0.1" });
    expect(r.udpLocalB).toEqual({ ...GUEST, src: "203.0.113.10", proto: 17, ipChecksumOk: true, l4ChecksumOk: true, text: "from 198.18.0.2" });
    // Past the host, both leave masqueraded behind its address and the replies find their way back to each slot.
    expect(r.udpUpstreamA).toEqual({ ...GUEST, src: "203.0.113.20", proto: 17, ipChecksumOk: true, l4ChecksumOk: true, text: "from 198.51.100.2" });
    expect(r.udpUpstreamB).toEqual({ ...GUEST, src: "203.0.113.20", proto: 17, ipChecksumOk: true, l4ChecksumOk: true, text: "from 198.51.100.2" });
    expect(r.ping).toEqual({ ...GUEST, src: "203.0.113.10", proto: 1, ipChecksumOk: true, icmpType: 0, icmpChecksumOk: true });
    expect(r.synAck).toEqual({ ...GUEST, src: "203.0.113.10", proto: 6, ipChecksumOk: true, l4ChecksumOk: true, flags: 0x12, ack: 5001 });
    // Slot b's egress policy: internet off refuses DNS (REFUSED, nothing asked upstream) and drops its traffic.
    expect(r.internetOff).toEqual({ rcode: 5, resolverAsked: 0, echoed: false, policyDrops: 1 });
    // A domain allowlist: the name resolves, and its answer opens exactly that address, for b only, until its TTL.
    expect(r.domainAllowed).toEqual({
      rcode: 0, resolverAsked: 1, beforeResolving: { echoed: false, policyDrops: 1 }, afterResolving: { echoed: true, policyDrops: 0 },
      learned: ["203.0.113.10/32"], notForA: 0,
    });
    // TCP 80/443 to that learned address is steered to the name proxy (SYN-ACK from it, seen from 203.0.113.10, where
    // nothing listens on 80/443: the kernel would answer RST); another port goes straight through.
    expect(r.steered).toEqual({ http: { src: "203.0.113.10", flags: 0x12 }, tls: { src: "203.0.113.10", flags: 0x12 }, other: { src: "203.0.113.10", flags: 0x12 } });
    expect(r.unsteered).toBeNull(); // the proxy's DNAT missing: the guard drops it (no RST, no SYN-ACK from the server)
    // Allowed by an IP rule: the fast path (not learned, not proxied: the RST of nothing listening on 80).
    expect(r.ruleNotSteered).toEqual({ learned: 0, http: { src: "203.0.113.10", flags: 0x14 } });
    expect(r.afterTtl).toEqual({ echoed: false, policyDrops: 1, learned: 0 });
    expect(r.policyCleared).toEqual({ rcode: 0, echoed: true, policyDrops: 0 });
    // Another sandbox's slot address is always denied, counted for the sending slot; nothing reaches the other TAP.
    expect(r.toOtherSlot).toEqual({ dropped: 1, slotDrops: 1, received: false });
    // Checksum offload from the guest (CHECKSUM_PARTIAL) through both programs: completed correctly by the kernel.
    expect(r.partialCsumUdp).toEqual({ vnetFlags: 0, ...GUEST, src: "198.18.0.1", proto: 17, ipChecksumOk: true, l4ChecksumOk: true });
    expect(r.partialCsumTcp).toEqual({ vnetFlags: 0, ...GUEST, src: "198.18.0.1", proto: 6, ipChecksumOk: true, l4ChecksumOk: true });
    // ...and toward a guest that takes partial checksums (the VMM's TUNSETOFFLOAD): right once the guest completes it.
    expect(r.offloadedReply).toEqual({ needsCsum: true, ...GUEST, src: "203.0.113.10", proto: 17, ipChecksumOk: true, l4ChecksumOk: true, text: "from 198.18.0.1" });
    expect(r.dns).toEqual({ ...GUEST, src: "169.254.68.5", proto: 17, ipChecksumOk: true, l4ChecksumOk: true, id: 0xabcd, answer: [203, 0, 113, 10], resolverAsked: ["example.com"] });
    // PUT /network deletes the conntrack entries of the flows it denies (to .20), not of those it allows (.10, DNS),
    // which a later policy denying them deletes in turn.
    expect(r.conntrack.denyUpstream).toBeGreaterThanOrEqual(1);
    expect(r.conntrack).toMatchObject({ nothingLeftThere: 0, allowedKept: 0, cleared: 0 });
    expect(r.conntrack.internetOff).toBeGreaterThanOrEqual(1);
    expect(r.spoofReply).toBeNull();
    expect(r.spoofDropped).toBe(1);
    // The host's own addresses (every port: here a listener on every address, as the daemon's) are always denied...
    expect(r.hostAddr).toEqual({ dropped: 1, synAck: false });
    // ...except a range the operator opened (--net-allow-private), and one added while running once a slot is made.
    expect(r.openedHostAddr).toEqual({ dropped: 0, synAck: true });
    expect(r.addedLater).toEqual({ inMap: true, dropped: 1, synAck: false });
    expect(r.stopErrors).toEqual([]);
  }, 60_000);
});
