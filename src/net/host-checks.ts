// `onebox doctor`'s network checks: /dev/net/tun, libbpf, eBPF on tc clsact (load + attach to a scratch TAP),
// nftables and its NAT (the name proxy's DNAT), ctnetlink, IPv4 forwarding, and the sandbox range against the host's routes.
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { BpfNet, PROXY_MARK } from "../sys/bpf-net.ts";
import { conntrackDeleteDenied } from "../sys/conntrack.ts";
import { linkDelAsync } from "../sys/rtnetlink.ts";
import { openTap } from "../sys/tap.ts";
import { cidrsOverlap, formatCidr, type Cidr } from "../util/ipv4.ts";
import { gatewayMac, GUEST_NET, SandboxRange, TAP_PREFIX } from "./addresses.ts";
import { steeringRules } from "./masquerade.ts";

export interface NetworkCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** A failure that takes one feature away, not the network (not counted in the report's `ok`). */
  partial?: boolean;
}

export interface NetworkReport {
  ok: boolean;
  checks: NetworkCheck[];
  /** Things that are not wrong but worth knowing (forwarding off, range overlaps). */
  notes: string[];
}

/** IPv4 routes of the main table from /proc/net/route (little-endian hex), with their interface. */
export function parseProcRoutes(text: string): { iface: string; cidr: Cidr }[] {
  const out: { iface: string; cidr: Cidr }[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const le = (h: string) => {
      const n = parseInt(h, 16) >>> 0;
      return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
    };
    const dest = le(f[1]!);
    const mask = le(f[7]!);
    const prefix = mask === 0 ? 0 : 32 - Math.log2((~mask >>> 0) + 1);
    out.push({ iface: f[0]!, cidr: { base: dest, prefix, size: 2 ** (32 - prefix) } });
  }
  return out;
}

/** Routes of the host (not onebox's own TAPs, not the default route) that overlap the sandbox range. */
export function overlappingRoutes(range: Cidr, routesText: string): string[] {
  return parseProcRoutes(routesText)
    .filter((r) => r.cidr.prefix > 0 && !r.iface.startsWith(TAP_PREFIX) && cidrsOverlap(r.cidr, range))
    .map((r) => `${formatCidr(r.cidr)} dev ${r.iface}`);
}

/** What `nft --check` is given: the name proxy's steering exactly as the daemon writes it (ports are placeholders).
 *  The kernel validates the batch, loading nft_nat and nft_chain_nat on demand, and then aborts it: nothing is applied. */
export const NAT_CHECK_SCRIPT = steeringRules(GUEST_NET.gateway, PROXY_MARK, { http: 1, tls: 2 });

/** Reads `nft --check -f -` of NAT_CHECK_SCRIPT: without nft's NAT the name proxy's DNAT cannot be written, so TCP
 *  80/443 to names a domain rule allowed is dropped by the guard (fail closed); everything else keeps working. */
export function natCheck(r: { code: number; err: string }): NetworkCheck {
  const name = "nft nat";
  if (r.code === 0) return { name, ok: true, detail: "nft can DNAT (nft_nat): the name proxy's steering for domain rules" };
  const err = r.err.trim().split("\n")[0] ?? "";
  const missing = /No such file or directory|Operation not supported|not supported/i.test(r.err);
  return {
    name,
    ok: false,
    partial: true,
    detail:
      (missing ? "nft's NAT is missing from the kernel (nft_nat, nft_chain_nat)" : `nft could not write the name proxy's DNAT: ${err}`) +
      ": domain rules fail closed (sandboxes whose allowOut names domains cannot reach TCP 80/443 of them); " +
      "fix: modprobe nft_nat nft_chain_nat (and list them in /etc/modules-load.d/onebox.conf), or a kernel with CONFIG_NFT_NAT",
  };
}

/** `nft --check` of the steering rules, read by natCheck (needs nft and root, like the daemon). */
export function runNatCheck(): NetworkCheck {
  const r = Bun.spawnSync(["nft", "--check", "-f", "-"], { stdin: new TextEncoder().encode(NAT_CHECK_SCRIPT), stdout: "ignore", stderr: "pipe" });
  return natCheck({ code: r.exitCode ?? 1, err: r.stderr.toString() });
}

/** ctnetlink, which a PUT /network uses to delete the conntrack entries of flows it denies: a dump that deletes
 *  nothing (everything allowed). Without it the flows' packets are still dropped; the check is partial. */
export async function conntrackCheck(): Promise<NetworkCheck> {
  const name = "conntrack";
  try {
    const all = [{ base: 0, prefix: 0, size: 2 ** 32 }];
    await conntrackDeleteDenied(0, all, all);
    return { name, ok: true, detail: "ctnetlink works (PUT /network deletes the conntrack entries of flows it denies)" };
  } catch (e) {
    return {
      name,
      ok: false,
      partial: true,
      detail: `${(e as Error).message}: a PUT /network cannot delete the conntrack entries of flows it denies (their packets are still dropped); fix: modprobe nf_conntrack_netlink`,
    };
  }
}

async function check(name: string, run: () => Promise<string> | string): Promise<NetworkCheck> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (e) {
    return { name, ok: false, detail: (e as Error).message };
  }
}

export async function checkNetwork(sandboxCidr: string): Promise<NetworkReport> {
  const notes: string[] = [];
  const checks: NetworkCheck[] = [];
  checks.push(
    await check("tun", () => {
      if (!existsSync("/dev/net/tun")) throw new Error("/dev/net/tun is missing: load the tun module (modprobe tun)");
      closeSync(openSync("/dev/net/tun", "r+"));
      return "/dev/net/tun opens";
    }),
  );
  checks.push(
    await check("tc eBPF", async () => {
      const bpf = await BpfNet.open(null); // loads libonebox-net (libbpf) and the programs through the verifier
      try {
        const tap = await openTap("obxdoctor", gatewayMac());
        try {
          bpf.attach(tap.ifindex);
        } finally {
          await linkDelAsync("obxdoctor", tap.fd);
        }
      } finally {
        bpf.close();
      }
      return "programs load and attach (clsact, direct action)";
    }),
  );
  checks.push(
    await check("nftables", () => {
      const r = Bun.spawnSync(["nft", "list", "tables"], { stdout: "ignore", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`nft list tables failed: ${r.stderr.toString().trim()} (install nftables; the kernel needs nf_tables)`);
      return "nft works (the masquerade table is made at start)";
    }).catch(() => ({ name: "nftables", ok: false, detail: "`nft` is not installed: apt-get install nftables" })),
  );
  if (checks.at(-1)!.ok) checks.push(runNatCheck());
  checks.push(await conntrackCheck());
  checks.push(
    await check("forwarding", () => {
      const v = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
      if (v !== "1") notes.push("IPv4 forwarding is off: onebox turns it on at start (and back off at a final stop)");
      return v === "1" ? "on" : "off (turned on at start)";
    }),
  );
  checks.push(
    await check("range", () => {
      const range = new SandboxRange(sandboxCidr);
      const overlaps = overlappingRoutes(range.cidr, readFileSync("/proc/net/route", "utf8"));
      if (overlaps.length) {
        notes.push(
          `the sandbox range ${range} overlaps routes of this host (${overlaps.join(", ")}): sandboxes could not reach ` +
            `those networks and replies could go astray; pick another range with --sandbox-cidr`,
        );
      }
      return `${range} (${range.slots} slots)${overlaps.length ? `, overlaps ${overlaps.join(", ")}` : ""}`;
    }),
  );
  const bpffs = readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[2] === "bpf");
  if (!bpffs) notes.push("bpffs is not mounted: onebox mounts it on /sys/fs/bpf at start (to pin its maps)");
  return { ok: checks.every((c) => c.ok || c.partial), checks, notes };
}
