// onebox's own read routes for the dashboard (not E2B's): sandboxes of every state with their end reason and a
// sparkline, one sandbox's events, logs and metrics history (ended ones too), and template builds with their logs.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import { z } from "zod";
import type { BuildRegistry } from "../builds/build-registry.ts";
import { sandboxLogs } from "../sandbox/logs.ts";
import { parseJsonObject } from "../sandbox/json-fields.ts";
import { SANDBOX_STATES, type SandboxRow } from "../store/index.ts";
import { notFound } from "../util/errors.ts";
import { tailFile } from "../util/tail-file.ts";
import { parseQuery } from "./body.ts";
import type { ApiDeps } from "./deps.ts";
import { sampleJson } from "./serialize.ts";

const ListQuery = z.object({
  state: z
    .string()
    .optional()
    .transform((s) => (s ? s.split(",").filter(Boolean) : undefined))
    .pipe(z.array(z.enum(SANDBOX_STATES)).optional()),
  template: z.string().max(128).optional(),
  before: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

/** How far back a list row's sparkline looks, and how many points it keeps at most. */
const SPARK_WINDOW_MS = 15 * 60_000;
const SPARK_POINTS = 30;

/** A build log's file name as build-default.ts writes it: nothing else is read from that folder. */
const BUILD_LOG = /^build-[A-Za-z0-9_.-]{1,200}\.log$/;

function rowJson(r: SandboxRow) {
  return {
    sandboxID: r.id,
    templateID: r.templateId,
    alias: r.alias ?? null,
    state: r.state,
    cpuCount: r.cpuCount,
    memoryMB: r.memoryMb,
    diskSizeMB: r.diskSizeMb,
    envdVersion: r.envdVersion,
    startedAt: r.startedAt,
    endAt: r.endAt,
    endedAt: r.endedAt,
    endReason: r.endReason,
    endDetail: r.endDetail,
    keyId: r.keyId,
    metadata: parseJsonObject(r.metadata),
  };
}

/** CPU % and memory used of the last samples, evenly thinned to SPARK_POINTS. */
function spark(d: ApiDeps, r: SandboxRow): { cpu: number[]; mem: number[] } {
  const end = r.endedAt ?? Date.now();
  const rows = d.state.metrics.range(r.id, end - SPARK_WINDOW_MS, end);
  const step = Math.max(1, Math.ceil(rows.length / SPARK_POINTS));
  const kept = rows.filter((_, i) => (rows.length - 1 - i) % step === 0);
  return { cpu: kept.map((m) => Math.round(m.cpuUsedPct * 10) / 10), mem: kept.map((m) => m.memUsed) };
}

/** `registry`: the builds of the E2B build API (routes-builds.ts), listed beside the default templates' builds. */
export function oneboxRoutes(d: ApiDeps, registry: BuildRegistry): Hono {
  const app = new Hono();

  app.get("/onebox/sandboxes", (c) => {
    const q = parseQuery(c, ListQuery);
    const rows = d.state.sandboxes.recent({ states: q.state, templateId: q.template, beforeMs: q.before, limit: q.limit });
    return c.json(rows.map((r) => ({ ...rowJson(r), spark: spark(d, r) })));
  });

  // Any state, ended included: what happened to a sandbox is the first question after it is gone.
  app.get("/onebox/sandboxes/:id", (c) => {
    const id = c.req.param("id");
    const r = d.state.sandboxes.get(id);
    if (!r) throw notFound(`sandbox ${id} not found`);
    const end = r.endedAt ?? Date.now();
    return c.json({
      sandbox: rowJson(r),
      events: d.state.sandboxes.eventsOf(id).map((e) => ({ at: e.at, kind: e.kind, detail: e.detail })),
      logs: sandboxLogs(d.state, d.config, id, 2000),
      metrics: d.state.metrics.range(id, Math.max(r.startedAt, end - 3_600_000), end).map(sampleJson),
    });
  });

  // Template builds: the one in progress or failed (first start), and the build logs on disk, newest first.
  app.get("/onebox/builds", (c) => {
    const dir = join(d.config.dataDir, "templates", "logs");
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => BUILD_LOG.test(f));
    } catch {
      // no build has run on this host yet
    }
    const logs = files
      .map((f) => {
        const st = statSync(join(dir, f), { throwIfNoEntry: false });
        return st?.isFile() ? { file: f, modifiedAt: st.mtimeMs, bytes: st.size } : null;
      })
      .filter((x) => x !== null)
      .sort((a, b) => b.modifiedAt - a.modifiedAt)
      .slice(0, 100);
    // The API's builds: their logs are E2B's GET /templates/{templateID}/builds/{buildID}/status.
    const api = registry.list().map((b) => ({
      templateID: b.templateID, buildID: b.buildID, alias: b.alias, tags: b.tags, status: b.status,
      reason: b.reason?.message ?? null, createdAt: b.createdAt, updatedAt: b.updatedAt,
    }));
    return c.json({ running: d.templateBuilds?.statuses() ?? {}, api, logs });
  });

  app.get("/onebox/builds/:file", (c) => {
    const f = c.req.param("file");
    const path = join(d.config.dataDir, "templates", "logs", f);
    if (!BUILD_LOG.test(f) || !statSync(path, { throwIfNoEntry: false })?.isFile()) throw notFound(`no build log '${f}': see GET /onebox/builds`);
    const text = tailFile(path, 256 * 1024);
    return c.body(text, 200, { "content-type": "text/plain; charset=utf-8" });
  });

  return app;
}
