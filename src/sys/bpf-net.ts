// The eBPF translation programs (ffi/bpf/onebox_net.bpf.c) through libonebox-net: load with pinned maps, attach to a
// TAP with tc clsact, per-slot config keyed by ifindex, drop counters, BPF_PROG_TEST_RUN.
import { ptr, type Pointer } from "bun:ffi";
import type { Cidr } from "../util/ipv4.ts";
import { check, cstr, libOneboxNet, type LibOneboxNet } from "./libonebox-net.ts";

/** struct onebox_slot_cfg in ffi/bpf/onebox_net.h: 32 bytes. */
const CFG_SIZE = 32;

export interface SlotCfg {
  slotIp: number;
  guestIp: number;
  gatewayIp: number;
  guestMac: Uint8Array;
  gatewayMac: Uint8Array;
  flags: number;
}

/** enum onebox_drop, in order. */
export const DROP_REASONS = [
  "no-slot", "short", "bad-ip", "spoof", "not-ipv4", "arp", "not-gateway", "not-slot", "tiny-fragment", "gateway-port",
  "host", "reserved", "policy",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
const DROP_MAX = 16;

/** The global LPM tries (struct onebox_lpm4 keys): always-denied host addresses, and ranges the operator opened. */
export type GlobalRangeMap = "onebox_host_deny" | "onebox_open";
/** The per-slot LPM tries (struct onebox_slot_lpm4 keys): E2B's allowOut and denyOut. */
export type SlotRuleMap = "onebox_allow_out" | "onebox_deny_out";

function lpm4Key(c: Cidr): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, c.prefix, true);
  v.setUint32(4, c.base, false);
  return b;
}

/** prefixlen counts the ifindex's 32 bits, stored big-endian so they lead the key. */
function slotLpm4Key(ifindex: number, c: Cidr): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, 32 + c.prefix, true);
  v.setUint32(4, ifindex, false);
  v.setUint32(8, c.base, false);
  return b;
}

const cidrOf = (base: number, prefix: number): Cidr => ({ base, prefix, size: 2 ** (32 - prefix) });

/** tc verdicts (linux/pkt_cls.h). */
/** ONEBOX_RULE_LEARNED and ONEBOX_PROXY_MARK of ffi/bpf/onebox_net.h. */
export const RULE_LEARNED = 1;
export const PROXY_MARK = 0x6f627870;
export const TC_ACT = { OK: 0, SHOT: 2, REDIRECT: 7 } as const;

export function encodeSlotCfg(c: SlotCfg): Uint8Array {
  const b = new Uint8Array(CFG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, c.slotIp, false); // big-endian = network order
  v.setUint32(4, c.guestIp, false);
  v.setUint32(8, c.gatewayIp, false);
  b.set(c.guestMac, 12);
  b.set(c.gatewayMac, 18);
  v.setUint32(24, c.flags, true);
  return b;
}

export function decodeSlotCfg(b: Uint8Array): SlotCfg {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    slotIp: v.getUint32(0, false),
    guestIp: v.getUint32(4, false),
    gatewayIp: v.getUint32(8, false),
    guestMac: b.slice(12, 18),
    gatewayMac: b.slice(18, 24),
    flags: v.getUint32(24, true),
  };
}

/** Mounts bpffs at `root` when it is not mounted, and makes `dir` in it. */
export async function ensureBpffs(root: string, dir: string): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_bpffs_ensure(ptr(cstr(root)), ptr(cstr(dir))), `bpffs at ${root}`);
}

/** Removes the maps pinned in `pinDir` and the directory. */
export async function unpinBpf(pinDir: string): Promise<void> {
  const lib = await libOneboxNet();
  check(lib, lib.onebox_bpf_unpin(ptr(cstr(pinDir))), `unpin ${pinDir}`);
}

/** 1 if onebox's two programs are attached to the link. */
export async function bpfAttached(ifindex: number): Promise<boolean> {
  const lib = await libOneboxNet();
  return lib.onebox_bpf_attached(ifindex) === 1;
}

/** The loaded programs and their maps. close() unloads the programs not attached anywhere; pinned maps stay. */
export class BpfNet {
  private constructor(
    private readonly lib: LibOneboxNet,
    private handle: Pointer | null,
    readonly pinDir: string | null,
  ) {}

  /** Loads the programs; with `pinDir`, reuses the maps pinned there (or pins new ones). */
  static async open(pinDir: string | null): Promise<BpfNet> {
    const lib = await libOneboxNet();
    const err = new Int32Array(1);
    const h = lib.onebox_bpf_open(pinDir ? ptr(cstr(pinDir)) : null, ptr(err));
    if (!h) check(lib, err[0] || -22, `load the eBPF programs${pinDir ? ` (maps in ${pinDir})` : ""}`);
    return new BpfNet(lib, h as Pointer, pinDir);
  }

  private get h(): Pointer {
    if (!this.handle) throw new Error("BpfNet is closed");
    return this.handle;
  }

  attach(ifindex: number): void {
    check(this.lib, this.lib.onebox_bpf_attach(this.h, ifindex), `attach the eBPF programs to ifindex ${ifindex}`);
  }

  detach(ifindex: number): void {
    const rc = this.lib.onebox_bpf_detach(ifindex);
    if (rc !== -19 && rc !== -2) check(this.lib, rc, `detach clsact from ifindex ${ifindex}`);
  }

  setSlot(ifindex: number, cfg: SlotCfg): void {
    check(this.lib, this.lib.onebox_bpf_slot_set(this.h, ifindex, ptr(encodeSlotCfg(cfg))), `set slot ${ifindex}`);
  }

  getSlot(ifindex: number): SlotCfg | null {
    const b = new Uint8Array(CFG_SIZE);
    const rc = this.lib.onebox_bpf_slot_get(this.h, ifindex, ptr(b));
    if (rc === -2) return null;
    check(this.lib, rc, `read slot ${ifindex}`);
    return decodeSlotCfg(b);
  }

  /** Deletes the slot's entry, then its policy rules and drop counters (an ifindex is reused by a later TAP: it
   *  must not inherit them); false when there was no entry. */
  deleteSlot(ifindex: number): boolean {
    const rc = this.lib.onebox_bpf_slot_del(this.h, ifindex);
    if (rc !== -2) check(this.lib, rc, `delete slot ${ifindex}`);
    this.deleteSlotRules(ifindex);
    const key = new Uint32Array([ifindex]);
    const drc = this.lib.onebox_bpf_map_delete(this.mapFd("onebox_slot_drops"), ptr(key));
    if (drc !== -2) check(this.lib, drc, `delete slot ${ifindex}'s drop counters`);
    return rc !== -2;
  }

  /** Deletes every policy rule of `ifindex` (a walk of both tries). */
  deleteSlotRules(ifindex: number): void {
    for (const m of ["onebox_allow_out", "onebox_deny_out"] as const)
      for (const c of this.slotRules(m, ifindex)) this.slotRuleDel(m, ifindex, c);
  }

  private fds = new Map<string, number>();
  private mapFd(name: string): number {
    let fd = this.fds.get(name);
    if (fd === undefined) {
      fd = check(this.lib, this.lib.onebox_bpf_map_fd(this.h, ptr(cstr(name))), `map ${name}`);
      this.fds.set(name, fd);
    }
    return fd;
  }

  /** Walks a map's keys (each a fresh copy of `size` bytes). Deleting the current key while walking is allowed. */
  private keys(name: string, size: number): Uint8Array[] {
    const fd = this.mapFd(name);
    const out: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(size);
      const rc = this.lib.onebox_bpf_map_next_key(fd, prev ? ptr(prev) : null, ptr(next));
      if (rc === -2) return out;
      check(this.lib, rc, `walk ${name}`);
      out.push(next);
      prev = next;
    }
  }

  private update(name: string, key: Uint8Array, what: string, value = 0): void {
    check(this.lib, this.lib.onebox_bpf_map_update(this.mapFd(name), ptr(key), ptr(Uint8Array.of(value)), 0), what);
  }

  private remove(name: string, key: Uint8Array, what: string): boolean {
    const rc = this.lib.onebox_bpf_map_delete(this.mapFd(name), ptr(key));
    if (rc === -2) return false;
    check(this.lib, rc, what);
    return true;
  }

  globalRangeAdd(map: GlobalRangeMap, c: Cidr): void {
    this.update(map, lpm4Key(c), `add ${c.base}/${c.prefix} to ${map}`);
  }

  globalRangeDel(map: GlobalRangeMap, c: Cidr): boolean {
    return this.remove(map, lpm4Key(c), `delete ${c.base}/${c.prefix} from ${map}`);
  }

  globalRanges(map: GlobalRangeMap): Cidr[] {
    return this.keys(map, 8).map((k) => {
      const v = new DataView(k.buffer);
      return cidrOf(v.getUint32(4, false), v.getUint32(0, true));
    });
  }

  /** `learned`: an address learned from an allowed name's DNS answer (RULE_LEARNED; the program marks TCP to it for
   *  the name proxy), else a rule of the policy. */
  slotRuleAdd(map: SlotRuleMap, ifindex: number, c: Cidr, learned = false): void {
    this.update(map, slotLpm4Key(ifindex, c), `add a rule to ${map} for slot ${ifindex}`, learned ? RULE_LEARNED : 0);
  }

  slotRuleDel(map: SlotRuleMap, ifindex: number, c: Cidr): boolean {
    return this.remove(map, slotLpm4Key(ifindex, c), `delete a rule from ${map} for slot ${ifindex}`);
  }

  /** The slot's rules in one trie (a walk of the whole trie: fine for the few thousand entries a host holds). */
  slotRules(map: SlotRuleMap, ifindex: number): Cidr[] {
    const out: Cidr[] = [];
    for (const k of this.keys(map, 12)) {
      const v = new DataView(k.buffer);
      if (v.getUint32(4, false) === ifindex) out.push(cidrOf(v.getUint32(8, false), v.getUint32(0, true) - 32));
    }
    return out;
  }

  /** The slot's drop counters, summed over CPUs (all zero before its first drop). */
  slotDrops(ifindex: number): Record<DropReason, number> {
    const ncpu = this.lib.onebox_bpf_ncpu();
    const out = new BigUint64Array(ncpu * DROP_MAX);
    const rc = this.lib.onebox_bpf_map_lookup(this.mapFd("onebox_slot_drops"), ptr(new Uint32Array([ifindex])), ptr(out));
    if (rc !== -2) check(this.lib, rc, `read slot ${ifindex}'s drop counters`);
    return Object.fromEntries(
      DROP_REASONS.map((r, i) => {
        let n = 0n;
        if (rc !== -2) for (let c = 0; c < ncpu; c++) n += out[c * DROP_MAX + i]!;
        return [r, Number(n)];
      }),
    ) as Record<DropReason, number>;
  }

  /** The ifindexes that have a slot entry. */
  slotKeys(max = 65536): number[] {
    const keys = new Uint32Array(max);
    const n = check(this.lib, this.lib.onebox_bpf_slot_keys(this.h, ptr(keys), max), "list slots");
    return Array.from(keys.subarray(0, n));
  }

  drops(): Record<DropReason, number> {
    const out = new BigUint64Array(DROP_MAX);
    check(this.lib, this.lib.onebox_bpf_drops(this.h, ptr(out), DROP_MAX), "read drop counters");
    return Object.fromEntries(DROP_REASONS.map((r, i) => [r, Number(out[i])])) as Record<DropReason, number>;
  }

  /** BPF_PROG_TEST_RUN: runs one program on `frame` as if it crossed `ifindex`; the frame as the program left it. */
  testRun(which: "from-guest" | "to-guest", ifindex: number, frame: Uint8Array): { verdict: number; frame: Uint8Array; mark: number } {
    const out = new Uint8Array(frame.length + 256);
    const meta = new Int32Array(3);
    const input = frame.length ? frame : new Uint8Array(1);
    check(
      this.lib,
      this.lib.onebox_bpf_test_run(this.h, which === "from-guest" ? 0 : 1, ifindex, ptr(input), frame.length, ptr(out), out.length, ptr(meta)),
      "BPF_PROG_TEST_RUN",
    );
    return { verdict: meta[0]!, frame: out.slice(0, meta[1]!), mark: meta[2]! >>> 0 };
  }

  close(): void {
    if (this.handle) this.lib.onebox_bpf_close(this.handle);
    this.handle = null;
  }
}
