// Queries on the sandbox_metrics table: the sampler's inserts, a sandbox's samples in a time range, retention.
import { and, asc, eq, gte, lt, lte } from "drizzle-orm";
import type { Db } from "./db.ts";
import { sandboxMetrics, type MetricSampleRow } from "./schema.ts";

/** The most samples one range answer holds (the newest ones): at the default 5 s interval, about 14 hours. */
export const METRICS_RANGE_MAX = 10_000;

export class MetricsStore {
  constructor(private readonly db: Db) {}

  /** A sample; a second one for the same sandbox and ms replaces the first. */
  insert(row: MetricSampleRow): void {
    this.db.insert(sandboxMetrics).values(row).onConflictDoUpdate({ target: [sandboxMetrics.sandboxId, sandboxMetrics.ts], set: row }).run();
  }

  /** Samples of sandbox id with startMs <= ts <= endMs, oldest first; the newest METRICS_RANGE_MAX of them. */
  range(id: string, startMs: number, endMs: number): MetricSampleRow[] {
    const rows = this.db
      .select()
      .from(sandboxMetrics)
      .where(and(eq(sandboxMetrics.sandboxId, id), gte(sandboxMetrics.ts, startMs), lte(sandboxMetrics.ts, endMs)))
      .orderBy(asc(sandboxMetrics.ts))
      .all();
    return rows.length > METRICS_RANGE_MAX ? rows.slice(rows.length - METRICS_RANGE_MAX) : rows;
  }

  /** Removes samples older than beforeMs; returns how many. */
  prune(beforeMs: number): number {
    return this.db.delete(sandboxMetrics).where(lt(sandboxMetrics.ts, beforeMs)).returning({ ts: sandboxMetrics.ts }).all().length;
  }
}
