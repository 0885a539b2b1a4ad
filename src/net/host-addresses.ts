// The host's own IPv4 addresses (every interface's, as getifaddrs reports them): always denied to guests
// (docs/network.md "Egress policy"), so no host service listening on a wildcard address, the daemon's port among
// them, is reachable from a sandbox by any of the host's addresses.
import { networkInterfaces } from "node:os";

/** Every IPv4 address on the host's interfaces, as `a.b.c.d/32`, sorted, without duplicates. */
export function hostAddresses(): string[] {
  const out = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4") out.add(`${a.address}/32`);
  }
  return [...out].sort();
}
