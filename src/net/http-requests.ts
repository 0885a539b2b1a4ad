// Splits what a guest sends on a proxied port-80 connection into HTTP/1.x requests (RFC 9112 framing: a request
// head, then a body of Content-Length bytes or chunks), so the name proxy checks the Host of EVERY request on a
// kept-alive connection, not only the first (src/net/name-proxy.ts). Strict on purpose: framing a server could
// read differently than this reader (Content-Length with Transfer-Encoding, a coding other than chunked, two
// lengths, a malformed chunk line) is refused, since a request boundary the proxy did not see is a request whose
// Host nobody checked (request smuggling). A head's bytes are held until the head is complete and checked: no byte
// of a refused request goes upstream.
import { readHttpHost, SNIFF_MAX_BYTES } from "./name-sniff.ts";

/** A chunk-size line (`1a2b;ext=...`) is at most this long; chunk extensions are rare and short. */
const CHUNK_LINE_MAX = 4096;

export type Feed = { kind: "forward"; bytes: Uint8Array } | { kind: "refuse"; why: string; name?: string };

type Body = { kind: "none" } | { kind: "length"; n: number } | { kind: "chunked" };

/** The body framing of a complete request head (lines without the final blank line), or why it is refused. */
export function readRequestFraming(head: string): { body: Body; upgrade: boolean } | { bad: string } {
  const lines = head.split("\r\n");
  const http10 = lines[0]!.endsWith(" HTTP/1.0");
  let length: string | null = null;
  let coding: string | null = null;
  let upgrade = false;
  for (const line of lines.slice(1)) {
    const c = line.indexOf(":");
    const name = line.slice(0, c).toLowerCase();
    const value = line.slice(c + 1).trim();
    if (name === "content-length") {
      if (length !== null) return { bad: "two Content-Length headers" };
      if (!/^\d{1,15}$/.test(value)) return { bad: "bad Content-Length" };
      length = value;
    } else if (name === "transfer-encoding") {
      if (coding !== null) return { bad: "two Transfer-Encoding headers" };
      coding = value.toLowerCase();
    } else if (name === "upgrade") upgrade = true;
  }
  if (coding !== null) {
    // RFC 9112 6.1: chunked must be the final coding; anything else has no length a proxy can follow.
    if (coding !== "chunked") return { bad: `Transfer-Encoding ${coding}` };
    if (length !== null) return { bad: "both Content-Length and Transfer-Encoding" };
    if (http10) return { bad: "Transfer-Encoding in HTTP/1.0" };
    return { body: { kind: "chunked" }, upgrade };
  }
  // RFC 9112 6.3: a request with neither has no body.
  const n = length === null ? 0 : Number(length);
  return { body: n > 0 ? { kind: "length", n } : { kind: "none" }, upgrade };
}

const indexOfCrlfCrlf = (b: Uint8Array, from: number) => {
  for (let i = Math.max(from, 0); i + 3 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
};
const indexOfCrlf = (b: Uint8Array, from: number) => {
  for (let i = from; i + 1 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10) return i;
  return -1;
};

type State =
  | { at: "head" }
  | { at: "body"; left: number } // Content-Length bytes still to come
  | { at: "chunk-size" }
  | { at: "chunk-data"; left: number } // including the CRLF after the data
  | { at: "trailers" }
  | { at: "upgrade-wait" } // an Upgrade request went up: the server's first bytes decide (101: a tunnel, else HTTP)
  | { at: "tunnel" };

export class HttpRequestReader {
  private state: State = { at: "head" };
  /** Bytes not yet framed: a partial head, chunk line or trailer section, or what came while waiting on a 101. */
  private pending = new Uint8Array(0);
  private requests = 0;
  private upstreamHead = "";

  /** `check(name)`: why a request naming `name` (null: names nothing) is refused, or null to let it through. */
  constructor(private readonly check: (name: string | null) => string | null) {}

  /** Takes the next bytes from the guest; returns what may go upstream now, or a refusal (the connection ends). */
  feed(chunk: Uint8Array): Feed {
    const buf = this.pending.length ? concat(this.pending, chunk) : chunk;
    this.pending = new Uint8Array(0);
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < buf.length) {
      const s = this.state;
      if (s.at === "tunnel") {
        out.push(buf.subarray(i));
        i = buf.length;
      } else if (s.at === "upgrade-wait") {
        break; // held: HTTP or not depends on the server's answer (upstream())
      } else if (s.at === "body") {
        const n = Math.min(s.left, buf.length - i);
        out.push(buf.subarray(i, i + n));
        i += n;
        s.left -= n;
        if (s.left === 0) this.state = { at: "head" };
      } else if (s.at === "chunk-data") {
        const n = Math.min(s.left, buf.length - i);
        if (s.left - n < 2) {
          // the data's closing CRLF is in this piece: it must be exactly CRLF
          const crlfStart = i + s.left - 2;
          for (let k = Math.max(crlfStart, i); k < i + n; k++) if (buf[k] !== (k === crlfStart ? 13 : 10)) return { kind: "refuse", why: "chunk data not followed by CRLF" };
        }
        out.push(buf.subarray(i, i + n));
        i += n;
        s.left -= n;
        if (s.left === 0) this.state = { at: "chunk-size" };
      } else if (s.at === "chunk-size") {
        const e = indexOfCrlf(buf, i);
        if (e < 0) {
          if (buf.length - i > CHUNK_LINE_MAX) return { kind: "refuse", why: "chunk line longer than the cap" };
          break;
        }
        const m = /^([0-9a-fA-F]{1,15})(;[^\r\n]*)?$/.exec(new TextDecoder("latin1").decode(buf.subarray(i, e)));
        if (!m) return { kind: "refuse", why: "bad chunk size line" };
        const size = parseInt(m[1]!, 16);
        out.push(buf.subarray(i, e + 2));
        i = e + 2;
        this.state = size === 0 ? { at: "trailers" } : { at: "chunk-data", left: size + 2 };
      } else if (s.at === "trailers") {
        // The trailer section ends with an empty line: at once (no trailers), or after the fields' CRLFCRLF.
        if (buf.length - i >= 2 && buf[i] === 13 && buf[i + 1] === 10) {
          out.push(buf.subarray(i, i + 2));
          i += 2;
          this.state = { at: "head" };
          continue;
        }
        const e = indexOfCrlfCrlf(buf, i);
        if (e < 0) {
          if (buf.length - i > SNIFF_MAX_BYTES) return { kind: "refuse", why: "trailers longer than the cap" };
          break;
        }
        out.push(buf.subarray(i, e + 4));
        i = e + 4;
        this.state = { at: "head" };
      } else {
        const e = indexOfCrlfCrlf(buf, i);
        if (e < 0) {
          if (buf.length - i >= SNIFF_MAX_BYTES) return { kind: "refuse", why: "request head larger than the cap" };
          // Not a request at all: refused before the head completes, as the first request's sniff does.
          const early = readHttpHost(buf.subarray(i));
          if (early.kind === "bad") return { kind: "refuse", why: early.why };
          break;
        }
        const head = buf.subarray(i, e + 4);
        const r = readHttpHost(head);
        if (r.kind === "bad" || r.kind === "more") return { kind: "refuse", why: r.kind === "bad" ? r.why : "incomplete request head" };
        const name = r.kind === "name" ? r.name : null;
        const why = this.check(name);
        if (why !== null) return { kind: "refuse", why, name: name ?? undefined };
        const f = readRequestFraming(new TextDecoder("latin1").decode(head.subarray(0, head.length - 4)));
        if ("bad" in f) return { kind: "refuse", why: f.bad, name: name ?? undefined };
        // Only the first request may ask to switch protocols: the server's first bytes are then its answer to it.
        if (f.upgrade && this.requests > 0) return { kind: "refuse", why: "Upgrade after the first request", name: name ?? undefined };
        if (f.upgrade && f.body.kind !== "none") return { kind: "refuse", why: "Upgrade request with a body", name: name ?? undefined };
        this.requests++;
        out.push(head);
        i = e + 4;
        if (f.upgrade) this.state = { at: "upgrade-wait" };
        else if (f.body.kind === "length") this.state = { at: "body", left: f.body.n };
        else if (f.body.kind === "chunked") this.state = { at: "chunk-size" };
      }
    }
    if (i < buf.length) this.pending = buf.slice(i);
    // A client waits for the 101 before it speaks the new protocol: much more than a request head meanwhile is not that.
    if (this.state.at === "upgrade-wait" && this.pending.length > SNIFF_MAX_BYTES) return { kind: "refuse", why: "too much sent before the server answered the Upgrade" };
    return { kind: "forward", bytes: out.length === 1 ? out[0]! : out.reduce(concat, new Uint8Array(0)) };
  }

  /** True while guest bytes are held for the server's answer to an Upgrade request. */
  get waitingForUpgrade(): boolean {
    return this.state.at === "upgrade-wait";
  }

  /** Sees the server's bytes while an Upgrade is pending: a `101` status line makes the connection a tunnel (no
   *  longer HTTP: not parsed); any other status keeps it HTTP. Returns what the guest sent meanwhile, framed (or a
   *  refusal), or null while the status line is incomplete. */
  upstream(chunk: Uint8Array): Feed | null {
    if (this.state.at !== "upgrade-wait") return null;
    this.upstreamHead += new TextDecoder("latin1").decode(chunk.subarray(0, 64));
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.upstreamHead);
    if (!m && this.upstreamHead.length < 12) return null;
    this.state = m?.[1] === "101" ? { at: "tunnel" } : { at: "head" };
    this.upstreamHead = "";
    const held = this.pending;
    this.pending = new Uint8Array(0);
    return this.feed(held);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const m = new Uint8Array(a.length + b.length);
  m.set(a);
  m.set(b, a.length);
  return m;
}
