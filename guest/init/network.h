// The guest's network (onebox.net= on the kernel command line): eth0's address, default route and resolver.
#pragma once
#include "cmdline.h"

/* network_setup waits for eth0 (virtio_net is loaded by then), turns IPv6 off on it, gives it cl's address and
 * prefix, brings it up and routes everything via cl's gateway. Runs at boot, before any snapshot, so every clone
 * keeps it unchanged. 0, or -1 (logged). */
int network_setup(const struct cmdline *cl);
/* network_write_resolv makes /etc/resolv.conf (of the root it runs in) name the gateway as the only resolver
 * (the daemon's DNS forwarder answers there); a symlink in its place is replaced. 0 or -1 (logged). */
int network_write_resolv(const struct cmdline *cl);
/* network_format_ipv4 writes a.b.c.d of a host-order address into out (16 bytes). */
void network_format_ipv4(uint32_t a, char out[16]);
