// Queries on templates: insert, lookup by id or alias, list, delete.
import { asc, eq } from "drizzle-orm";
import type { Db } from "./db.ts";
import { templates, type NewTemplateRow, type TemplateRow } from "./schema.ts";

export class TemplateStore {
  constructor(private readonly db: Db) {}

  insert(row: NewTemplateRow): void {
    this.db.insert(templates).values(row).run();
  }

  list(): TemplateRow[] {
    return this.db.select().from(templates).orderBy(asc(templates.createdAt)).all();
  }

  byId(id: string): TemplateRow | undefined {
    return this.db.select().from(templates).where(eq(templates.id, id)).get();
  }

  /** Looks a template up by id first, then by alias (E2B accepts either as `templateID`, spec §1.3).
   *  Aliases are few per host, so scanning them in JS keeps the schema simple. */
  resolve(idOrAlias: string): TemplateRow | undefined {
    return this.byId(idOrAlias) ?? this.list().find((t) => aliasesOf(t).includes(idOrAlias));
  }

  /** Sets the `public` flag (PATCH /templates/{id}); returns how many rows changed. */
  setPublic(id: string, value: boolean): number {
    return this.db.update(templates).set({ public: value, updatedAt: Date.now() }).where(eq(templates.id, id)).returning({ id: templates.id }).all().length;
  }

  /** A built template's aliases and defaults (src/builds: a rebuild moves the name to the new build). */
  update(id: string, set: { aliases?: string[]; defaults?: string }): number {
    const v: { aliases?: string; defaults?: string; updatedAt: number } = { updatedAt: Date.now() };
    if (set.aliases) v.aliases = JSON.stringify(set.aliases);
    if (set.defaults !== undefined) v.defaults = set.defaults;
    return this.db.update(templates).set(v).where(eq(templates.id, id)).returning({ id: templates.id }).all().length;
  }

  delete(id: string): number {
    return this.db.delete(templates).where(eq(templates.id, id)).returning({ id: templates.id }).all().length;
  }
}

export function aliasesOf(t: TemplateRow): string[] {
  try {
    const v: unknown = JSON.parse(t.aliases);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}
