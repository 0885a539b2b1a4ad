// Where a CLI command that asks the running daemon finds it: --url (or E2B_API_URL) and --api-key (or E2B_API_KEY,
// else the admin key file, readable by root only).
import { readFileSync } from "node:fs";
import { adminKeyPath } from "../api/admin-key.ts";
import { str, type Args } from "./args.ts";

export const DEFAULT_DAEMON_URL = "http://127.0.0.1:3000";

/** The daemon's URL and a key, or null after printing why there is no key (the caller exits 2). */
export function daemonAccess(a: Args, dataDir: string, command: string): { url: string; key: string } | null {
  const url = str(a, "url") ?? process.env.E2B_API_URL ?? DEFAULT_DAEMON_URL;
  let key = str(a, "api-key") ?? process.env.E2B_API_KEY;
  if (!key) {
    try {
      key = readFileSync(adminKeyPath(dataDir), "utf8").trim();
    } catch {
      console.error(`${command}: no API key: pass --api-key, set E2B_API_KEY, or run as the user who can read ${adminKeyPath(dataDir)}`);
      return null;
    }
  }
  return { url, key };
}
