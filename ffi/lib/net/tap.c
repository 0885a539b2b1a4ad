// TAP devices for sandboxes: opened by the daemon (root), handed to the per-VM process as a file descriptor.
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net.h"

void onebox_net_set_error(const char *fmt, ...);

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int e = n < 0 ? -errno : 0;
  close(fd);
  return e;
}

int onebox_tap_open(const char *name, int vnet_hdr_size, const uint8_t mac[6], int32_t *ifindex) {
  if (!name || strlen(name) >= IFNAMSIZ) return -EINVAL;
  /* CLOEXEC: no other child (another sandbox's VMM) may inherit this sandbox's TAP. */
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    onebox_net_set_error("open /dev/net/tun: %s", strerror(e));
    return -e;
  }
  struct ifreq ifr = {0};
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  int sock = -1, e = 0;
  const char *step = "TUNSETIFF";
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) goto fail;
  step = "TUNSETVNETHDRSZ";
  if (ioctl(fd, TUNSETVNETHDRSZ, &vnet_hdr_size) < 0) goto fail;
  /* No offloads until the guest's driver negotiated them: the VMM calls TUNSETOFFLOAD on this fd then. */
  step = "TUNSETOFFLOAD";
  if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) goto fail;
  sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  step = "socket";
  if (sock < 0) goto fail;
  struct ifreq req = {0};
  strncpy(req.ifr_name, name, IFNAMSIZ - 1);
  req.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(req.ifr_hwaddr.sa_data, mac, 6);
  step = "SIOCSIFHWADDR";
  if (ioctl(sock, SIOCSIFHWADDR, &req) < 0) goto fail;
  /* The guest speaks IPv4 only: no IPv6 link-local, router solicitations or DAD from the host into the guest. */
  char path[96];
  snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
  write_file(path, "1"); /* absent when the host has no IPv6: nothing to turn off */
  memset(&req, 0, sizeof req);
  strncpy(req.ifr_name, name, IFNAMSIZ - 1);
  /* NOARP: the host reaches the slot's address by a route on the TAP without resolving it (the egress program
   * sets the guest's MAC), and the guest never sees the host's ARP. */
  req.ifr_flags = IFF_UP | IFF_NOARP;
  step = "SIOCSIFFLAGS";
  if (ioctl(sock, SIOCSIFFLAGS, &req) < 0) goto fail;
  step = "SIOCGIFINDEX";
  if (ioctl(sock, SIOCGIFINDEX, &req) < 0) goto fail;
  *ifindex = req.ifr_ifindex;
  close(sock);
  return fd;
fail:
  e = errno;
  onebox_net_set_error("TAP %s: %s: %s", name, step, strerror(e));
  if (sock >= 0) close(sock);
  close(fd); /* not persistent: closing the only fd removes the device */
  return -e;
}

int onebox_tap_read(int fd, uint8_t *buf, int len, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r = poll(&p, 1, timeout_ms);
  if (r < 0) return -errno;
  if (r == 0) return -ETIMEDOUT;
  ssize_t n = read(fd, buf, (size_t)len);
  return n < 0 ? -errno : (int)n;
}

int onebox_tap_set_offload(int fd, unsigned flags) {
  if (ioctl(fd, TUNSETOFFLOAD, flags) < 0) {
    int e = errno;
    onebox_net_set_error("TUNSETOFFLOAD 0x%x: %s", flags, strerror(e));
    return -e;
  }
  return 0;
}
