// First start: create the admin API key, store it hashed, write it to $DATA/admin-key (0600, never overwritten).
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY_FILE } from "../store/data-dir-guard.ts";
import type { KeyStore } from "../store/key-store.ts";
import { OneboxError } from "../util/errors.ts";

/** Returns the new key when one was created (the caller prints it once), else null. An existing admin-key
 *  file is never replaced: a database without keys next to one is a lost database, not a first start. */
export function ensureAdminKey(keys: KeyStore, dataDir: string): string | null {
  if (keys.list().length > 0) return null;
  const path = adminKeyPath(dataDir);
  if (existsSync(path)) throw lostKeys(path, dataDir);
  const { key } = keys.create("admin");
  try {
    writeFileSync(path, key + "\n", { mode: 0o600, flag: "wx" }); // wx: fails instead of overwriting
  } catch (e) {
    throw (e as { code?: string }).code === "EEXIST" ? lostKeys(path, dataDir) : e;
  }
  return key;
}

function lostKeys(path: string, dataDir: string): OneboxError {
  const db = join(dataDir, "onebox.db");
  return new OneboxError(
    "internal",
    `refusing to start: ${path} exists but the database ${db} has no API keys, so it is not the database that key ` +
      `belongs to. Restore ${db} from a backup; or, to really start over, move both ${db} and ${path} aside.`,
  );
}

export function adminKeyPath(dataDir: string): string {
  return join(dataDir, ADMIN_KEY_FILE);
}

export function hasAdminKeyFile(dataDir: string): boolean {
  return existsSync(adminKeyPath(dataDir));
}
