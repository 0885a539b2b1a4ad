// The name proxy: a transparent TCP proxy in the daemon for the guest connections to learned addresses on ports 80
// and 443 of sandboxes whose policy has domains (the eBPF program marks them, nft DNATs them here). It reads the
// SNI or Host under a byte cap and a deadline, closes the connection when the slot's policy does not allow that
// name, and otherwise connects to the name as the host resolves it (never to the address the guest chose) and
// splices bytes both ways; on port 80 every later request on the connection must name the same allowed host
// (src/net/http-requests.ts). docs/network.md "Domain rules: the name proxy".
import type { Socket, TCPSocketListener } from "bun";
import { formatIpv4 } from "../util/ipv4.ts";
import { log } from "../util/log.ts";
import { HttpRequestReader } from "./http-requests.ts";
import { readHttpHost, readTlsServerName, SNIFF_MAX_BYTES, type Sniffed } from "./name-sniff.ts";
import { nameVerdict, type CompiledPolicy } from "./policy.ts";

export type ProxyKind = "http" | "tls";
/** Why the proxy refused a sandbox's connection, as counted in its `networkDrops` (docs/network.md "Counting drops"):
 *  `name`: its SNI/Host (not allowed, none, ambiguous, not the protocol, not resolving to an address the host may
 *  reach, past the deadline or cap, or no longer allowed after a PUT /network); `proxy-limit`: over the connection cap. */
export type ProxyRefusal = "name" | "proxy-limit";

/** Connections one sandbox may have open through the proxy at once, and all sandboxes together. Each costs two
 *  sockets in the daemon; a browser opens ~6 per host, a package manager a few dozen. With 1024 in all, no sandbox
 *  holds more than an eighth of the proxy. */
export const PROXY_LIMITS = { perSandbox: 128, total: 1024 };

export interface NameProxyOptions {
  listen: string;
  /** The policy of the sandbox whose slot address a connection comes from; null: not a sandbox (closed). */
  policyOf: (slotIp: string) => CompiledPolicy | null;
  /** The host's IPv4 addresses for a name (the same resolvers the DNS forwarder asks); [] when it does not resolve. */
  resolve: (name: string) => Promise<number[]>;
  /** true for an address the host must not connect to on a sandbox's behalf (the always-denied list). */
  denied: (addr: number) => boolean;
  /** From the accept to the upstream connection being open (reading the name, resolving, connecting). */
  deadlineMs?: number;
  maxConnections?: number;
  maxPerSandbox?: number;
  /** Told of each refused connection of a sandbox (not of sources that are no sandbox): its drop counters. */
  onRefused?: (slotIp: string, why: ProxyRefusal) => void;
  /** The port connected to upstream per kind (default 80 and 443: the ports the guest's connections were for). */
  upstreamPorts?: Record<ProxyKind, number>;
}

/** Bytes buffered toward one side before the other side's reading pauses (backpressure). */
const HIGH_WATER = 256 * 1024;

interface Conn {
  kind: ProxyKind;
  from: string; // the slot address the connection comes from
  name: string | null; // the host it named (once read)
  requests: HttpRequestReader | null; // port 80, once spliced: frames and checks every later request
  phase: "sniff" | "connecting" | "splice" | "closed";
  head: Uint8Array; // what the guest sent before the upstream connection was open
  up: Socket<Conn> | null;
  toUp: Uint8Array[]; // not yet accepted by the upstream socket
  toGuest: Uint8Array[]; // not yet accepted by the guest's socket
  guestEnded: boolean;
  upEnded: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const m = new Uint8Array(a.length + b.length);
  m.set(a);
  m.set(b, a.length);
  return m;
};

/** Writes what is queued for `to`; true when nothing is left. */
function flush(to: Socket<Conn> | null, queue: Uint8Array[]): boolean {
  while (to && queue.length) {
    const c = queue[0]!;
    const n = to.write(c);
    if (n < c.length) {
      queue[0] = c.subarray(Math.max(n, 0));
      return false;
    }
    queue.shift();
  }
  return queue.length === 0;
}

const queued = (q: Uint8Array[]) => q.reduce((n, c) => n + c.length, 0);

export class NameProxy {
  private listeners: Partial<Record<ProxyKind, TCPSocketListener<Conn>>> = {};
  private readonly open = new Set<Socket<Conn>>();
  private readonly perSandbox = new Map<string, number>();
  /** Sandboxes at their cap whose refusal was logged: one line per stretch at the cap, not one per connection. */
  private readonly capLogged = new Set<string>();
  readonly stats = { accepted: 0, refused: 0, spliced: 0, failed: 0, overLimit: 0 };

  constructor(private readonly o: NameProxyOptions) {}

  /** Listens for both kinds on ephemeral ports of `listen`; the ports go into the nft redirect rules. */
  start(): Record<ProxyKind, number> {
    for (const kind of ["http", "tls"] as const) this.listeners[kind] = this.listen(kind);
    return this.ports;
  }

  get ports(): Record<ProxyKind, number> {
    return { http: this.listeners.http?.port ?? 0, tls: this.listeners.tls?.port ?? 0 };
  }

  stop(): void {
    for (const l of Object.values(this.listeners)) l?.stop(true);
    this.listeners = {};
  }

  /** Open connections from a sandbox (its slot address). */
  connectionsOf(slotIp: string): number {
    return this.perSandbox.get(slotIp) ?? 0;
  }

  /** After a sandbox's policy changed (PUT /network): its connections whose name the new policy does not allow are
   *  cut at once (reset), so an upstream connection the host opened for it does not outlive the permission. */
  recheck(slotIp: string): number {
    const policy = this.o.policyOf(slotIp);
    let cut = 0;
    for (const s of [...this.open]) {
      const c = s.data;
      if (c.from !== slotIp || c.phase === "sniff" || nameVerdict(policy, c.name) === "allow") continue;
      this.refuse(s, "no longer allowed by the sandbox's policy", c.name ?? undefined);
      cut++;
    }
    return cut;
  }

  private listen(kind: ProxyKind): TCPSocketListener<Conn> {
    const self = this;
    return Bun.listen<Conn>({
      hostname: this.o.listen,
      port: 0,
      allowHalfOpen: true, // a guest that half-closes after its request still gets the answer
      socket: {
        open(s) {
          const from = s.remoteAddress.replace(/^::ffff:/, "");
          const mine = self.perSandbox.get(from) ?? 0;
          if (self.open.size >= (self.o.maxConnections ?? PROXY_LIMITS.total) || mine >= (self.o.maxPerSandbox ?? PROXY_LIMITS.perSandbox)) {
            self.stats.overLimit++;
            if (self.o.policyOf(from)) self.o.onRefused?.(from, "proxy-limit");
            if (!self.capLogged.has(from)) log.info("network: name proxy refused a connection", { from, kind, why: "over the connection cap", open: mine });
            self.capLogged.add(from);
            return void s.terminate();
          }
          self.open.add(s);
          self.perSandbox.set(from, mine + 1);
          self.stats.accepted++;
          s.data = { kind, from, name: null, requests: null, phase: "sniff", head: new Uint8Array(0), up: null, toUp: [], toGuest: [], guestEnded: false, upEnded: false, timer: null };
          s.data.timer = setTimeout(() => self.refuse(s, "past the deadline"), self.o.deadlineMs ?? 10_000);
        },
        data(s, chunk) {
          self.fromGuest(s, new Uint8Array(chunk));
        },
        drain(s) {
          // The guest took what was queued for it: read from upstream again.
          if (!flush(s, s.data.toGuest)) return;
          if (s.data.upEnded) s.end();
          else s.data.up?.resume();
        },
        end(s) {
          s.data.guestEnded = true;
          if (s.data.phase === "splice" && flush(s.data.up, s.data.toUp)) s.data.up?.shutdown();
          else if (s.data.phase === "sniff") {
            // The guest gave up itself: nothing to refuse or count.
            s.terminate();
            self.closed(s);
          }
        },
        close(s) {
          self.closed(s);
        },
        error() {},
      },
    });
  }

  private closed(s: Socket<Conn>): void {
    const c = s.data;
    if (!c || c.phase === "closed") return;
    c.phase = "closed";
    this.open.delete(s);
    const n = (this.perSandbox.get(c.from) ?? 1) - 1;
    if (n > 0) this.perSandbox.set(c.from, n);
    else this.perSandbox.delete(c.from);
    this.capLogged.delete(c.from);
    if (c.timer) clearTimeout(c.timer);
    c.up?.end();
  }

  /** `counted`: a refusal for the connection's name (the sandbox's `name` drops); an upstream that failed is not. */
  private refuse(s: Socket<Conn>, why: string, name?: string, counted = true): void {
    if (s.data.phase === "closed") return;
    this.stats.refused++;
    if (counted && this.o.policyOf(s.data.from)) this.o.onRefused?.(s.data.from, "name");
    log.info("network: name proxy refused a connection", { from: s.remoteAddress, kind: s.data.kind, name, why });
    s.terminate(); // a reset: the guest sees the refusal at once
    this.closed(s);
  }

  private fromGuest(s: Socket<Conn>, chunk: Uint8Array): void {
    const c = s.data;
    if (c.phase === "splice") {
      if (c.requests) {
        const f = c.requests.feed(chunk);
        if (f.kind === "refuse") return this.refuse(s, f.why, f.name);
        chunk = f.bytes;
      }
      c.toUp.push(chunk);
      if (!flush(c.up, c.toUp) && queued(c.toUp) > HIGH_WATER) s.pause();
      return;
    }
    if (c.phase === "connecting") {
      c.head = concat(c.head, chunk);
      if (c.head.length > HIGH_WATER) s.pause();
      return;
    }
    if (c.phase !== "sniff") return;
    c.head = concat(c.head, chunk);
    const r: Sniffed = c.kind === "tls" ? readTlsServerName(c.head) : readHttpHost(c.head);
    if (r.kind === "more") return c.head.length >= SNIFF_MAX_BYTES ? this.refuse(s, "no name within the byte cap") : undefined;
    const name = r.kind === "name" ? r.name : null;
    const policy = this.o.policyOf(c.from);
    if (r.kind === "bad") return this.refuse(s, r.why);
    if (nameVerdict(policy, name) === "refuse") return this.refuse(s, name ? "name not allowed" : "names no host", name ?? undefined);
    c.phase = "connecting";
    c.name = name;
    if (c.kind === "http") {
      // Every request on the connection, this one included, must name this host, allowed by the policy of now.
      c.requests = new HttpRequestReader((n) =>
        n !== name ? `a later request names another host than the first (${n ?? "none"})` : nameVerdict(this.o.policyOf(c.from), n) === "refuse" ? "name not allowed" : null,
      );
    }
    void this.connect(s, name!);
  }

  /** Resolves the name on the host, checks the address, connects, then sends what the guest sent so far. */
  private async connect(s: Socket<Conn>, name: string): Promise<void> {
    const c = s.data;
    const addrs = await this.o.resolve(name).catch(() => [] as number[]);
    const addr = addrs.find((a) => !this.o.denied(a));
    if (c.phase === "closed") return;
    if (addr === undefined) return this.refuse(s, addrs.length ? "resolves only to always-denied addresses" : "does not resolve on the host", name);
    const self = this;
    const port = this.o.upstreamPorts?.[c.kind] ?? (c.kind === "tls" ? 443 : 80);
    const up = await Bun.connect<Conn>({
      hostname: formatIpv4(addr),
      port,
      data: c,
      allowHalfOpen: true,
      socket: {
        data(_u, chunk) {
          if (c.phase === "closed") return;
          if (c.requests?.waitingForUpgrade) {
            // The answer to an Upgrade: a 101 makes the rest a tunnel; what the guest sent meanwhile goes up now.
            const f = c.requests.upstream(new Uint8Array(chunk));
            if (f?.kind === "refuse") return self.refuse(s, f.why, f.name);
            if (f && f.bytes.length) {
              c.toUp.push(f.bytes);
              flush(c.up, c.toUp);
            }
            if (f) s.resume();
          }
          c.toGuest.push(new Uint8Array(chunk));
          if (!flush(s, c.toGuest) && queued(c.toGuest) > HIGH_WATER) c.up?.pause();
        },
        drain() {
          if (flush(c.up, c.toUp)) {
            s.resume();
            if (c.guestEnded) c.up?.shutdown();
          }
        },
        end() {
          c.upEnded = true;
          if (c.phase !== "closed" && c.toGuest.length === 0) s.end(); // else after the guest drained the rest
        },
        close() {
          c.upEnded = true;
          if (c.phase !== "closed" && c.toGuest.length === 0) s.end();
        },
        connectError() {},
        error() {},
      },
    }).catch(() => null);
    if ((c.phase as Conn["phase"]) === "closed") return void up?.end();
    if (!up) {
      this.stats.failed++;
      return this.refuse(s, "upstream connect failed", name, false);
    }
    c.up = up;
    c.phase = "splice";
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    this.stats.spliced++;
    const head = c.head;
    c.head = new Uint8Array(0);
    if (c.requests) {
      const f = c.requests.feed(head);
      if (f.kind === "refuse") return void this.refuse(s, f.why, f.name);
      c.toUp.push(f.bytes);
    } else c.toUp.push(head);
    if (flush(up, c.toUp)) s.resume();
    if (c.guestEnded && c.toUp.length === 0) up.shutdown();
  }
}
