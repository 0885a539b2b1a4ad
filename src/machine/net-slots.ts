// A VM's network slot (docs/network.md "Wiring"): taken right before its vmm spawns (cold boot, restore, warm pool
// entry, template VM, resume), handed over as the TAP fd, and released when that vmm ends, whatever ended it.
import { readdirSync, readFileSync } from "node:fs";
import { GUEST_NET } from "../net/addresses.ts";
import type { Network } from "../net/network.ts";
import type { CompiledPolicy } from "../net/policy.ts";
import type { NetSlot } from "../net/slot.ts";
import { log } from "../util/log.ts";
import type { VmHandle } from "./vm-driver.ts";

export interface NetLease {
  tapName: string;
  /** The daemon's copy of the TAP fd: the vmm gets it as `--net FD,MAC`. */
  fd: number;
  /** The sandbox's own address on the host. */
  slotIp: string;
  /** Writes the sandbox's egress policy into the slot (replacing the one before); throws if it cannot. */
  setPolicy(p: CompiledPolicy): void;
  /** The packets the slot's programs dropped since it was made, by reason (camelCase: `gatewayPort`); every reason is
   *  present. Null once the slot is gone. */
  drops(): NetDrops | null;
  /** Destroys the slot; runs once, never throws (a failure is logged). */
  release(): Promise<void>;
}

export interface NetSlots {
  acquire(): Promise<NetLease>;
  /** Remembers which slot a spawned vmm holds (withSlot does), for leaseOf. */
  bind(handle: VmHandle, lease: NetLease): void;
  /** The slot this vmm holds (spawned through withSlot, or re-adopted), or null. */
  leaseOf(handle: VmHandle): NetLease | null;
  /** After a daemon restart: the re-adopted slot whose TAP this running vmm holds, released when it ends. */
  adoptHeldBy(handle: VmHandle): NetLease | null;
  /** After recovery: re-adopted slots no sandbox claimed (a reaped warm pool entry's, a template VM's) go. */
  releaseUnclaimed(): Promise<void>;
  /** Everything the slots dropped or refused since this daemon started, by reason (camelCase): the released slots'
   *  final counts plus the live ones' (GET /metrics). */
  deniedTotal(): NetDrops;
  /** Daemon stop: waits for releases under way, then turns release into a no-op (running sandboxes' slots are
   *  the next daemon's to re-adopt). */
  detach(): Promise<void>;
}

/** Dropped packets of one slot by reason (src/sys/bpf-net.ts DROP_REASONS, camelCased), and connections the name
 *  proxy refused (`name`, `proxyLimit`: src/net/name-proxy.ts ProxyRefusal). */
export type NetDrops = Record<string, number>;

/** `gateway-port` -> `gatewayPort`: JSON field names, as the rest of the metrics sample has. */
export function dropsJson(d: Record<string, number>): NetDrops {
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()), v]));
}

/** The MAC every guest has (a different one is dropped as spoofing). */
export const GUEST_MAC = GUEST_NET.mac;

/** Spawns a VM with a slot when the machine has networking: the slot goes when the VM ends, or at once when the
 *  spawn fails. `egress`: the sandbox's policy, written into the slot before the vmm exists, so no packet of the
 *  guest ever meets the slot without it. */
export async function withSlot<H extends VmHandle>(
  net: NetSlots | null,
  spawn: (lease: NetLease | null) => Promise<H>,
  egress?: CompiledPolicy,
): Promise<H> {
  const lease = net ? await net.acquire() : null;
  let handle: H;
  try {
    if (lease && egress) lease.setPolicy(egress);
    handle = await spawn(lease);
  } catch (e) {
    await lease?.release();
    throw e;
  }
  if (lease && net) {
    net.bind(handle, lease);
    void handle.exited.then(() => lease.release());
  }
  return handle;
}

/** The TAP a process holds, from the kernel's fdinfo of its tun fds ("iff:\tobx3"). */
export function tapHeldBy(pid: number): string | null {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return null;
  }
  for (const fd of fds) {
    try {
      const m = /^iff:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
      if (m) return m[1] ?? null;
    } catch {
      // closed meanwhile
    }
  }
  return null;
}

/** NetSlots over the daemon's Network (src/net): slots from its pool, re-adopted ones from its start report. */
export function networkSlots(network: Network): NetSlots {
  let detached = false;
  const pending = new Set<Promise<void>>();
  const unclaimed = new Map<string, NetSlot>(network.startReport.adopted.map((s) => [s.tapName, s]));
  const byHandle = new WeakMap<VmHandle, NetLease>();
  const live = new Set<NetLease>();
  /** What released slots had dropped when they went. */
  const retired: NetDrops = {};
  const lease = (slot: NetSlot): NetLease => {
    let done: Promise<void> | null = null;
    const l: NetLease = {
      tapName: slot.tapName,
      fd: slot.fd ?? -1,
      slotIp: slot.slotIp,
      setPolicy: (p) => network.setPolicy(slot.slotIp, p),
      drops: () => (slot.isDestroyed ? null : dropsJson(network.drops(slot))),
      release() {
        if (done) return done;
        if (detached) return Promise.resolve();
        // The counters go with the slot: what it dropped is logged first, so an operator can still see why.
        try {
          const d: Record<string, number> = slot.isDestroyed ? {} : network.drops(slot);
          for (const [k, n] of Object.entries(dropsJson(d))) retired[k] = (retired[k] ?? 0) + n;
          const nonzero = Object.fromEntries(Object.entries(d).filter(([, n]) => n > 0));
          if (Object.keys(nonzero).length) log.info("network: packets a slot dropped, by reason", { tap: slot.tapName, slotIp: slot.slotIp, drops: nonzero });
        } catch {
          // counters unreadable: the release goes on
        }
        live.delete(l);
        const p = network.pool
          .release(slot)
          .catch((e: unknown) => log.warn("network: could not release a slot", { tap: slot.tapName, error: String(e) }))
          .finally(() => pending.delete(p));
        pending.add(p);
        done = p;
        return p;
      },
    };
    live.add(l);
    return l;
  };
  return {
    acquire: async () => lease(await network.pool.acquire()),
    bind: (handle, l) => void byHandle.set(handle, l),
    leaseOf: (handle) => byHandle.get(handle) ?? null,
    adoptHeldBy(handle) {
      const tap = tapHeldBy(handle.pid);
      const slot = tap ? unclaimed.get(tap) : undefined;
      if (!tap || !slot) return null;
      unclaimed.delete(tap);
      const l = lease(slot);
      byHandle.set(handle, l);
      void handle.exited.then(() => l.release());
      return l;
    },
    async releaseUnclaimed() {
      const rest = [...unclaimed.values()];
      unclaimed.clear();
      if (rest.length) log.info("network: releasing re-adopted slots no sandbox holds", { taps: rest.map((s) => s.tapName) });
      await Promise.all(rest.map((s) => lease(s).release()));
    },
    deniedTotal() {
      const sum: NetDrops = { ...retired };
      for (const l of live) for (const [k, n] of Object.entries(l.drops() ?? {})) sum[k] = (sum[k] ?? 0) + n;
      return sum;
    },
    async detach() {
      while (pending.size) await Promise.all([...pending]);
      detached = true;
    },
  };
}
