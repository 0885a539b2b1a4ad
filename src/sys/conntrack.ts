// Deleting conntrack entries through ctnetlink (ffi/lib/net/conntrack.c), in this thread's network namespace: no
// `conntrack` process, no libnetfilter_conntrack.
import { ptr } from "bun:ffi";
import { check, libOneboxNet } from "./libonebox-net.ts";
import { formatIpv4, ipv4ToBe32, type Cidr } from "../util/ipv4.ts";

const pairs = (cidrs: Cidr[]) => new Uint32Array(cidrs.flatMap((c) => [ipv4ToBe32(c.base), c.prefix]));

/** Deletes the IPv4 entries whose original source is `src` and original destination is in `deny` but not in
 *  `allow`; returns how many. */
export async function conntrackDeleteDenied(src: number, allow: Cidr[], deny: Cidr[]): Promise<number> {
  if (deny.length === 0) return 0;
  const lib = await libOneboxNet();
  const a = pairs(allow.length ? allow : [{ base: 0, prefix: 32, size: 1 }]); // a pointer to something, never read
  const d = pairs(deny);
  return check(lib, lib.onebox_ct_delete_denied(ipv4ToBe32(src), ptr(a), allow.length, ptr(d), deny.length), `delete conntrack entries of ${formatIpv4(src)}`);
}
