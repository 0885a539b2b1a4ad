// Outbound NAT for the sandbox range and the name proxy's steering: one nftables table of onebox's own (`table ip
// onebox`), made at start and deleted at stop; nothing in other tables is touched.
import { PROXY_MARK } from "../sys/bpf-net.ts";
import { formatCidr, type Cidr } from "../util/ipv4.ts";
import { GUEST_NET } from "./addresses.ts";

export const NFT_TABLE = "onebox";

async function nft(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  let proc;
  try {
    proc = Bun.spawn(["nft", ...args], {
      stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env }, // the PATH of now, not of process start
    });
  } catch {
    throw new Error("`nft` is not installed: install nftables (Debian: apt-get install nftables)");
  }
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

/** The table's text: sandbox traffic that leaves the range is masqueraded behind the outgoing interface's address.
 *  `proxyguard` (after the name proxy's DNAT, `steeringRules`): TCP 80/443 the eBPF program marked for the proxy that
 *  was not redirected to it (its rules not there yet, during a restart, or failed) is dropped, never sent on
 *  unchecked: the name check fails closed. */
export function masqueradeRules(range: Cidr): string {
  const r = formatCidr(range);
  return [
    `table ip ${NFT_TABLE} {`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${r} ip daddr != ${r} masquerade`,
    `  }`,
    `  chain proxyguard {`,
    `    type filter hook prerouting priority -90; policy accept;`,
    `    meta mark 0x${PROXY_MARK.toString(16)} ip daddr != ${GUEST_NET.gateway} tcp dport { 80, 443 } drop`,
    `  }`,
    `}`,
    ``,
  ].join("\n");
}

/** Replaces onebox's table (atomically: one nft transaction deletes the old one and adds the new). */
export async function applyMasquerade(range: Cidr): Promise<void> {
  const present = await masqueradePresent();
  const script = (present ? `delete table ip ${NFT_TABLE}\n` : "") + masqueradeRules(range);
  const r = await nft(["-f", "-"], script);
  if (r.code !== 0) throw new Error(`nft could not add table ip ${NFT_TABLE}: ${r.err.trim()} (is nf_tables with NAT/masquerade in this kernel?)`);
}

export async function removeMasquerade(): Promise<boolean> {
  if (!(await masqueradePresent())) return false;
  const r = await nft(["delete", "table", "ip", NFT_TABLE]);
  if (r.code !== 0) throw new Error(`nft could not delete table ip ${NFT_TABLE}: ${r.err.trim()}`);
  return true;
}

export async function masqueradePresent(): Promise<boolean> {
  const r = await nft(["list", "table", "ip", NFT_TABLE]);
  return r.code === 0;
}

/** The name proxy's steering (docs/network.md "Domain rules"): TCP 80/443 the eBPF program marked (to an address
 *  learned for an allowed name) is DNATed to the proxy's listeners on the gateway address. Replaces the chain's rules
 *  (a new daemon's proxy has new ports); one nft transaction. */
export function steeringRules(gateway: string, mark: number, ports: { http: number; tls: number }): string {
  const m = `0x${mark.toString(16)}`;
  return [
    `table ip ${NFT_TABLE} {`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    `  }`,
    `}`,
    `flush chain ip ${NFT_TABLE} prerouting`,
    `add rule ip ${NFT_TABLE} prerouting meta mark ${m} tcp dport 80 dnat to ${gateway}:${ports.http}`,
    `add rule ip ${NFT_TABLE} prerouting meta mark ${m} tcp dport 443 dnat to ${gateway}:${ports.tls}`,
    ``,
  ].join("\n");
}

export async function applySteering(gateway: string, mark: number, ports: { http: number; tls: number }): Promise<void> {
  const r = await nft(["-f", "-"], steeringRules(gateway, mark, ports));
  if (r.code !== 0) throw new Error(`nft could not add the name proxy's steering to table ip ${NFT_TABLE}: ${r.err.trim()}`);
}
