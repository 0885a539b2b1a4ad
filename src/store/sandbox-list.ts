// SQL for listing live sandboxes (keyset pages for GET /v2/sandboxes) and summing their claims (admission).
//
// Both read only live rows through the partial indexes of migration 3 (`WHERE ended_at IS NULL`), so
// their cost follows the number of live sandboxes and the page size, never the ended rows, which
// stay in the table forever. SQLite uses a partial index only when the query repeats its WHERE term,
// hence the literal `isNull(endedAt)` in every query here.
import { and, asc, count, desc, eq, gte, isNull, not, sql, type SQL } from "drizzle-orm";
import type { Db } from "./db.ts";
import { sandboxes, type SandboxRow, type SandboxState } from "./schema.ts";

export interface PageQuery {
  /** Row states to include; never "ended" (those rows are not in the live index). */
  states: SandboxState[];
  /** All pairs must match exactly (spec §1.3: infra's parseFilters). */
  metadata: [string, string][];
  templateIds?: string[];
  /** Rows started at or after this instant (ms). */
  startedAfterMs?: number;
  /** Keyset cursor: (startedAt, id) of the last row of the previous page; rows strictly after it. */
  after?: [number, string];
  order: "asc" | "desc";
  /** No limit when absent (the v1 list has no paging). */
  limit?: number;
}

/** One page of live rows ordered by (startedAt, id), in `order`. The scan walks
 *  sandboxes_live_started in index order and stops after `limit` matches: a page costs the rows it
 *  skips, not the table. `+column` (a no-op in value) keeps the planner from driving the scan by
 *  state or template instead, which would sort every match before taking the page. */
export function selectPage(db: Db, q: PageQuery): SandboxRow[] {
  if (q.states.length === 0 || q.templateIds?.length === 0 || q.limit === 0) return [];
  return pageQuery(db, q).all();
}

/** The statement behind selectPage (exported so a test can read its query plan). */
export function pageQuery(db: Db, q: PageQuery) {
  const s = sandboxes;
  const where: SQL[] = [isNull(s.endedAt), sql`+${s.state} in ${q.states}`];
  if (q.templateIds) where.push(sql`+${s.templateId} in ${q.templateIds}`);
  // Inclusive, as E2B's `started_at >= @started_after`: a sandbox's own startedAt finds it.
  if (q.startedAfterMs !== undefined) where.push(gte(s.startedAt, q.startedAfterMs));
  // One json_each pass per row counts how many wanted pairs the row has; it must have all of them.
  // json_each compares keys as plain strings: no JSON-path quoting of user keys ('a.b', '"', '$').
  // Measured against json_extract, one EXISTS per pair and a (key, value) side table
  // (docs/benchmarks.md); this needs no second write path.
  const pairs = [...new Map(q.metadata.map(([k, v]) => [JSON.stringify([k, v]), [k, v] as const])).values()];
  if (pairs.length > 0) {
    const anyPair = sql.join(pairs.map(([k, v]) => sql`(json_each.key = ${k} and json_each.value = ${v})`), sql` or `);
    where.push(sql`(select count(*) from json_each(${s.metadata}) where ${anyPair}) = ${pairs.length}`);
  }
  if (q.after) {
    const [t, id] = q.after;
    where.push(q.order === "asc" ? sql`(${s.startedAt}, ${s.id}) > (${t}, ${id})` : sql`(${s.startedAt}, ${s.id}) < (${t}, ${id})`);
  }
  const by = q.order === "asc" ? [asc(s.startedAt), asc(s.id)] : [desc(s.startedAt), desc(s.id)];
  const query = db.select().from(s).where(and(...where)).orderBy(...by);
  return q.limit === undefined ? query : query.limit(q.limit);
}

export interface Claims {
  cpus: number;
  memoryMib: number;
  count: number;
}

/** vCPUs and MiB claimed by live sandboxes (starting ones included): one aggregate read of the
 *  covering index sandboxes_live_claims, no rows loaded into JS. A sandbox paused to disk (state
 *  paused, no VM process: vm_pid NULL) holds no host CPU or memory and is left out; one paused in
 *  memory (a VM process still there, e.g. paused by an older daemon) still counts. */
export function liveClaims(db: Db): Claims {
  return claimsQuery(db).get() ?? { cpus: 0, memoryMib: 0, count: 0 };
}

export function claimsQuery(db: Db) {
  const s = sandboxes;
  return db
    .select({
      cpus: sql<number>`coalesce(sum(${s.cpuCount}), 0)`,
      memoryMib: sql<number>`coalesce(sum(${s.memoryMb}), 0)`,
      count: count(),
    })
    .from(s)
    .where(and(isNull(s.endedAt), not(and(eq(s.state, "paused"), isNull(s.vmPid))!)));
}

/** Live rows in `state` (X-Total-Running). */
export function countLiveInState(db: Db, state: SandboxState): number {
  const s = sandboxes;
  return db.select({ n: count() }).from(s).where(and(isNull(s.endedAt), eq(s.state, state))).get()?.n ?? 0;
}

/** Live sandboxes booted from template `templateId` (a template in use cannot be deleted). */
export function countLiveOfTemplate(db: Db, templateId: string): number {
  const s = sandboxes;
  return db.select({ n: count() }).from(s).where(and(isNull(s.endedAt), eq(s.templateId, templateId))).get()?.n ?? 0;
}
