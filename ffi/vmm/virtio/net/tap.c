// The TAP side of virtio-net: checks the fd the daemon handed over and sets its vnet header and offloads, at setup.
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include "net.h"

int net_tap_prepare(int fd, char *err, size_t errlen) {
  struct ifreq ifr = {0};
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    snprintf(err, errlen, "--net: fd %d is not a TAP (TUNGETIFF: %s)", fd, strerror(errno));
    return -1;
  }
  short want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if ((ifr.ifr_flags & want) != want) {
    snprintf(err, errlen, "--net: TAP %.16s must be opened IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (flags 0x%x)", ifr.ifr_name,
             (unsigned)ifr.ifr_flags);
    return -1;
  }
  /* The device and the TAP share the virtio 1.x header (12 bytes, with num_buffers), so tx chains go out as they are. */
  int hdr = NET_HDR_LEN;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
    snprintf(err, errlen, "--net: TUNSETVNETHDRSZ %d: %s", hdr, strerror(errno));
    return -1;
  }
  /* What the TAP may hand us toward the guest: partial checksums and TCP segments up to 64 KiB, as the device offers
   * GUEST_CSUM/GUEST_TSO4/GUEST_TSO6. Set once here (the running vmm may issue no ioctl): a driver that declines them
   * gets its checksums filled in by the device and GSO frames dropped (device.c rx_fix_offloads). The host->guest
   * direction needs nothing: a TAP always takes GSO and partial-checksum frames it is written. */
  if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0) {
    snprintf(err, errlen, "--net: TUNSETOFFLOAD: %s", strerror(errno));
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    snprintf(err, errlen, "--net: O_NONBLOCK: %s", strerror(errno));
    return -1;
  }
  return 0;
}

int net_parse_mac(const char *s, uint8_t mac[6]) {
  unsigned v[6];
  char tail;
  if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    return -1;
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)v[i];
  /* A guest MAC must be unicast (bit 0 of the first byte clear). */
  return (mac[0] & 1) ? -1 : 0;
}
