// The control-plane Hono app: health, auth, the route modules, 404 JSON and one error mapper.
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";
import { auditControlPlane } from "./audit.ts";
import { readFileSync } from "node:fs";
import { apiKeyAuth } from "./auth.ts";
import { dashboardRoutes } from "../dashboard/routes.ts";
import { caCertPath } from "../proxy/tls-ca.ts";
import { e2bError, onError } from "./errors.ts";
import { adminRoutes } from "./routes-admin.ts";
import { oneboxRoutes } from "./routes-onebox.ts";
import { metricsRoute } from "./routes-metrics.ts";
import { sandboxesMetricsRoute, sandboxOpRoutes } from "./routes-sandbox-ops.ts";
import { sandboxRoutes } from "./routes-sandboxes.ts";
import { buildRoutes, makeBuilds, uploadRoute } from "./routes-builds.ts";
import { templateRoutes } from "./routes-templates.ts";
import { unsupportedRoutes } from "./routes-unsupported.ts";

export function createApi(d: ApiDeps): Hono {
  const app = new Hono();
  app.onError(onError);
  app.notFound((c) => e2bError(404, `no route ${c.req.method} ${c.req.path}: see docs/api.md for the supported E2B routes`));
  // Control-plane health: 200, no auth (data-plane /health is routed by header before this app).
  app.get("/health", (c) => c.json({ status: "ok" }));
  // The dashboard's page and bundle hold no data: public, before auth (its API calls carry the key).
  app.route("/", dashboardRoutes());
  // COPY uploads carry their own signature (the SDK sends no API key to the URL it was given).
  const builds = makeBuilds(d);
  app.route("/", uploadRoute(builds));
  // onebox's CA certificate (--tls), for clients to trust: public, so no auth either.
  app.get("/tls/ca.crt", (c) => {
    const pem = d.config.tls ? readIfExists(caCertPath(d.config.dataDir)) : null;
    if (pem === null) return c.json({ code: 404, message: "TLS is off (onebox serve --tls turns it on)" }, 404);
    return c.body(pem, 200, { "Content-Type": "application/x-pem-file" });
  });
  app.use("*", apiKeyAuth(d.state.keys, d.config.auth));
  app.use("*", auditControlPlane(d.state.audit));
  // GET /sandboxes/metrics goes before GET /sandboxes/{id}, which would take "metrics" for an id:
  // Hono tries handlers in the order they were added (routes-templates.ts orders /templates/tags so).
  app.route("/", metricsRoute(d));
  app.route("/", sandboxesMetricsRoute(d));
  app.route("/", sandboxRoutes(d));
  app.route("/", sandboxOpRoutes(d));
  app.route("/", buildRoutes(d, builds));
  app.route("/", templateRoutes(d));
  app.route("/", oneboxRoutes(d, builds.registry));
  app.route("/", adminRoutes(d));
  app.route("/", unsupportedRoutes((id) => d.manager.getVisible(id)));
  return app;
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}
