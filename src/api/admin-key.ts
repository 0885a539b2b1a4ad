// First start: create the admin API key, store it hashed, write it to $DATA/admin-key (0600).
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KeyStore } from "../store/key-store.ts";

/** Returns the new key when one was created (the caller prints it once), else null. */
export function ensureAdminKey(keys: KeyStore, dataDir: string): string | null {
  if (keys.list().length > 0) return null;
  const { key } = keys.create("admin");
  const path = join(dataDir, "admin-key");
  writeFileSync(path, key + "\n", { mode: 0o600 });
  return key;
}

export function adminKeyPath(dataDir: string): string {
  return join(dataDir, "admin-key");
}

export function hasAdminKeyFile(dataDir: string): boolean {
  return existsSync(adminKeyPath(dataDir));
}
