// The DNS forwarder on the gateway address: every guest's resolver (UDP and TCP 53). It forwards each query to the
// host's resolvers (/etc/resolv.conf) from a fresh socket, with a deadline, a bound on queries in flight and on TCP
// connections, and answers only sandbox addresses. The policy issue filters names here (the `filter` hook).
import { readFileSync } from "node:fs";
import type { Socket, TCPSocketListener, udp } from "bun";
import { cidrContains, parseIpv4, type Cidr } from "../util/ipv4.ts";
import { log } from "../util/log.ts";
import { readARecords } from "./dns-answers.ts";

export interface Upstream {
  host: string;
  port: number;
}

export interface DnsQuery {
  /** The sandbox's slot address (the source of the query). */
  from: string;
  /** The first question's name, lower case, without the final dot ("" when it could not be read). */
  name: string;
  qtype: number;
}

export interface DnsForwarderOptions {
  listen: string;
  port?: number;
  /** Only sources in this range are answered (the sandbox range); others are ignored. */
  allowed: Cidr;
  /** Default: the nameservers of /etc/resolv.conf. */
  upstreams?: Upstream[];
  /** Per upstream try; after every upstream failed the guest gets SERVFAIL. */
  timeoutMs?: number;
  maxInflight?: number;
  maxTcpConnections?: number;
  /** "refuse" answers REFUSED without forwarding (the policy issue's domain rules). */
  filter?: (q: DnsQuery) => "forward" | "refuse";
  /** Sees each forwarded answer before the guest does (the policy learns an allowed name's addresses here, so they
   *  are open by the time the guest connects). Must not throw. */
  onAnswer?: (q: DnsQuery, reply: Uint8Array) => void;
}

const HEADER = 12;
const MAX_UDP = 4096; // EDNS0 payloads larger than this are not offered by common resolvers
const RCODE = { SERVFAIL: 2, REFUSED: 5 } as const;

/** The nameservers of a resolv.conf text (IPv4 and IPv6; port 53). */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push({ host: m[1]!.replace(/%.*$/, ""), port: 53 });
  }
  return out;
}

/** The first question of a query: name and type; null for anything that is not a plausible query. */
export function readQuestion(msg: Uint8Array): { name: string; qtype: number } | null {
  if (msg.length < HEADER + 5) return null;
  const flags = (msg[2]! << 8) | msg[3]!;
  const qdcount = (msg[4]! << 8) | msg[5]!;
  if (flags & 0x8000 || qdcount < 1) return null; // a response, or no question
  const labels: string[] = [];
  let i = HEADER;
  for (let hops = 0; hops < 128; hops++) {
    const len = msg[i];
    if (len === undefined || len > 63) return null; // no compression in a question we accept
    i++;
    if (len === 0) {
      if (i + 4 > msg.length) return null;
      return { name: labels.join(".").toLowerCase(), qtype: (msg[i]! << 8) | msg[i + 1]! };
    }
    if (i + len > msg.length) return null;
    labels.push(new TextDecoder().decode(msg.subarray(i, i + len)));
    i += len;
  }
  return null;
}

/** An answer with only the query's header and question, and `rcode`. */
export function errorReply(query: Uint8Array, rcode: number): Uint8Array {
  const r = query.slice();
  r[2] = 0x80 | (query[2]! & 0x01) | (query[2]! & 0x78); // QR, opcode, RD kept
  r[3] = 0x80 | rcode; // RA
  return r;
}

export class DnsForwarder {
  private udp: udp.Socket<"buffer"> | null = null;
  private tcp: TCPSocketListener<{ buf: Uint8Array; busy: boolean }> | null = null;
  private inflight = 0;
  private tcpConns = 0;
  readonly upstreams: Upstream[];
  readonly stats = { queries: 0, answered: 0, servfail: 0, refused: 0, dropped: 0 };

  constructor(private readonly opts: DnsForwarderOptions) {
    this.upstreams = opts.upstreams ?? parseResolvConf(readFileSync("/etc/resolv.conf", "utf8"));
    if (!this.upstreams.length) throw new Error("no nameserver in /etc/resolv.conf: the DNS forwarder has nowhere to forward");
  }

  get port(): number {
    return this.udp?.port ?? this.opts.port ?? 53;
  }

  /** UDP and TCP on one port. With port 0 (tests) the port UDP was given may be taken for TCP: then both
   *  are tried again on another (a few times); a TCP listen that fails never leaves the UDP socket open. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const sock = await this.bindUdp();
      try {
        this.tcp = this.listenTcp(sock.port);
        this.udp = sock;
        break;
      } catch (e) {
        sock.close();
        const inUse = (e as { code?: string }).code === "EADDRINUSE";
        if (!inUse || this.opts.port !== 0 || attempt >= 5) throw e;
      }
    }
    log.info("dns forwarder listening", { on: `${this.opts.listen}:${this.port}`, upstreams: this.upstreams });
  }

  private bindUdp(): Promise<udp.Socket<"buffer">> {
    const self = this;
    return Bun.udpSocket({
      hostname: this.opts.listen,
      port: this.opts.port ?? 53,
      socket: {
        data(sock, buf, port, addr) {
          void self.onUdp(sock, new Uint8Array(buf), port, addr);
        },
      },
    });
  }

  private listenTcp(port: number): TCPSocketListener<{ buf: Uint8Array; busy: boolean }> {
    const self = this;
    return Bun.listen<{ buf: Uint8Array; busy: boolean }>({
      hostname: this.opts.listen,
      port,
      socket: {
        open(s) {
          if (!self.admit(s.remoteAddress) || self.tcpConns >= (self.opts.maxTcpConnections ?? 64)) {
            self.stats.dropped++;
            s.end();
            return;
          }
          self.tcpConns++;
          s.data = { buf: new Uint8Array(0), busy: false };
          s.timeout(10); // seconds of silence before the connection is closed
        },
        data(s, chunk) {
          void self.onTcpData(s, new Uint8Array(chunk));
        },
        timeout(s) {
          s.end();
        },
        close(s) {
          if (s.data) self.tcpConns--;
        },
        error() {},
      },
    });
  }

  stop(): void {
    this.udp?.close();
    this.tcp?.stop(true);
    this.udp = null;
    this.tcp = null;
  }

  private admit(addr: string): boolean {
    try {
      return cidrContains(this.opts.allowed, parseIpv4(addr.replace(/^::ffff:/, "")));
    } catch {
      return false;
    }
  }

  /** The answer to one query: forwarded, refused by the filter, or SERVFAIL when every upstream failed. */
  private async answer(query: Uint8Array, from: string, tcp: boolean): Promise<Uint8Array | null> {
    const q = readQuestion(query);
    if (!q) {
      this.stats.dropped++;
      return null;
    }
    this.stats.queries++;
    if (this.opts.filter?.({ from, ...q }) === "refuse") {
      this.stats.refused++;
      return errorReply(query, RCODE.REFUSED);
    }
    if (this.inflight >= (this.opts.maxInflight ?? 512)) {
      this.stats.servfail++;
      return errorReply(query, RCODE.SERVFAIL);
    }
    this.inflight++;
    try {
      for (const up of this.upstreams) {
        const reply = tcp ? await this.askTcp(up, query) : await this.askUdp(up, query);
        if (reply && reply.length >= HEADER && reply[0] === query[0] && reply[1] === query[1]) {
          this.stats.answered++;
          this.opts.onAnswer?.({ from, ...q }, reply);
          return reply;
        }
      }
      this.stats.servfail++;
      return errorReply(query, RCODE.SERVFAIL);
    } finally {
      this.inflight--;
    }
  }

  private async onUdp(sock: { send(d: Uint8Array, port: number, addr: string): boolean }, msg: Uint8Array, port: number, addr: string) {
    if (!this.admit(addr) || msg.length > MAX_UDP) {
      this.stats.dropped++;
      return;
    }
    const reply = await this.answer(msg, addr, false);
    if (reply) sock.send(reply, port, addr);
  }

  private async onTcpData(s: Socket<{ buf: Uint8Array; busy: boolean }>, chunk: Uint8Array) {
    const d = s.data;
    if (!d) return;
    const merged = new Uint8Array(d.buf.length + chunk.length);
    merged.set(d.buf);
    merged.set(chunk, d.buf.length);
    d.buf = merged;
    if (d.buf.length > 2 + 65535 * 2) return void s.end(); // a client pipelining more than two messages unread
    while (!d.busy && d.buf.length >= 2) {
      const len = (d.buf[0]! << 8) | d.buf[1]!;
      if (d.buf.length < 2 + len) return;
      const query = d.buf.slice(2, 2 + len);
      d.buf = d.buf.slice(2 + len);
      d.busy = true;
      const reply = await this.answer(query, s.remoteAddress, true);
      d.busy = false;
      if (!reply) return void s.end();
      const framed = new Uint8Array(2 + reply.length);
      framed[0] = reply.length >> 8;
      framed[1] = reply.length & 255;
      framed.set(reply, 2);
      s.write(framed);
    }
  }

  /** The name's IPv4 addresses as the host's resolvers answer (the name proxy connects there, never where the guest
   *  chose): the upstreams in order, over TCP when a UDP answer is truncated; [] when none answers with an address. */
  async lookupA(name: string): Promise<number[]> {
    const labels = name.split(".").map((l) => new TextEncoder().encode(l));
    const q = new Uint8Array(HEADER + labels.reduce((n, l) => n + 1 + l.length, 0) + 5);
    crypto.getRandomValues(q.subarray(0, 2));
    q[2] = 0x01; // RD
    q[5] = 1; // one question
    let i = HEADER;
    for (const l of labels) {
      q[i++] = l.length;
      q.set(l, i);
      i += l.length;
    }
    q[i + 2] = 1; // after the root label: QTYPE A
    q[i + 4] = 1; // QCLASS IN
    for (const up of this.upstreams) {
      let reply = await this.askUdp(up, q);
      if (reply && reply.length >= HEADER && reply[2]! & 0x02) reply = await this.askTcp(up, q); // TC
      if (!reply || reply.length < HEADER || reply[0] !== q[0] || reply[1] !== q[1]) continue;
      return readARecords(reply).map((r) => r.addr);
    }
    return [];
  }

  /** One UDP try from a fresh socket (a random source port per query), with the deadline. */
  private async askUdp(up: Upstream, query: Uint8Array): Promise<Uint8Array | null> {
    let done!: (r: Uint8Array | null) => void;
    const result = new Promise<Uint8Array | null>((r) => (done = r));
    const sock = await Bun.udpSocket({
      connect: { hostname: up.host, port: up.port },
      socket: {
        data(_s, buf) {
          done(new Uint8Array(buf));
        },
        error() {
          done(null);
        },
      },
    }).catch(() => null);
    if (!sock) return null;
    const timer = setTimeout(() => done(null), this.opts.timeoutMs ?? 2000);
    sock.send(query);
    const reply = await result;
    clearTimeout(timer);
    sock.close();
    return reply;
  }

  /** One TCP try (length-framed, RFC 1035 4.2.2), with the deadline for connect and answer together. */
  private async askTcp(up: Upstream, query: Uint8Array): Promise<Uint8Array | null> {
    let done!: (r: Uint8Array | null) => void;
    const result = new Promise<Uint8Array | null>((r) => (done = r));
    let buf = new Uint8Array(0);
    const timer = setTimeout(() => done(null), this.opts.timeoutMs ?? 2000);
    const conn = await Bun.connect({
      hostname: up.host,
      port: up.port,
      socket: {
        data(_s, chunk) {
          const m = new Uint8Array(buf.length + chunk.length);
          m.set(buf);
          m.set(chunk, buf.length);
          buf = m;
          if (buf.length >= 2 && buf.length >= 2 + ((buf[0]! << 8) | buf[1]!)) done(buf.slice(2, 2 + ((buf[0]! << 8) | buf[1]!)));
        },
        close() {
          done(null);
        },
        error() {
          done(null);
        },
        connectError() {
          done(null);
        },
      },
    }).catch(() => null);
    if (conn) {
      const framed = new Uint8Array(2 + query.length);
      framed[0] = query.length >> 8;
      framed[1] = query.length & 255;
      framed.set(query, 2);
      conn.write(framed);
    }
    const reply = conn ? await result : null;
    clearTimeout(timer);
    conn?.end();
    return reply;
  }
}
