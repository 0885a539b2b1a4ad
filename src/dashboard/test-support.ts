// Test support for the browser tests: the bundle rebuilt from ./client first, so a test never runs a stale
// dist/dashboard (assets.ts reads the files at each request), and the system Chromium if there is one.
import { existsSync } from "node:fs";
import { join } from "node:path";

const REPO = join(import.meta.dir, "..", "..");

/** Debian's chromium (scripts/install-deps.sh, TEST_PKGS), or undefined: the browser tests then skip, saying so. */
export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

/** The same command as scripts/build.sh. */
export function rebuildBundle(): void {
  const r = Bun.spawnSync(["bun", "build", "src/dashboard/client/main.ts", "--target=browser", "--minify", "--outdir", "dist/dashboard", "--entry-naming", "app.[ext]"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`dashboard bundle failed:\n${r.stdout}${r.stderr}`);
}

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];
