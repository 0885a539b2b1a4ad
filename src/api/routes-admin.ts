// The admin key's routes: API keys (list, create, revoke) and the audit log, over HTTP for the dashboard. Only the
// admin key (the first key, $DATA/admin-key) passes: another key is a user of sandboxes, not the operator, and must
// not mint keys, revoke others' or read what everyone ran. `whoami` tells any key which it is.
import { Hono, type Context } from "hono";
import { z } from "zod";
import { parseBody, parseQuery } from "./body.ts";
import { requestKey } from "./audit.ts";
import type { ApiDeps } from "./deps.ts";
import { e2bError } from "./errors.ts";

const NewKey = z.object({ name: z.string().trim().min(1).max(64).regex(/^[\w .@-]+$/, "letters, digits, space, _ . @ -") });
const AuditQuery = z.object({
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export function adminRoutes(d: ApiDeps): Hono {
  const app = new Hono();
  /** With auth off (config.auth false: a development daemon) every request is the operator, as everywhere else. */
  const isAdmin = (c: Context) => !d.config.auth || (requestKey(c.req.raw) !== null && requestKey(c.req.raw) === d.state.keys.adminId());
  const refuse = () => e2bError(403, "only the admin key ($DATA/admin-key) manages API keys and reads the audit log: log in with it, or use `onebox keys` / `onebox audit export` on the host");

  app.get("/onebox/whoami", (c) => c.json({ keyId: requestKey(c.req.raw), admin: isAdmin(c) }));

  app.get("/onebox/keys", (c) => (isAdmin(c) ? c.json(d.state.keys.list().map((k) => ({ ...k, admin: k.id === d.state.keys.adminId() }))) : refuse()));

  // The plain key is in this answer only (as `onebox keys create` prints it once); the audit row holds the route only.
  app.post("/onebox/keys", async (c) => {
    if (!isAdmin(c)) return refuse();
    const b = await parseBody(c, NewKey, d.config.maxBodyBytes);
    const { key, info } = d.state.keys.create(b.name);
    return c.json({ ...info, key }, 201);
  });

  app.delete("/onebox/keys/:id", (c) => {
    if (!isAdmin(c)) return refuse();
    const id = c.req.param("id");
    const k = d.state.keys.list().find((x) => x.id === id);
    if (!k || k.revokedAt !== null) return e2bError(404, `no active key with id '${id}'`);
    // The dashboard's own key: revoking it would lock the operator out of HTTP key management.
    if (id === d.state.keys.adminId()) return e2bError(409, "the admin key cannot revoke itself: use `onebox keys revoke` on the host");
    d.state.keys.revokeId(id);
    return c.body(null, 204);
  });

  app.get("/onebox/audit", (c) => {
    if (!isAdmin(c)) return refuse();
    const q = parseQuery(c, AuditQuery);
    return c.json(d.state.audit.latest(q.limit, q.before));
  });

  return app;
}
