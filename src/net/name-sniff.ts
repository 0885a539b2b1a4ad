// Reads the name a guest's TCP connection asks for from its first bytes: the TLS ClientHello's server_name (SNI,
// port 443) or the HTTP request's Host (port 80), for the domain check of the egress policy (src/net/name-proxy.ts).
// Pure and bounded: the caller feeds what it has read so far (at most SNIFF_MAX_BYTES) and gets "more" until the
// message is complete.

/** What the parsers read at most before giving up (a ClientHello is ~0.5-2 KiB, a request head rarely over 8 KiB). */
export const SNIFF_MAX_BYTES = 16 * 1024;

export type Sniffed =
  | { kind: "more" } // not complete yet: read more (within the cap and the deadline)
  | { kind: "name"; name: string } // lower case, no final dot, no port
  | { kind: "none" } // a complete message that names nothing (a ClientHello without SNI, HTTP/1.0 without Host)
  | { kind: "bad"; why: string }; // not the protocol expected, or names that disagree

const more = { kind: "more" } as const;
const bad = (why: string): Sniffed => ({ kind: "bad", why });

/** A host name as the policy compares it: lower case without a final dot; null if it is not a plausible name. */
function cleanName(s: string): string | null {
  const n = s.toLowerCase().replace(/\.$/, "");
  return n.length > 0 && n.length <= 253 && /^[a-z0-9_.-]+$/.test(n) ? n : null;
}

/**
 * The SNI host name of a TLS ClientHello, reassembled from as many handshake records as it spans (TLS 1.0-1.3 record
 * layer). With Encrypted Client Hello this is the outer (public) name, which is what the network sees.
 */
export function readTlsServerName(buf: Uint8Array): Sniffed {
  // Concatenate the handshake records' payloads until the ClientHello is complete.
  const hs: number[] = [];
  let i = 0;
  let need = -1; // the handshake message's total length once its header is read
  while (need < 0 || hs.length < need) {
    if (buf.length < i + 5) return buf.length >= SNIFF_MAX_BYTES ? bad("ClientHello larger than the cap") : more;
    if (buf[i] !== 0x16) return bad("not a TLS handshake record");
    if (buf[i + 1] !== 3) return bad("not a TLS record version");
    const len = (buf[i + 3]! << 8) | buf[i + 4]!;
    if (len === 0 || len > 16384 + 2048) return bad("bad TLS record length");
    if (buf.length < i + 5 + len) return buf.length >= SNIFF_MAX_BYTES ? bad("ClientHello larger than the cap") : more;
    for (let k = 0; k < len; k++) hs.push(buf[i + 5 + k]!);
    i += 5 + len;
    if (need < 0 && hs.length >= 4) {
      if (hs[0] !== 1) return bad("first handshake message is not a ClientHello");
      need = 4 + ((hs[1]! << 16) | (hs[2]! << 8) | hs[3]!);
      if (need > SNIFF_MAX_BYTES) return bad("ClientHello larger than the cap");
    }
  }
  const m = Uint8Array.from(hs.slice(0, need));
  // ClientHello: version(2) random(32) session_id<1> cipher_suites<2> compression<1> extensions<2>
  let p = 4 + 2 + 32;
  const u8 = (o: number) => (o < m.length ? m[o]! : -1);
  const u16 = (o: number) => (o + 1 < m.length ? (m[o]! << 8) | m[o + 1]! : -1);
  const sid = u8(p);
  if (sid < 0) return bad("truncated ClientHello");
  p += 1 + sid;
  const cs = u16(p);
  if (cs < 0) return bad("truncated ClientHello");
  p += 2 + cs;
  const comp = u8(p);
  if (comp < 0) return bad("truncated ClientHello");
  p += 1 + comp;
  if (p === m.length) return { kind: "none" }; // no extensions at all
  const extLen = u16(p);
  if (extLen < 0 || p + 2 + extLen > m.length) return bad("truncated ClientHello extensions");
  p += 2;
  const end = p + extLen;
  let name: string | null = null;
  while (p + 4 <= end) {
    const type = u16(p);
    const len = u16(p + 2);
    if (p + 4 + len > end) return bad("truncated ClientHello extension");
    if (type === 0) {
      if (name !== null) return bad("two server_name extensions");
      // server_name_list<2>: name_type(1) = 0 (host_name), HostName<2>
      const listLen = u16(p + 4);
      let q = p + 6;
      const listEnd = q + listLen;
      if (listLen < 0 || listEnd > p + 4 + len) return bad("bad server_name extension");
      while (q + 3 <= listEnd) {
        const nt = m[q]!;
        const nl = u16(q + 1);
        if (q + 3 + nl > listEnd) return bad("bad server_name extension");
        if (nt === 0) {
          if (name !== null) return bad("two host names in server_name");
          const n = cleanName(new TextDecoder().decode(m.subarray(q + 3, q + 3 + nl)));
          if (!n) return bad("server_name is not a host name");
          name = n;
        }
        q += 3 + nl;
      }
    }
    p += 4 + len;
  }
  return name === null ? { kind: "none" } : { kind: "name", name };
}

const METHOD = /^[A-Z]{1,16}$/;

/**
 * The Host of an HTTP/1.x request's head (up to the blank line). Several Host headers, or an absolute-form target
 * (`GET http://x/`) naming another host than Host, are "bad": a server would route by the one the check did not read.
 */
export function readHttpHost(buf: Uint8Array): Sniffed {
  const text = new TextDecoder("latin1").decode(buf.subarray(0, SNIFF_MAX_BYTES));
  const headEnd = text.indexOf("\r\n\r\n");
  // The method can be judged before the head is complete: a client speaking something else is refused at once.
  const sp = text.search(/[ \r\n]/);
  const tok = sp < 0 ? text : text.slice(0, sp);
  if (!/^[A-Z]*$/.test(tok) || tok.length > 16 || (sp >= 0 && tok.length === 0)) return bad("not an HTTP request");
  if (headEnd < 0) return buf.length >= SNIFF_MAX_BYTES ? bad("request head larger than the cap") : more;
  const lines = text.slice(0, headEnd).split("\r\n");
  const [method, target, version, ...rest] = lines[0]!.split(" ");
  if (!METHOD.test(method ?? "") || !target || !/^HTTP\/1\.[01]$/.test(version ?? "") || rest.length) return bad("bad request line");
  const hostOf = (authority: string) => cleanName(authority.replace(/^\[.*\]/, "").replace(/:\d*$/, "").replace(/^.*@/, ""));
  let host: string | null = null;
  for (const line of lines.slice(1)) {
    if (/^[ \t]/.test(line)) return bad("folded header line"); // obsolete line folding could hide a Host
    const c = line.indexOf(":");
    if (c <= 0) return bad("bad header line");
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(line.slice(0, c))) return bad("bad header name"); // "Host :" too (RFC 9112 5.1)
    if (line.slice(0, c).toLowerCase() !== "host") continue;
    if (host !== null) return bad("two Host headers");
    host = hostOf(line.slice(c + 1).trim());
    if (!host) return bad("Host is not a host name");
  }
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(target);
  if (abs) {
    const a = hostOf(abs[1]!);
    if (!a || (host !== null && a !== host)) return bad("absolute-form target names another host than Host");
    return { kind: "name", name: a };
  }
  if (method === "CONNECT") return bad("CONNECT");
  return host === null ? { kind: "none" } : { kind: "name", name: host };
}
