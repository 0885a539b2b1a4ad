// The IPv4 addresses (A records) and their TTLs in a DNS response's answer section, for learning an allowed name's
// addresses into a slot's egress allow trie (src/net/network.ts). Bounded: a malformed message yields what was read.
const HEADER = 12;

/** Skips a (possibly compressed) name at `i`; the offset after it, or -1. */
function skipName(msg: Uint8Array, i: number): number {
  for (let hops = 0; hops < 128; hops++) {
    const len = msg[i];
    if (len === undefined) return -1;
    if ((len & 0xc0) === 0xc0) return i + 2 <= msg.length ? i + 2 : -1; // a pointer ends the name
    if (len > 63) return -1;
    if (len === 0) return i + 1;
    i += 1 + len;
  }
  return -1;
}

export function readARecords(msg: Uint8Array): { addr: number; ttl: number }[] {
  if (msg.length < HEADER || !(msg[2]! & 0x80) || (msg[3]! & 0x0f) !== 0) return []; // a response, NOERROR
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  let i = HEADER;
  for (let q = 0; q < qd; q++) {
    i = skipName(msg, i);
    if (i < 0 || i + 4 > msg.length) return [];
    i += 4;
  }
  const out: { addr: number; ttl: number }[] = [];
  for (let a = 0; a < an; a++) {
    i = skipName(msg, i);
    if (i < 0 || i + 10 > msg.length) break;
    const type = v.getUint16(i);
    const cls = v.getUint16(i + 2);
    const ttl = v.getUint32(i + 4);
    const rdlen = v.getUint16(i + 8);
    i += 10;
    if (i + rdlen > msg.length) break;
    if (type === 1 && cls === 1 && rdlen === 4) out.push({ addr: v.getUint32(i), ttl });
    i += rdlen;
  }
  return out;
}
