// The audit log's queries: append, read from a time on (oldest first, paged by id), and retention. Nothing updates a
// row: the log is append-only; the only delete is the retention's, of rows older than it.
import { and, asc, desc, gt, gte, lt } from "drizzle-orm";
import type { Db } from "./db.ts";
import { auditLog, type AuditRow, type NewAuditRow } from "./schema.ts";

/** Longest detail kept (a command line, a path): an audit row must not grow with what a client sends. */
export const AUDIT_DETAIL_MAX = 4096;

export class AuditStore {
  constructor(private readonly db: Db) {}

  append(row: Omit<NewAuditRow, "id">): void {
    const detail = (row.detail ?? "").length > AUDIT_DETAIL_MAX ? `${(row.detail ?? "").slice(0, AUDIT_DETAIL_MAX)}…` : (row.detail ?? "");
    this.db.insert(auditLog).values({ ...row, detail }).run();
  }

  /** Rows with at >= sinceMs and id > afterId, oldest first, at most limit. */
  since(sinceMs: number, afterId = 0, limit = 1000): AuditRow[] {
    return this.db.select().from(auditLog).where(and(gte(auditLog.at, sinceMs), gt(auditLog.id, afterId))).orderBy(asc(auditLog.id)).limit(limit).all();
  }

  /** The newest rows with id < beforeId (all when absent), newest first, at most limit (the dashboard's pages). */
  latest(limit: number, beforeId?: number): AuditRow[] {
    const q = this.db.select().from(auditLog);
    return (beforeId !== undefined ? q.where(lt(auditLog.id, beforeId)) : q).orderBy(desc(auditLog.id)).limit(limit).all();
  }

  /** Removes rows older than beforeMs (the retention); returns how many. */
  prune(beforeMs: number): number {
    return this.db.delete(auditLog).where(lt(auditLog.at, beforeMs)).returning({ id: auditLog.id }).all().length;
  }
}
