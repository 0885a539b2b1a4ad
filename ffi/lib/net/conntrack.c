// Conntrack entries of one slot that its new egress policy denies, deleted through ctnetlink (NETLINK_NETFILTER,
// the protocol `conntrack -D` speaks): a dump of the IPv4 table, filtered here by original source and destination,
// then one IPCTNL_MSG_CT_DELETE per entry with its original tuple handed back as the kernel sent it. Why: the eBPF
// programs already drop a denied flow's packets both ways, but its conntrack entry (with the masquerade's port
// mapping, or the name proxy's DNAT) would let the flow resume if a later policy opened the peer again, and the
// peer's next packet would be swallowed instead of answered with a reset. docs/network.md "Egress policy".
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "net.h"

void onebox_net_set_error(const char *fmt, ...);

/* What is kept of an entry to delete it: its CTA_TUPLE_ORIG (and CTA_ZONE) attributes, verbatim. */
#define CT_KEEP_MAX 256
struct ct_kept {
  uint16_t len;
  uint8_t attrs[CT_KEEP_MAX];
};

static int in_cidrs(uint32_t addr_be, const uint32_t *cidrs, int n) {
  uint32_t a = ntohl(addr_be);
  for (int i = 0; i < n; i++) {
    uint32_t base = ntohl(cidrs[2 * i]);
    int prefix = (int)cidrs[2 * i + 1];
    uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
    if ((a & mask) == (base & mask)) return 1;
  }
  return 0;
}

static const struct nlattr *next_attr(const struct nlattr *a) {
  return (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
}
#define FOR_ATTRS(a, start, len)                                                                       \
  for (const struct nlattr *a = (start); (const char *)a + sizeof(*a) <= (const char *)(start) + (len) && \
                                         a->nla_len >= sizeof(*a) &&                                        \
                                         (const char *)a + a->nla_len <= (const char *)(start) + (len);    \
       a = next_attr(a))

static const struct nlattr *find_attr(const void *start, int len, int type) {
  FOR_ATTRS(a, (const struct nlattr *)start, len) if ((a->nla_type & NLA_TYPE_MASK) == type) return a;
  return NULL;
}
#define ATTR_DATA(a) ((const char *)(a) + NLA_HDRLEN)
#define ATTR_LEN(a) ((int)(a)->nla_len - NLA_HDRLEN)

static int open_nfnl(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return -errno;
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

struct ct_req {
  struct nlmsghdr h;
  struct nfgenmsg g;
  uint8_t attrs[CT_KEEP_MAX];
};

/* Deletes one entry by its kept attributes; 0, or -ENOENT when it went meanwhile (not an error). */
static int ct_delete(int fd, const struct ct_kept *k, uint32_t seq) {
  struct ct_req r = {0};
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.g) + k->len;
  r.h.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  r.h.nlmsg_seq = seq;
  r.g.nfgen_family = AF_INET;
  r.g.version = NFNETLINK_V0;
  memcpy(r.attrs, k->attrs, k->len);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (sendto(fd, &r, r.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) return -errno;
  char buf[1024];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) return -errno;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
      if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) {
        int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
        return e == -ENOENT ? 0 : e;
      }
  }
}

/* Reads one dumped entry: kept when its original source is `src` and its original destination is denied (in `deny`
 * and not in `allow`). */
static int ct_match(const struct nlmsghdr *h, uint32_t src, const uint32_t *allow, int nallow, const uint32_t *deny,
                    int ndeny, struct ct_kept *out) {
  const void *attrs = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
  int len = (int)h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct nfgenmsg)));
  if (len <= 0) return 0;
  const struct nlattr *orig = find_attr(attrs, len, CTA_TUPLE_ORIG);
  if (!orig) return 0;
  const struct nlattr *ip = find_attr(ATTR_DATA(orig), ATTR_LEN(orig), CTA_TUPLE_IP);
  if (!ip) return 0;
  const struct nlattr *s = find_attr(ATTR_DATA(ip), ATTR_LEN(ip), CTA_IP_V4_SRC);
  const struct nlattr *d = find_attr(ATTR_DATA(ip), ATTR_LEN(ip), CTA_IP_V4_DST);
  if (!s || !d || ATTR_LEN(s) != 4 || ATTR_LEN(d) != 4) return 0;
  uint32_t sa, da;
  memcpy(&sa, ATTR_DATA(s), 4);
  memcpy(&da, ATTR_DATA(d), 4);
  if (sa != src || in_cidrs(da, allow, nallow) || !in_cidrs(da, deny, ndeny)) return 0;
  const struct nlattr *zone = find_attr(attrs, len, CTA_ZONE);
  int olen = NLA_ALIGN(orig->nla_len), zlen = zone ? NLA_ALIGN(zone->nla_len) : 0;
  if (olen + zlen > CT_KEEP_MAX) return 0;
  memcpy(out->attrs, orig, orig->nla_len);
  if (zone) memcpy(out->attrs + olen, zone, zone->nla_len);
  out->len = (uint16_t)(olen + zlen);
  return 1;
}

int onebox_ct_delete_denied(uint32_t src, const uint32_t *allow, int nallow, const uint32_t *deny, int ndeny) {
  if (ndeny == 0) return 0; // nothing is denied: no flow to cut
  int fd = open_nfnl();
  if (fd < 0) {
    onebox_net_set_error("ctnetlink socket: %s", strerror(-fd));
    return fd;
  }
  struct ct_kept *kept = NULL;
  int nkept = 0, cap = 0, e = 0;
  struct {
    struct nlmsghdr h;
    struct nfgenmsg g;
  } req = {0};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.g);
  req.h.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.g.nfgen_family = AF_INET;
  req.g.version = NFNETLINK_V0;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  char *buf = malloc(65536);
  if (!buf) {
    close(fd);
    return -ENOMEM;
  }
  if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
    e = -errno;
    goto out;
  }
  // The dump first, whole: a netlink socket cannot take requests while it is dumping.
  for (int done = 0; !done;) {
    ssize_t n = recv(fd, buf, 65536, 0);
    if (n < 0) {
      e = -errno;
      goto out;
    }
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
        // nfnetlink answers EINVAL for a subsystem it does not have (and could not load): no ctnetlink.
        if (e == -EINVAL) {
          onebox_net_set_error("ctnetlink is not available (load it: modprobe nf_conntrack_netlink)");
          free(buf);
          free(kept);
          close(fd);
          return e;
        }
        goto out;
      }
      if (nkept == cap) {
        int ncap = cap ? cap * 2 : 16;
        struct ct_kept *k = realloc(kept, (size_t)ncap * sizeof *k);
        if (!k) {
          e = -ENOMEM;
          goto out;
        }
        kept = k;
        cap = ncap;
      }
      nkept += ct_match(h, src, allow, nallow, deny, ndeny, &kept[nkept]);
    }
  }
  for (int i = 0; i < nkept; i++) {
    int r = ct_delete(fd, &kept[i], 2 + (uint32_t)i);
    if (r < 0) {
      e = r;
      goto out;
    }
  }
out:
  if (e) onebox_net_set_error("ctnetlink: %s", strerror(-e));
  free(buf);
  free(kept);
  close(fd);
  return e ? e : nkept;
}
