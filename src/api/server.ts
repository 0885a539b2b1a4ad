// The one HTTP listener: each request goes to the data plane or the control plane (spec §2.4).
import type { Server } from "bun";
import type { Hono } from "hono";
import { classify } from "../proxy/dispatch.ts";
import type { DataPlane } from "../proxy/data-plane.ts";
import { websocketHandler, type WsBridge } from "../proxy/websocket.ts";
import type { Config } from "../util/config.ts";

export function startServer(config: Config, api: Hono, dataPlane: DataPlane): Server<WsBridge> {
  return Bun.serve<WsBridge>({
    port: config.port,
    hostname: config.listen,
    // Streams (process output, watchers, NDJSON) may stay silent for long: no idle cut (DESIGN.md §1).
    idleTimeout: 0,
    // Data-plane uploads can be large; the control plane caps its own bodies (api/body.ts).
    maxRequestBodySize: 2 ** 40,
    fetch(req, server) {
      const url = new URL(req.url);
      const d = classify(req, url);
      if (d.plane === "control") return api.fetch(req);
      return dataPlane.handle(req, url, d, server);
    },
    websocket: websocketHandler,
  });
}
