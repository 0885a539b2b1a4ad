// libonebox-net: the host side of sandbox networking (TAP devices, rtnetlink, the eBPF programs through libbpf).
// A library of its own because it links libbpf: a host without libbpf still runs sandboxes without a network.
// Every function returns >= 0 on success or -errno; the last libbpf/netlink message is kept for onebox_net_error.
#pragma once
#include <stdint.h>
#include "../../bpf/onebox_net.h"

#define ONEBOX_NET_ABI_VERSION 5

int onebox_net_abi_version(void);
/* Copies the last error message (libbpf's or ours) into buf (NUL-terminated); returns its length. */
int onebox_net_error(char *buf, int len);

/* TAP (tap.c). Opens /dev/net/tun O_CLOEXEC|O_NONBLOCK as IFF_TAP|IFF_NO_PI|IFF_VNET_HDR named `name`, sets the
 * vnet header size and no offloads (the VMM sets them after feature negotiation), its MAC, IPv6 off, NOARP and up.
 * Returns the fd; *ifindex gets the interface index. */
int onebox_tap_open(const char *name, int vnet_hdr_size, const uint8_t mac[6], int32_t *ifindex);
/* TUNSETOFFLOAD (TUN_F_* flags): what the VMM sets once it owns the fd; the tests set it to play the VMM. */
int onebox_tap_set_offload(int fd, unsigned flags);
/* Reads one frame into buf within timeout_ms (poll); returns its length, or -ETIMEDOUT. */
int onebox_tap_read(int fd, uint8_t *buf, int len, int timeout_ms);

/* rtnetlink (netlink.c), in the calling thread's network namespace. Addresses in network byte order. */
int onebox_route_add(int ifindex, uint32_t dst, int prefix_len);
int onebox_route_del(int ifindex, uint32_t dst, int prefix_len);
/* The gateway address as the host's own (table local, on lo), without a link or an address for it. */
int onebox_route_local_add(uint32_t addr);
int onebox_route_local_del(uint32_t addr);
int onebox_link_del(const char *name);
/* Deletes link `name` and then closes `fd` (if >= 0) on a detached thread: both wait ~20 ms for RCU. */
int onebox_link_del_async(const char *name, int fd);
/* "ifindex name\n" for every link of this namespace into buf; returns the length. */
int onebox_link_names(char *buf, int len);
/* ifindex of `name`, or -ENODEV. */
int onebox_link_index(const char *name);
/* Name of `ifindex` into buf (IFNAMSIZ), or -ENODEV. */
int onebox_link_name(int ifindex, char *buf, int len);

/* conntrack (conntrack.c), in the calling thread's network namespace. Deletes the IPv4 conntrack entries whose
 * original source is `src` and whose original destination is in `deny` and not in `allow` (CIDRs as pairs
 * {base (network order), prefix length}); returns how many were deleted. Needs nf_conntrack_netlink (autoloaded). */
int onebox_ct_delete_denied(uint32_t src, const uint32_t *allow, int nallow, const uint32_t *deny, int ndeny);

/* eBPF (bpf.c). The handle is the loaded object; pin_dir (may be NULL: nothing pinned) is a bpffs directory whose
 * maps are reused when they exist (a restarted daemon re-adopts its slots) and created and pinned when not. */
typedef struct onebox_bpf onebox_bpf;
/* Mounts bpffs on `root` when nothing is mounted there (mode 0700), then creates `dir` in it. */
int onebox_bpffs_ensure(const char *root, const char *dir);
onebox_bpf *onebox_bpf_open(const char *pin_dir, int *err);
void onebox_bpf_close(onebox_bpf *b);
/* Removes the pinned maps in pin_dir (they stay alive while a loaded program still holds them). */
int onebox_bpf_unpin(const char *pin_dir);
/* clsact on ifindex with onebox_from_guest on ingress and onebox_to_guest on egress (direct action). */
int onebox_bpf_attach(onebox_bpf *b, int ifindex);
/* Removes the clsact qdisc (and so both filters) from ifindex. */
int onebox_bpf_detach(int ifindex);
/* 1 if both of our programs are attached to ifindex, 0 if not. */
int onebox_bpf_attached(int ifindex);
int onebox_bpf_slot_set(onebox_bpf *b, uint32_t ifindex, const struct onebox_slot_cfg *cfg);
int onebox_bpf_slot_get(onebox_bpf *b, uint32_t ifindex, struct onebox_slot_cfg *cfg);
int onebox_bpf_slot_del(onebox_bpf *b, uint32_t ifindex);
/* Fills keys[0..n) with the map's keys; returns how many. */
int onebox_bpf_slot_keys(onebox_bpf *b, uint32_t *keys, int n);
/* Drop counters summed over CPUs into out[0..n) (n <= ONEBOX_DROP_MAX); returns n. */
int onebox_bpf_drops(onebox_bpf *b, uint64_t *out, int n);
/* BPF_PROG_TEST_RUN of a program (0 = from_guest, 1 = to_guest) on one frame, as if it crossed `ifindex`. out_meta
 * gets [retval, data_out length, skb->mark after the run (ONEBOX_PROXY_MARK for the name proxy)]. */
/* A map of the loaded object by name (its fd, owned by the handle), and plain element operations on it (the
 * policy maps: src/sys/bpf-net.ts encodes keys and values). key NULL in next_key: the first key. Per-CPU maps take a
 * value of onebox_bpf_ncpu() slots. */
int onebox_bpf_map_fd(onebox_bpf *b, const char *name);
int onebox_bpf_map_update(int fd, const void *key, const void *value, uint64_t flags);
int onebox_bpf_map_lookup(int fd, const void *key, void *value);
int onebox_bpf_map_delete(int fd, const void *key);
int onebox_bpf_map_next_key(int fd, const void *key, void *next);
int onebox_bpf_ncpu(void);
int onebox_bpf_test_run(onebox_bpf *b, int which, int ifindex, const uint8_t *in, int in_len, uint8_t *out,
                        int out_cap, int32_t *out_meta);
