// Outbound NAT for the sandbox range: one nftables table of onebox's own (`table ip onebox`), made at start and
// deleted at stop; nothing in other tables is touched.
import { formatCidr, type Cidr } from "../util/ipv4.ts";

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

/** The table's text: sandbox traffic that leaves the range is masqueraded behind the outgoing interface's address. */
export function masqueradeRules(range: Cidr): string {
  const r = formatCidr(range);
  return [
    `table ip ${NFT_TABLE} {`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${r} ip daddr != ${r} masquerade`,
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
