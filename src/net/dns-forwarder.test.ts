// The DNS forwarder on loopback: UDP and TCP forwarding, deadlines and SERVFAIL, the source check, the filter hook,
// the bound on queries in flight, malformed input.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { TCPSocketListener, udp } from "bun";
import { DnsForwarder, parseResolvConf, readQuestion, type DnsForwarderOptions } from "./dns-forwarder.ts";
import { parseCidr } from "../util/ipv4.ts";

function query(id: number, name: string, qtype = 1): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  const q = new Uint8Array([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 255, 0, 1]);
  return q;
}

/** An answer to `q`: one A record 203.0.113.10 (TTL 60). */
function answerA(q: Uint8Array): Uint8Array {
  const r = new Uint8Array(q.length + 16);
  r.set(q);
  r[2] = 0x81;
  r[3] = 0x80;
  r[7] = 1; // ANCOUNT
  r.set([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 10], q.length);
  return r;
}

const upstreamAsked: string[] = [];
let fakeUdp: udp.Socket<"buffer">;
let fakeTcp: TCPSocketListener<undefined>;
let silent: udp.Socket<"buffer">;
beforeAll(async () => {
  // Same port for UDP and TCP, like a real resolver: the UDP port is the kernel's pick, and its TCP twin may be taken
  // by something else on this host, so pick again (a few times) when it is.
  for (let attempt = 0; ; attempt++) {
    fakeUdp = await Bun.udpSocket({
      hostname: "127.0.0.1",
      socket: {
        data(s, buf, port, addr) {
          upstreamAsked.push(`udp ${readQuestion(new Uint8Array(buf))?.name}`);
          s.send(answerA(new Uint8Array(buf)), port, addr);
        },
      },
    });
    try {
      fakeTcp = Bun.listen({
        hostname: "127.0.0.1",
        port: fakeUdp.port,
        socket: {
          data(s, chunk) {
            const q = new Uint8Array(chunk).subarray(2);
            upstreamAsked.push(`tcp ${readQuestion(q)?.name}`);
            const a = answerA(q);
            s.write(new Uint8Array([a.length >> 8, a.length & 255, ...a]));
          },
        },
      });
      break;
    } catch (e) {
      fakeUdp.close();
      if (attempt >= 5) throw e;
    }
  }
  silent = await Bun.udpSocket({ hostname: "127.0.0.1", socket: { data() {} } }); // never answers
});
afterAll(() => {
  fakeUdp.close();
  fakeTcp.stop(true);
  silent.close();
});

let fwd: DnsForwarder | null = null;
afterEach(() => {
  fwd?.stop();
  fwd = null;
  upstreamAsked.length = 0;
});

async function start(o: Partial<DnsForwarderOptions> = {}): Promise<DnsForwarder> {
  fwd = new DnsForwarder({
    listen: "127.0.0.1",
    port: 0,
    allowed: parseCidr("127.0.0.0/8"),
    upstreams: [{ host: "127.0.0.1", port: fakeUdp.port }],
    timeoutMs: 300,
    ...o,
  });
  await fwd.start();
  return fwd;
}

async function askUdp(port: number, msg: Uint8Array, waitMs = 1500): Promise<Uint8Array | null> {
  let done!: (r: Uint8Array | null) => void;
  const p = new Promise<Uint8Array | null>((r) => (done = r));
  const s = await Bun.udpSocket({ socket: { data: (_s, b) => done(new Uint8Array(b)) } });
  const t = setTimeout(() => done(null), waitMs);
  s.send(msg, port, "127.0.0.1");
  const r = await p;
  clearTimeout(t);
  s.close();
  return r;
}

const rcode = (r: Uint8Array) => r[3]! & 15;
const a4 = (r: Uint8Array) => Array.from(r.subarray(r.length - 4));

test("a UDP query is forwarded and the answer returned with its ID", async () => {
  const f = await start();
  const r = await askUdp(f.port, query(0x4242, "Example.COM"));
  expect(r).not.toBeNull();
  expect([r![0], r![1]]).toEqual([0x42, 0x42]);
  expect(rcode(r!)).toBe(0);
  expect(a4(r!)).toEqual([203, 0, 113, 10]);
  expect(upstreamAsked).toEqual(["udp example.com"]);
});

test("a TCP query (length-framed) is forwarded over TCP", async () => {
  const f = await start();
  let done!: (r: Uint8Array) => void;
  const p = new Promise<Uint8Array>((r) => (done = r));
  const q = query(7, "tcp.example");
  const c = await Bun.connect({ hostname: "127.0.0.1", port: f.port, socket: { data: (_s, b) => done(new Uint8Array(b)) } });
  c.write(new Uint8Array([0, q.length, ...q]));
  const framed = await p;
  c.end();
  expect((framed[0]! << 8) | framed[1]!).toBe(framed.length - 2);
  expect(a4(framed)).toEqual([203, 0, 113, 10]);
  expect(upstreamAsked).toEqual(["tcp tcp.example"]);
});

test("queries from outside the sandbox range get no answer and reach no upstream", async () => {
  const f = await start({ allowed: parseCidr("198.18.0.0/16") });
  expect(await askUdp(f.port, query(1, "leak.example"), 400)).toBeNull();
  expect(upstreamAsked).toEqual([]);
  expect(f.stats.dropped).toBe(1);
});

test("a silent upstream costs one deadline, then the next upstream answers; none left: SERVFAIL", async () => {
  const f = await start({ upstreams: [{ host: "127.0.0.1", port: silent.port }, { host: "127.0.0.1", port: fakeUdp.port }] });
  const t0 = performance.now();
  const r = await askUdp(f.port, query(2, "second.example"));
  expect(a4(r!)).toEqual([203, 0, 113, 10]);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
  f.stop();
  const g = await start({ upstreams: [{ host: "127.0.0.1", port: silent.port }] });
  const s = await askUdp(g.port, query(3, "nowhere.example"));
  expect(rcode(s!)).toBe(2); // SERVFAIL
  expect([s![0], s![1]]).toEqual([0, 3]);
});

test("the filter hook refuses without asking upstream (the policy issue's domain rules)", async () => {
  const f = await start({ filter: (q) => (q.name.endsWith("denied.example") ? "refuse" : "forward") });
  const r = await askUdp(f.port, query(4, "x.denied.example"));
  expect(rcode(r!)).toBe(5); // REFUSED
  expect(upstreamAsked).toEqual([]);
});

test("queries in flight are bounded: past the bound SERVFAIL at once", async () => {
  const f = await start({ upstreams: [{ host: "127.0.0.1", port: silent.port }], maxInflight: 1, timeoutMs: 800 });
  const first = askUdp(f.port, query(5, "slow.example"));
  await Bun.sleep(50);
  const t0 = performance.now();
  const second = await askUdp(f.port, query(6, "over.example"));
  expect(rcode(second!)).toBe(2);
  expect(performance.now() - t0).toBeLessThan(400);
  expect(rcode((await first)!)).toBe(2);
});

test("responses, short and compressed-question messages are dropped", async () => {
  const f = await start();
  const response = answerA(query(8, "a.example"));
  expect(await askUdp(f.port, response, 300)).toBeNull();
  expect(await askUdp(f.port, new Uint8Array(5), 300)).toBeNull();
  const pointer = new Uint8Array([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]);
  expect(await askUdp(f.port, pointer, 300)).toBeNull();
  expect(upstreamAsked).toEqual([]);
  expect(f.stats.dropped).toBe(3);
});

test("resolv.conf: nameservers in order, scope ids dropped", () => {
  expect(parseResolvConf("# c\nsearch x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\n")).toEqual([
    { host: "127.0.0.53", port: 53 },
    { host: "fe80::1", port: 53 },
  ]);
});
