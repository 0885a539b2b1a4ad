// Start-up safety (docs/security.md): a data dir that has an admin key but lost its database is refused,
// and database damage is reported with the file's name and what to do, never taken as a new install.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { OneboxError } from "../util/errors.ts";

/** The files of a data dir that start-up checks (src/api/admin-key.ts writes the first). */
export const ADMIN_KEY_FILE = "admin-key";
export const DB_FILE = "onebox.db";

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/** Throws when `dataDir` has an admin key but its database is missing or empty (0 bytes, no WAL to replay):
 *  opening would make a new, empty database, a new admin key over the old one, and orphan every VM the
 *  lost database recorded. */
export function checkDataDir(dataDir: string): void {
  const key = join(dataDir, ADMIN_KEY_FILE);
  const db = join(dataDir, DB_FILE);
  if (!existsSync(key)) return;
  const dbSize = sizeOf(db);
  if (dbSize > 0 || sizeOf(`${db}-wal`) > 0) return;
  const what = dbSize < 0 ? "is missing" : "is empty (0 bytes)";
  throw new OneboxError(
    "internal",
    `refusing to start: ${db} ${what} but ${key} exists, so this data dir was in use and its database is lost. ` +
      `Restore ${db} from a backup; or, to really start over (sandboxes it recorded are orphaned and their VMs must be ` +
      `killed by hand), move both ${db} and ${key} aside and start again.`,
  );
}

/** SQLite's words for a file that is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB). */
const DAMAGE = /malformed|not a database|corrupt|SQLITE_CORRUPT|SQLITE_NOTADB/i;

/** The error to show for a failure while opening or migrating the database at `path`. */
export function dbOpenError(path: string, e: unknown, during: string): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown })?.code;
  const detail = typeof code === "string" && !msg.includes(code) ? `${msg} (${code})` : msg;
  if (DAMAGE.test(detail)) {
    return new OneboxError(
      "internal",
      `the database ${path} is damaged (${detail}, ${during}). Stop onebox, copy ${path}* aside, and restore it from ` +
        `a backup (\`sqlite3 ${path} "PRAGMA integrity_check"\` shows what is wrong; \`.recover\` may save the rows).`,
    );
  }
  return new OneboxError(
    "internal",
    `cannot open the database ${path} (${during}: ${detail}). Its schema or _migrations table does not match this ` +
      `onebox version: restore ${path} from a backup, or run the onebox version that wrote it.`,
  );
}
