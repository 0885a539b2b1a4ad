// The name proxy on loopback with real sockets: a guest's connection (here from 127.0.0.1, standing for a slot
// address) naming an allowed host is spliced to where the HOST resolves that name; another name on the same
// address, no name, an internal address behind an allowed name, silence past the deadline: closed, nothing sent on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { parseIpv4 } from "../util/ipv4.ts";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { NameProxy, type ProxyRefusal } from "./name-proxy.ts";
import { alwaysDenied, compilePolicy, parseIpEntry } from "./policy.ts";

const POLICY = compilePolicy({ allowOut: ["allowed.test", "*.allowed.test", "internal.test"], denyOut: ["0.0.0.0/0"] });
/** The host's resolver for the test: allowed.test is this host (opened below as an operator would), internal.test
 *  points at the cloud metadata address. */
const HOST_DNS: Record<string, string[]> = {
  "allowed.test": ["127.0.0.1"],
  "www.allowed.test": ["127.0.0.1"],
  "internal.test": ["169.254.169.254"],
  "other.test": ["127.0.0.1"],
};

let http: ReturnType<typeof Bun.serve>;
let raw: TCPSocketListener<undefined>;
const rawSeen: Uint8Array[] = [];
let proxy: NameProxy;
let policyFor: string | null = "127.0.0.1";
/** What the proxy told the daemon it refused (the sandbox's networkDrops). */
const refusals: [string, ProxyRefusal][] = [];
/** The Host of every request the HTTP server got. */
const served: string[] = [];

beforeAll(() => {
  http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async (req) => (served.push(req.headers.get("host") ?? ""), new Response(`host ${req.headers.get("host")} body ${(await req.text()).length}\n`)) });
  // Stands for a TLS server: records what it got and echoes it back.
  raw = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, chunk) {
        rawSeen.push(new Uint8Array(chunk));
        s.write(chunk);
      },
    },
  });
  proxy = new NameProxy({
    listen: "127.0.0.1",
    policyOf: (ip) => (ip === policyFor ? POLICY : null),
    resolve: async (name) => (HOST_DNS[name] ?? []).map(parseIpv4),
    denied: (a) => alwaysDenied(a, [], [parseIpEntry("127.0.0.1")!]),
    deadlineMs: 400,
    upstreamPorts: { http: http.port!, tls: raw.port },
    onRefused: (ip, why) => void refusals.push([ip, why]),
  });
  proxy.start();
});
afterAll(() => {
  proxy.stop();
  http.stop(true);
  raw.stop(true);
});

/** Connects to the proxy, sends `bytes` (then half-closes unless `keepOpen`), and collects the answer until the
 *  proxy closes (or `ms` pass). */
async function exchange(port: number, bytes: Uint8Array | string, ms = 3000, opts: { keepOpen?: boolean } = {}) {
  const got: Uint8Array[] = [];
  let closed = false;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const s = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        got.push(new Uint8Array(chunk));
      },
      close() {
        closed = true;
        done();
      },
      end() {
        closed = true;
        done();
      },
      error() {
        closed = true;
        done();
      },
    },
  });
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let off = 0;
  while (off < data.length) {
    const n = s.write(data.subarray(off));
    off += Math.max(n, 0);
    if (off < data.length) await Bun.sleep(1);
  }
  if (!opts.keepOpen) s.shutdown?.();
  const timer = setTimeout(done, ms);
  await finished;
  clearTimeout(timer);
  s.end();
  const total = Buffer.concat(got);
  return { text: total.toString("latin1"), bytes: total.length, closed };
}

const enc = (s: string) => new TextEncoder().encode(s);
function clientHello(name: string | null): Uint8Array {
  const u16 = (n: number) => [n >> 8, n & 255];
  const exts = name === null ? [] : (() => {
    const n = [...enc(name)];
    const list = [0, ...u16(n.length), ...n];
    return [0, 0, ...u16(list.length + 2), ...u16(list.length), ...list];
  })();
  const body = [3, 3, ...new Array(32).fill(9), 0, ...u16(2), 0x13, 0x01, 1, 0, ...u16(exts.length), ...exts];
  const hs = [1, 0, ...u16(body.length), ...body];
  return Uint8Array.from([0x16, 3, 1, ...u16(hs.length), ...hs]);
}

describe("the name proxy", () => {
  test("HTTP naming an allowed host reaches the server the host resolves it to; the request arrives unchanged", async () => {
    const r = await exchange(proxy.ports.http, "GET / HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n");
    expect(r.text).toStartWith("HTTP/1.1 200");
    expect(r.text).toEndWith("host allowed.test body 0\n");
  });

  test("another name on the same address (Host: other.test) is closed with nothing sent on, counted for the sandbox as `name`", async () => {
    const before = proxy.stats.refused;
    refusals.length = 0;
    const r = await exchange(proxy.ports.http, "GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n");
    expect(r).toEqual({ text: "", bytes: 0, closed: true });
    expect(proxy.stats.refused).toBe(before + 1);
    expect(refusals).toEqual([["127.0.0.1", "name"]]);
  });

  test("keep-alive: the first request is answered, the second on the same connection naming another host closes it unsent", async () => {
    served.length = 0;
    const c = await Conn.open(proxy.ports.http);
    c.write("GET /one HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
    expect(await c.until((t) => t.endsWith("host allowed.test body 0\n"))).toStartWith("HTTP/1.1 200");
    c.write("GET /two HTTP/1.1\r\nHost: other.test\r\n\r\n");
    await c.closed;
    expect(served).toEqual(["allowed.test"]);
    // A kept-alive connection that stays with its host serves every request.
    const d = await Conn.open(proxy.ports.http);
    for (const path of ["/a", "/b"]) {
      d.write(`POST ${path} HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n\r\nHost:`);
      await d.until((t) => t.split("body 5\n").length === (path === "/a" ? 2 : 3));
    }
    d.end();
    expect(served).toEqual(["allowed.test", "allowed.test", "allowed.test"]);
  });

  test("a PUT /network that no longer allows a spliced connection's name cuts it (recheck)", async () => {
    const c = await Conn.open(proxy.ports.http);
    c.write("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
    await c.until((t) => t.includes("body 0\n"));
    expect(proxy.connectionsOf("127.0.0.1")).toBe(1);
    expect(proxy.recheck("127.0.0.1")).toBe(0); // the same policy: kept
    policyFor = null;
    try {
      expect(proxy.recheck("127.0.0.1")).toBe(1);
      await c.closed;
    } finally {
      policyFor = "127.0.0.1";
    }
    expect(proxy.connectionsOf("127.0.0.1")).toBe(0);
  });

  test("no Host, two Hosts, an absolute target for another host: closed", async () => {
    for (const head of [
      "GET / HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: other.test\r\n\r\n",
      "GET http://other.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
    ])
      expect(await exchange(proxy.ports.http, head)).toEqual({ text: "", bytes: 0, closed: true });
  });

  test("TLS with an allowed SNI (a wildcard match) is spliced: the server gets the ClientHello byte for byte, both ways, 3 MiB after it", async () => {
    rawSeen.length = 0;
    const hello = clientHello("www.allowed.test");
    const bulk = new Uint8Array(3 * 1024 * 1024).map((_, i) => i * 7);
    const all = new Uint8Array(hello.length + bulk.length);
    all.set(hello);
    all.set(bulk, hello.length);
    const r = await exchange(proxy.ports.tls, all, 20_000);
    expect(r.bytes).toBe(all.length);
    expect(Buffer.concat(rawSeen).subarray(0, hello.length).equals(Buffer.from(hello))).toBe(true);
    expect(Buffer.concat(rawSeen).equals(Buffer.from(all))).toBe(true);
  }, 30_000);

  test("TLS naming another host, or none, or plain HTTP on the TLS port: closed before any byte goes on", async () => {
    rawSeen.length = 0;
    for (const bytes of [clientHello("other.test"), clientHello(null), enc("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")])
      expect(await exchange(proxy.ports.tls, bytes)).toEqual({ text: "", bytes: 0, closed: true });
    expect(rawSeen).toEqual([]);
  });

  test("an allowed name the host resolves to an always-denied address (cloud metadata) is refused", async () => {
    expect(await exchange(proxy.ports.http, "GET / HTTP/1.1\r\nHost: internal.test\r\n\r\n")).toEqual({ text: "", bytes: 0, closed: true });
  });

  test("silence past the deadline, and a source that is no sandbox: closed", async () => {
    const t0 = performance.now();
    const r = await exchange(proxy.ports.tls, clientHello("allowed.test").subarray(0, 20), 5000, { keepOpen: true });
    expect(r.closed).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
    policyFor = null;
    try {
      expect(await exchange(proxy.ports.http, "GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")).toEqual({ text: "", bytes: 0, closed: true });
    } finally {
      policyFor = "127.0.0.1";
    }
  });
});

/** A raw client connection (node:net, for its localAddress: a second "sandbox" is 127.0.0.2). */
class Conn {
  text = "";
  readonly closed: Promise<void>;
  private constructor(readonly s: NetSocket) {
    s.on("data", (b) => (this.text += b.toString("latin1")));
    s.on("error", () => {});
    this.closed = new Promise((r) => s.on("close", () => r()));
  }
  static open(port: number, from = "127.0.0.1"): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: "127.0.0.1", port, localAddress: from }, () => resolve(new Conn(s)));
      s.on("error", reject);
    });
  }
  write(t: string): void {
    this.s.write(t);
  }
  end(): void {
    this.s.destroy();
  }
  async until(cond: (text: string) => boolean, ms = 3000): Promise<string> {
    const end = Date.now() + ms;
    while (!cond(this.text)) {
      if (Date.now() > end) throw new Error(`timed out; got ${JSON.stringify(this.text)}`);
      await Bun.sleep(5);
    }
    return this.text;
  }
}

describe("the name proxy's per-sandbox connection cap", () => {
  test("the N+1th connection of one sandbox is refused (counted as proxy-limit) while another sandbox still connects", async () => {
    const counted: [string, ProxyRefusal][] = [];
    const capped = new NameProxy({
      listen: "127.0.0.1",
      policyOf: (ip) => (ip === "127.0.0.1" || ip === "127.0.0.2" ? POLICY : null),
      resolve: async (name) => (HOST_DNS[name] ?? []).map(parseIpv4),
      denied: (a) => alwaysDenied(a, [], [parseIpEntry("127.0.0.1")!]),
      deadlineMs: 5000,
      maxPerSandbox: 3,
      upstreamPorts: { http: http.port!, tls: raw.port },
      onRefused: (ip, why) => void counted.push([ip, why]),
    });
    const { http: port } = capped.start();
    const held: Conn[] = [];
    try {
      // Three connections of sandbox 127.0.0.1 held open (silent: still being read), the cap.
      for (let i = 0; i < 3; i++) held.push(await Conn.open(port));
      await Bun.sleep(50);
      expect(capped.connectionsOf("127.0.0.1")).toBe(3);
      const fourth = await Conn.open(port);
      await fourth.closed; // reset at once
      expect(fourth.text).toBe("");
      expect(counted).toEqual([["127.0.0.1", "proxy-limit"]]);
      // Another sandbox is not affected: its request goes through.
      const other = await Conn.open(port, "127.0.0.2");
      other.write("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
      expect(await other.until((t) => t.includes("body 0\n"))).toStartWith("HTTP/1.1 200");
      other.end();
      // One of the first sandbox's connections ends: it may open one again.
      held.pop()!.end();
      await Bun.sleep(50);
      const again = await Conn.open(port);
      again.write("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
      expect(await again.until((t) => t.includes("body 0\n"))).toStartWith("HTTP/1.1 200");
      again.end();
      expect(counted).toEqual([["127.0.0.1", "proxy-limit"]]);
    } finally {
      for (const c of held) c.end();
      capped.stop();
    }
  });
});
