// A network slot: one sandbox's TAP with the eBPF programs attached, its own address on the host, and the steps
// that undo it. Made ahead by the pool (src/net/pool.ts); the VMM later gets only the TAP fd.
import { bpfAttached, type SlotCfg } from "../sys/bpf-net.ts";
import { linkDelAsync, routeAdd } from "../sys/rtnetlink.ts";
import { openTap } from "../sys/tap.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import { formatIpv4 } from "../util/ipv4.ts";
import { gatewayIp, gatewayMac, GUEST_NET, guestIp, guestMac, tapName } from "./addresses.ts";
import type { HostNet } from "./host-net.ts";
import type { ProxyRefusal } from "./name-proxy.ts";
import type { CompiledPolicy } from "./policy.ts";

export class NetSlot {
  private destroyed = false;
  /** The egress policy written into this slot's maps (Network.setPolicy); gone with the slot. */
  policy: CompiledPolicy | null = null;
  /** Addresses learned from allowed names' DNS answers (in the allow trie), with when they expire (Unix ms). */
  readonly learned = new Map<number, number>();
  /** Connections the name proxy refused (its `ProxyRefusal`s), counted beside the eBPF programs' packet drops. Kept
   *  by this daemon only: a restart starts them from 0 (the maps' counters survive it). */
  readonly proxyDrops: Record<ProxyRefusal, number> = { name: 0, "proxy-limit": 0 };
  constructor(
    readonly index: number,
    readonly tapName: string,
    readonly ifindex: number,
    /** The daemon's copy of the TAP fd (CLOEXEC); null for a slot re-adopted after a restart (its VMM holds it). */
    readonly fd: number | null,
    /** The address this sandbox's traffic has on the host (before masquerade) and that others reach it by. */
    readonly slotIp: string,
    private readonly undo: CleanupStack,
  ) {}

  /** What the guest is configured with (the same in every slot). */
  get guest(): typeof GUEST_NET {
    return GUEST_NET;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Removes everything the slot made: map entry, then the TAP (with its route and programs). Runs once. */
  async destroy(): Promise<Error[]> {
    if (this.destroyed) return [];
    this.destroyed = true;
    return this.undo.unwind();
  }
}

export function slotCfg(slotIp: number): SlotCfg {
  return { slotIp, guestIp: guestIp(), gatewayIp: gatewayIp(), guestMac: guestMac(), gatewayMac: gatewayMac(), flags: 0 };
}

/** Makes slot `index`: TAP, route to its address, map entry, programs; each step's undo registered first. */
export async function makeSlot(host: HostNet, index: number): Promise<NetSlot> {
  const name = tapName(index);
  const ip = host.range.address(index);
  const undo = new CleanupStack();
  try {
    const tap = await openTap(name, gatewayMac());
    // The link is deleted explicitly (not only by closing our fd): a VMM holding a dup must not keep it alive. Off the
    // event loop: unregistering a link (or closing a TAP's last fd) waits ~20 ms for RCU.
    undo.push("TAP", async () => {
      if (!(await linkDelAsync(name, tap.fd))) throw new Error(`TAP ${name} still exists 5 s after its deletion`);
    });
    // The route and the clsact qdisc with its programs belong to the link: deleting the TAP removes them, so they
    // register no undo of their own (detaching first would cost another 0.5 ms for nothing).
    await routeAdd(tap.ifindex, ip, 32);
    // A slot starts with no rule, which its first policy relies on (Network.setPolicy writes it without reading the
    // tries): any rule a TAP with this ifindex left (its cleanup failed; the kernel reuses ifindexes) goes here,
    // while the pool makes the slot ahead of its create.
    host.bpf.deleteSlotRules(tap.ifindex);
    host.bpf.setSlot(tap.ifindex, slotCfg(ip));
    undo.push("slot map entry", () => void host.bpf.deleteSlot(tap.ifindex));
    host.bpf.attach(tap.ifindex);
    return new NetSlot(index, name, tap.ifindex, tap.fd, formatIpv4(ip), undo);
  } catch (e) {
    await undo.unwind();
    throw e;
  }
}

/** A slot found at start-up whose TAP a running VMM still holds: its undo deletes the entry and the link. */
export async function adoptSlot(host: HostNet, index: number, ifindex: number): Promise<NetSlot | null> {
  const cfg = host.bpf.getSlot(ifindex);
  const ip = host.range.address(index);
  if (!cfg || cfg.slotIp !== ip || !(await bpfAttached(ifindex))) return null;
  const name = tapName(index);
  const undo = new CleanupStack();
  undo.push("TAP", async () => {
    if (!(await linkDelAsync(name, -1))) throw new Error(`TAP ${name} still exists 5 s after its deletion`);
  });
  undo.push("slot map entry", () => void host.bpf.deleteSlot(ifindex));
  return new NetSlot(index, name, ifindex, null, formatIpv4(ip), undo);
}
