// The port-80 request framer: every request on a kept-alive connection is found and its Host checked, whatever the
// body framing in between; framings a server could read differently are refused.
import { describe, expect, test } from "bun:test";
import { HttpRequestReader, readRequestFraming, type Feed } from "./http-requests.ts";

const enc = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (f: Feed) => (f.kind === "forward" ? new TextDecoder("latin1").decode(f.bytes) : f);
/** Only allowed.test, as the name proxy's check does for a connection opened for it. */
const reader = () => new HttpRequestReader((n) => (n === "allowed.test" ? null : `not allowed: ${n ?? "none"}`));

/** Feeds `s` in pieces of `step` bytes; returns all that was forwarded, or the first refusal. */
function feedAll(r: HttpRequestReader, s: string, step = s.length): string | Feed {
  let out = "";
  for (let i = 0; i < s.length; i += step) {
    const f = r.feed(enc(s.slice(i, i + step)));
    if (f.kind === "refuse") return f;
    out += text(f);
  }
  return out;
}

const GET = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

describe("HttpRequestReader", () => {
  test("two requests on one connection: the first passes, the second naming another host is refused", () => {
    const r = reader();
    expect(feedAll(r, GET("allowed.test"))).toBe(GET("allowed.test"));
    expect(feedAll(r, GET("allowed.test"))).toBe(GET("allowed.test"));
    expect(feedAll(r, GET("other.test"))).toEqual({ kind: "refuse", why: "not allowed: other.test", name: "other.test" });
  });

  test("pipelined in one piece, or fed a byte at a time: the denied request is found either way", () => {
    const both = GET("allowed.test") + GET("other.test");
    expect(feedAll(reader(), both)).toMatchObject({ kind: "refuse", name: "other.test" });
    expect(feedAll(reader(), both, 1)).toMatchObject({ kind: "refuse", name: "other.test" });
  });

  test("a Content-Length body that looks like a request is a body, and the request after it is checked", () => {
    const body = GET("other.test");
    const first = `POST / HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    for (const step of [1, 7, 10_000]) {
      const r = reader();
      expect(feedAll(r, first, step)).toBe(first);
      expect(feedAll(r, GET("other.test"), step)).toMatchObject({ kind: "refuse", name: "other.test" });
    }
  });

  test("chunked bodies (with an extension and trailers) are followed to their end", () => {
    const chunked = (trailers: string) =>
      `POST / HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nHost:\r\n1a\r\n${"z".repeat(26)}\r\n0\r\n${trailers}\r\n`;
    for (const step of [1, 3, 10_000]) {
      for (const t of ["", "X-Trailer: 1\r\n"]) {
        const r = reader();
        expect(feedAll(r, chunked(t), step)).toBe(chunked(t));
        expect(feedAll(r, GET("allowed.test"), step)).toBe(GET("allowed.test"));
        expect(feedAll(r, GET("other.test"), step)).toMatchObject({ kind: "refuse" });
      }
    }
  });

  test("framings a server could read otherwise are refused", () => {
    const head = (h: string) => `POST / HTTP/1.1\r\nHost: allowed.test\r\n${h}\r\n`;
    for (const [h, why] of [
      ["Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "both Content-Length and Transfer-Encoding"],
      ["Content-Length: 3\r\nContent-Length: 3\r\n", "two Content-Length headers"],
      ["Content-Length: -1\r\n", "bad Content-Length"],
      ["Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding gzip, chunked"],
      ["Transfer-Encoding: identity\r\n", "Transfer-Encoding identity"],
    ])
      expect(feedAll(reader(), head(h!))).toMatchObject({ kind: "refuse", why });
    const badChunks = `POST / HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: chunked\r\n\r\n`;
    expect(feedAll(reader(), badChunks + "zz\r\n")).toMatchObject({ kind: "refuse", why: "bad chunk size line" });
    expect(feedAll(reader(), badChunks + "2\r\nabXY")).toMatchObject({ kind: "refuse", why: "chunk data not followed by CRLF" });
    expect(feedAll(reader(), "\x16\x03\x01junk")).toMatchObject({ kind: "refuse", why: "not an HTTP request" });
    expect(readRequestFraming("GET / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked")).toEqual({ bad: "Transfer-Encoding in HTTP/1.0" });
  });

  test("an Upgrade: after a 101 the connection is a tunnel; after another status it stays HTTP and is checked", () => {
    const up = `GET /ws HTTP/1.1\r\nHost: allowed.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    const r = reader();
    expect(feedAll(r, up)).toBe(up);
    expect(r.waitingForUpgrade).toBe(true);
    expect(feedAll(r, "\x81\x05hello")).toBe(""); // held until the server answers
    expect(r.upstream(enc("HTTP/1.1 1"))).toBeNull(); // status line incomplete
    expect(text(r.upstream(enc("01 Switching Protocols\r\n\r\n"))!)).toBe("\x81\x05hello");
    expect(feedAll(r, GET("other.test"))).toBe(GET("other.test")); // websocket bytes now, not HTTP: not parsed

    const declined = reader();
    feedAll(declined, up);
    expect(feedAll(declined, GET("other.test"))).toBe("");
    expect(declined.upstream(enc("HTTP/1.1 400 Bad Request\r\n\r\n"))).toMatchObject({ kind: "refuse", name: "other.test" });

    const later = reader();
    feedAll(later, GET("allowed.test"));
    expect(feedAll(later, up)).toMatchObject({ kind: "refuse", why: "Upgrade after the first request" });
  });
});
