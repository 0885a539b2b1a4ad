// Opens the SQLite database (WAL) and applies the embedded migrations once, in order.
import { Database } from "bun:sqlite";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { checkDataDir, DB_FILE, dbOpenError } from "./data-dir-guard.ts";
import { MIGRATIONS, type Migration } from "./migrations.ts";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema>;

export interface Store {
  db: Db;
  sqlite: Database;
  close(): void;
}

/** Applies every migration not yet recorded in `_migrations`, each in its own transaction. */
export function migrate(sqlite: Database, migrations: Migration[] = MIGRATIONS): number[] {
  sqlite.run(
    "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const done = new Set(
    sqlite.query<{ id: number }, []>("SELECT id FROM _migrations").all().map((r) => r.id),
  );
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.id - b.id)) {
    if (done.has(m.id)) continue;
    try {
      sqlite.transaction(() => {
        sqlite.run(m.sql);
        sqlite.run("INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)", [m.id, m.name, Date.now()]);
      })();
    } catch (e) {
      throw new Error(`migration ${m.id} (${m.name}) failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    applied.push(m.id);
  }
  return applied;
}

/** Opens `$DATA/onebox.db` (or `:memory:` when dataDir is null) with WAL and a busy timeout,
 *  so the CLI can work on the database while the daemon runs. */
export function openStore(dataDir: string | null): Store {
  let path = ":memory:";
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    checkDataDir(dataDir);
    path = join(dataDir, DB_FILE);
  }
  let sqlite: Database;
  try {
    sqlite = new Database(path, { create: true, strict: true });
  } catch (e) {
    throw dbOpenError(path, e, "opening it");
  }
  // Private to root (tokens, env vars; docs/architecture.md "Files on disk"), also a data dir made by an older
  // onebox (0701 and a 0644 database); SQLite gives the -wal and -shm files the database file's mode.
  if (dataDir) for (const [f, m] of [[dataDir, 0o700], [path, 0o600], [`${path}-wal`, 0o600], [`${path}-shm`, 0o600]] as const) if (existsSync(f)) chmodSync(f, m);
  try {
    sqlite.run("PRAGMA journal_mode = WAL");
    sqlite.run("PRAGMA busy_timeout = 5000");
    sqlite.run("PRAGMA foreign_keys = ON");
    migrate(sqlite);
  } catch (e) {
    sqlite.close();
    throw dbOpenError(path, e, "applying its migrations");
  }
  const db = drizzle(sqlite, { schema });
  return { db, sqlite, close: () => sqlite.close() };
}
