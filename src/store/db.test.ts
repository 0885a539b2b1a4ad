// Tests the embedded migration runner: applies once, in order, records what it applied, resumes later.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate, openStore } from "./db.ts";
import { MIGRATIONS } from "./migrations.ts";

test("applies every migration once and records it", () => {
  const db = new Database(":memory:");
  expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.id));
  expect(migrate(db)).toEqual([]);
  const tables = db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all().map((r) => r.name);
  expect(tables).toEqual(expect.arrayContaining(["_migrations", "api_keys", "events", "sandboxes", "templates"]));
});

test("a later migration is applied on the next open; a failing one rolls back and is not recorded", () => {
  const db = new Database(":memory:");
  migrate(db);
  const next = { id: 1000, name: "add column", sql: "ALTER TABLE sandboxes ADD COLUMN note TEXT;" };
  expect(migrate(db, [...MIGRATIONS, next])).toEqual([1000]);
  const bad = { id: 1001, name: "bad", sql: "CREATE TABLE t1 (x INT); SELECT * FROM nowhere;" };
  expect(() => migrate(db, [...MIGRATIONS, next, bad])).toThrow();
  expect(db.query("SELECT id FROM _migrations WHERE id = 1001").get()).toBeNull();
  expect(db.query("SELECT name FROM sqlite_master WHERE name = 't1'").get()).toBeNull();
});

test("the database file uses WAL", () => {
  const dir = mkdtempSync(join(tmpdir(), "onebox-db-"));
  try {
    const s = openStore(dir);
    expect(s.sqlite.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode).toBe("wal");
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
