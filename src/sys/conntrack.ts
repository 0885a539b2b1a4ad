// Deleting conntrack entries through ctnetlink (ffi/lib/net/conntrack.c), in this thread's network namespace: no
// `conntrack` process, no libnetfilter_conntrack. The dump runs on a thread of the library's, polled from here: it
// walks the host's whole conntrack table (20-150 ms measured in the emulated test host) and the event loop serves
// every sandbox meanwhile.
import { ptr } from "bun:ffi";
import { check, libOneboxNet } from "./libonebox-net.ts";
import { formatIpv4, ipv4ToBe32, type Cidr } from "../util/ipv4.ts";

const pairs = (cidrs: Cidr[]) => new Uint32Array(cidrs.flatMap((c) => [ipv4ToBe32(c.base), c.prefix]));
const POLL_MS = 2;
const START_WAIT_MS = 30_000;
const EAGAIN = 11;

/** Deletes the IPv4 entries whose original source is `src` and original destination is in `deny` but not in
 *  `allow`; returns how many. */
export async function conntrackDeleteDenied(src: number, allow: Cidr[], deny: Cidr[]): Promise<number> {
  if (deny.length === 0) return 0;
  const lib = await libOneboxNet();
  const what = `delete conntrack entries of ${formatIpv4(src)}`;
  const a = pairs(allow.length ? allow : [{ base: 0, prefix: 32, size: 1 }]); // a pointer to something, never read
  const d = pairs(deny);
  let rc = lib.onebox_ct_delete_denied_start(ipv4ToBe32(src), ptr(a), allow.length, ptr(d), deny.length);
  // All the library's jobs busy (a burst of PUTs): wait for one, as a synchronous dump would have made us wait.
  for (const end = Date.now() + START_WAIT_MS; rc === -EAGAIN && Date.now() < end; ) {
    await Bun.sleep(POLL_MS);
    rc = lib.onebox_ct_delete_denied_start(ipv4ToBe32(src), ptr(a), allow.length, ptr(d), deny.length);
  }
  const job = check(lib, rc, what);
  const result = new Int32Array(1);
  const err = Buffer.alloc(256);
  while (check(lib, lib.onebox_ct_job_poll(job, ptr(result), ptr(err), err.length), what) === 0) await Bun.sleep(POLL_MS);
  const n = result[0]!;
  if (n >= 0) return n;
  const detail = err.subarray(0, err.indexOf(0) < 0 ? err.length : err.indexOf(0)).toString();
  throw Object.assign(new Error(`${what} failed (errno ${-n})${detail ? `: ${detail}` : ""}`), { errno: -n });
}
