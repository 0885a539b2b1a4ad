// rtnetlink requests (ffi/lib/net/netlink.c) in this thread's network namespace: routes, dummy links, addresses.
import { ptr } from "bun:ffi";
import { check, cstr, libOneboxNet } from "./libonebox-net.ts";
import { formatIpv4, ipv4ToBe32 } from "../util/ipv4.ts";

/** Routes onebox adds carry protocol 0x6f: `ip route show proto 0x6f` lists them. */
export const RTPROT_ONEBOX = 0x6f;

export async function routeAdd(ifindex: number, dst: number, prefixLen: number): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_route_add(ifindex, ipv4ToBe32(dst), prefixLen), `add route ${formatIpv4(dst)}/${prefixLen}`);
}

export async function routeDel(ifindex: number, dst: number, prefixLen: number): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_route_del(ifindex, ipv4ToBe32(dst), prefixLen), `delete route ${formatIpv4(dst)}/${prefixLen}`);
}

export async function linkAddDummy(name: string): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_link_add_dummy(ptr(cstr(name))), `add dummy link ${name}`);
}

/** Deletes link `name`; false when there was none. */
export async function linkDel(name: string): Promise<boolean> {
  const lib = await libOneboxNet();
  const rc = lib.onebox_link_del(ptr(cstr(name)));
  if (rc === -19) return false;
  check(lib, rc, `delete link ${name}`);
  return true;
}

export async function linkUp(name: string): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_link_up(ptr(cstr(name))), `set ${name} up`);
}

export async function addrAdd(ifindex: number, addr: number, prefixLen: number): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_addr_add(ifindex, ipv4ToBe32(addr), prefixLen), `add address ${formatIpv4(addr)}/${prefixLen}`);
}

/** The ifindex of `name`, or null when there is no such link. */
export async function linkIndex(name: string): Promise<number | null> {
  const lib = await libOneboxNet();
  const rc = lib.onebox_link_index(ptr(cstr(name)));
  return rc < 0 ? null : rc;
}

/** The name of link `ifindex`, or null when there is none. */
export async function linkName(ifindex: number): Promise<string | null> {
  const lib = await libOneboxNet();
  const buf = Buffer.alloc(16);
  const n = lib.onebox_link_name(ifindex, ptr(buf), buf.length);
  return n < 0 ? null : buf.subarray(0, n).toString();
}
