// Queries on the sandboxes and events tables (the only place that writes them).
import { and, asc, count, desc, eq, inArray, isNull, lt } from "drizzle-orm";
import type { Db } from "./db.ts";
import { countLiveInState, countLiveOfTemplate, liveClaims, selectPage, type Claims, type PageQuery } from "./sandbox-list.ts";
import { events, sandboxes, type EventRow, type NewSandboxRow, type SandboxRow, type SandboxState } from "./schema.ts";

export class SandboxStore {
  constructor(private readonly db: Db) {}

  insert(row: NewSandboxRow): void {
    this.db.insert(sandboxes).values(row).run();
  }

  get(id: string): SandboxRow | undefined {
    return this.db.select().from(sandboxes).where(eq(sandboxes.id, id)).get();
  }

  update(id: string, patch: Partial<NewSandboxRow>): void {
    this.db.update(sandboxes).set(patch).where(eq(sandboxes.id, id)).run();
  }

  /** Removes the row and its events (used to undo a failed create). */
  delete(id: string): void {
    this.db.delete(events).where(eq(events.sandboxId, id)).run();
    this.db.delete(sandboxes).where(eq(sandboxes.id, id)).run();
  }

  /** Rows not yet ended (any live state), oldest first. */
  live(): SandboxRow[] {
    return this.db.select().from(sandboxes).where(isNull(sandboxes.endedAt)).orderBy(asc(sandboxes.startedAt)).all();
  }

  /** Rows in the given states; all rows (ended included) when `states` is null. */
  inStates(states: SandboxState[] | null, order: "asc" | "desc" = "desc"): SandboxRow[] {
    const by = order === "asc" ? [asc(sandboxes.startedAt), asc(sandboxes.id)] : [desc(sandboxes.startedAt), desc(sandboxes.id)];
    const q = this.db.select().from(sandboxes);
    return (states ? q.where(inArray(sandboxes.state, states)) : q).orderBy(...by).all();
  }

  /** The newest rows of any state, ended ones included (the dashboard's list), started before `beforeMs`. */
  recent(q: { states?: SandboxState[]; templateId?: string; beforeMs?: number; limit: number }): SandboxRow[] {
    const where = [];
    if (q.states) where.push(inArray(sandboxes.state, q.states));
    if (q.templateId) where.push(eq(sandboxes.templateId, q.templateId));
    if (q.beforeMs !== undefined) where.push(lt(sandboxes.startedAt, q.beforeMs));
    return this.db.select().from(sandboxes).where(and(...where)).orderBy(desc(sandboxes.startedAt), desc(sandboxes.id)).limit(q.limit).all();
  }

  /** One keyset page of live rows (GET /v2/sandboxes and the v1 list); see sandbox-list.ts. */
  page(q: PageQuery): SandboxRow[] {
    return selectPage(this.db, q);
  }

  /** What live sandboxes claim in total (admission control), as one aggregate query. */
  claims(): Claims {
    return liveClaims(this.db);
  }

  countLiveInState(state: SandboxState): number {
    return countLiveInState(this.db, state);
  }

  countLiveOfTemplate(templateId: string): number {
    return countLiveOfTemplate(this.db, templateId);
  }

  count(): number {
    return this.db.select({ n: count() }).from(sandboxes).get()?.n ?? 0;
  }

  addEvent(sandboxId: string, kind: string, detail = ""): void {
    this.db.insert(events).values({ sandboxId, at: Date.now(), kind, detail }).run();
  }

  eventsOf(sandboxId: string, limit = 1000): EventRow[] {
    return this.db
      .select()
      .from(events)
      .where(and(eq(events.sandboxId, sandboxId)))
      .orderBy(asc(events.at), asc(events.id))
      .limit(limit)
      .all();
  }
}
