// eBPF on every sandbox TAP (tc clsact, direct action): translates between the address every clone of a snapshot
// shares (guest IP/MAC) and the slot's own address, both ways, and answers the guest's ARP for the gateway.
// docs/network.md has the data path. Checksums are fixed incrementally (RFC 1624) with the kernel's helpers, which
// also handle CHECKSUM_PARTIAL frames from a guest that offloads its checksums.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "onebox_net.h"

char LICENSE[] SEC("license") = "GPL";

/* Per-slot config keyed by the TAP's ifindex: one map for every TAP, so one loaded program serves all slots and a
 * slot costs one map entry. The policy issue adds its maps next to this one. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONEBOX_NET_MAX_SLOTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct onebox_slot_cfg);
} onebox_slots SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ONEBOX_DROP_MAX);
  __type(key, __u32);
  __type(value, __u64);
} onebox_drops SEC(".maps");

/* The same counts per slot (keyed by ifindex), so an operator can see why one sandbox's packets were dropped. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, ONEBOX_NET_MAX_SLOTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct onebox_slot_drops);
} onebox_slot_drops SEC(".maps");

/* Always denied, whatever a slot's policy says: the host's own addresses and the sandbox range (the daemon fills it;
 * the fixed reserved ranges are in reserved_dst below, so an empty map cannot open them). Value unused. */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, ONEBOX_NET_MAX_GLOBAL);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct onebox_lpm4);
  __type(value, __u8);
} onebox_host_deny SEC(".maps");

/* Ranges the operator opened: a destination in one skips the always-denied checks (the slot's policy still applies). */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, ONEBOX_NET_MAX_GLOBAL);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct onebox_lpm4);
  __type(value, __u8);
} onebox_open SEC(".maps");

/* Each slot's egress policy (E2B's allowOut / denyOut), keyed {ifindex, prefix}: allow beats deny, so they are two
 * tries (one trie's longest match would let a narrower deny beat a wider allow). Value unused. */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, ONEBOX_NET_MAX_POLICY);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct onebox_slot_lpm4);
  __type(value, __u8);
} onebox_allow_out SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, ONEBOX_NET_MAX_POLICY);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct onebox_slot_lpm4);
  __type(value, __u8);
} onebox_deny_out SEC(".maps");

#define ETH_LEN 14
#define IP_CSUM_OFF (ETH_LEN + 10)
#define IP_SRC_OFF (ETH_LEN + 12)
#define IP_DST_OFF (ETH_LEN + 16)
/* Headers we read directly: Ethernet, the longest IPv4 header, 8 bytes of L4. Pulled into the linear part first. */
#define PULL_LEN (ETH_LEN + 60 + 8)

/* ICMP (RFC 792), spelled here for the same reason. */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
struct icmphdr {
  __u8 type, code;
  __sum16 checksum;
  __be32 rest;
};

/* ARP for IPv4 over Ethernet (RFC 826). Spelled here: linux/if_arp.h and linux/icmp.h pull in
 * libc headers that do not exist for the bpf target. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
struct arp_eth {
  struct {
    __be16 ar_hrd, ar_pro;
    __u8 ar_hln, ar_pln;
    __be16 ar_op;
  } h;
  __u8 sha[ETH_ALEN];
  __be32 spa;
  __u8 tha[ETH_ALEN];
  __be32 tpa;
} __attribute__((packed));

/* Not inlined: its own frame keeps skb an unmodified ctx pointer (inlined, clang reused a pointer to skb->ifindex). */
static __noinline int drop(struct __sk_buff *skb, __u32 reason) {
  __u64 *n = bpf_map_lookup_elem(&onebox_drops, &reason);
  if (n) *n += 1;
  if (reason >= ONEBOX_DROP_MAX) return TC_ACT_SHOT;
  __u32 key = skb->ifindex;
  struct onebox_slot_drops *per = bpf_map_lookup_elem(&onebox_slot_drops, &key);
  if (!per) {
    /* First drop of this slot: a zeroed entry (another CPU may have made it meanwhile: then look it up again). */
    struct onebox_slot_drops zero = {};
    bpf_map_update_elem(&onebox_slot_drops, &key, &zero, BPF_NOEXIST);
    per = bpf_map_lookup_elem(&onebox_slot_drops, &key);
  }
  if (per) per->n[reason & (ONEBOX_DROP_MAX - 1)] += 1; /* the mask: a bound the verifier keeps */
  return TC_ACT_SHOT;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline void mac_copy(__u8 *d, const __u8 *s) {
  d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; d[4] = s[4]; d[5] = s[5];
}

/* RFC 1624 eqn 3: a 16-bit one's complement checksum after a 32-bit field changed from `from` to `to`. */
static __always_inline __u16 csum_replace4(__u16 check, __be32 from, __be32 to) {
  __u32 sum = (__u16)~check;
  sum += (__u16)~from + (__u16)~(from >> 16);
  sum += (__u16)to + (__u16)(to >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

/* Makes sure the headers we read are in the linear part; returns 0 or a drop. */
static __always_inline int pull_headers(struct __sk_buff *skb) {
  __u32 want = skb->len < PULL_LEN ? skb->len : PULL_LEN;
  if ((long)skb->data + want > (long)skb->data_end && bpf_skb_pull_data(skb, want) < 0) return -1;
  return 0;
}

/* An ICMP error (RFC 792: unreachable, time exceeded, parameter problem) quotes the IP header of the packet it is
 * about; that header carries the translated address too, so conntrack, the guest's PMTU discovery and
 * traceroute see consistent addresses. Rewrites the quoted address at `quoted_off` (IP_SRC or IP_DST offset within
 * the quoted header) from `from` to `to`, fixing the quoted header's checksum and the ICMP checksum. */
static __always_inline int icmp_fix_quoted(struct __sk_buff *skb, __u32 icmp_off, __u32 quoted_addr_field,
                                           __be32 from, __be32 to) {
  struct icmphdr icmp;
  if (bpf_skb_load_bytes(skb, icmp_off, &icmp, sizeof(icmp)) < 0) return 0;
  if (icmp.type != ICMP_DEST_UNREACH && icmp.type != ICMP_TIME_EXCEEDED && icmp.type != ICMP_PARAMETERPROB) return 0;
  __u32 q = icmp_off + sizeof(struct icmphdr);
  struct iphdr quoted;
  if (bpf_skb_load_bytes(skb, q, &quoted, sizeof(quoted)) < 0) return 0; /* too short to quote: leave it */
  __be32 addr = quoted_addr_field == 12 ? quoted.saddr : quoted.daddr;
  if (addr != from) return 0;
  __u16 old_check = quoted.check;
  __u16 new_check = csum_replace4(old_check, from, to);
  if (bpf_skb_store_bytes(skb, q + quoted_addr_field, &to, 4, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, q + 10, &new_check, 2, 0) < 0) return -1;
  __u32 icmp_csum = icmp_off + 2;
  if (bpf_l4_csum_replace(skb, icmp_csum, from, to, 4) < 0) return -1;
  if (bpf_l4_csum_replace(skb, icmp_csum, old_check, new_check, 2) < 0) return -1;
  return 0;
}

/* Rewrites the IPv4 address at `addr_off` (IP_SRC_OFF or IP_DST_OFF) from `from` to `to` and fixes the IP header
 * checksum, the TCP/UDP checksum (its pseudo-header holds both addresses) and quoted ICMP error headers.
 * `quoted_field` is the offset (12 or 16) of the same peer's address inside a quoted header: a packet from the guest
 * quotes one the guest received (the guest was its destination), and the other way round. */
static __always_inline int rewrite_ip(struct __sk_buff *skb, __u32 addr_off, __be32 from, __be32 to,
                                      __u8 proto, __u32 l4_off, int first_frag, __u32 quoted_field) {
  if (first_frag) {
    if (proto == IPPROTO_TCP) {
      if (skb->len < l4_off + 18) return drop(skb, ONEBOX_DROP_TINY_FRAG);
      if (bpf_l4_csum_replace(skb, l4_off + 16, from, to, BPF_F_PSEUDO_HDR | 4) < 0) return drop(skb, ONEBOX_DROP_SHORT);
    } else if (proto == IPPROTO_UDP) {
      if (skb->len < l4_off + 8) return drop(skb, ONEBOX_DROP_TINY_FRAG);
      /* A UDP checksum of 0 means "none" (RFC 768) and stays 0; MANGLED_0 keeps a computed 0 as 0xffff. */
      if (bpf_l4_csum_replace(skb, l4_off + 6, from, to, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4) < 0)
        return drop(skb, ONEBOX_DROP_SHORT);
    } else if (proto == IPPROTO_ICMP) {
      if (icmp_fix_quoted(skb, l4_off, quoted_field, from, to) < 0) return drop(skb, ONEBOX_DROP_SHORT);
    }
  }
  if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, 4) < 0) return drop(skb, ONEBOX_DROP_SHORT);
  if (bpf_skb_store_bytes(skb, addr_off, &to, 4, 0) < 0) return drop(skb, ONEBOX_DROP_SHORT);
  return TC_ACT_OK;
}

/* Reads the IPv4 header fields the translation needs; returns 0 or a drop verdict. */
static __always_inline int parse_ip(struct __sk_buff *skb, __be32 *saddr, __be32 *daddr, __u8 *proto,
                                    __u32 *l4_off, int *first_frag) {
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  struct iphdr *ip = data + ETH_LEN;
  if ((void *)(ip + 1) > end) return drop(skb, ONEBOX_DROP_SHORT);
  if (ip->version != 4 || ip->ihl < 5) return drop(skb, ONEBOX_DROP_BAD_IP);
  __u32 hlen = ip->ihl * 4;
  if (skb->len < ETH_LEN + hlen || bpf_ntohs(ip->tot_len) < hlen) return drop(skb, ONEBOX_DROP_SHORT);
  *saddr = ip->saddr;
  *daddr = ip->daddr;
  *proto = ip->protocol;
  *l4_off = ETH_LEN + hlen;
  *first_frag = (bpf_ntohs(ip->frag_off) & 0x1fff) == 0;
  return 0;
}

/* The gateway address is one of the host's own: the guest may reach only the DNS forwarder (UDP/TCP 53) and ping it,
 * not every host service listening on a wildcard address (the daemon's API among them). */
static __always_inline int gateway_service(struct __sk_buff *skb, __u8 proto, __u32 l4_off, int first_frag) {
  if (!first_frag) return 0;
  if (proto == IPPROTO_UDP || proto == IPPROTO_TCP) {
    __be16 ports[2];
    if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof ports) < 0) return 0;
    return ports[1] == bpf_htons(53);
  }
  if (proto == IPPROTO_ICMP) {
    __u8 type;
    if (bpf_skb_load_bytes(skb, l4_off, &type, 1) < 0) return 0;
    return type == 8; /* echo request */
  }
  return 0;
}

/* The fixed part of the always-denied list (host byte order): RFC 1122 "this network", loopback, RFC 1918, RFC 6598
 * shared space (carrier NAT, Tailscale), link-local (cloud metadata 169.254.169.254), multicast, and 240/4 with
 * limited broadcast. In code, not a map: nothing has to fill it for it to hold. */
static __always_inline int reserved_dst(__be32 daddr) {
  __u32 a = bpf_ntohl(daddr);
  return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 24) == 10 || (a & 0xfff00000) == 0xac100000 ||
         (a & 0xffff0000) == 0xc0a80000 || (a & 0xffc00000) == 0x64400000 || (a & 0xffff0000) == 0xa9fe0000 ||
         (a >> 28) >= 14;
}

/* The slot's own policy for a peer address: 0 to pass, or ONEBOX_DROP_POLICY. Allow beats deny. `learned` (may be
 * NULL) is set when the allowing entry is an address learned from an allowed name (ONEBOX_RULE_LEARNED). */
static __always_inline __u32 slot_policy_verdict(__u32 ifindex, __be32 addr, int *learned) {
  struct onebox_slot_lpm4 k = {.prefixlen = 64, .ifindex = bpf_htonl(ifindex), .addr = addr};
  __u8 *v = bpf_map_lookup_elem(&onebox_allow_out, &k);
  if (v) {
    if (learned) *learned = *v == ONEBOX_RULE_LEARNED;
    return 0;
  }
  if (bpf_map_lookup_elem(&onebox_deny_out, &k)) return ONEBOX_DROP_POLICY;
  return 0;
}

/* The egress decision for a packet from the guest to `daddr` (not the gateway): 0 to pass, or a drop reason. */
static __always_inline __u32 egress_verdict(__u32 ifindex, __be32 daddr, int *learned) {
  struct onebox_lpm4 g = {.prefixlen = 32, .addr = daddr};
  if (!bpf_map_lookup_elem(&onebox_open, &g)) {
    if (bpf_map_lookup_elem(&onebox_host_deny, &g)) return ONEBOX_DROP_HOST;
    if (reserved_dst(daddr)) return ONEBOX_DROP_RESERVED;
  }
  return slot_policy_verdict(ifindex, daddr, learned);
}

/* Answers the guest's ARP request for the gateway from the TAP itself: the same gateway MAC on every TAP, so a
 * clone's ARP cache from the snapshot stays valid wherever it runs. */
static __always_inline int arp_reply(struct __sk_buff *skb, struct onebox_slot_cfg *cfg) {
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  struct arp_eth *arp = data + ETH_LEN;
  if ((void *)(arp + 1) > end) return drop(skb, ONEBOX_DROP_SHORT);
  if (arp->h.ar_hrd != bpf_htons(ARPHRD_ETHER) || arp->h.ar_pro != bpf_htons(ETH_P_IP) || arp->h.ar_hln != ETH_ALEN ||
      arp->h.ar_pln != 4 || arp->h.ar_op != bpf_htons(ARPOP_REQUEST) || arp->tpa != cfg->gateway_ip ||
      arp->spa != cfg->guest_ip || !mac_eq(arp->sha, cfg->guest_mac))
    return drop(skb, ONEBOX_DROP_ARP);
  arp->h.ar_op = bpf_htons(ARPOP_REPLY);
  mac_copy(arp->tha, cfg->guest_mac);
  arp->tpa = cfg->guest_ip;
  mac_copy(arp->sha, cfg->gateway_mac);
  arp->spa = cfg->gateway_ip;
  mac_copy(eth->h_dest, cfg->guest_mac);
  mac_copy(eth->h_source, cfg->gateway_mac);
  /* Back out of the same TAP, toward the guest (through onebox_to_guest, which lets this reply pass). */
  return bpf_redirect(skb->ifindex, 0);
}

/* tc ingress of the TAP: frames the guest sent. */
SEC("tc")
int onebox_from_guest(struct __sk_buff *skb) {
  __u32 key = skb->ifindex;
  struct onebox_slot_cfg *cfg = bpf_map_lookup_elem(&onebox_slots, &key);
  if (!cfg) return drop(skb, ONEBOX_DROP_NO_SLOT);
  if (pull_headers(skb) < 0) return drop(skb, ONEBOX_DROP_SHORT);
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return drop(skb, ONEBOX_DROP_SHORT);
  if (!mac_eq(eth->h_source, cfg->guest_mac)) return drop(skb, ONEBOX_DROP_SPOOF);
  if (eth->h_proto == bpf_htons(ETH_P_ARP)) return arp_reply(skb, cfg);
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return drop(skb, ONEBOX_DROP_NOT_IPV4);
  if (!mac_eq(eth->h_dest, cfg->gateway_mac)) return drop(skb, ONEBOX_DROP_NOT_GATEWAY);

  __be32 saddr, daddr;
  __u8 proto;
  __u32 l4_off;
  int first, bad = parse_ip(skb, &saddr, &daddr, &proto, &l4_off, &first);
  if (bad) return bad;
  if (saddr != cfg->guest_ip) return drop(skb, ONEBOX_DROP_SPOOF);
  if (daddr == cfg->gateway_ip) {
    if (!gateway_service(skb, proto, l4_off, first)) return drop(skb, ONEBOX_DROP_GATEWAY_PORT);
  } else {
    /* Every packet is checked, not only a flow's first: a policy change cuts established flows it now denies. */
    int learned = 0;
    __u32 why = egress_verdict(skb->ifindex, daddr, &learned);
    if (why) return drop(skb, why);
    /* Allowed only as an address an allowed name resolved to: it may serve other names too (a CDN), so TCP to the
     * web ports goes to the name proxy, which checks the SNI/Host (nft DNATs the mark; every packet of the flow is
     * marked, the DNAT is decided on its first). Other ports and protocols pass unchecked (docs/network.md). */
    if (learned && proto == IPPROTO_TCP) skb->mark = ONEBOX_PROXY_MARK;
  }
  return rewrite_ip(skb, IP_SRC_OFF, cfg->guest_ip, cfg->slot_ip, proto, l4_off, first, 16);
}

/* tc egress of the TAP: frames the host sends to the guest. */
SEC("tc")
int onebox_to_guest(struct __sk_buff *skb) {
  __u32 key = skb->ifindex;
  struct onebox_slot_cfg *cfg = bpf_map_lookup_elem(&onebox_slots, &key);
  if (!cfg) return drop(skb, ONEBOX_DROP_NO_SLOT);
  if (pull_headers(skb) < 0) return drop(skb, ONEBOX_DROP_SHORT);
  void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return drop(skb, ONEBOX_DROP_SHORT);
  if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
    /* Only the reply onebox_from_guest made passes; the host itself does not ARP on a NOARP TAP. */
    struct arp_eth *arp = data + ETH_LEN;
    if ((void *)(arp + 1) > end) return drop(skb, ONEBOX_DROP_SHORT);
    if (arp->h.ar_op == bpf_htons(ARPOP_REPLY) && arp->spa == cfg->gateway_ip && mac_eq(arp->sha, cfg->gateway_mac))
      return TC_ACT_OK;
    return drop(skb, ONEBOX_DROP_ARP);
  }
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return drop(skb, ONEBOX_DROP_NOT_IPV4);

  __be32 saddr, daddr;
  __u8 proto;
  __u32 l4_off;
  int first, bad = parse_ip(skb, &saddr, &daddr, &proto, &l4_off, &first);
  if (bad) return bad;
  if (daddr != cfg->slot_ip) return drop(skb, ONEBOX_DROP_NOT_SLOT);
  /* A flow the slot's policy now denies (PUT /network) is cut both ways: the guest's packets are dropped on the way
   * out, and the peer's here, so a server pushing data stops reaching the guest at once too. ICMP passes (errors
   * from routers on an allowed path: path-MTU discovery), and so does the gateway (the DNS forwarder's answers). */
  if (proto != IPPROTO_ICMP && saddr != cfg->gateway_ip) {
    __u32 why = slot_policy_verdict(skb->ifindex, saddr, 0);
    if (why) return drop(skb, why);
  }
  int verdict = rewrite_ip(skb, IP_DST_OFF, cfg->slot_ip, cfg->guest_ip, proto, l4_off, first, 12);
  if (verdict != TC_ACT_OK) return verdict;
  /* The kernel addressed the frame to the TAP's own MAC (NOARP): address it to the guest, from the gateway. */
  data = (void *)(long)skb->data;
  end = (void *)(long)skb->data_end;
  eth = data;
  if ((void *)(eth + 1) > end) return drop(skb, ONEBOX_DROP_SHORT);
  mac_copy(eth->h_dest, cfg->guest_mac);
  mac_copy(eth->h_source, cfg->gateway_mac);
  return TC_ACT_OK;
}
