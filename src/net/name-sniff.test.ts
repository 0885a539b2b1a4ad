// The SNI and Host parsers on crafted ClientHellos and request heads: complete, split, truncated, oversized, without
// a name, and the ambiguous ones an attacker would use to make the server route by another name than the check read.
import { describe, expect, test } from "bun:test";
import { readHttpHost, readTlsServerName, SNIFF_MAX_BYTES } from "./name-sniff.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const u16 = (n: number) => [n >> 8, n & 255];
const u24 = (n: number) => [n >> 16, (n >> 8) & 255, n & 255];

function ext(type: number, body: number[]): number[] {
  return [...u16(type), ...u16(body.length), ...body];
}
function sniExt(...names: string[]): number[] {
  const list = names.flatMap((n) => [0, ...u16(enc(n).length), ...enc(n)]);
  return ext(0, [...u16(list.length), ...list]);
}
/** A ClientHello handshake message (TLS 1.2 layout, as every TLS 1.3 client sends too) with these extensions. */
function clientHello(exts: number[][] | null, sessionId = 32): Uint8Array {
  const body = [
    3, 3, ...new Array(32).fill(7), // version, random
    sessionId, ...new Array(sessionId).fill(1),
    ...u16(4), 0x13, 0x01, 0x13, 0x02, // cipher suites
    1, 0, // compression: null
  ];
  if (exts) {
    const e = exts.flat();
    body.push(...u16(e.length), ...e);
  }
  return Uint8Array.from([1, ...u24(body.length), ...body]);
}
/** The handshake message in TLS records of at most `max` bytes each. */
function records(hs: Uint8Array, max = 16384): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < hs.length; i += max) {
    const part = hs.subarray(i, i + max);
    out.push(0x16, 3, 1, ...u16(part.length), ...part);
  }
  return Uint8Array.from(out);
}
const supportedVersions = ext(43, [2, 3, 4]);
const padding = (n: number) => ext(21, new Array(n).fill(0));

describe("readTlsServerName", () => {
  test("the SNI host name of a ClientHello, lower-cased, final dot dropped, among other extensions", () => {
    expect(readTlsServerName(records(clientHello([supportedVersions, sniExt("Allowed.TEST."), padding(100)])))).toEqual({ kind: "name", name: "allowed.test" });
  });

  test("split over several TLS records, and fed a byte at a time: 'more' until complete, then the name", () => {
    const msg = records(clientHello([padding(600), sniExt("a.allowed.test")]), 100);
    for (let n = 0; n < msg.length; n++) expect(readTlsServerName(msg.subarray(0, n))).toEqual({ kind: "more" });
    expect(readTlsServerName(msg)).toEqual({ kind: "name", name: "a.allowed.test" });
  });

  test("no SNI (no server_name extension, or no extensions at all): none", () => {
    expect(readTlsServerName(records(clientHello([supportedVersions])))).toEqual({ kind: "none" });
    expect(readTlsServerName(records(clientHello(null)))).toEqual({ kind: "none" });
  });

  test("truncated inside: a length that runs past the message is bad, not a name read from the next bytes", () => {
    const hs = clientHello([sniExt("allowed.test")]);
    const cut = hs.slice(0, hs.length - 3);
    cut[1] = 0; cut[2] = (cut.length - 4) >> 8; cut[3] = (cut.length - 4) & 255; // the handshake length says it ends here
    expect(readTlsServerName(records(cut)).kind).toBe("bad");
    // A session id longer than the message.
    const sid = clientHello([sniExt("allowed.test")]);
    sid[4 + 34] = 255;
    expect(readTlsServerName(records(sid)).kind).toBe("bad");
  });

  test("oversized: a ClientHello that says it is larger than the cap, or never completes within it, is bad", () => {
    const big = clientHello([padding(SNIFF_MAX_BYTES), sniExt("allowed.test")]);
    expect(readTlsServerName(records(big))).toEqual({ kind: "bad", why: "ClientHello larger than the cap" });
    // Records that never make a ClientHello header (empty handshake fragments are refused as bad lengths).
    const endless = new Uint8Array(SNIFF_MAX_BYTES + 10).fill(0);
    endless.set([0x16, 3, 1, ...u16(16384), 1, ...u24(SNIFF_MAX_BYTES * 2)]);
    expect(readTlsServerName(endless).kind).toBe("bad");
  });

  test("not TLS (plain HTTP on 443), another handshake first, two names: bad", () => {
    expect(readTlsServerName(enc("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")).kind).toBe("bad");
    const notHello = clientHello([sniExt("allowed.test")]);
    notHello[0] = 2; // ServerHello
    expect(readTlsServerName(records(notHello)).kind).toBe("bad");
    expect(readTlsServerName(records(clientHello([sniExt("allowed.test", "other.test")])))).toEqual({ kind: "bad", why: "two host names in server_name" });
    expect(readTlsServerName(records(clientHello([sniExt("allowed.test"), sniExt("other.test")])))).toEqual({ kind: "bad", why: "two server_name extensions" });
    expect(readTlsServerName(records(clientHello([sniExt("evil\u0000.allowed.test")]))).kind).toBe("bad");
  });
});

describe("readHttpHost", () => {
  const req = (s: string) => enc(s);

  test("Host of a request head, port and case dropped; 'more' until the blank line", () => {
    const head = "GET /x?y HTTP/1.1\r\nUser-Agent: curl\r\nHOST: Allowed.Test:8080\r\nAccept: */*\r\n\r\nbody";
    expect(readHttpHost(req(head))).toEqual({ kind: "name", name: "allowed.test" });
    for (const n of [0, 3, 10, 40, head.indexOf("\r\n\r\n") + 3]) expect(readHttpHost(req(head.slice(0, n)))).toEqual({ kind: "more" });
  });

  test("no Host (HTTP/1.0): none", () => {
    expect(readHttpHost(req("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"))).toEqual({ kind: "none" });
  });

  test("two Host headers, an absolute-form target naming another host, folded lines, CONNECT: bad", () => {
    expect(readHttpHost(req("GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: other.test\r\n\r\n")).kind).toBe("bad");
    expect(readHttpHost(req("GET http://other.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n")).kind).toBe("bad");
    expect(readHttpHost(req("GET http://allowed.test:80/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n"))).toEqual({ kind: "name", name: "allowed.test" });
    expect(readHttpHost(req("GET / HTTP/1.1\r\nX: a\r\n Host: other.test\r\nHost: allowed.test\r\n\r\n")).kind).toBe("bad");
    expect(readHttpHost(req("GET / HTTP/1.1\r\nHost : other.test\r\n\r\n")).kind).toBe("bad");
    expect(readHttpHost(req("CONNECT other.test:443 HTTP/1.1\r\nHost: allowed.test\r\n\r\n")).kind).toBe("bad");
  });

  test("not HTTP (TLS on 80, garbage): bad at once, without waiting for a blank line", () => {
    expect(readHttpHost(records(clientHello([sniExt("allowed.test")]))).kind).toBe("bad");
    expect(readHttpHost(req("SSH-2.0-OpenSSH_9.2")).kind).toBe("bad");
    expect(readHttpHost(req(" GET")).kind).toBe("bad");
  });

  test("oversized: a head without its blank line within the cap is bad", () => {
    const long = `GET / HTTP/1.1\r\nHost: allowed.test\r\nX: ${"a".repeat(SNIFF_MAX_BYTES)}`;
    expect(readHttpHost(req(long))).toEqual({ kind: "bad", why: "request head larger than the cap" });
  });
});
