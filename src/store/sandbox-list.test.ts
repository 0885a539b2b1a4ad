// Tests the list and claims queries on a real SQLite: results, and that SQLite runs them off the live indexes.
import { beforeAll, expect, test } from "bun:test";
import { openState, type NewSandboxRow, type SandboxState, type State } from "./index.ts";
import { claimsQuery, pageQuery, type PageQuery } from "./sandbox-list.ts";

let st: State;
const T0 = Date.parse("2026-01-01T00:00:00Z");

function row(i: number, patch: Partial<NewSandboxRow> = {}): NewSandboxRow {
  return {
    id: `s${String(i).padStart(4, "0")}`,
    templateId: i % 3 === 0 ? "t3" : "tx",
    state: "running",
    cpuCount: 2,
    memoryMb: 100,
    diskSizeMb: 512,
    envdVersion: "0.6.13",
    metadata: JSON.stringify({ i: String(i), "a.b": i % 2 ? "odd" : "even", 'q"k': "$x" }),
    startedAt: T0 + Math.floor(i / 2) * 1000, // pairs share a start time: the id breaks the tie
    endAt: T0 + 1e9,
    ...patch,
  };
}

beforeAll(() => {
  st = openState(null);
  for (let i = 0; i < 40; i++) st.sandboxes.insert(row(i, i >= 30 ? { state: "ended", endedAt: T0 } : i >= 25 ? { state: "paused" } : {}));
});

const base: PageQuery = { states: ["running", "paused"], metadata: [], order: "desc" };
const ids = (q: Partial<PageQuery>) => st.sandboxes.page({ ...base, ...q }).map((r) => r.id);

test("order by (startedAt, id), ended rows never listed, keyset cursor is strict", () => {
  const all = ids({});
  expect(all.length).toBe(30);
  expect(all.slice(0, 3)).toEqual(["s0029", "s0028", "s0027"]);
  expect(ids({ order: "asc", limit: 3 })).toEqual(["s0000", "s0001", "s0002"]);
  // Cursor on the first of a tied pair: the second of the pair comes next, nothing repeats.
  expect(ids({ order: "asc", limit: 2, after: [T0 + 1000, "s0002"] })).toEqual(["s0003", "s0004"]);
  expect(ids({ after: [T0 + 1000, "s0003"], limit: 2 })).toEqual(["s0002", "s0001"]);
  expect(ids({ after: [T0 - 1, "zzz"] })).toEqual([]);
  expect(ids({ states: ["paused"] })).toEqual(["s0029", "s0028", "s0027", "s0026", "s0025"]);
  expect(ids({ states: [] })).toEqual([]);
});

test("metadata pairs all match, keys compared literally (dots, quotes), values exactly", () => {
  expect(ids({ metadata: [["i", "7"]] })).toEqual(["s0007"]);
  expect(ids({ metadata: [["a.b", "odd"], ['q"k', "$x"], ["i", "7"]] })).toEqual(["s0007"]);
  expect(ids({ metadata: [["a.b", "even"], ["i", "7"]] })).toEqual([]);
  expect(ids({ metadata: [["a.b", "odd"]] }).length).toBe(15);
  expect(ids({ metadata: [["i", "7 "]] })).toEqual([]);
  expect(ids({ metadata: [["a", "odd"]] })).toEqual([]);
  // A repeated pair counts once; one key with two values can never match.
  expect(ids({ metadata: [["i", "7"], ["i", "7"]] })).toEqual(["s0007"]);
  expect(ids({ metadata: [["i", "7"], ["i", "8"]] })).toEqual([]);
  // Ended rows carry metadata too and still stay out.
  expect(ids({ metadata: [["i", "35"]] })).toEqual([]);
});

test("template and startedAfter filters", () => {
  expect(ids({ templateIds: ["t3"] }).every((id) => Number(id.slice(1)) % 3 === 0)).toBe(true);
  expect(ids({ templateIds: ["t3"] }).length).toBe(10);
  expect(ids({ templateIds: [] })).toEqual([]);
  expect(ids({ startedAfterMs: T0 + 13_001 })).toEqual(["s0029", "s0028"]);
  expect(ids({ startedAfterMs: T0 + 14_000 })).toEqual(["s0029", "s0028"]); // inclusive, as E2B's >=
});

test("claims and counts cover live rows only", () => {
  // s0025..s0029 are paused with no VM process (paused to disk): they claim nothing.
  expect(st.sandboxes.claims()).toEqual({ cpus: 50, memoryMib: 2500, count: 25 });
  st.sandboxes.update("s0029", { vmPid: 4242 }); // paused in memory: its VM still holds memory
  expect(st.sandboxes.claims()).toEqual({ cpus: 52, memoryMib: 2600, count: 26 });
  st.sandboxes.update("s0029", { vmPid: null });
  expect(st.sandboxes.countLiveInState("paused")).toBe(5);
  expect(st.sandboxes.countLiveInState("ended")).toBe(0);
  expect(st.sandboxes.countLiveOfTemplate("t3")).toBe(10);
  expect(openState(null).sandboxes.claims()).toEqual({ cpus: 0, memoryMib: 0, count: 0 });
});

// The point of migration 3: a page walks the live index in order and stops; no sort of all matches.
test("query plans: pages scan sandboxes_live_started without a sort, claims read only the covering index", () => {
  const plan = (sql: string, params: (string | number)[]) =>
    st.sqlite
      .query<{ detail: string }, (string | number)[]>("EXPLAIN QUERY PLAN " + sql)
      .all(...params)
      .map((r) => r.detail)
      .join(" | ");
  for (const q of [
    { limit: 101 },
    { limit: 101, after: [T0 + 5000, "s0010"] as [number, string] },
    { limit: 101, order: "asc" as const, states: ["paused"] as SandboxState[] },
    { limit: 101, metadata: [["a.b", "odd"]] as [string, string][], templateIds: ["t3"] },
  ]) {
    const c = pageQuery(st.db, { ...base, ...q }).toSQL();
    const p = plan(c.sql, c.params as (string | number)[]);
    expect(p).toContain("USING INDEX sandboxes_live_started");
    expect(p).not.toContain("TEMP B-TREE");
  }
  const c = claimsQuery(st.db).toSQL();
  expect(plan(c.sql, c.params as (string | number)[])).toBe("SCAN sandboxes USING COVERING INDEX sandboxes_live_claims");
});
