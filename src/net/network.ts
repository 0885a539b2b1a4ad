// Guest networking for the daemon, in one handle: host setup, the slot pool and the DNS forwarder, started in that
// order (each undone if a later one fails) and stopped in reverse. The lifecycle takes slots from `pool`.
import { GUEST_NET } from "./addresses.ts";
import { DnsForwarder, type Upstream } from "./dns-forwarder.ts";
import { HostNet } from "./host-net.ts";
import { applyPolicy, dnsVerdict, type CompiledPolicy } from "./policy.ts";
import { SlotPool, type StartReport } from "./pool.ts";

export interface NetworkOptions {
  sandboxCidr: string;
  slotPoolSize: number;
  /** Small state that outlives a restart (src/net/host-net.ts); e.g. `<runRoot>/net`. */
  stateDir: string;
  bpffsRoot?: string;
  /** Default: /etc/resolv.conf's nameservers. */
  dnsUpstreams?: Upstream[];
}

export class Network {
  private constructor(
    readonly host: HostNet,
    readonly pool: SlotPool,
    readonly dns: DnsForwarder,
    /** Slots re-adopted at start (sandboxes still running) and leftovers reaped. */
    readonly startReport: StartReport,
  ) {}

  static async start(o: NetworkOptions): Promise<Network> {
    const host = await HostNet.start({ sandboxCidr: o.sandboxCidr, bpffsRoot: o.bpffsRoot, stateDir: o.stateDir });
    const pools: SlotPool[] = [];
    try {
      // The policy of the slot a query comes from decides what resolves; the pool is made below, before any query
      // can come from one of its slots.
      let pool: SlotPool | null = null;
      const filter = (q: { from: string; name: string }) => dnsVerdict(pool?.used.find((s) => s.slotIp === q.from)?.policy ?? null, q.name);
      const dns = new DnsForwarder({ listen: GUEST_NET.gateway, allowed: host.range.cidr, upstreams: o.dnsUpstreams, filter });
      await dns.start();
      try {
        pool = new SlotPool(host, { size: o.slotPoolSize });
        pools.push(pool);
        return new Network(host, pool, dns, await pool.start());
      } catch (e) {
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
   *  PUT /network and re-adoption. Throws when no slot in use has that address. */
  setPolicy(slotIp: string, p: CompiledPolicy): void {
    const slot = this.pool.used.find((s) => s.slotIp === slotIp);
    if (!slot) throw new Error(`no network slot in use at ${slotIp}`);
    applyPolicy(this.host.bpf, slot.ifindex, p);
    slot.policy = p;
  }

  /** `final`: every slot is destroyed and the host setup removed. Otherwise (a restart with sandboxes left running)
   *  slots in use and the host setup stay for the next daemon to re-adopt. */
  async stop(opts: { final: boolean }): Promise<Error[]> {
    this.dns.stop();
    await this.pool.stop({ keepInUse: !opts.final });
    return this.host.stop({ final: opts.final && this.pool.used.length === 0 });
  }
}
