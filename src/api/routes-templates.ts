// Template routes: list, get, alias lookup (spec §1.4); builds are not served over the API yet.
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";
import { e2bError } from "./errors.ts";
import { templateJson } from "./serialize.ts";
import { aliasesOf } from "../store/template-store.ts";
import { removeTemplate } from "../templates/register.ts";

export function templateRoutes(d: ApiDeps): Hono {
  const app = new Hono();

  app.get("/templates", (c) => c.json(d.state.templates.list().map(templateJson)));

  // Template.exists(name): 200 {templateID, public} = exists, 404 = not (spec §1.4).
  app.get("/templates/aliases/:name", (c) => {
    const name = c.req.param("name");
    const t = d.state.templates.list().find((x) => aliasesOf(x).includes(name) || x.id === name);
    if (!t) return e2bError(404, `template '${name}' not found`);
    return c.json({ templateID: t.id, public: t.public });
  });

  app.get("/templates/:id", (c) => {
    const id = c.req.param("id");
    const t = d.state.templates.resolve(id);
    if (!t) return e2bError(404, `template '${id}' not found`);
    return c.json({ ...templateJson(t), builds: [{ buildID: t.id, status: "ready", createdAt: new Date(t.createdAt).toISOString(), updatedAt: new Date(t.updatedAt).toISOString(), cpuCount: t.cpuCount, memoryMB: t.memoryMb, diskSizeMB: t.diskSizeMb, envdVersion: t.envdVersion }] });
  });

  // CLI `template delete` and the SDK's deleteSnapshot: 204, 404 (→ false). A template that live
  // sandboxes boot from is kept (409): their read-only base disk lives in its directory.
  app.delete("/templates/:id", (c) => {
    const id = c.req.param("id");
    const t = d.state.templates.resolve(id);
    if (!t) return e2bError(404, `template '${id}' not found`);
    const users = d.state.sandboxes.countLiveOfTemplate(t.id);
    if (users > 0) return e2bError(409, `template '${id}' is used by ${users} live sandbox(es): kill them first`);
    removeTemplate(d.state, t.id);
    return c.body(null, 204);
  });

  // Building templates over the API (POST /v3/templates...) is not supported yet: images are built
  // with scripts/mkrootfs.sh and registered with `onebox template add` (docs/api.md).
  const noBuilds = (c: { req: { path: string } }) =>
    e2bError(501, `template builds over the API are not supported yet (${c.req.path}): build with scripts/mkrootfs.sh and run \`onebox template add\``);
  app.post("/v3/templates", noBuilds);
  app.post("/v2/templates/:id/builds/:bid", noBuilds);
  app.get("/templates/:id/files/:hash", noBuilds);

  return app;
}
