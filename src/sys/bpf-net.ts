// The eBPF translation programs (ffi/bpf/onebox_net.bpf.c) through libonebox-net: load with pinned maps, attach to a
// TAP with tc clsact, per-slot config keyed by ifindex, drop counters, BPF_PROG_TEST_RUN.
import { ptr, type Pointer } from "bun:ffi";
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
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
const DROP_MAX = 16;

/** tc verdicts (linux/pkt_cls.h). */
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

  /** Deletes the slot's entry; false when there was none. */
  deleteSlot(ifindex: number): boolean {
    const rc = this.lib.onebox_bpf_slot_del(this.h, ifindex);
    if (rc === -2) return false;
    check(this.lib, rc, `delete slot ${ifindex}`);
    return true;
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
  testRun(which: "from-guest" | "to-guest", ifindex: number, frame: Uint8Array): { verdict: number; frame: Uint8Array } {
    const out = new Uint8Array(frame.length + 256);
    const meta = new Int32Array(2);
    const input = frame.length ? frame : new Uint8Array(1);
    check(
      this.lib,
      this.lib.onebox_bpf_test_run(this.h, which === "from-guest" ? 0 : 1, ifindex, ptr(input), frame.length, ptr(out), out.length, ptr(meta)),
      "BPF_PROG_TEST_RUN",
    );
    return { verdict: meta[0]!, frame: out.slice(0, meta[1]!) };
  }

  close(): void {
    if (this.handle) this.lib.onebox_bpf_close(this.handle);
    this.handle = null;
  }
}
