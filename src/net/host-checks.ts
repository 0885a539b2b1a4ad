// `onebox doctor`'s network checks: /dev/net/tun, libbpf, eBPF on tc clsact (load + attach to a scratch TAP),
// nftables, IPv4 forwarding, and the sandbox range against the host's routes.
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { BpfNet } from "../sys/bpf-net.ts";
import { linkDelAsync } from "../sys/rtnetlink.ts";
import { openTap } from "../sys/tap.ts";
import { cidrsOverlap, formatCidr, type Cidr } from "../util/ipv4.ts";
import { gatewayMac, SandboxRange, TAP_PREFIX } from "./addresses.ts";

export interface NetworkCheck {
  name: string;
  ok: boolean;
  detail: string;
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
  return { ok: checks.every((c) => c.ok), checks, notes };
}
