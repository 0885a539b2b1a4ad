// Template routes: list (v1, v2), get, alias lookup, update, delete (spec §1.4), and the list of sandbox
// snapshots, which are templates (GET /snapshots, spec §1.3). Tags: routes-tags.ts; builds: routes-builds.ts.
import { Hono } from "hono";
import { z } from "zod";
import { parseBody, parseQuery } from "./body.ts";
import type { ApiDeps } from "./deps.ts";
import { conflict, notFound } from "../util/errors.ts";
import { tagRoutes } from "./routes-tags.ts";
import { templateJson } from "./serialize.ts";
import { templatePage } from "./template-page.ts";
import { aliasesOf } from "../store/template-store.ts";
import { removeTemplate } from "../templates/register.ts";
import { snapshotsOver } from "../templates/snapshot.ts";

export function templateRoutes(d: ApiDeps): Hono {
  const app = new Hono();

  // `teamID` is accepted and ignored: one host, one team.
  app.get("/templates", (c) => c.json(d.state.templates.list().map(templateJson)));

  // v2 list: the same templates, oldest first, paged like GET /v2/sandboxes (opaque X-Next-Token).
  // A host has a handful of templates, so the page is cut in JS from the full list.
  app.get("/v2/templates", (c) => {
    const q = parseQuery(c, TemplatesQueryV2);
    const { page, nextToken } = templatePage(d.state.templates.list(), q.limit, q.nextToken);
    if (nextToken) c.header("X-Next-Token", nextToken);
    return c.json(page.map(templateJson));
  });

  // Sandbox snapshots (POST /sandboxes/{id}/snapshots) are the templates that name the sandbox they were taken
  // of; `name` matches a snapshot's id or name, `sandboxID` the sandbox. SnapshotInfo is {snapshotID, names}.
  app.get("/snapshots", (c) => {
    const q = parseQuery(c, SnapshotsQuery);
    const rows = d.state.templates
      .list()
      .filter((t) => t.snapshotOf !== null && !t.ephemeral && (!q.sandboxID || t.snapshotOf === q.sandboxID) && (!q.name || t.id === q.name || aliasesOf(t).includes(q.name)));
    const { page, nextToken } = templatePage(rows, q.limit, q.nextToken);
    if (nextToken) c.header("X-Next-Token", nextToken);
    return c.json(page.map((t) => ({ snapshotID: t.id, names: aliasesOf(t) })));
  });

  // Tags (routes-tags.ts) before /templates/:id, so "tags" is not taken for an id.
  app.route("/", tagRoutes(d));

  // Template.exists(name): 200 {templateID, public} = exists, 404 = not (spec §1.4).
  app.get("/templates/aliases/:name", (c) => {
    const name = c.req.param("name");
    // A name whose builds all carry tags other than `default` exists too (its newest build answers).
    const t = d.state.templates.list().find((x) => aliasesOf(x).includes(name) || x.id === name) ?? d.state.templates.buildsOf(name).at(-1);
    if (!t) throw notFound(`template '${name}' not found`);
    return c.json({ templateID: t.id, public: t.public });
  });

  app.get("/templates/:id", (c) => {
    const id = c.req.param("id");
    const t = d.state.templates.resolve(id);
    if (!t) throw notFound(`template '${id}' not found`);
    return c.json({ ...templateJson(t), builds: [{ buildID: t.buildId ?? t.id, status: "ready", createdAt: new Date(t.createdAt).toISOString(), updatedAt: new Date(t.updatedAt).toISOString(), cpuCount: t.cpuCount, memoryMB: t.memoryMb, diskSizeMB: t.diskSizeMb, envdVersion: t.envdVersion }] });
  });

  // Only `public` can change (TemplateUpdateRequest). v1 answers 200 with no body, v2 {names}.
  const update = (v2: boolean) =>
    app.patch(v2 ? "/v2/templates/:id" : "/templates/:id", async (c) => {
      const id = c.req.param("id");
      const b = await parseBody(c, TemplateUpdate, d.config.maxBodyBytes);
      const t = d.state.templates.resolve(id);
      if (!t) throw notFound(`template '${id}' not found`);
      if (b.public !== undefined) d.state.templates.setPublic(t.id, b.public);
      return v2 ? c.json({ names: aliasesOf(t) }) : c.body(null, 200);
    });
  update(false);
  update(true);

  // CLI `template delete` and the SDK's deleteSnapshot: 204, 404 (→ false). A template (or snapshot) that live
  // sandboxes were created from is kept (409): their read-only base disk lives in its directory, and their
  // pause diffs lie over its memory file.
  app.delete("/templates/:id", (c) => {
    const id = c.req.param("id");
    const t = d.state.templates.resolve(id);
    if (!t) throw notFound(`template '${id}' not found`);
    const users = d.state.sandboxes.countLiveOfTemplate(t.id);
    if (users > 0) throw conflict(`template '${id}' is used by ${users} live sandbox(es): kill them first`);
    const over = snapshotsOver(t, d.state.templates.list());
    if (over.length > 0) throw conflict(`template '${id}' has snapshots whose memory is a diff over its own (${over.join(", ")}): delete them first`);
    removeTemplate(d.state, t.id);
    return c.body(null, 204);
  });

  return app;
}

const TemplatesQueryV2 = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  nextToken: z.string().max(512).optional(),
  teamID: z.string().optional(),
});

const SnapshotsQuery = z.object({
  sandboxID: z.string().max(128).optional(),
  name: z.string().max(256).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(100),
  nextToken: z.string().max(512).optional(),
});

const TemplateUpdate = z.object({ public: z.boolean().optional() });
