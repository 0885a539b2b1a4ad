// The dashboard's files, embedded in the binary: the page, and the bundle scripts/build.sh makes from ./client
// (xterm.js included: nothing is fetched from elsewhere at run time).
import appCss from "../../dist/dashboard/app.css" with { type: "file" };
import appJs from "../../dist/dashboard/app.js" with { type: "file" };
import indexHtml from "./index.html" with { type: "file" };

export interface Asset {
  path: string;
  type: string;
}

/** By the name the page asks for (under /dashboard/). */
export const ASSETS: Record<string, Asset> = {
  // with { type: "file" } an .html import is a path like the others (bun-types types it as a full-stack HTMLBundle).
  "": { path: indexHtml as unknown as string, type: "text/html; charset=utf-8" },
  "app.js": { path: appJs, type: "text/javascript; charset=utf-8" },
  "app.css": { path: appCss, type: "text/css; charset=utf-8" },
};
