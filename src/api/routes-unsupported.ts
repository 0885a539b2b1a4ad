// E2B routes onebox does not serve yet: 501 naming what is missing and what to do instead.
//
// Without these, the catch-all 404 would reach the JS SDK as `{code: 404}`, which it reads as
// "sandbox not found" (spec §1.2): a 501 becomes `SandboxError("501: <message>")`, which says the
// truth. docs/api.md lists each one with its reason.
import { Hono } from "hono";
import { e2bError } from "./errors.ts";

type Method = "get" | "post" | "put" | "delete";

const UNSUPPORTED: [Method, string, string][] = [
  ["get", "/secrets", "secrets are not supported: pass values to the sandbox with envs on create"],
  ["post", "/secrets", "secrets are not supported: pass values to the sandbox with envs on create"],
  ["get", "/secrets/:id", "secrets are not supported: pass values to the sandbox with envs on create"],
  ["post", "/secrets/:id", "secrets are not supported: pass values to the sandbox with envs on create"],
  ["delete", "/secrets/:id", "secrets are not supported: pass values to the sandbox with envs on create"],
  ["get", "/volumes", "volumes are not supported yet: move files with sandbox.files"],
  ["post", "/volumes", "volumes are not supported yet: move files with sandbox.files"],
  ["get", "/volumes/:id", "volumes are not supported yet: move files with sandbox.files"],
  ["delete", "/volumes/:id", "volumes are not supported yet: move files with sandbox.files"],
  ["get", "/teams", "teams are not served: a onebox host has one team; manage API keys with `onebox keys`"],
  ["get", "/teams/:id/metrics", "team metrics are not served: see `onebox sandbox ls` and GET /sandboxes/{id}/metrics"],
  ["get", "/teams/:id/metrics/max", "team metrics are not served: see `onebox sandbox ls` and GET /sandboxes/{id}/metrics"],
];

/**
 * `lookupSandbox` throws E2B's 404 for an unknown or ended sandbox id. A route on one sandbox asks it
 * first: E2B answers not found before anything else, and the SDK maps that 404 to
 * SandboxNotFoundError, which code written for E2B relies on (e.g. after a kill).
 */
export function unsupportedRoutes(lookupSandbox: (id: string) => unknown): Hono {
  const app = new Hono();
  for (const [method, path, why] of UNSUPPORTED) {
    app[method](path, (c) => {
      if (path.startsWith("/sandboxes/:id/")) lookupSandbox(c.req.param("id") ?? "");
      return e2bError(501, `${c.req.method} ${c.req.path}: ${why} (docs/api.md)`);
    });
  }
  return app;
}
