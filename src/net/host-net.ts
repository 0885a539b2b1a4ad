// The host side shared by all slots, made once at daemon start: bpffs and the loaded programs with their pinned
// maps, the gateway address as the host's own, IPv4 forwarding, and the masquerade table. stop() undoes each step.
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BpfNet, ensureBpffs, unpinBpf } from "../sys/bpf-net.ts";
import { routeLocalAdd, routeLocalDel } from "../sys/rtnetlink.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import { log } from "../util/log.ts";
import { gatewayIp, SandboxRange } from "./addresses.ts";
import { applyMasquerade, removeMasquerade } from "./masquerade.ts";
import { hostAddresses } from "./host-addresses.ts";
import { formatCidr, syncGlobalRanges, syncHostDeny } from "./policy.ts";

/** The maps' layout version: a new layout gets a new directory instead of misreading old entries. */
export const PIN_SUBDIR = "onebox/net-v1";
const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

export interface HostNetOptions {
  sandboxCidr: string;
  /** Where bpffs is (mounted there if it is not). */
  bpffsRoot?: string;
  /** Small state that must outlive a daemon restart (whether forwarding was off before onebox turned it on). */
  stateDir: string;
  /** Ranges the operator opened (`--net-allow-private`): exempt from the always-denied list (onebox_open). */
  openRanges?: string[];
}

export class HostNet {
  private constructor(
    readonly range: SandboxRange,
    readonly bpf: BpfNet,
    readonly pinDir: string,
    private readonly undo: CleanupStack,
  ) {}

  static async start(opts: HostNetOptions): Promise<HostNet> {
    const range = new SandboxRange(opts.sandboxCidr);
    const root = opts.bpffsRoot ?? "/sys/fs/bpf";
    const pinDir = join(root, PIN_SUBDIR);
    const undo = new CleanupStack();
    try {
      await ensureBpffs(root, join(root, "onebox"));
      await ensureBpffs(root, pinDir);
      const bpf = await BpfNet.open(pinDir); // reuses the maps a previous daemon pinned: its slots stay valid
      undo.push("unload eBPF", () => bpf.close());
      // A failed start removes the pins it made, but never maps that running sandboxes' slots still have entries in.
      undo.push("pinned maps", async () => {
        if (bpf.slotKeys().length > 0) return;
        await unpinBpf(pinDir);
        rmEmptyDir(dirname(pinDir));
      });
      // Exactly this daemon's flag: a range opened by the previous daemon and not by this one closes again.
      syncGlobalRanges(bpf, "onebox_open", opts.openRanges ?? []);
      // Always denied from every guest: the host's own addresses and every sandbox's slot address.
      syncHostDeny(bpf, hostDenyEntries(range));
      const gw = gatewayIp();
      await routeLocalAdd(gw);
      undo.push("gateway local route", async () => void (await routeLocalDel(gw)));
      await enableForwarding(opts.stateDir);
      undo.push("forwarding", () => restoreForwarding(opts.stateDir));
      await applyMasquerade(range.cidr);
      undo.push("masquerade table", async () => void (await removeMasquerade()));
      return new HostNet(range, bpf, pinDir, undo);
    } catch (e) {
      for (const err of await undo.unwind()) log.warn("network start-up undo failed", { error: err.message });
      throw e;
    }
  }

  /** Re-reads the host's addresses into the always-denied map (at start, when a slot is made, and every few
   *  seconds: an address a DHCP lease or an operator adds is denied within that time). */
  refreshHostDeny(): void {
    syncHostDeny(this.bpf, hostDenyEntries(this.range));
  }

  /**
   * `final` (no sandbox left running): undoes start() and removes the pinned maps. Otherwise (a restart while
   * sandboxes keep running, re-adopted by the next daemon): only unloads this daemon's copy of the programs; the
   * masquerade table, forwarding, the gateway route and the pinned maps stay so those sandboxes keep their network.
   */
  async stop(opts: { final: boolean }): Promise<Error[]> {
    if (!opts.final) {
      this.bpf.close();
      this.undo.release();
      return [];
    }
    return this.undo.unwind(); // the pinned maps go too, unless a slot entry is left in them
  }
}

function hostDenyEntries(range: SandboxRange): string[] {
  return [formatCidr(range.cidr), ...hostAddresses()];
}

/** Turns IPv4 forwarding on; remembers in stateDir that it was off, so the stop that follows (even after a
 * restart) turns it off again. */
async function enableForwarding(stateDir: string): Promise<void> {
  const was = readFileSync(IP_FORWARD, "utf8").trim();
  if (was === "1") return;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(stateDir, "ip_forward.was"), was);
  writeFileSync(IP_FORWARD, "1");
}

function restoreForwarding(stateDir: string): void {
  const mark = join(stateDir, "ip_forward.was");
  if (!existsSync(mark)) return;
  writeFileSync(IP_FORWARD, readFileSync(mark, "utf8").trim() || "0");
  rmSync(mark, { force: true });
}

function rmEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOTEMPTY" && (e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}
