// rtnetlink requests for the host side of slots: routes to slot addresses, the gateway's local route, links.
// One request per call on a fresh socket, acknowledged (NLM_F_ACK) before returning; no `ip` process per step.
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>
#include "net.h"

void onebox_net_set_error(const char *fmt, ...);

/* Routes onebox adds carry this protocol number, so `ip route show proto 0x6f` lists them (a leftover check). */
#define RTPROT_ONEBOX 0x6f

struct req {
  struct nlmsghdr h;
  char body[512];
};

static void *tail(struct req *r) { return (char *)r + NLMSG_ALIGN(r->h.nlmsg_len); }

static int add_attr(struct req *r, unsigned short type, const void *data, int len) {
  int alen = RTA_LENGTH(len);
  if (NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(alen) > sizeof(*r)) return -ENOBUFS;
  struct rtattr *a = tail(r);
  a->rta_type = type;
  a->rta_len = alen;
  if (len) memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(alen);
  return 0;
}

/* Sends r and waits for its acknowledgement; returns 0 or the kernel's -errno. */
static int talk(struct req *r, const char *what) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  r->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  r->h.nlmsg_seq = 1;
  int e = 0;
  if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
    e = -errno;
    goto out;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      e = -errno;
      goto out;
    }
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
        goto out;
      }
    }
  }
out:
  close(fd);
  if (e) onebox_net_set_error("netlink %s: %s", what, strerror(-e));
  return e;
}

static int route(int type, int flags, unsigned char table, unsigned char scope, unsigned char rtype, int ifindex,
                 uint32_t dst, int prefix_len) {
  struct req r = {0};
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  r.h.nlmsg_type = type;
  r.h.nlmsg_flags = flags;
  struct rtmsg *rt = NLMSG_DATA(&r.h);
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = prefix_len;
  rt->rtm_table = table;
  rt->rtm_protocol = RTPROT_ONEBOX;
  rt->rtm_scope = scope;
  rt->rtm_type = rtype;
  add_attr(&r, RTA_DST, &dst, 4);
  add_attr(&r, RTA_OIF, &ifindex, 4);
  return talk(&r, type == RTM_NEWROUTE ? "add route" : "delete route");
}

int onebox_route_add(int ifindex, uint32_t dst, int prefix_len) {
  return route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, RT_TABLE_MAIN, RT_SCOPE_LINK, RTN_UNICAST, ifindex, dst, prefix_len);
}

int onebox_route_del(int ifindex, uint32_t dst, int prefix_len) {
  return route(RTM_DELROUTE, 0, RT_TABLE_MAIN, RT_SCOPE_LINK, RTN_UNICAST, ifindex, dst, prefix_len);
}

/* `local ADDR dev lo table local`: the host accepts ADDR as its own (and a socket may bind it) without an address on
 * any link, so no dummy device is needed (not every kernel has CONFIG_DUMMY). */
int onebox_route_local_add(uint32_t addr) {
  return route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, 1, addr, 32);
}

int onebox_route_local_del(uint32_t addr) {
  return route(RTM_DELROUTE, 0, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, 1, addr, 32);
}

int onebox_link_del(const char *name) {
  int ifindex = onebox_link_index(name);
  if (ifindex < 0) return ifindex;
  struct req r = {0};
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  r.h.nlmsg_type = RTM_DELLINK;
  struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
  ifi->ifi_index = ifindex;
  return talk(&r, "delete link");
}

/* Unregistering a link waits for an RCU grace period (~20 ms measured, in the kernel's synchronize_net), and so does
 * closing the last fd of a TAP: done here on a detached thread so the daemon's event loop never waits for it. */
struct del_job {
  char name[IF_NAMESIZE];
  int fd;
};

static void *del_thread(void *arg) {
  struct del_job *job = arg;
  onebox_link_del(job->name);
  if (job->fd >= 0) close(job->fd);
  free(job);
  return NULL;
}

int onebox_link_del_async(const char *name, int fd) {
  if (!name || strlen(name) >= IF_NAMESIZE) return -EINVAL;
  struct del_job *job = calloc(1, sizeof *job);
  if (!job) return -ENOMEM;
  strcpy(job->name, name);
  job->fd = fd;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int e = pthread_create(&t, &attr, del_thread, job);
  pthread_attr_destroy(&attr);
  if (e) {
    free(job);
    return -e;
  }
  return 0;
}

int onebox_link_index(const char *name) {
  unsigned i = if_nametoindex(name);
  return i ? (int)i : -ENODEV;
}

int onebox_link_names(char *buf, int len) {
  struct if_nameindex *all = if_nameindex();
  if (!all) return -errno;
  int n = 0;
  for (struct if_nameindex *i = all; i->if_index; i++) {
    int w = snprintf(buf + n, len - n, "%u %s\n", i->if_index, i->if_name);
    if (w < 0 || w >= len - n) {
      if_freenameindex(all);
      return -ENOBUFS;
    }
    n += w;
  }
  if_freenameindex(all);
  return n;
}

int onebox_link_name(int ifindex, char *buf, int len) {
  char name[IF_NAMESIZE];
  if (!if_indextoname(ifindex, name)) return -ENODEV;
  int n = strlen(name);
  if (n >= len) return -ENOBUFS;
  memcpy(buf, name, n + 1);
  return n;
}
