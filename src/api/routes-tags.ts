// Template tag routes (the e2b SDK's Template.assignTags / removeTags / getTags): POST /templates/tags {target:
// "name:tag", tags} → 201 {buildID, tags}; DELETE /templates/tags {name, tags} → 204; GET /templates/{id}/tags →
// [{tag, buildID, createdAt}]. The rules are src/templates/tags.ts's; docs/templates.md "Tags".
import { Hono } from "hono";
import { z } from "zod";
import { assignTags, buildIdOf, listTags, parseTemplateRef, removeTags } from "../templates/tags.ts";
import { notFound } from "../util/errors.ts";
import { parseBody } from "./body.ts";
import type { ApiDeps } from "./deps.ts";

const Tags = z.array(z.string().min(1).max(64)).min(1).max(16);
const AssignBody = z.object({ target: z.string().min(1).max(200), tags: Tags });
const RemoveBody = z.object({ name: z.string().min(1).max(200), tags: Tags });

/** Mounted before /templates/:id, so "tags" is not taken for a template id. */
export function tagRoutes(d: ApiDeps): Hono {
  const app = new Hono();

  app.post("/templates/tags", async (c) => {
    const q = await parseBody(c, AssignBody, d.config.maxBodyBytes);
    const { name, tag } = parseTemplateRef(q.target);
    const tags = q.tags.map((t) => parseTemplateRef(`${name}:${t}`).tag);
    const t = d.state.templates.resolve(`${name}:${tag}`);
    if (!t) throw notFound(`template '${q.target}' not found`);
    assignTags(d.state, name, tags, t.id);
    return c.json({ buildID: buildIdOf(t), tags: [...new Set(tags)] }, 201);
  });

  app.delete("/templates/tags", async (c) => {
    const q = await parseBody(c, RemoveBody, d.config.maxBodyBytes);
    const { name, tag } = parseTemplateRef(q.name);
    // "name:tag" as the name removes that tag too (the SDK's docs pass a bare name).
    const tags = [...new Set([...q.tags.map((t) => parseTemplateRef(`${name}:${t}`).tag), ...(q.name.includes(":") ? [tag] : [])])];
    removeTags(d.state, name, tags);
    return c.body(null, 204);
  });

  app.get("/templates/:id/tags", (c) => c.json(listTags(d.state, c.req.param("id"))));

  return app;
}
