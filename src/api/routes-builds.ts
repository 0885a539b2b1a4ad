// The E2B build API (the e2b SDK's Template.build()): request a build (POST /v3/templates), COPY file uploads (GET
// /templates/{id}/files/{hash} + onebox's signed PUT /templates/uploads/{hash}), start it (POST /v2/templates/{id}/
// builds/{buildID}), and follow it (GET .../status?logsOffset=, GET .../logs). docs/templates.md "Builds over the API".
import { join } from "node:path";
import { Hono } from "hono";
import { BuildRegistry, type Build, type LogEntry } from "../builds/build-registry.ts";
import { BuildCacheQuota } from "../builds/cache-quota.ts";
import { BuildRunner } from "../builds/runner.ts";
import { BuildBody, BuildRequest, LogsQuery, StatusQuery } from "../builds/schemas.ts";
import { BuildUploads, UPLOAD_LINK_MS } from "../builds/uploads.ts";
import { checkTag, parseTemplateRef } from "../templates/tags.ts";
import { badRequest } from "../util/errors.ts";
import { parseBody, parseQuery } from "./body.ts";
import type { ApiDeps } from "./deps.ts";

export interface Builds {
  registry: BuildRegistry;
  uploads: BuildUploads;
  runner: BuildRunner;
  quota: BuildCacheQuota;
}

export function makeBuilds(d: ApiDeps): Builds {
  const registry = new BuildRegistry(d.config.maxConcurrentBuilds);
  const root = join(d.config.dataDir, "builds");
  const quota = new BuildCacheQuota({ steps: join(root, "cache"), uploads: join(root, "files"), images: join(root, "images") }, d.config.buildCacheBytes, d.config.buildTimeoutMs + 10 * 60_000);
  // A bound lowered since the last start applies at once (and leftovers of a killed daemon's builds go).
  quota.prune();
  const uploads = new BuildUploads(d.config.dataDir, d.config.maxBuildUploadBytes, quota);
  const runner = new BuildRunner({ config: d.config, state: d.state, manager: d.manager, registry, uploads, quota, admit: (cost, fn) => d.admission.admit(cost, fn, { waitForSlotMs: 120_000 }) });
  return { registry, uploads, runner, quota };
}

/** The upload route: authorised by its signature, not an API key (the SDK PUTs to the URL it was given). */
export function uploadRoute(b: Builds): Hono {
  const app = new Hono();
  app.put("/templates/uploads/:hash", async (c) => {
    const hash = c.req.param("hash");
    b.uploads.verify(hash, c.req.query("expires"), c.req.query("signature"));
    const len = c.req.header("content-length");
    await b.uploads.store(hash, c.req.raw.body, len === undefined ? null : Number(len));
    return c.body(null, 201);
  });
  return app;
}

const levels = ["debug", "info", "warn", "error"] as const;
const atLeast = (min: string | undefined) => (e: LogEntry) => !min || levels.indexOf(e.level) >= levels.indexOf(min as (typeof levels)[number]);
const line = (e: LogEntry) => `[${e.timestamp}] ${e.message}`;

function statusJson(b: Build, offset: number, level?: string) {
  const entries = b.logs.slice(offset).filter(atLeast(level));
  return {
    templateID: b.templateID,
    buildID: b.buildID,
    status: b.status,
    logEntries: entries,
    logs: entries.map(line),
    ...(b.reason ? { reason: b.reason } : {}),
  };
}

export function buildRoutes(d: ApiDeps, b: Builds): Hono {
  const app = new Hono();

  app.post("/v3/templates", async (c) => {
    const q = await parseBody(c, BuildRequest, d.config.maxBodyBytes);
    const name = q.name ?? q.alias;
    if (!name) throw badRequest("give the template a name: {\"name\": \"NAME[:TAG]\"}");
    const { name: alias, tag } = parseTemplateRef(name);
    for (const t of q.tags ?? []) checkTag(t);
    const build = b.registry.request(alias, [...new Set([tag, ...(q.tags ?? [])])], { cpuCount: q.cpuCount ?? 2, memoryMb: q.memoryMB ?? 1024 });
    return c.json({ templateID: build.templateID, buildID: build.buildID, aliases: [alias], names: [alias], tags: build.tags, public: false }, 202);
  });

  app.get("/templates/:id/files/:hash", (c) => {
    const hash = c.req.param("hash");
    // The build asking keeps these files from the cache's pruning until it starts (then until it ends), or for
    // as long as the link lasts if it never starts.
    const waiting = b.registry.latest(c.req.param("id"));
    if (waiting?.status === "waiting") b.uploads.use(hash, waiting.buildID, Date.now() + UPLOAD_LINK_MS);
    else b.uploads.use(hash);
    if (b.uploads.present(hash)) return c.json({ present: true });
    return c.json({ present: false, url: new URL(c.req.url).origin + b.uploads.link(hash) });
  });

  app.post("/v2/templates/:id/builds/:bid", async (c) => {
    const build = b.registry.get(c.req.param("id"), c.req.param("bid"));
    const body = await parseBody(c, BuildBody, d.config.maxBodyBytes);
    if (build.status !== "waiting") throw badRequest(`build ${build.buildID} was already started: request a new one with POST /v3/templates`);
    const copies = body.steps.filter((s) => s.type === "COPY");
    for (const s of copies) {
      if (!b.uploads.present(s.filesHash!)) throw badRequest(`COPY ${s.args[0]}: its files (hash ${s.filesHash}) were not uploaded: GET /templates/{id}/files/{hash} gives the upload link`);
    }
    // Held until the build ends (the runner lets go of everything it held then).
    for (const s of copies) b.uploads.use(s.filesHash!, build.buildID);
    void b.runner.start(build, body);
    return c.body(null, 202);
  });

  app.get("/templates/:id/builds/:bid/status", (c) => {
    const q = parseQuery(c, StatusQuery);
    return c.json(statusJson(b.registry.get(c.req.param("id"), c.req.param("bid")), q.logsOffset, q.level));
  });

  app.get("/templates/:id/builds/:bid/logs", (c) => {
    const q = parseQuery(c, LogsQuery);
    const build = b.registry.get(c.req.param("id"), c.req.param("bid"));
    const all = build.logs.filter(atLeast(q.level));
    const ms = (e: LogEntry) => Date.parse(e.timestamp);
    const picked =
      q.direction === "forward"
        ? all.filter((e) => q.cursor === undefined || ms(e) >= q.cursor).slice(0, q.limit)
        : all.filter((e) => q.cursor === undefined || ms(e) <= q.cursor).reverse().slice(0, q.limit);
    return c.json({ logs: picked });
  });

  return app;
}
