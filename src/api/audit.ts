// The control plane's part of the audit log: every request that changes something (not GET/HEAD/OPTIONS), after its
// answer: the key's id (api/auth.ts), the operation as its route (ids replaced by `{id}`), the sandbox it names (or
// the one a create made), the answer's status. Reads are not recorded: SDKs poll them, and they change nothing.
import type { MiddlewareHandler } from "hono";
import type { AuditStore } from "../store/index.ts";
import { log } from "../util/log.ts";

const keyIds = new WeakMap<Request, string>();

/** Set by the auth middleware: the id of the key a request came with. */
export function setRequestKey(req: Request, keyId: string): void {
  keyIds.set(req, keyId);
}

export function requestKey(req: Request): string | null {
  return keyIds.get(req) ?? null;
}

const SANDBOX_PATH = /^\/(?:v2\/)?sandboxes\/([A-Za-z0-9_-]{1,64})(?:\/|$)/;

/** `POST /sandboxes/abc/pause` -> `POST /sandboxes/{id}/pause`: the operation without the id it acted on
 *  (`/templates/tags` is a route of its own, not a template's id). */
function operation(method: string, path: string): string {
  return `${method} ${path.replace(/^(\/(?:v2\/)?(?:sandboxes|templates))\/(?!tags$)[^/]+/, "$1/{id}")}`;
}

export function auditControlPlane(audit: AuditStore): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const method = c.req.method;
    if (method === "GET" || method === "HEAD" || method === "OPTIONS") return;
    const path = c.req.path;
    let sandboxId = SANDBOX_PATH.exec(path)?.[1] ?? null;
    if (sandboxId === "metrics") sandboxId = null;
    // A create names its sandbox only in the answer (small JSON).
    if (!sandboxId && c.res.status === 201 && /^\/(?:v2\/)?sandboxes$/.test(path)) {
      sandboxId = ((await c.res.clone().json().catch(() => null)) as { sandboxID?: string } | null)?.sandboxID ?? null;
    }
    try {
      audit.append({ at: Date.now(), keyId: requestKey(c.req.raw), plane: "control", op: operation(method, path), sandboxId, status: c.res.status });
    } catch (e) {
      // The answer stands; a full disk must not turn every request into a 500. Said loudly instead.
      log.error("audit log write failed", { op: operation(method, path), error: String(e) });
    }
  };
}
