// Start-up safety as the accidents and attacks that break it: a lost (0-byte or missing) database next to an
// admin key, a database without keys, a damaged file and a wrong _migrations table.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureAdminKey } from "../api/admin-key.ts";
import { openState } from "./index.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "onebox-guard-"));
  dirs.push(d);
  return d;
}
const KEY = "e2b_0123456789abcdef0123456789abcdef0123\n";

test("`onebox serve` on a data dir with admin-key and a 0-byte onebox.db refuses to start and keeps admin-key", async () => {
  const dir = dataDir();
  writeFileSync(join(dir, "admin-key"), KEY, { mode: 0o600 });
  writeFileSync(join(dir, "onebox.db"), "");
  const p = Bun.spawn(["bun", join(import.meta.dir, "../main.ts"), "serve", "--data-dir", dir, "--port", "0", "--no-default-templates", "--warm-pool", "0"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const exited = await Promise.race([p.exited, Bun.sleep(15_000).then(() => "still running")]);
  if (exited === "still running") p.kill(9);
  const err = await new Response(p.stderr).text();
  expect(exited).toBe(1);
  expect(err).toContain(`${join(dir, "onebox.db")} is empty (0 bytes)`);
  expect(err).toContain(join(dir, "admin-key"));
  expect(err).toContain("Restore");
  expect(readFileSync(join(dir, "admin-key"), "utf8")).toBe(KEY);
}, 20_000);

test("a missing onebox.db next to admin-key is refused too (every command that opens the store)", () => {
  const dir = dataDir();
  writeFileSync(join(dir, "admin-key"), KEY, { mode: 0o600 });
  expect(() => openState(dir)).toThrow(`${join(dir, "onebox.db")} is missing but ${join(dir, "admin-key")} exists`);
  expect(readFileSync(join(dir, "admin-key"), "utf8")).toBe(KEY);
});

test("admin-key is never overwritten: a database with no keys next to one refuses instead of minting a new key", () => {
  const dir = dataDir();
  openState(dir).close(); // a database with no keys (made before admin-key existed, e.g. by an older CLI)
  writeFileSync(join(dir, "admin-key"), KEY, { mode: 0o600 });
  const state = openState(dir);
  try {
    expect(() => ensureAdminKey(state.keys, dir)).toThrow("has no API keys");
    expect(state.keys.list()).toHaveLength(0);
  } finally {
    state.close();
  }
  expect(readFileSync(join(dir, "admin-key"), "utf8")).toBe(KEY);
});

test("first start still creates the key, 0600, and a second start keeps it", () => {
  const dir = dataDir();
  const s1 = openState(dir);
  const key = ensureAdminKey(s1.keys, dir);
  s1.close();
  expect(key).toMatch(/^e2b_/);
  expect(readFileSync(join(dir, "admin-key"), "utf8")).toBe(`${key}\n`);
  const s2 = openState(dir);
  expect(ensureAdminKey(s2.keys, dir)).toBeNull();
  s2.close();
});

test("a damaged database file names the file and says what to do", () => {
  const dir = dataDir();
  writeFileSync(join(dir, "onebox.db"), Buffer.alloc(8192, 0x5a));
  expect(() => openState(dir)).toThrow(`the database ${join(dir, "onebox.db")} is damaged`);
});

test("a corrupted _migrations table names the file and says what to do", () => {
  const dir = dataDir();
  openState(dir).close();
  const db = new Database(join(dir, "onebox.db"));
  db.run("DROP TABLE _migrations");
  db.run("CREATE TABLE _migrations (x TEXT)");
  db.close();
  let msg = "";
  try {
    openState(dir).close();
  } catch (e) {
    msg = (e as Error).message;
  }
  expect(msg).toContain(`cannot open the database ${join(dir, "onebox.db")}`);
  expect(msg).toContain("restore");
});
