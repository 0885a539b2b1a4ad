// Operations on one sandbox: connect (v1, v2), timeout, refreshes, pause, resume, metrics, logs (spec §1.3).
import { Hono } from "hono";
import { sandboxLogs } from "../sandbox/logs.ts";
import { domain, type ApiDeps } from "./deps.ts";
import { parseBody, parseQuery } from "./body.ts";
import { ConnectBody, MetricsQuery, PauseBody, RefreshBody, ResumeBody, TimeoutBody } from "./schemas.ts";
import { sandboxJson } from "./serialize.ts";

export function sandboxOpRoutes(d: ApiDeps): Hono {
  const app = new Hono();
  const max = d.config.maxBodyBytes;

  // 200 if running, 201 if resumed; TTL extend-only (spec §1.3 Connect). v1 always sends {timeout}.
  const connect = (optionalBody: boolean) =>
    app.post(optionalBody ? "/v2/sandboxes/:id/connect" : "/sandboxes/:id/connect", async (c) => {
      const b = await parseBody(c, ConnectBody, max, optionalBody);
      const { row, resumed } = await d.manager.connect(c.req.param("id"), b.timeout);
      return c.json(sandboxJson(row, domain(d)), resumed ? 201 : 200);
    });
  connect(true);
  connect(false);

  // endAt = now + timeout; may shorten (spec §1.3).
  app.post("/sandboxes/:id/timeout", async (c) => {
    const b = await parseBody(c, TimeoutBody, max);
    d.manager.setTimeout(c.req.param("id"), b.timeout);
    return c.body(null, 204);
  });

  // Old SDKs' keep-alive: extends (never shortens) by `duration` seconds.
  app.post("/sandboxes/:id/refreshes", async (c) => {
    const b = await parseBody(c, RefreshBody, max, true);
    const id = c.req.param("id");
    const row = d.manager.getVisible(id);
    if (row.endAt < Date.now() + b.duration * 1000) d.manager.setTimeout(id, b.duration);
    return c.body(null, 204);
  });

  app.post("/sandboxes/:id/pause", async (c) => {
    await parseBody(c, PauseBody, max, true);
    await d.manager.pause(c.req.param("id"));
    return c.body(null, 204);
  });

  // Deprecated resume (old SDKs): 201 Sandbox; 409 if running.
  app.post("/sandboxes/:id/resume", async (c) => {
    const b = await parseBody(c, ResumeBody, max, true);
    const row = await d.manager.resume(c.req.param("id"), b.timeout ?? undefined);
    return c.json(sandboxJson(row, domain(d)), 201);
  });

  // One current sample (no history is kept): vmm stats for the host view, the agent for the guest's.
  app.get("/sandboxes/:id/metrics", async (c) => {
    parseQuery(c, MetricsQuery);
    const { guest } = await d.manager.metrics(c.req.param("id"));
    const ts = guest.ts > 1e12 ? guest.ts : guest.ts * 1000;
    return c.json([
      {
        timestamp: new Date(ts).toISOString(),
        timestampUnix: Math.floor(ts / 1000),
        cpuCount: guest.cpu_count,
        cpuUsedPct: guest.cpu_used_pct,
        memUsed: guest.mem_used,
        memTotal: guest.mem_total,
        memCache: guest.mem_cache ?? 0,
        diskUsed: guest.disk_used,
        diskTotal: guest.disk_total,
      },
    ]);
  });

  const logs = (id: string) => {
    d.manager.getVisible(id);
    return sandboxLogs(d.state, d.config, id);
  };
  app.get("/sandboxes/:id/logs", (c) => {
    const lines = logs(c.req.param("id"));
    return c.json({
      logs: lines.map((l) => ({ timestamp: l.timestamp, line: l.message })),
      logEntries: lines.map((l) => ({ timestamp: l.timestamp, level: l.level, message: l.message, fields: { source: l.source } })),
    });
  });
  app.get("/v2/sandboxes/:id/logs", (c) => {
    const lines = logs(c.req.param("id"));
    return c.json({ logs: lines.map((l) => ({ timestamp: l.timestamp, level: l.level, message: l.message, fields: { source: l.source } })) });
  });

  return app;
}
