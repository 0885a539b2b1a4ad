// TAP devices (ffi/lib/net/tap.c): open one for a slot (the fd the VMM gets), read a frame with a deadline.
import { ptr } from "bun:ffi";
import { check, cstr, libOneboxNet } from "./libonebox-net.ts";

/** virtio-net's header with num_buffers (virtio 1.x, VIRTIO_NET_F_MRG_RXBUF): 12 bytes before every frame. */
export const VNET_HDR_SIZE = 12;

export interface Tap {
  name: string;
  /** O_CLOEXEC|O_NONBLOCK; closing the last copy removes the device (it is not persistent). */
  fd: number;
  ifindex: number;
}

/** Creates TAP `name` (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, no offloads yet, MAC `mac`, IPv6 off, NOARP, up). */
export async function openTap(name: string, mac: Uint8Array, vnetHdrSize = VNET_HDR_SIZE): Promise<Tap> {
  const lib = await libOneboxNet();
  const ifindex = new Int32Array(1);
  const fd = check(lib, lib.onebox_tap_open(ptr(cstr(name)), vnetHdrSize, ptr(mac), ptr(ifindex)), `open TAP ${name}`);
  return { name, fd, ifindex: ifindex[0]! };
}

/** TUN_F_* (linux/if_tun.h). */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04 } as const;

/** TUNSETOFFLOAD on a TAP fd: what the VMM does once it owns the fd (tests play the VMM with it). */
export async function setTapOffload(fd: number, flags: number): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_tap_set_offload(fd, flags), "TUNSETOFFLOAD");
}

/** One frame (with its vnet header) from a TAP fd, or null after timeoutMs. Blocks the calling thread: tests only. */
export async function readFrame(fd: number, timeoutMs: number): Promise<Uint8Array | null> {
  const lib = await libOneboxNet();
  const buf = new Uint8Array(65550);
  const n = lib.onebox_tap_read(fd, ptr(buf), buf.length, timeoutMs);
  if (n === -110) return null;
  check(lib, n, "read TAP");
  return buf.slice(0, n);
}
