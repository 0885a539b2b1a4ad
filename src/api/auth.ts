// API-key auth for the control plane: X-API-Key (any case) on every route but GET /health (spec §1.1).
import type { MiddlewareHandler } from "hono";
import type { KeyStore } from "../store/key-store.ts";
import { setRequestKey } from "./audit.ts";
import { e2bError } from "./errors.ts";

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return m?.[1];
}

export function apiKeyAuth(keys: KeyStore, enabled: boolean): MiddlewareHandler {
  return async (c, next) => {
    if (!enabled || (c.req.method === "GET" && c.req.path === "/health")) return next();
    // Hono's header lookup is case-insensitive, so X-API-KEY (2.51) and X-API-Key (spec) both match. GET /metrics also
    // takes the key as `Authorization: Bearer <key>`, which is what a Prometheus scrape config sends.
    const key = c.req.header("x-api-key") ?? (c.req.path === "/metrics" ? bearer(c.req.header("authorization")) : undefined);
    if (!key) {
      return e2bError(401, "missing X-API-Key header: set E2B_API_KEY to a onebox key ($DATA/admin-key, or `onebox keys create`)");
    }
    const id = keys.identify(key);
    if (!id) {
      return e2bError(401, "invalid or revoked API key: create one with `onebox keys create` and set E2B_API_KEY");
    }
    setRequestKey(c.req.raw, id); // for the audit log and the sandbox's row (api/audit.ts)
    return next();
  };
}
