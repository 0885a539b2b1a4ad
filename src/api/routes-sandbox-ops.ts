// Operations on one sandbox: connect (v1, v2), timeout, refreshes, pause, snapshot, resume, metrics, logs (spec §1.3);
// and the batch metrics route.
import { Hono } from "hono";
import { sandboxLogs } from "../sandbox/logs.ts";
import { domain, type ApiDeps } from "./deps.ts";
import { parseBody, parseQuery } from "./body.ts";
import { ConnectBody, ForkBody, MetricsQuery, PauseBody, RefreshBody, ResumeBody, SnapshotBody, TimeoutBody } from "./schemas.ts";
import { filterLogs, LogsQueryV1, LogsQueryV2, type LogFilter } from "./logs-query.ts";
import { metricJson, sampleJson, sandboxJson } from "./serialize.ts";
import { badRequest } from "../util/errors.ts";
import { errorBody } from "./errors.ts";
import { aliasesOf } from "../store/template-store.ts";
import type { Admit } from "../sandbox/fork.ts";

/** How long one fork entry waits for a create slot: ten forks at the default bound of 4 are three rounds of creates. */
const FORK_SLOT_WAIT_MS = 120_000;

export function sandboxOpRoutes(d: ApiDeps): Hono {
  const app = new Hono();
  const max = d.config.maxBodyBytes;

  // 200 if running, 201 if resumed; TTL extend-only (spec §1.3 Connect). v1 always sends {timeout}.
  const connect = (optionalBody: boolean) =>
    app.post(optionalBody ? "/v2/sandboxes/:id/connect" : "/sandboxes/:id/connect", async (c) => {
      const b = await parseBody(c, ConnectBody, max, optionalBody);
      const { row, resumed } = await d.manager.connect(c.req.param("id"), b.timeout, { reboot: b.memory === false });
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
    const b = await parseBody(c, PauseBody, max, true);
    await d.manager.pause(c.req.param("id"), { memory: b.memory ?? undefined });
    return c.body(null, 204);
  });

  // 201 SnapshotInfo {snapshotID, names}: the id (and the name) work as a templateID (src/sandbox/snapshot.ts).
  // Not found comes before a bad body, as on E2B.
  app.post("/sandboxes/:id/snapshots", async (c) => {
    const id = c.req.param("id");
    d.manager.getVisible(id);
    const b = await parseBody(c, SnapshotBody, max, true);
    const t = await d.manager.snapshot(id, b.name ?? undefined);
    return c.json({ snapshotID: t.id, names: aliasesOf(t) }, 201);
  });

  // 201 [{sandbox} | {error: {code, message}}], one entry per fork (spec §1.3): a fork refused by admission or
  // failed to start is its own entry's error; the parent runs on either way. count 1..10, default 1.
  app.post("/sandboxes/:id/fork", async (c) => {
    const id = c.req.param("id");
    d.manager.getVisible(id);
    const b = await parseBody(c, ForkBody, max, true);
    // A fork's creates wait for a slot under the concurrent-create bound (a client cannot retry one entry); only a
    // full budget, or no slot within FORK_SLOT_WAIT_MS, makes an entry's 429.
    const admit: Admit = (cost, fn) => d.admission.admit(cost, fn, { waitForSlotMs: FORK_SLOT_WAIT_MS });
    const results = await d.manager.fork(id, { timeoutSec: b.timeout || undefined, count: b.count ?? 1 }, admit);
    return c.json(results.map((r) => ("sandbox" in r ? { sandbox: sandboxJson(r.sandbox, domain(d)) } : { error: errorBody(r.error) })), 201);
  });

  // Deprecated resume (old SDKs): 201 Sandbox; 409 if running.
  app.post("/sandboxes/:id/resume", async (c) => {
    const b = await parseBody(c, ResumeBody, max, true);
    const row = await d.manager.resume(c.req.param("id"), b.timeout ?? undefined, { reboot: b.memory === false });
    return c.json(sandboxJson(row, domain(d)), 201);
  });

  // The samples recorded in the range (Unix seconds, as the SDK sends it; default: since the sandbox started, until
  // now; src/sandbox/metrics-sampler.ts), oldest first, then, when the range holds the present and the sandbox runs,
  // a sample taken now (with onebox's networkDrops). A sandbox just created has only that one.
  app.get("/sandboxes/:id/metrics", async (c) => {
    const q = parseQuery(c, MetricsQuery);
    const id = c.req.param("id");
    const row = d.manager.getVisible(id); // not found comes first, as on E2B
    if (q.start !== undefined && q.end !== undefined && q.start > q.end) throw badRequest("Invalid time range for metrics: start is after end");
    const nowS = Date.now() / 1000;
    const startMs = q.start !== undefined ? q.start * 1000 : row.startedAt;
    const endMs = q.end !== undefined ? q.end * 1000 + 999 : Date.now();
    const recorded = d.state.metrics.range(id, startMs, endMs).map(sampleJson);
    // whole seconds: the SDK rounds its Dates, so `end: new Date()` may fall up to half a second before now
    const holdsNow = !(q.start !== undefined && q.start > Math.ceil(nowS)) && !(q.end !== undefined && q.end < Math.floor(nowS));
    if (!holdsNow || row.state !== "running") return c.json(recorded);
    try {
      const { guest, netDrops } = await d.manager.metrics(id);
      return c.json([...recorded, metricJson(guest, netDrops)]);
    } catch (e) {
      if (recorded.length) return c.json(recorded); // the history answers even when the guest does not right now
      throw e;
    }
  });

  // Logs: lifecycle events + the console tail, filtered as E2B's query parameters say.
  const logs = (id: string, f: LogFilter) => {
    d.manager.getVisible(id);
    return filterLogs(sandboxLogs(d.state, d.config, id, Number.MAX_SAFE_INTEGER), f);
  };
  app.get("/sandboxes/:id/logs", (c) => {
    const q = parseQuery(c, LogsQueryV1);
    const lines = logs(c.req.param("id"), { cursor: q.start, direction: "forward", limit: q.limit });
    return c.json({
      logs: lines.map((l) => ({ timestamp: l.timestamp, line: l.message })),
      logEntries: lines.map((l) => ({ timestamp: l.timestamp, level: l.level, message: l.message, fields: { source: l.source } })),
    });
  });
  app.get("/v2/sandboxes/:id/logs", (c) => {
    const lines = logs(c.req.param("id"), parseQuery(c, LogsQueryV2));
    return c.json({ logs: lines.map((l) => ({ timestamp: l.timestamp, level: l.level, message: l.message, fields: { source: l.source } })) });
  });

  return app;
}

const MAX_METRICS_IDS = 100;

/** GET /sandboxes/metrics?sandbox_ids=a,b (openapi SandboxesWithMetrics): the current sample of each
 *  listed sandbox that is running; unknown, ended, paused or unreachable ones are left out.
 *  Mounted before GET /sandboxes/{id} (app.ts), which would otherwise take "metrics" as an id. */
export function sandboxesMetricsRoute(d: ApiDeps): Hono {
  const app = new Hono();
  app.get("/sandboxes/metrics", async (c) => {
    // Both forms: one comma-separated value (the spec's wording) and a repeated parameter.
    const ids = [...new Set((c.req.queries("sandbox_ids") ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean))];
    if (ids.length === 0) throw badRequest("invalid query: sandbox_ids: give one or more sandbox IDs, comma-separated");
    if (ids.length > MAX_METRICS_IDS) throw badRequest(`invalid query: sandbox_ids: at most ${MAX_METRICS_IDS} IDs per request`);
    const samples = await Promise.all(
      ids.map((id) =>
        d.manager.metrics(id).then(
          ({ guest, netDrops }) => [id, metricJson(guest, netDrops)] as const,
          () => null,
        ),
      ),
    );
    return c.json({ sandboxes: Object.fromEntries(samples.filter((x) => x !== null)) });
  });
  return app;
}
