// IPv4 addresses and CIDR ranges as numbers: parse, format, contains, overlap (pure; used by src/net and src/sys).

/** An address as an unsigned 32-bit number, most significant octet first (203.0.113.10 -> 0xcb00710a). */
export function parseIpv4(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) throw new Error(`'${s}' is not an IPv4 address (like 198.18.0.1)`);
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) throw new Error(`'${s}' is not an IPv4 address: octets are 0-255`);
  return ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The 4 bytes in network order, as C's uint32_t/__be32 holds them in memory on a little-endian host. */
export function ipv4ToBe32(n: number): number {
  return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
}

export function be32ToIpv4(v: number): number {
  return ipv4ToBe32(v); // the byte swap is its own inverse
}

export interface Cidr {
  base: number;
  prefix: number;
  /** Number of addresses in the range. */
  size: number;
}

export function parseCidr(s: string): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m) throw new Error(`'${s}' is not a CIDR range (like 198.18.0.0/16)`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw new Error(`'${s}': the prefix length is 0-32`);
  const addr = parseIpv4(m[1]!);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((addr & mask) >>> 0 !== addr) throw new Error(`'${s}' has host bits set: did you mean ${formatIpv4((addr & mask) >>> 0)}/${prefix}?`);
  return { base: addr, prefix, size: 2 ** (32 - prefix) };
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + c.size;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

export function parseMac(s: string): Uint8Array {
  const parts = s.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`'${s}' is not a MAC address`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}
