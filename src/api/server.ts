// The one HTTP listener: limits, then each request goes to the data plane or the control plane (spec §2.4).
import http from "node:http";
import type { Server } from "bun";
import type { Hono } from "hono";
import { classify, hostnameOf, requestUrl } from "../proxy/dispatch.ts";
import type { DataPlane } from "../proxy/data-plane.ts";
import { websocketHandler, type WsBridge } from "../proxy/websocket.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { ConnLimits, releaseWhenDone } from "./conn-limits.ts";
import { OneboxError } from "../util/errors.ts";
import { e2bError, errorResponse } from "./errors.ts";

/** Bun's HTTP parser answers a head over its limit itself, with an empty 431: keep its limit well
 *  above ours so that heads between the two get our JSON 431 (beyond it, the empty one remains). */
const PARSER_HEADROOM = 4;

function headBytes(req: Request): number {
  let n = req.method.length + req.url.length + 12;
  req.headers.forEach((v, k) => (n += k.length + v.length + 4));
  return n;
}

export function startServer(config: Config, api: Hono, dataPlane: DataPlane, limits = new ConnLimits(config.maxConnections, config.maxClientConnections)): Server<WsBridge> {
  // Typed read-only after Node, but Bun's parser reads it at each request.
  (http as { maxHeaderSize: number }).maxHeaderSize = Math.max(http.maxHeaderSize, config.maxHeaderBytes * PARSER_HEADROOM);
  const sandboxDomain = hostnameOf(config.domain ?? "localhost");

  /** `hold` hands the request's slot to its response body or WebSocket, which release it when done. */
  async function route(req: Request, server: Server<WsBridge>, hold: () => () => void): Promise<Response | undefined> {
    if (headBytes(req) > config.maxHeaderBytes) {
      return e2bError(431, `request headers are larger than ${config.maxHeaderBytes} bytes: send fewer or smaller headers`);
    }
    const url = requestUrl(req);
    if (!url) return e2bError(400, "malformed Host header: send a host name or IP address, with an optional :port");
    const d = classify(req, url, sandboxDomain);
    if (d.plane === "control") return controlPlane(req, server);
    const release = hold();
    try {
      // Streams (process output, watchers, NDJSON, long polls) may stay silent for long: once the
      // request body is sent, the idle timeout is off until the response body has ended (DESIGN.md
      // §1). Bun keeps a request's timeout for its connection: restored, a keep-alive idles timed.
      const streaming = () => server.timeout(req, 0);
      const restore = () => server.timeout(req, config.idleTimeoutSec);
      // A failed stream (the sandbox killed mid-body) closes the connection as envd's do: Bun's
      // shortest idle timeout, closed at its next 4 s check (conn-limits.ts releaseWhenDone).
      const cut = () => server.timeout(req, 1);
      const res = await dataPlane.handle(req, url, d, server, { release, streaming });
      // undefined: upgraded to a WebSocket, which releases when it closes.
      if (res === undefined) return undefined;
      dataPlane.answered(res.status);
      return releaseWhenDone(res, release, req.signal, restore, cut);
    } catch (e) {
      release();
      // The data plane's own refusals (a bad routing header, an unsigned URL): JSON like every API error.
      if (!(e instanceof OneboxError)) throw e;
      const res = errorResponse(e);
      dataPlane.answered(res.status);
      return res;
    }
  }

  /** The handler's time is the daemon's (a create boots a VM for minutes on a slow host), not a
   *  silent client's: the idle timeout is off from the end of the request body (which a handler
   *  reads capped, api/body.ts, and only once the API key passed) until the answer. It is back
   *  before the answer is sent: Bun keeps a request's timeout for the connection, so an idle
   *  keep-alive after it is closed again. */
  async function controlPlane(req: Request, server: Server<WsBridge>): Promise<Response> {
    const quiet = () => server.timeout(req, 0);
    let inner = req;
    if (req.body === null || req.method === "GET" || req.method === "HEAD" || req.headers.get("content-length") === "0") quiet();
    else {
      const body = req.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ flush: quiet }));
      inner = new Request(req.url, { method: req.method, headers: req.headers, signal: req.signal, body, duplex: "half" } as RequestInit);
    }
    try {
      return await api.fetch(inner);
    } finally {
      server.timeout(req, config.idleTimeoutSec);
    }
  }

  return Bun.serve<WsBridge>({
    port: config.port,
    hostname: config.listen,
    // Never Bun's development error page (it shows the cwd, a stack and source lines).
    development: false,
    idleTimeout: config.idleTimeoutSec,
    // Data-plane uploads stream to the guest unbuffered; the control plane caps its own bodies (api/body.ts)
    // with a JSON 413, so Bun's own (empty) 413 never answers.
    maxRequestBodySize: 2 ** 40,
    async fetch(req, server) {
      const addr = server.requestIP(req)?.address ?? "unknown";
      const release = limits.acquire(addr);
      if (release instanceof Response) return release;
      let held = false;
      try {
        return await route(req, server, () => ((held = true), release));
      } finally {
        if (!held) release();
      }
    },
    error(e) {
      log.error("unhandled error in the HTTP server", { error: e.stack ?? e.message });
      return e2bError(500, "internal error in onebox; see the daemon's log and report it");
    },
    websocket: websocketHandler,
  });
}
