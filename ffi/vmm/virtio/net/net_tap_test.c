// Native test of virtio-net on a real TAP (net_tap_prepare, tap.c) in a network namespace of its own: a UDP datagram
// from the host reaches the guest's rx buffers as one frame, a frame the guest sends reaches a host UDP socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include "net_test_util.h"

/* A real TAP in a fresh network namespace (a child process: the namespace is the child's alone), prepared by
 * net_tap_prepare: a UDP datagram the host sends to the guest's address arrives as one frame in the rx buffers, and
 * a frame the guest transmits reaches a host UDP socket. */
static int real_tap_child(void) {
  if (unshare(CLONE_NEWNET) < 0) return 77;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return 77;
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "obxtest0");
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
  char err[256];
  if (net_tap_prepare(fd, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq r = {0};
  strcpy(r.ifr_name, "obxtest0");
  struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.1", &sin->sin_addr);
  CHECK(ioctl(s, SIOCSIFADDR, &r) == 0);
  inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
  CHECK(ioctl(s, SIOCSIFNETMASK, &r) == 0);
  r.ifr_flags = IFF_UP;
  CHECK(ioctl(s, SIOCSIFFLAGS, &r) == 0);
  CHECK(ioctl(s, SIOCGIFHWADDR, &r) == 0);
  uint8_t host_mac[6];
  memcpy(host_mac, r.ifr_hwaddr.sa_data, 6);
  struct arpreq arp = {.arp_flags = ATF_COM | ATF_PERM};
  struct sockaddr_in *pa = (struct sockaddr_in *)&arp.arp_pa;
  pa->sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.2", &pa->sin_addr);
  arp.arp_ha.sa_family = ARPHRD_ETHER;
  memcpy(arp.arp_ha.sa_data, MAC, 6);
  strcpy(arp.arp_dev, "obxtest0");
  CHECK(ioctl(s, SIOCSARP, &arp) == 0);

  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  struct fake_driver d;
  fd_setup(&d, MEM, loop);
  d.dev = virtio_net_create(&d.env, fd, MAC, err, sizeof err);
  CHECK(d.dev);
  CHECK(fd_init(&d, all_features(), QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint64_t rx = post_rx(&d, 8, 4096);
  fd_kick(&d, NET_QUEUE_RX);

  /* host -> guest: the host resolves 10.0.0.2 from the static ARP entry and sends out of the TAP. */
  const char msg[] = "hello from the host";
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
  inet_pton(AF_INET, "10.0.0.2", &to.sin_addr);
  uint32_t id, len;
  bool got = false;
  for (int tries = 0; tries < 50 && !got; tries++) { /* the first datagrams may precede IPv6 noise: look at each */
    CHECK(sendto(s, msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to) == sizeof msg);
    while (!got && wait_used(&d, NET_QUEUE_RX, &id, &len)) {
      const uint8_t *f = (uint8_t *)fd_ptr(&d, rx + 4096ull * id) + NET_HDR_LEN;
      got = len == NET_HDR_LEN + 42 + sizeof msg && !memcmp(f, MAC, 6) && !memcmp(f + 6, host_mac, 6) &&
            f[12] == 0x08 && f[13] == 0 && !memcmp(f + 42, msg, sizeof msg);
      struct fd_buf b = {rx + 4096ull * id, 4096, true};
      CHECK(fd_add(&d, NET_QUEUE_RX, &b, 1) >= 0);
      fd_kick(&d, NET_QUEUE_RX);
    }
  }
  CHECK(got);

  /* guest -> host: Ethernet + IPv4 + UDP (checksum 0) to 10.0.0.1:7777. */
  int in = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(7777)};
  inet_pton(AF_INET, "10.0.0.1", &at.sin_addr);
  CHECK(bind(in, (struct sockaddr *)&at, sizeof at) == 0);
  const char back[] = "hello from the guest";
  uint8_t fr[NET_HDR_LEN + 42 + sizeof back] = {0};
  uint8_t *e = fr + NET_HDR_LEN, *ip = e + 14, *udp = ip + 20;
  memcpy(e, host_mac, 6);
  memcpy(e + 6, MAC, 6);
  e[12] = 0x08;
  uint16_t iplen = (uint16_t)(20 + 8 + sizeof back);
  uint8_t iph[20] = {0x45, 0, (uint8_t)(iplen >> 8), (uint8_t)iplen, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1};
  uint64_t sum = csum_add_test(iph, 20);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  iph[10] = (uint8_t)(~sum >> 8);
  iph[11] = (uint8_t)~sum;
  memcpy(ip, iph, 20);
  uint16_t ul = (uint16_t)(8 + sizeof back);
  uint8_t uh[8] = {0x27, 0x0f, 0x1e, 0x61, (uint8_t)(ul >> 8), (uint8_t)ul, 0, 0};
  memcpy(udp, uh, 8);
  memcpy(udp + 8, back, sizeof back);
  uint64_t a = fd_alloc(&d, sizeof fr, 8);
  memcpy(fd_ptr(&d, a), fr, sizeof fr);
  struct fd_buf b = {a, sizeof fr, false};
  CHECK(fd_add(&d, NET_QUEUE_TX, &b, 1) >= 0);
  fd_kick(&d, NET_QUEUE_TX);
  struct pollfd p = {in, POLLIN, 0};
  CHECK(poll(&p, 1, 2000) == 1);
  char buf[128];
  CHECK(recv(in, buf, sizeof buf, 0) == sizeof back && !memcmp(buf, back, sizeof back));
  fd_teardown(&d);
  evloop_destroy(loop);
  return 0;
}

static void test_real_tap(void) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(real_tap_child());
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
  if (WEXITSTATUS(st) == 77) {
    printf("net_tap_test: real TAP skipped (needs root: unshare -n and /dev/net/tun)\n");
    return;
  }
  CHECK(WEXITSTATUS(st) == 0);
  
}

int main(void) {
  test_real_tap();
  printf("net_tap_test: ok\n");
  return 0;
}
