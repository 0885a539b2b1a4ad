// Shared by the eBPF program (ffi/bpf) and libonebox-net (ffi/lib/net): the per-slot config and drop reasons.
// Mirrored in src/sys/bpf-net.ts; change both and bump ONEBOX_NET_ABI_VERSION in ffi/lib/net/net.h.
#pragma once
#include <linux/types.h>

/* Most slots the map holds; one per TAP (keyed by ifindex). A /16 sandbox range has 65534 addresses. */
#define ONEBOX_NET_MAX_SLOTS 65536

/* One slot: every clone shares guest_ip/guest_mac/gateway_*; slot_ip is the clone's own address on the host.
 * Addresses in network byte order. 32 bytes; reserved is for the policy (issue 14). */
struct onebox_slot_cfg {
  __be32 slot_ip;
  __be32 guest_ip;
  __be32 gateway_ip;
  __u8 guest_mac[6];
  __u8 gateway_mac[6];
  __u32 flags;
  __u32 reserved;
};

/* Why a frame was dropped: index of the onebox_drops counters (per CPU, summed by the library). */
enum onebox_drop {
  ONEBOX_DROP_NO_SLOT = 0,     /* no config for this ifindex (a TAP being torn down) */
  ONEBOX_DROP_SHORT = 1,       /* shorter than its headers say */
  ONEBOX_DROP_BAD_IP = 2,      /* not IPv4 version 4, ihl < 5 */
  ONEBOX_DROP_SPOOF = 3,       /* from the guest with another source MAC or IP */
  ONEBOX_DROP_NOT_IPV4 = 4,    /* IPv6 and other ethertypes (dropped both ways) */
  ONEBOX_DROP_ARP = 5,         /* ARP that is not a request for the gateway (or our own reply) */
  ONEBOX_DROP_NOT_GATEWAY = 6, /* from the guest to a MAC other than the gateway's (broadcast, multicast) */
  ONEBOX_DROP_NOT_SLOT = 7,    /* to the guest but not addressed to the slot's address */
  ONEBOX_DROP_TINY_FRAG = 8,   /* a first fragment too short to hold its L4 checksum (RFC 1858) */
  ONEBOX_DROP_GATEWAY_PORT = 9, /* to the gateway address but not DNS (UDP/TCP 53) or ping */
  ONEBOX_DROP_HOST = 10,       /* to one of the host's own addresses or the sandbox range (onebox_host_deny) */
  ONEBOX_DROP_RESERVED = 11,   /* to loopback, private, link-local, shared, multicast or broadcast space */
  ONEBOX_DROP_POLICY = 12,     /* denied by the slot's egress policy (onebox_deny_out, not in onebox_allow_out) */
  ONEBOX_DROP_MAX = 16,
};

/* onebox_slot_cfg.flags: none yet. */

/* Value of an onebox_allow_out entry: an IP/CIDR rule of the policy, or an address learned from an allowed name's DNS
 * answer (src/net/network.ts). TCP 80/443 to a learned address is marked for the name proxy (docs/network.md). */
#define ONEBOX_RULE_POLICY 0
#define ONEBOX_RULE_LEARNED 1

/* skb->mark of those packets ("obxp"); nft `table ip onebox` DNATs marked TCP 80/443 to the daemon's name proxy. */
#define ONEBOX_PROXY_MARK 0x6f627870

/* Key of the global LPM tries (onebox_host_deny, onebox_open): prefixlen counts the bits of addr. */
struct onebox_lpm4 {
  __u32 prefixlen;
  __be32 addr;
};

/* Key of the per-slot LPM tries (onebox_allow_out, onebox_deny_out): one trie serves every slot because the slot's
 * ifindex comes first and prefixlen counts its 32 bits too (a slot's 0.0.0.0/0 is prefixlen 32). The ifindex is
 * stored big-endian so that its bits are the leading bits of the key, as the trie compares them. */
struct onebox_slot_lpm4 {
  __u32 prefixlen;
  __be32 ifindex;
  __be32 addr;
};

/* Most entries of each per-slot trie over all slots, and of the global tries. */
#define ONEBOX_NET_MAX_POLICY 262144
#define ONEBOX_NET_MAX_GLOBAL 4096

/* Per-slot drop counters (onebox_slot_drops, per CPU, keyed by ifindex): one counter per enum onebox_drop. */
struct onebox_slot_drops {
  __u64 n[ONEBOX_DROP_MAX];
};
