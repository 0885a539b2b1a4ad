// rtnetlink requests (ffi/lib/net/netlink.c) in this thread's network namespace: routes and links.
import { ptr } from "bun:ffi";
import { check, cstr, libOneboxNet } from "./libonebox-net.ts";
import { formatIpv4, ipv4ToBe32 } from "../util/ipv4.ts";

/** Routes onebox adds carry protocol 0x6f (111): `ip route show table all proto 111` lists them. */
export const RTPROT_ONEBOX = 0x6f;
const ENOENT = -2, ESRCH = -3, ENODEV = -19;

export async function routeAdd(ifindex: number, dst: number, prefixLen: number): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_route_add(ifindex, ipv4ToBe32(dst), prefixLen), `add route ${formatIpv4(dst)}/${prefixLen}`);
}

/** Deletes a route; false when it was not there. */
export async function routeDel(ifindex: number, dst: number, prefixLen: number): Promise<boolean> {
  const lib = await libOneboxNet();
  const rc = lib.onebox_route_del(ifindex, ipv4ToBe32(dst), prefixLen);
  if (rc === ESRCH || rc === ENOENT || rc === ENODEV) return false;
  check(lib, rc, `delete route ${formatIpv4(dst)}/${prefixLen}`);
  return true;
}

/** Makes `addr` one of the host's own addresses (a `local` route on lo), e.g. the gateway the DNS forwarder binds. */
export async function routeLocalAdd(addr: number): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_route_local_add(ipv4ToBe32(addr)), `add local route ${formatIpv4(addr)}`);
}

export async function routeLocalDel(addr: number): Promise<boolean> {
  const lib = await libOneboxNet();
  const rc = lib.onebox_route_local_del(ipv4ToBe32(addr));
  if (rc === ESRCH || rc === ENOENT) return false;
  check(lib, rc, `delete local route ${formatIpv4(addr)}`);
  return true;
}

/** Deletes link `name` (a TAP too, even while a VMM holds it); false when there was none. */
export async function linkDel(name: string): Promise<boolean> {
  const lib = await libOneboxNet();
  const rc = lib.onebox_link_del(ptr(cstr(name)));
  if (rc === ENODEV) return false;
  check(lib, rc, `delete link ${name}`);
  return true;
}

/**
 * Deletes link `name` and closes `fd` (a TAP's, or -1) off the event loop: unregistering waits ~20 ms for an RCU grace
 * period. Resolves once the link is gone (polled; false if it was not gone within `timeoutMs`).
 */
export async function linkDelAsync(name: string, fd: number, timeoutMs = 5000): Promise<boolean> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_link_del_async(ptr(cstr(name)), fd), `delete link ${name}`);
  const end = Date.now() + timeoutMs;
  while (lib.onebox_link_index(ptr(cstr(name))) >= 0) {
    if (Date.now() > end) return false;
    await Bun.sleep(2);
  }
  return true;
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

/** Every link of this namespace (if_nameindex: netlink, so right inside a namespace whatever /sys shows). */
export async function links(): Promise<{ ifindex: number; name: string }[]> {
  const lib = await libOneboxNet();
  const buf = Buffer.alloc(1 << 20);
  const n = check(lib, lib.onebox_link_names(ptr(buf), buf.length), "list links");
  return buf
    .subarray(0, n)
    .toString()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [i, name] = l.split(" ");
      return { ifindex: Number(i), name: name! };
    });
}
