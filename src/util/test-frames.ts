// Test support: builds and checks Ethernet/ARP/IPv4/TCP/UDP/ICMP frames byte by byte (RFC 791/793/768/792/826).
import { formatIpv4 } from "./ipv4.ts";

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const PROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;

/** One's complement sum of 16-bit words (RFC 1071), folded; not inverted. */
export function onesSum(bytes: Uint8Array, start = 0): number {
  let sum = start;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export const checksum = (bytes: Uint8Array, start = 0): number => ~onesSum(bytes, start) & 0xffff;

function pseudoSum(src: number, dst: number, proto: number, len: number): number {
  const p = new Uint8Array(12);
  const v = new DataView(p.buffer);
  v.setUint32(0, src);
  v.setUint32(4, dst);
  v.setUint8(9, proto);
  v.setUint16(10, len);
  return onesSum(p);
}

/** The TCP/UDP checksum of segment `l4` (its checksum field as it is) between src and dst. */
export function l4Checksum(src: number, dst: number, proto: number, l4: Uint8Array): number {
  return checksum(l4, pseudoSum(src, dst, proto, l4.length));
}

export function eth(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  new DataView(f.buffer).setUint16(12, type);
  f.set(payload, 14);
  return f;
}

export interface Ipv4Opts {
  src: number;
  dst: number;
  proto: number;
  payload: Uint8Array;
  /** IP options (a multiple of 4 bytes). */
  options?: Uint8Array;
  id?: number;
  /** Fragment offset in 8-byte units and the more-fragments flag. */
  fragOffset?: number;
  moreFragments?: boolean;
  ttl?: number;
}

export function ipv4(o: Ipv4Opts): Uint8Array {
  const opt = o.options ?? new Uint8Array(0);
  const hlen = 20 + opt.length;
  const p = new Uint8Array(hlen + o.payload.length);
  const v = new DataView(p.buffer);
  v.setUint8(0, 0x40 | (hlen / 4));
  v.setUint16(2, p.length);
  v.setUint16(4, o.id ?? 0x1234);
  v.setUint16(6, ((o.moreFragments ? 1 : 0) << 13) | (o.fragOffset ?? 0));
  v.setUint8(8, o.ttl ?? 64);
  v.setUint8(9, o.proto);
  v.setUint32(12, o.src);
  v.setUint32(16, o.dst);
  p.set(opt, 20);
  v.setUint16(10, checksum(p.subarray(0, hlen)));
  p.set(o.payload, hlen);
  return p;
}

/** A TCP segment (20-byte header, flags ACK|PSH) with a correct checksum for src -> dst. */
export function tcp(src: number, dst: number, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const s = new Uint8Array(20 + data.length);
  const v = new DataView(s.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint32(4, 1000);
  v.setUint32(8, 2000);
  v.setUint8(12, 5 << 4);
  v.setUint8(13, 0x18);
  v.setUint16(14, 65535);
  s.set(data, 20);
  v.setUint16(16, l4Checksum(src, dst, PROTO.TCP, s));
  return s;
}

/** A UDP datagram; `withChecksum: false` sends checksum 0 ("none", RFC 768). */
export function udp(src: number, dst: number, sport: number, dport: number, data: Uint8Array, withChecksum = true): Uint8Array {
  const s = new Uint8Array(8 + data.length);
  const v = new DataView(s.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, s.length);
  s.set(data, 8);
  if (withChecksum) v.setUint16(6, l4Checksum(src, dst, PROTO.UDP, s) || 0xffff);
  return s;
}

export function icmp(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const s = new Uint8Array(8 + data.length);
  const v = new DataView(s.buffer);
  v.setUint8(0, type);
  v.setUint8(1, code);
  v.setUint32(4, rest);
  s.set(data, 8);
  v.setUint16(2, checksum(s));
  return s;
}

export function arp(op: 1 | 2, sha: Uint8Array, spa: number, tha: Uint8Array, tpa: number): Uint8Array {
  const a = new Uint8Array(28);
  const v = new DataView(a.buffer);
  v.setUint16(0, 1);
  v.setUint16(2, ETH_P_IP);
  v.setUint8(4, 6);
  v.setUint8(5, 4);
  v.setUint16(6, op);
  a.set(sha, 8);
  v.setUint32(14, spa);
  a.set(tha, 18);
  v.setUint32(24, tpa);
  return a;
}

/** A parsed IPv4-in-Ethernet frame with its checksums checked. */
export interface ParsedIpv4 {
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  src: string;
  dst: string;
  proto: number;
  hlen: number;
  ipChecksumOk: boolean;
  /** The IP payload (L4 header and data of this fragment). */
  payload: Uint8Array;
}

export function parseIpv4Frame(f: Uint8Array): ParsedIpv4 {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (v.getUint16(12) !== ETH_P_IP) throw new Error(`not IPv4: ethertype 0x${v.getUint16(12).toString(16)}`);
  const hlen = (f[14]! & 15) * 4;
  const total = v.getUint16(16);
  return {
    dstMac: f.slice(0, 6),
    srcMac: f.slice(6, 12),
    src: formatIpv4(v.getUint32(26)),
    dst: formatIpv4(v.getUint32(30)),
    proto: f[23]!,
    hlen,
    ipChecksumOk: checksum(f.subarray(14, 14 + hlen)) === 0,
    payload: f.slice(14 + hlen, 14 + total),
  };
}

/** True when a TCP/UDP segment's checksum verifies for src -> dst (a UDP checksum of 0 is "none"). */
export function l4ChecksumOk(src: number, dst: number, proto: number, l4: Uint8Array): boolean {
  if (proto === PROTO.UDP && new DataView(l4.buffer, l4.byteOffset).getUint16(6) === 0) return true;
  return l4Checksum(src, dst, proto, l4) === 0;
}
