// GET /metrics: the daemon's Prometheus metrics (src/metrics/daemon-metrics.ts) in the text format, behind the API
// key like every control-plane route (a Prometheus scrape config sends it as `Authorization: Bearer`; api/auth.ts).
import { join } from "node:path";
import { Hono } from "hono";
import type { ScrapeState } from "../metrics/daemon-metrics.ts";
import { snapshotBytes, snapshotStorage } from "../templates/snapshot-storage.ts";
import type { ApiDeps } from "./deps.ts";

/** The text format's media type (version 0.0.4), as Prometheus asks for it. */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function metricsRoute(d: ApiDeps): Hono {
  const app = new Hono();
  app.get("/metrics", (c) => c.body(d.manager.daemonMetrics.render(scrape(d)), 200, { "content-type": CONTENT_TYPE }));
  return app;
}

function scrape(d: ApiDeps): ScrapeState {
  const templates = d.state.templates.list();
  const images = templates.filter((t) => !t.snapshotOf);
  const storage = snapshotStorage(templates);
  return {
    sandboxes: d.state.sandboxes.live().map((r) => ({ state: r.state, template: r.templateId })),
    warmPoolReady: images.map((t) => ({ template: t.id, entries: d.manager.warmPoolReady(t.id) })),
    claims: d.state.sandboxes.claims(),
    budget: { cpus: d.config.cpuBudget, memoryMib: d.config.memoryBudgetMib },
    // Each template's ready snapshots (one per snapshot key that is still kept).
    templateSnapshotBytes: images.map((t) => ({ template: t.id, bytes: snapshotBytes(join(t.dir, "snapshots")) })),
    snapshotStorage: { count: storage.count, bytes: storage.totalBytes },
    networkDenied: d.manager.networkDenied(),
  };
}
