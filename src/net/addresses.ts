// The addresses of guest networking (docs/network.md "Addresses"): what every guest sees, and the slot addresses.
import { formatIpv4, parseCidr, parseIpv4, parseMac, type Cidr } from "../util/ipv4.ts";

/**
 * What every guest is configured with before its template snapshot, so every clone of it keeps working unchanged:
 * a /30 in link-local space (CubeSandbox's 169.254.68.6), never routed by LANs or clouds, and outside the metadata
 * address 169.254.169.254. The gateway is the host side, answered by eBPF on each TAP (ARP) and by the daemon (DNS).
 * The MACs are locally administered and spell the addresses (a9:fe:44 = 169.254.68).
 */
export const GUEST_NET = {
  ip: "169.254.68.6",
  prefixLen: 30,
  gateway: "169.254.68.5",
  mac: "02:00:a9:fe:44:06",
  gatewayMac: "02:00:a9:fe:44:05",
  /** The guest's resolver: the gateway, where the daemon's DNS forwarder answers. */
  dns: "169.254.68.5",
  mtu: 1500,
} as const;

/** TAP names: obx<slot index> (index < 65534 fits IFNAMSIZ). */
export const TAP_PREFIX = "obx";
export const tapName = (index: number): string => `${TAP_PREFIX}${index}`;
export function tapIndex(name: string): number | null {
  const m = /^obx(\d{1,5})$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** The sandbox range: slot i's address is base + 1 + i (the network and broadcast addresses are never used). */
export class SandboxRange {
  readonly cidr: Cidr;
  constructor(cidr: string) {
    this.cidr = parseCidr(cidr);
    if (this.cidr.prefix > 30) throw new Error(`--sandbox-cidr ${cidr} is too small: it needs at least a /30 (2 slots)`);
    if (this.cidr.prefix < 16) throw new Error(`--sandbox-cidr ${cidr} is larger than a /16 (65534 slots): pick a /16 or smaller`);
  }
  /** How many slots the range holds. */
  get slots(): number {
    return this.cidr.size - 2;
  }
  address(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.slots) throw new Error(`slot ${index} is outside ${this.toString()}`);
    return this.cidr.base + 1 + index;
  }
  indexOf(ip: number): number | null {
    const i = ip - this.cidr.base - 1;
    return i >= 0 && i < this.slots ? i : null;
  }
  toString(): string {
    return `${formatIpv4(this.cidr.base)}/${this.cidr.prefix}`;
  }
}

export const guestIp = (): number => parseIpv4(GUEST_NET.ip);
export const gatewayIp = (): number => parseIpv4(GUEST_NET.gateway);
export const guestMac = (): Uint8Array => parseMac(GUEST_NET.mac);
export const gatewayMac = (): Uint8Array => parseMac(GUEST_NET.gatewayMac);
