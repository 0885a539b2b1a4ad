// GET /dashboard/: the page and its bundle, public (they hold no data: every call the page makes carries the API
// key and goes through the API's own auth). Strict headers: no framing (the page has kill buttons), no other origin.
import { Hono, type Context } from "hono";
import { ASSETS } from "./assets.ts";

/** 'unsafe-inline' styles only: xterm.js sizes its rows with style attributes. Scripts and connections: this origin. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function dashboardRoutes(): Hono {
  const app = new Hono();
  app.get("/dashboard", (c) => c.redirect("/dashboard/", 301));
  const serve = async (c: Context, name: string) => {
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) return c.json({ code: 404, message: `no dashboard file ${c.req.path}: open /dashboard/` }, 404);
    return c.body(await Bun.file(asset.path).arrayBuffer(), 200, {
      "content-type": asset.type,
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "x-frame-options": "DENY",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    });
  };
  app.get("/dashboard/", (c) => serve(c, ""));
  app.get("/dashboard/:file", (c) => serve(c, c.req.param("file")));
  return app;
}
