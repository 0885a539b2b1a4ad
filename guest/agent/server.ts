// The agent's HTTP server: routes envd's plain HTTP endpoints and Connect RPCs, enforces the access token (e2b-protocol.md §3).
import type { Server } from "bun";
import { postCompose } from "./compose-http.ts";
import { ConnectError, readStreamRequest, readUnaryRequest, streamResponse, unaryError } from "./connect.ts";
import { getFile, postFile } from "./files-http.ts";
import { createFilesystemService } from "./filesystem-rpc.ts";
import { getEnvs, getMetrics, postInit } from "./init-http.ts";
import { ProcessManager } from "./process-manager.ts";
import { createProcessService, type RpcContext } from "./process-rpc.ts";
import { preloadLibc } from "./libc.ts";
import { safeEqual } from "./signature.ts";
import { newAgentState, type AgentState } from "./state.ts";
import { userFromAuthorization } from "./users.ts";
import { createWatchService } from "./watch.ts";

type Handler = (ctx: RpcContext, body: Record<string, unknown>) => Promise<Response>;

/** The exact 401 body envd sends (§3.5). */
const UNAUTHORIZED = { code: 401, message: "unauthorized access, please provide a valid access token or method signing if supported" };

/** Uploads stream to disk, so the cap only bounds a single request, not memory. */
const MAX_UPLOAD_BYTES = 64 * 1024 ** 3;

// §6.10: envd allows any origin, method and header and exposes the Connect headers.
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
  "access-control-allow-headers": "*",
  "access-control-expose-headers": "*",
  "access-control-max-age": "7200",
};

export interface Agent {
  server: Server<undefined>;
  state: AgentState;
  stop(): void;
}

export function startAgent(opts: { port: number; hostname?: string }): Agent {
  preloadLibc(); // before any template snapshot: a clone's first /init must not compile the bindings (libc.ts)
  const state = newAgentState();
  const pm = new ProcessManager();
  const proc = createProcessService(pm);
  const fs = createFilesystemService();
  const watch = createWatchService();
  const streaming: Record<string, Handler> = {
    "/process.Process/Start": proc.Start,
    "/process.Process/Connect": proc.Connect,
    "/filesystem.Filesystem/WatchDir": watch.WatchDir,
  };
  const unary: Record<string, Handler> = {
    "/process.Process/List": proc.List,
    "/process.Process/SendInput": proc.SendInput,
    "/process.Process/SendSignal": proc.SendSignal,
    "/process.Process/Update": proc.Update,
    "/process.Process/CloseStdin": proc.CloseStdin,
    "/filesystem.Filesystem/Stat": fs.Stat,
    "/filesystem.Filesystem/MakeDir": fs.MakeDir,
    "/filesystem.Filesystem/Move": fs.Move,
    "/filesystem.Filesystem/ListDir": fs.ListDir,
    "/filesystem.Filesystem/Remove": fs.Remove,
    "/filesystem.Filesystem/CreateWatcher": watch.CreateWatcher,
    "/filesystem.Filesystem/GetWatcherEvents": watch.GetWatcherEvents,
    "/filesystem.Filesystem/RemoveWatcher": watch.RemoveWatcher,
  };

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    const method = req.method;
    if (method === "OPTIONS") return new Response(null, { status: 204 });
    if (path === "/health" && method === "GET") return new Response(null, { status: 204 });
    if (path === "/files" && method === "GET") return getFile(req, url, state);
    if (path === "/files" && method === "POST") return postFile(req, url, state);
    if (path === "/init" && method === "POST") return postInit(req, state);

    const token = req.headers.get("x-access-token");
    if (state.accessToken !== undefined && (token === null || !safeEqual(token, state.accessToken))) {
      return Response.json(UNAUTHORIZED, { status: 401 });
    }
    if (path === "/envs" && method === "GET") return getEnvs(state);
    if (path === "/metrics" && method === "GET") return getMetrics();
    if (path === "/files/compose" && method === "POST") return postCompose(req, state);

    const ctx: RpcContext = { req, state, user: () => userFromAuthorization(req.headers.get("authorization"), state.defaultUser) };
    const s = streaming[path];
    if (s) {
      if (method !== "POST") return unaryError(new ConnectError("unimplemented", `${method} not allowed`));
      let body: Record<string, unknown>;
      try {
        body = await readStreamRequest(req);
        return await s(ctx, body);
      } catch (e) {
        // Streams always answer 200; the error travels in the end-stream envelope (§3.1).
        const err = e instanceof ConnectError ? e : new ConnectError("internal", String((e as Error)?.message ?? e));
        return streamResponse((sink) => sink.end(err));
      }
    }
    if (path === "/process.Process/StreamInput" && method === "POST") {
      try {
        const ct = (req.headers.get("content-type") ?? "").split(";")[0]!.trim();
        if (ct !== "application/connect+json") throw new ConnectError("invalid_argument", "want application/connect+json");
        return await proc.StreamInput(req);
      } catch (e) {
        const err = e instanceof ConnectError ? e : new ConnectError("internal", String(e));
        return streamResponse((sink) => sink.end(err));
      }
    }
    const u = unary[path];
    if (u) {
      if (method !== "POST") return unaryError(new ConnectError("unimplemented", `${method} not allowed`));
      try {
        return await u(ctx, await readUnaryRequest(req));
      } catch (e) {
        if (e instanceof ConnectError) return unaryError(e);
        return unaryError(new ConnectError("internal", String((e as Error)?.message ?? e)));
      }
    }
    if (path.startsWith("/process.Process/") || path.startsWith("/filesystem.Filesystem/")) {
      return unaryError(new ConnectError("unimplemented", `procedure ${path} is not implemented`));
    }
    return Response.json({ code: 404, message: `no route for ${method} ${path}` }, { status: 404 });
  }

  const server = Bun.serve({
    port: opts.port,
    hostname: opts.hostname ?? "0.0.0.0",
    idleTimeout: 0, // streams may be silent between keepalives (§3.1)
    maxRequestBodySize: MAX_UPLOAD_BYTES,
    async fetch(req) {
      let res: Response;
      try {
        res = await route(req);
      } catch (e) {
        res = Response.json({ code: 500, message: String((e as Error)?.message ?? e) }, { status: 500 });
      }
      for (const [k, v] of Object.entries(CORS)) res.headers.set(k, v);
      return res;
    },
    error(e) {
      return Response.json({ code: 500, message: e.message }, { status: 500 });
    },
  });
  return { server, state, stop: () => server.stop(true) };
}
