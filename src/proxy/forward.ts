// Streams one HTTP request to a guest port through its Unix forward socket, and the response back.

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the routing headers, which the guest must not see. */
const DROP_REQUEST = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
  "te", "trailer", "transfer-encoding", "upgrade", "host", "e2b-sandbox-id", "e2b-sandbox-port",
]);
const DROP_RESPONSE = new Set([
  "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
]);

export class PortClosedError extends Error {}

function copyHeaders(from: Headers, drop: Set<string>): Headers {
  const out = new Headers();
  from.forEach((v, k) => {
    if (!drop.has(k.toLowerCase())) out.append(k, v);
  });
  return out;
}

/** Forwards without buffering: the request body streams up, the response body streams down.
 *  `signal` is the sandbox's: aborting it (kill, pause) errors the response stream so the client
 *  sees a dropped connection, as the SDK expects (spec §3.1 disconnects and kills).
 *  `sent` is called once the request body has been read to its end (at once without one). */
export async function forwardRequest(
  req: Request,
  url: URL,
  socketPath: string,
  signal: AbortSignal,
  sent?: () => void,
  /** The Host the guest sees (the sandbox's maskRequestHost); null: fetch's own. */
  host: string | null = null,
): Promise<Response> {
  const headers = copyHeaders(req.headers, DROP_REQUEST);
  if (host) headers.set("host", host);
  const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
  const body = hasBody && sent ? req.body!.pipeThrough(new TransformStream({ flush: () => sent() })) : hasBody ? req.body : undefined;
  if (!hasBody) sent?.();
  let res: Response;
  try {
    res = await fetch("http://sandbox" + url.pathname + url.search, {
      method: req.method,
      headers,
      body,
      unix: socketPath,
      signal: AbortSignal.any([signal, req.signal]),
      redirect: "manual",
      // Pass gzip through untouched: the SDK asked for it (spec §3.4 GET /files).
      decompress: false,
      duplex: "half", // a streamed request body needs half duplex (fetch spec)
    });
  } catch (e) {
    if (signal.aborted || req.signal.aborted) throw e;
    // The vmm closes the forward connection without data when nothing listens on the guest port.
    throw new PortClosedError(e instanceof Error ? e.message : String(e));
  }
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: copyHeaders(res.headers, DROP_RESPONSE) });
}
