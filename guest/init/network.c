// The guest's network (onebox.net= on the kernel command line): eth0's address, default route and resolver, set with
// ioctls (the initramfs has no `ip`), at boot, so that nothing in a clone changes after a restore.
#include "network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define IFACE "eth0"
#define WAIT_MS 3000

void network_format_ipv4(uint32_t a, char out[16]) {
  snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static void set_in(struct sockaddr *sa, uint32_t host_order) {
  struct sockaddr_in *in = (struct sockaddr_in *)sa;
  memset(in, 0, sizeof *in);
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(host_order);
}

static int ifreq_ioctl(int fd, unsigned long req, struct ifreq *ifr, const char *what) {
  if (ioctl(fd, req, ifr) == 0) return 0;
  log_errno("net: %s %s", IFACE, what);
  return -1;
}

int network_setup(const struct cmdline *cl) {
  if (!cl->has_net) return 0;
  /* The device is probed when virtio_net loads; give a slow probe a moment rather than racing it. */
  for (int waited = 0; !if_nametoindex(IFACE); waited += 10) {
    if (waited >= WAIT_MS) {
      log_info("net: no %s after %d ms (is virtio_net in the initramfs?)", IFACE, WAIT_MS);
      return -1;
    }
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  /* IPv4 only (the host drops IPv6): no link-local address, router solicitations or DAD on the wire. */
  int pf = open("/proc/sys/net/ipv6/conf/" IFACE "/disable_ipv6", O_WRONLY | O_CLOEXEC);
  if (pf >= 0) {
    if (write(pf, "1", 1) != 1) log_errno("net: disable IPv6 on %s", IFACE);
    close(pf);
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_errno("net: socket");
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, IFACE, IFNAMSIZ - 1);
  int rc = 0;
  set_in(&ifr.ifr_addr, cl->net_ip);
  rc |= ifreq_ioctl(fd, SIOCSIFADDR, &ifr, "SIOCSIFADDR");
  set_in(&ifr.ifr_netmask, ~0u << (32 - cl->net_prefix));
  rc |= ifreq_ioctl(fd, SIOCSIFNETMASK, &ifr, "SIOCSIFNETMASK");
  if (ifreq_ioctl(fd, SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS") == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    rc |= ifreq_ioctl(fd, SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS");
  } else {
    rc = -1;
  }
  struct rtentry rt;
  memset(&rt, 0, sizeof rt);
  set_in(&rt.rt_dst, 0);
  set_in(&rt.rt_genmask, 0);
  set_in(&rt.rt_gateway, cl->net_gw);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = (char *)IFACE;
  if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
    log_errno("net: default route");
    rc = -1;
  }
  close(fd);
  char ip[16], gw[16];
  network_format_ipv4(cl->net_ip, ip);
  network_format_ipv4(cl->net_gw, gw);
  if (!rc) log_info("net: %s %s/%u via %s", IFACE, ip, cl->net_prefix, gw);
  return rc ? -1 : 0;
}

int network_write_resolv(const struct cmdline *cl) {
  if (!cl->has_net) return 0;
  char gw[16], text[64];
  network_format_ipv4(cl->net_gw, gw);
  int n = snprintf(text, sizeof text, "nameserver %s\n", gw);
  /* Images often ship it as a symlink (systemd-resolved, a container runtime's bind mount target): replaced. */
  if (unlink("/etc/resolv.conf") < 0 && errno != ENOENT) log_errno("net: unlink /etc/resolv.conf");
  int fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    log_errno("net: create /etc/resolv.conf");
    return -1;
  }
  int rc = write(fd, text, (size_t)n) == n ? 0 : -1;
  if (rc) log_errno("net: write /etc/resolv.conf");
  close(fd);
  return rc;
}
