// The control-plane Hono app: health, auth, the route modules, 404 JSON and one error mapper.
import { Hono } from "hono";
import type { ApiDeps } from "./deps.ts";
import { auditControlPlane } from "./audit.ts";
import { apiKeyAuth } from "./auth.ts";
import { dashboardRoutes } from "../dashboard/routes.ts";
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
  app.route("/", oneboxRoutes(d));
  app.route("/", adminRoutes(d));
  app.route("/", unsupportedRoutes((id) => d.manager.getVisible(id)));
  return app;
}
