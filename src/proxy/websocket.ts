// WebSocket upgrades to guest ports (spec §2.4: "anything else → reverse proxy, including WebSocket
// upgrades"): the upstream is opened first over the forward socket, then the client is upgraded.
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";

/** What a proxied client socket carries: its upstream, and what to send before that is open. */
export interface WsBridge {
  upstream: WebSocket;
  abort: AbortSignal;
  onAbort?: () => void;
  /** Called once when the client socket closes (the server's per-address connection count). */
  release?: () => void;
}

const HANDSHAKE_HEADERS = new Set([
  "host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
  "sec-websocket-protocol", "e2b-sandbox-id", "e2b-sandbox-port", "keep-alive", "transfer-encoding", "te",
]);

export function isWebSocketUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

export class UpstreamClosedError extends Error {}

/** Opens the guest side; rejects (port not open) if it does not reach `open` within the timeout. */
export function openUpstream(req: Request, url: URL, socketPath: string, timeoutMs = 10_000, host: string | null = null): Promise<WebSocket> {
  const headers: Record<string, string> = {};
  req.headers.forEach((v, k) => {
    if (!HANDSHAKE_HEADERS.has(k.toLowerCase())) headers[k] = v;
  });
  if (host) headers.host = host;
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  // Bun's client speaks `ws+unix://<socket>:<path>` (the `ws` package's form).
  const ws = new WebSocket(`ws+unix://${socketPath}:${url.pathname}${url.search}`, {
    headers,
    protocols,
  } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new UpstreamClosedError("timed out opening the guest WebSocket"));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new UpstreamClosedError("the guest port refused the WebSocket"));
    };
  });
}

/** Upgrades the client once the upstream is open, echoing the subprotocol the guest chose. */
export function upgradeClient(server: Server<WsBridge>, req: Request, upstream: WebSocket, abort: AbortSignal, release?: () => void): boolean {
  const headers: Record<string, string> = {};
  if (upstream.protocol) headers["sec-websocket-protocol"] = upstream.protocol;
  const ok = server.upgrade(req, { data: { upstream, abort, release }, headers });
  if (!ok) upstream.close();
  return ok;
}

/** Bun.serve's websocket handler: frames pass both ways; either side closing, or the sandbox
 *  ending (kill, pause), closes the other. */
export const websocketHandler: WebSocketHandler<WsBridge> = {
  open(ws: ServerWebSocket<WsBridge>) {
    const { upstream, abort } = ws.data;
    upstream.onmessage = (e) => ws.send(e.data as string | ArrayBuffer);
    upstream.onclose = (e) => ws.close(e.code === 1005 || e.code === 1006 ? 1011 : e.code, e.reason);
    upstream.onerror = () => ws.close(1011, "guest connection failed");
    const onAbort = () => {
      upstream.close();
      ws.close(1001, "sandbox ended");
    };
    ws.data.onAbort = onAbort;
    if (abort.aborted) onAbort();
    else abort.addEventListener("abort", onAbort, { once: true });
  },
  message(ws, message) {
    if (ws.data.upstream.readyState === WebSocket.OPEN) ws.data.upstream.send(message);
  },
  close(ws, code, reason) {
    const { upstream, abort, onAbort, release } = ws.data;
    release?.();
    if (onAbort) abort.removeEventListener("abort", onAbort);
    if (upstream.readyState === WebSocket.OPEN || upstream.readyState === WebSocket.CONNECTING) {
      upstream.close(code >= 3000 || code === 1000 ? code : 1000, reason);
    }
  },
};
