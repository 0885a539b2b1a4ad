// The data-plane handler: route to a running sandbox's guest port, or answer the edge's 502s (spec §2.3).
import { ENVD_PORT } from "../../guest/protocol.ts";
import { badRequest, OneboxError, unauthorized } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { checkPortAccess, maskedHost } from "./access.ts";
import { startAuditStream, type StartAudit } from "./audit-body.ts";
import type { Dispatch } from "./dispatch.ts";
import { forwardRequest, PortClosedError } from "./forward.ts";
import { sandboxForSignedUrl } from "./signed-url.ts";
import type { Server } from "bun";
import type { SandboxPort } from "./sandbox-port.ts";
import { isWebSocketUpgrade, openUpstream, upgradeClient, type WsBridge } from "./websocket.ts";

export function sandboxNotFound(sandboxId: string): Response {
  return Response.json({ sandboxId, message: "The sandbox was not found", code: 502 }, { status: 502 });
}

export function portNotOpen(sandboxId: string, port: number): Response {
  return Response.json({ sandboxId, message: "The sandbox is running but port is not open", port, code: 502 }, { status: 502 });
}

export interface ServerHooks {
  release?: () => void;
  streaming?: () => void;
}

/** One data-plane operation for the audit log (the daemon adds who and when). */
export interface DataAudit {
  sandboxId: string;
  op: "command" | "pty" | "file-write";
  detail: string;
  status?: number;
}

export class DataPlane {
  /** `answered`: told the status of every answer the server sends for the data plane (the daemon's metrics).
   *  `audit`: told every command started, PTY opened and file written through the agent (the audit log). */
  constructor(
    private readonly sandboxes: SandboxPort,
    readonly answered: (status: number) => void = () => {},
    private readonly audit: (e: DataAudit) => void = () => {},
    /** Told the HTTP body bytes forwarded each way (the daemon's metrics; WebSocket frames are not counted). */
    private readonly bytes: (direction: "to_sandbox" | "from_sandbox", n: number) => void = () => {},
  ) {}

  /** Answers the request, or returns undefined once it has been upgraded to a WebSocket. The server's
   *  hooks: `release` goes with an upgraded socket (released when it closes); `streaming` is called
   *  once the request body is sent (the idle timeout no longer applies). */
  async handle(
    req: Request,
    url: URL,
    d: Exclude<Dispatch, { plane: "control" }>,
    server: Server<WsBridge>,
    hooks: ServerHooks = {},
  ): Promise<Response | undefined> {
    if (d.plane === "bad") throw badRequest(d.message);
    if (d.plane === "signed-files") {
      const id = await sandboxForSignedUrl(url, req.method, this.sandboxes.runningTokens());
      // What envd itself would say for a signature no live sandbox issued (spec §3.5).
      if (!id) throw unauthorized("invalid signature");
      return this.forward(req, url, id, ENVD_PORT, server, hooks);
    }
    // Before routing: a refused request resumes nothing and takes no forward slot.
    const secrets = this.sandboxes.secrets(d.sandboxId);
    const refused = await checkPortAccess(req, url, d.sandboxId, d.port, secrets);
    if (refused) return refused;
    // maskRequestHost: the Host the sandbox's port sees; without one it gets what it got before (not the client's).
    const host = secrets?.maskRequestHost ? maskedHost(secrets.maskRequestHost, d.port) : null;
    return this.forward(req, url, d.sandboxId, d.port, server, hooks, host);
  }

  /** A process.Process/Start to the agent, with its body read on the way for the audit log (startAuditStream). */
  private audited(req: Request, url: URL, id: string): Request {
    if (url.pathname !== "/process.Process/Start" || req.body === null) return req;
    const seen = (s: StartAudit | null) =>
      this.audit({ sandboxId: id, op: s?.pty ? "pty" : "command", detail: s?.commandLine ?? "(a start request onebox could not read)" });
    return new Request(req, { body: req.body.pipeThrough(startAuditStream(seen)), duplex: "half" } as RequestInit);
  }

  /** The request with its body counted as it streams up. */
  private counted(req: Request): Request {
    if (req.body === null || req.method === "GET" || req.method === "HEAD") return req;
    return new Request(req, { body: req.body.pipeThrough(byteCounter((n) => this.bytes("to_sandbox", n))), duplex: "half" } as RequestInit);
  }

  private countedResponse(res: Response): Response {
    if (res.body === null) return res;
    return new Response(res.body.pipeThrough(byteCounter((n) => this.bytes("from_sandbox", n))), res);
  }

  private async forward(
    req: Request,
    url: URL,
    id: string,
    port: number,
    server: Server<WsBridge>,
    hooks: ServerHooks,
    host: string | null = null,
  ): Promise<Response | undefined> {
    const route = await this.sandboxes.routeOrResume(id);
    // Unknown, dead and paused sandboxes all look the same to the SDK: 502 (isRunning() → false).
    if (!route) return sandboxNotFound(id);
    try {
      const socket = await route.socket(port);
      if (isWebSocketUpgrade(req)) {
        const upstream = await openUpstream(req, url, socket, undefined, host).catch(() => null);
        if (!upstream) return portNotOpen(id, port);
        if (upgradeClient(server, req, upstream, route.signal, hooks.release)) return undefined;
        throw badRequest("WebSocket upgrade failed: send a valid WebSocket handshake");
      }
      const up = this.counted(port === ENVD_PORT ? this.audited(req, url, id) : req);
      const res = this.countedResponse(await forwardRequest(up, url, socket, route.signal, hooks.streaming, host));
      if (port !== ENVD_PORT) return res;
      if (req.method === "POST" && url.pathname === "/files") {
        this.audit({ sandboxId: id, op: "file-write", detail: url.searchParams.getAll("path").join(", ") || "(paths in the multipart body)", status: res.status });
      }
      return res;
    } catch (e) {
      if (e instanceof OneboxError) throw e;
      if (e instanceof PortClosedError) return portNotOpen(id, port);
      if (route.signal.aborted) return sandboxNotFound(id);
      log.warn("data-plane forward failed", { id, port, error: String(e) });
      return portNotOpen(id, port);
    }
  }
}

/** Passes chunks through unchanged, telling their sizes. */
function byteCounter(count: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, c) {
      count(chunk.byteLength);
      c.enqueue(chunk);
    },
  });
}
