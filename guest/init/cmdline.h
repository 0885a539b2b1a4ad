// Parser for the kernel command line: onebox.* settings and per-module parameters.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMDLINE_MAX 4096

struct cmdline {
  char test[16];      /* onebox.test=: "", "echo", "blk", "boot", "panic" */
  uint64_t seed;      /* onebox.seed= (decimal or 0x hex), 0 when absent */
  bool has_seed;
  char hostname[64];  /* onebox.hostname=, "" when absent */
  char id[65];        /* onebox.id= */
  bool has_net;       /* onebox.net=<ip>/<prefix>,<gateway>: the VM has a network device (docs/guest.md) */
  uint32_t net_ip, net_gw; /* host byte order */
  uint8_t net_prefix;
  int bad;            /* number of onebox.* parameters rejected (logged by the caller) */
};

/* cmdline_parse fills out from buf[0..len) (need not be NUL-terminated). Unknown or invalid
 * onebox.* entries are counted in out->bad and otherwise ignored; returns 0. */
int cmdline_parse(const char *buf, size_t len, struct cmdline *out);

/* cmdline_module_params collects every "<module>.<param>=<value>" token for module (module
 * names compare with '-' == '_') into out as "param=value param=value"; returns the number of
 * parameters, or -1 if they do not fit in cap or a token is malformed. */
int cmdline_module_params(const char *buf, size_t len, const char *module, char *out, size_t cap);

/* Validators shared with the control channel. */
bool cmdline_valid_hostname(const char *s, size_t n);
bool cmdline_valid_id(const char *s, size_t n);
/* cmdline_parse_net parses "<a.b.c.d>/<prefix>,<e.f.g.h>" of exactly n chars: a host address in a /1../30 whose
 * network the gateway is in (not the network or broadcast address, not the address itself); false otherwise. */
bool cmdline_parse_net(const char *s, size_t n, uint32_t *ip, uint8_t *prefix, uint32_t *gw);
/* cmdline_parse_u64 parses decimal or 0x-hex of exactly n chars; false on junk or overflow. */
bool cmdline_parse_u64(const char *s, size_t n, uint64_t *out);
