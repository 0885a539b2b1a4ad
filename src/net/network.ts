// Guest networking for the daemon, in one handle: host setup, the slot pool and the DNS forwarder, started in that
// order (each undone if a later one fails) and stopped in reverse. The lifecycle takes slots from `pool`.
import { GUEST_NET } from "./addresses.ts";
import { DnsForwarder, type Upstream } from "./dns-forwarder.ts";
import { HostNet } from "./host-net.ts";
import { readARecords } from "./dns-answers.ts";
import { applySteering } from "./masquerade.ts";
import { NameProxy } from "./name-proxy.ts";
import { alwaysDenied, applyPolicy, dnsVerdict, domainMatches, formatCidr, POLICY_LIMITS, type CompiledPolicy } from "./policy.ts";
import { PROXY_MARK } from "../sys/bpf-net.ts";
import { conntrackDeleteDenied } from "../sys/conntrack.ts";
import { cidrContains, parseIpv4 } from "../util/ipv4.ts";
import type { NetSlot } from "./slot.ts";
import { log } from "../util/log.ts";
import { SlotPool, type StartReport } from "./pool.ts";

export interface NetworkOptions {
  sandboxCidr: string;
  slotPoolSize: number;
  /** Small state that outlives a restart (src/net/host-net.ts); e.g. `<runRoot>/net`. */
  stateDir: string;
  bpffsRoot?: string;
  /** Default: /etc/resolv.conf's nameservers. */
  dnsUpstreams?: Upstream[];
  /** Always-denied ranges the operator opened (`--net-allow-private`). */
  openRanges?: string[];
}

export class Network {
  private constructor(
    readonly host: HostNet,
    readonly pool: SlotPool,
    readonly dns: DnsForwarder,
    /** Checks the SNI/Host of TCP 80/443 to addresses learned for allowed names (docs/network.md "Domain rules"). */
    readonly proxy: NameProxy,
    /** Slots re-adopted at start (sandboxes still running) and leftovers reaped. */
    readonly startReport: StartReport,
  ) {}

  static async start(o: NetworkOptions): Promise<Network> {
    const host = await HostNet.start({ sandboxCidr: o.sandboxCidr, bpffsRoot: o.bpffsRoot, stateDir: o.stateDir, openRanges: o.openRanges });
    const pools: SlotPool[] = [];
    try {
      // The policy of the slot a query comes from decides what resolves; the pool is made below, before any query
      // can come from one of its slots.
      let pool: SlotPool | null = null;
      const slotAt = (ip: string) => pool?.used.find((s) => s.slotIp === ip);
      const filter = (q: { from: string; name: string }) => dnsVerdict(slotAt(q.from)?.policy ?? null, q.name);
      const onAnswer = (q: { from: string; name: string }, reply: Uint8Array) => {
        const slot = slotAt(q.from);
        if (slot) learn(host, slot, q.name, reply);
      };
      const dns = new DnsForwarder({ listen: GUEST_NET.gateway, allowed: host.range.cidr, upstreams: o.dnsUpstreams, filter, onAnswer });
      await dns.start();
      const proxy = new NameProxy({
        listen: GUEST_NET.gateway,
        policyOf: (ip) => slotAt(ip)?.policy ?? null,
        resolve: (name) => dns.lookupA(name),
        denied: (addr) => alwaysDenied(addr, host.bpf.globalRanges("onebox_host_deny"), host.bpf.globalRanges("onebox_open")),
        onRefused: (ip, why) => {
          const slot = slotAt(ip);
          if (slot) slot.proxyDrops[why]++;
        },
      });
      try {
        const ports = proxy.start();
        // Without nft's DNAT (a kernel without nft_nat) the guard chain still drops what was marked for the proxy:
        // domain-allowed sandboxes then cannot reach 80/443 (fail closed); everything else keeps working.
        await applySteering(GUEST_NET.gateway, PROXY_MARK, ports).catch((e) =>
          log.warn("network: the name proxy's steering could not be set up: TCP 80/443 to names a domain rule allowed is dropped", { error: String(e) }),
        );
        pool = new SlotPool(host, { size: o.slotPoolSize });
        pools.push(pool);
        const net = new Network(host, pool, dns, proxy, await pool.start());
        net.startSweep();
        return net;
      } catch (e) {
        proxy.stop();
        dns.stop();
        throw e;
      }
    } catch (e) {
      for (const p of pools) await p.stop();
      await host.stop({ final: true });
      throw e;
    }
  }

  /** Replaces the egress policy of the slot in use at `slotIp` (its maps and the DNS filter): at create, resume,
   *  PUT /network and re-adoption. Throws when no slot in use has that address. In force when it returns; the
   *  promise (never rejected) tells how many conntrack entries of flows it now denies were deleted after that. */
  setPolicy(slotIp: string, p: CompiledPolicy): Promise<number> {
    const slot = this.pool.used.find((s) => s.slotIp === slotIp);
    if (!slot) throw new Error(`no network slot in use at ${slotIp}`);
    // The lifecycle applies the stored policy again after each start (a PUT may have come meanwhile): the same one
    // again keeps the addresses learned so far.
    if (slot.policy && samePolicy(slot.policy, p)) return Promise.resolve(0);
    // Every sandbox's slot gets its policy before its guest runs (create and resume write it before the vmm spawns,
    // a warm-pool start before the restore: withSlot, pool-entry.ts), so a slot this daemon made (a re-adopted one
    // has no fd) that has no policy yet has carried no flow and holds no rule (makeSlot cleared its ifindex's):
    // nothing to cut or remove, and the tries' walk, the conntrack dump and the proxy's recheck stay off the create
    // path.
    const fresh = slot.policy === null && slot.fd !== null;
    applyPolicy(this.host.bpf, slot.ifindex, p, fresh); // also removes addresses learned under the old policy
    slot.policy = p;
    slot.learned.clear();
    if (fresh) return Promise.resolve(0);
    // The eBPF programs stop a denied flow's packets both ways; the proxy's own upstream connections are cut here,
    // and the flows' conntrack entries deleted, so a later policy that opens the peer again does not revive them
    // and the peer's next packet meets no mapping (the host answers it with a reset). The gateway (DNS) stays.
    this.proxy.recheck(slotIp);
    const allow = [...p.allow, { base: parseIpv4(GUEST_NET.gateway), prefix: 32, size: 1 }];
    return conntrackDeleteDenied(parseIpv4(slotIp), allow, p.deny).catch((e: unknown) => {
      log.warn("network: could not delete the conntrack entries of flows a new policy denies (their packets are dropped anyway)", { slotIp, error: String(e) });
      return 0;
    });
  }

  /** What the slot dropped, by reason: the eBPF programs' packet counters and the name proxy's refused connections. */
  drops(slot: NetSlot): Record<string, number> {
    return { ...this.host.bpf.slotDrops(slot.ifindex), ...slot.proxyDrops };
  }

  /** Removes learned addresses whose TTL ran out (a timer runs this while the network is up). */
  expireLearned(now = Date.now()): void {
    for (const slot of this.pool.used) {
      for (const [addr, until] of slot.learned) {
        if (until > now) continue;
        slot.learned.delete(addr);
        if (!slot.isDestroyed) this.host.bpf.slotRuleDel("onebox_allow_out", slot.ifindex, { base: addr, prefix: 32, size: 1 });
      }
    }
  }

  /** `final`: every slot is destroyed and the host setup removed. Otherwise (a restart with sandboxes left running)
   *  slots in use and the host setup stay for the next daemon to re-adopt. */
  private sweep: ReturnType<typeof setInterval> | null = null;
  private startSweep(): void {
    this.sweep = setInterval(() => {
      try {
        this.expireLearned();
      } catch {
        // a slot destroyed meanwhile: its rules went with it
      }
      try {
        this.host.refreshHostDeny();
      } catch (e) {
        log.warn("network: could not refresh the host's denied addresses", { error: String(e) });
      }
    }, LEARN_SWEEP_MS);
    this.sweep.unref?.();
  }

  async stop(opts: { final: boolean }): Promise<Error[]> {
    if (this.sweep) clearInterval(this.sweep);
    this.dns.stop();
    this.proxy.stop();
    await this.pool.stop({ keepInUse: !opts.final });
    return this.host.stop({ final: opts.final && this.pool.used.length === 0 });
  }
}

const LEARN_SWEEP_MS = 10_000;

function samePolicy(a: CompiledPolicy, b: CompiledPolicy): boolean {
  const k = (p: CompiledPolicy) => JSON.stringify([p.allow.map(formatCidr).sort(), p.deny.map(formatCidr).sort(), [...p.domains].sort()]);
  return k(a) === k(b);
}
/** A learned address stays at least this long (a guest may cache an answer with TTL 0 for a moment) and at most a day. */
const LEARN_MIN_SEC = 30;
const LEARN_MAX_SEC = 86_400;

/** DNS learning: when `name` is allowed by one of the slot's domains (under 0.0.0.0/0 denied), the answer's IPv4
 *  addresses go into its allow trie as /32s until their TTL runs out. Called before the guest gets the answer. */
function learn(host: HostNet, slot: NetSlot, name: string, reply: Uint8Array): void {
  const p = slot.policy;
  if (!p || slot.isDestroyed || !p.domains.some((d) => domainMatches(d, name))) return;
  const now = Date.now();
  for (const { addr, ttl } of readARecords(reply)) {
    const until = now + Math.min(Math.max(ttl, LEARN_MIN_SEC), LEARN_MAX_SEC) * 1000;
    // Allowed anyway by an IP/CIDR rule: not learned, so it keeps the fast path (only learned addresses are marked
    // for the name proxy) and never expires.
    if (p.allow.some((c) => cidrContains(c, addr))) continue;
    if (!slot.learned.has(addr)) {
      if (slot.learned.size >= POLICY_LIMITS.learned) continue;
      try {
        host.bpf.slotRuleAdd("onebox_allow_out", slot.ifindex, { base: addr, prefix: 32, size: 1 }, true);
      } catch {
        continue; // the trie is full: the name resolves but stays unreachable
      }
    }
    slot.learned.set(addr, Math.max(until, slot.learned.get(addr) ?? 0));
  }
}
