// A sandbox's egress policy (E2B's allowOut / denyOut / allowInternetAccess): validated and compiled into the
// per-slot LPM tries of ffi/bpf/onebox_net.bpf.c, and written to a slot so that no moment is looser than either the
// old or the new policy. docs/network.md "Egress policy".
import type { BpfNet, GlobalRangeMap, SlotRuleMap } from "../sys/bpf-net.ts";
import { badRequest } from "../util/errors.ts";
import { cidrContains, formatIpv4, parseIpv4, type Cidr } from "../util/ipv4.ts";

/** Per sandbox: IP/CIDR entries over allowOut and denyOut (after dedup), domains in allowOut, and addresses learned
 *  from allowed names' DNS answers at once (src/net/network.ts). */
export const POLICY_LIMITS = { entries: 256, domains: 64, learned: 1024 } as const;
export const ALL_TRAFFIC = "0.0.0.0/0";

export interface EgressConfig {
  allowOut?: string[];
  denyOut?: string[];
  /** E2B's `allow_internet_access` (default true); false is `denyOut: ["0.0.0.0/0"]`. */
  allowInternetAccess?: boolean;
}

export interface CompiledPolicy {
  allow: Cidr[];
  deny: Cidr[];
  /** Domains from allowOut, lower-cased (`example.com`, `*.example.com`): what the DNS forwarder resolves (their
   *  answers are learned into the slot's allow trie) and what the name proxy lets through by SNI/Host. */
  domains: string[];
}

const cidr = (base: number, prefix: number): Cidr => ({ base, prefix, size: 2 ** (32 - prefix) });
export const formatCidr = (c: Cidr) => `${formatIpv4(c.base)}/${c.prefix}`;

/** `1.2.3.4` or `1.2.3.0/24` (host bits are cleared, as Go's net.ParseCIDR does for E2B), else null. */
export function parseIpEntry(s: string): Cidr | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(s.trim());
  if (!m) return null;
  let addr: number;
  try {
    addr = parseIpv4(m[1]!);
  } catch {
    return null;
  }
  const prefix = m[2] === undefined ? 32 : Number(m[2]);
  if (prefix > 32) return null;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return cidr((addr & mask) >>> 0, prefix);
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** `example.com`, `*.example.com`, `*.com` (lower-cased), else null. A bare `*` and IP-like names are not domains. */
export function parseDomain(s: string): string | null {
  const d = s.trim().toLowerCase().replace(/\.$/, "");
  const bare = d.startsWith("*.") ? d.slice(2) : d;
  if (d.length > 253 || bare.length === 0) return null;
  const labels = bare.split(".");
  if (!labels.every((l) => LABEL.test(l))) return null; // one label is a name too ("*.com", E2B allows broad wildcards)
  if (/^\d+$/.test(labels[labels.length - 1]!)) return null; // 1.2.3.999: a bad address, not a name
  return d;
}

/** Validates and compiles; a 400 naming the field (`network.allowOut[2]`) on bad input. `field` prefixes names. */
export function compilePolicy(cfg: EgressConfig, field = "network"): CompiledPolicy {
  const allow = new Map<string, Cidr>();
  const deny = new Map<string, Cidr>();
  const domains = new Set<string>();
  (cfg.allowOut ?? []).forEach((e, i) => {
    const c = parseIpEntry(e);
    if (c) return void allow.set(formatCidr(c), c);
    const d = parseDomain(e);
    if (!d) throw badRequest(`${field}.allowOut[${i}]: '${e}' is not an IPv4 address, a CIDR range or a domain name (IPv6 is not supported)`);
    domains.add(d);
  });
  (cfg.denyOut ?? []).forEach((e, i) => {
    const c = parseIpEntry(e);
    if (!c) throw badRequest(`${field}.denyOut[${i}]: '${e}' is not an IPv4 address or CIDR range (domains are not supported in denyOut)`);
    deny.set(formatCidr(c), c);
  });
  if (cfg.allowInternetAccess === false) deny.set(ALL_TRAFFIC, cidr(0, 0));
  if (domains.size > 0 && !deny.has(ALL_TRAFFIC))
    throw badRequest(`${field}.allowOut: allowing domains requires '${ALL_TRAFFIC}' in ${field}.denyOut (or allow_internet_access: false), else every other destination is allowed anyway`);
  if (allow.size + deny.size > POLICY_LIMITS.entries)
    throw badRequest(`${field}: ${allow.size + deny.size} IP/CIDR entries in allowOut and denyOut, at most ${POLICY_LIMITS.entries}`);
  if (domains.size > POLICY_LIMITS.domains)
    throw badRequest(`${field}.allowOut: ${domains.size} domains, at most ${POLICY_LIMITS.domains}`);
  return { allow: [...allow.values()], deny: [...deny.values()], domains: [...domains] };
}

/** Compiled policies by their config: the API validates a create's config by compiling it, and its start compiles
 *  the stored row twice more (for the slot before the vmm spawns, and after, to catch a PUT made meanwhile); agents
 *  mostly create with the same few configs. A 100-entry config takes ~0.2 ms here and ~10 ms in the emulated test
 *  host. Bounded (least recently used out); only configs that compile are kept; a policy is never mutated. */
const compiled = new Map<string, CompiledPolicy>();
const COMPILED_MAX = 256;

/** compilePolicy through the cache above (the same answers and errors). */
export function compilePolicyCached(cfg: EgressConfig, field = "network"): CompiledPolicy {
  const key = JSON.stringify([cfg.allowOut ?? [], cfg.denyOut ?? [], cfg.allowInternetAccess ?? null]);
  const hit = compiled.get(key);
  if (hit) {
    compiled.delete(key); // to the back: the most recently used
    compiled.set(key, hit);
    return hit;
  }
  const p = compilePolicy(cfg, field);
  compiled.set(key, p);
  if (compiled.size > COMPILED_MAX) compiled.delete(compiled.keys().next().value!);
  return p;
}

export const EMPTY_POLICY: CompiledPolicy = { allow: [], deny: [], domains: [] };

/**
 * Replaces the slot's rules with `p`. Each step only tightens or reaches the new policy, so a packet in flight never
 * meets a policy looser than both the old and the new one: new denies, then old allows that go, then new allows,
 * then old denies that go. A failure part-way leaves a policy at least as strict as the new one on the allow side
 * (the caller retries or clears). The old rules are read from the tries (a walk of every slot's keys, one syscall
 * each); `fresh`: the slot has none yet (its first policy), so the walk, which grows with every sandbox's policy on
 * the host, stays off the create path.
 */
export function applyPolicy(bpf: BpfNet, ifindex: number, p: CompiledPolicy, fresh = false): void {
  const has = (list: Cidr[], c: Cidr) => list.some((x) => x.base === c.base && x.prefix === c.prefix);
  const oldAllow = fresh ? [] : bpf.slotRules("onebox_allow_out", ifindex);
  const oldDeny = fresh ? [] : bpf.slotRules("onebox_deny_out", ifindex);
  const add = (m: SlotRuleMap, list: Cidr[], old: Cidr[]) => list.filter((c) => !has(old, c)).forEach((c) => bpf.slotRuleAdd(m, ifindex, c));
  const del = (m: SlotRuleMap, old: Cidr[], keep: Cidr[]) => old.filter((c) => !has(keep, c)).forEach((c) => bpf.slotRuleDel(m, ifindex, c));
  add("onebox_deny_out", p.deny, oldDeny);
  del("onebox_allow_out", oldAllow, p.allow);
  add("onebox_allow_out", p.allow, oldAllow);
  del("onebox_deny_out", oldDeny, p.deny);
}

export function clearPolicy(bpf: BpfNet, ifindex: number): void {
  applyPolicy(bpf, ifindex, EMPTY_POLICY);
}

/** Makes the always-denied host set (`onebox_host_deny`: the sandbox range, the host's addresses) exactly `entries`
 *  (IPs or CIDRs): the new ones first, then the ones that went. */
export function syncHostDeny(bpf: BpfNet, entries: string[]): void {
  syncGlobalRanges(bpf, "onebox_host_deny", entries);
}

/** Makes a global trie (`onebox_host_deny`, `onebox_open`) exactly `entries`: the new ones first, then the ones
 *  that went (for the deny map: never a moment with fewer denied than both the old and the new set). */
export function syncGlobalRanges(bpf: BpfNet, map: GlobalRangeMap, entries: string[]): void {
  const want = entries.map((e) => {
    const c = parseIpEntry(e);
    if (!c) throw new Error(`'${e}' is not an IPv4 address or CIDR range`);
    return c;
  });
  const old = bpf.globalRanges(map);
  const key = (c: Cidr) => formatCidr(c);
  const oldKeys = new Set(old.map(key));
  const wantKeys = new Set(want.map(key));
  for (const c of want) if (!oldKeys.has(key(c))) bpf.globalRangeAdd(map, c);
  for (const c of old) if (!wantKeys.has(key(c))) bpf.globalRangeDel(map, c);
}

/** `*.example.com` matches names under example.com at any depth, not example.com itself (E2B's wildcard rule). */
export function domainMatches(pattern: string, name: string): boolean {
  return pattern.startsWith("*.") ? name.endsWith(pattern.slice(1)) : name === pattern;
}

/**
 * What the DNS forwarder does with a slot's query. When the policy denies 0.0.0.0/0 (internet off, or a domain
 * allowlist), only names matching an allowed domain are forwarded: nothing else leaves the host, so a query name
 * cannot carry data out (CubeSandbox's DNS exfiltration hole). Otherwise every name resolves, as in E2B.
 */
export function dnsVerdict(p: CompiledPolicy | null, name: string): "forward" | "refuse" {
  if (!p || !p.deny.some((c) => c.prefix === 0)) return "forward";
  return p.domains.some((d) => domainMatches(d, name)) ? "forward" : "refuse";
}

/** Whether the slot's policy sends its TCP 80/443 through the name proxy: it has domains (their learned addresses
 *  are what the eBPF program marks for it; traffic allowed by IP/CIDR rules only never goes there). */
export const proxiesNames = (p: CompiledPolicy | null): boolean => !!p && p.domains.length > 0;

/**
 * The name proxy's decision for a connection whose first bytes named `name` (SNI or Host; null: named nothing or
 * could not be read): allowed only when a domain of the slot's policy matches it, as DNS filtering does. A
 * connection that names nothing is refused: its destination was reached only through a learned address, which may
 * serve any name.
 */
export function nameVerdict(p: CompiledPolicy | null, name: string | null): "allow" | "refuse" {
  if (!p || name === null) return "refuse";
  return p.domains.some((d) => domainMatches(d, name)) ? "allow" : "refuse";
}

/** The fixed always-denied ranges, as `reserved_dst` in ffi/bpf/onebox_net.bpf.c has them. */
const RESERVED = ["0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4"].map(
  (s) => parseIpEntry(s)!,
);

/** The always-denied list of the eBPF program for an address the host itself connects to on a sandbox's behalf (the
 *  name proxy): the host's addresses and the sandbox range (`hostDeny`) and the reserved ranges, unless `open`ed. */
export function alwaysDenied(addr: number, hostDeny: Cidr[], open: Cidr[]): boolean {
  if (open.some((c) => cidrContains(c, addr))) return false;
  return hostDeny.some((c) => cidrContains(c, addr)) || RESERVED.some((c) => cidrContains(c, addr));
}
