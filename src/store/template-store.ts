// Queries on templates: insert, lookup by id, alias or "name:tag", list, delete.
import { asc, eq } from "drizzle-orm";
import type { Db } from "./db.ts";
import { templates, type NewTemplateRow, type TemplateRow } from "./schema.ts";
import type { TagStore } from "./tag-store.ts";

/** The tag a bare name means (E2B: "my-template" is "my-template:default"). */
export const DEFAULT_TAG = "default";
/** Unless a tag of that name was assigned, "name:latest" is the name's newest build (docs/templates.md "Tags"). */
export const LATEST_TAG = "latest";

export class TemplateStore {
  constructor(
    private readonly db: Db,
    private readonly tags: TagStore,
  ) {}

  insert(row: NewTemplateRow): void {
    this.db.insert(templates).values(row).run();
  }

  list(): TemplateRow[] {
    return this.db.select().from(templates).orderBy(asc(templates.createdAt)).all();
  }

  byId(id: string): TemplateRow | undefined {
    return this.db.select().from(templates).where(eq(templates.id, id)).get();
  }

  /** Looks a template up by id first, then by alias or "name:tag" (E2B accepts any as `templateID`, spec §1.3).
   *  A bare name is its `default` tag, which is where the alias is (src/templates/tags.ts keeps them together).
   *  Aliases are few per host, so scanning them in JS keeps the schema simple. */
  resolve(ref: string): TemplateRow | undefined {
    const row = this.byId(ref);
    if (row) return row;
    const colon = ref.indexOf(":");
    if (colon < 0) return this.byAlias(ref);
    return this.byTag(ref.slice(0, colon), ref.slice(colon + 1));
  }

  private byAlias(name: string): TemplateRow | undefined {
    return this.list().find((t) => aliasesOf(t).includes(name));
  }

  /** name:tag: the tag's build; else `default` is the alias's (a template registered before tags), `latest` the
   *  name's newest build, and a build id (E2B's "name:<buildID>") that build of the name. */
  private byTag(name: string, tag: string): TemplateRow | undefined {
    const tagged = this.tags.get(name, tag);
    if (tagged) return this.byId(tagged.templateId);
    if (tag === DEFAULT_TAG) return this.byAlias(name);
    const builds = this.buildsOf(name);
    if (tag === LATEST_TAG) return builds.at(-1);
    return builds.find((t) => t.buildId === tag || t.id === tag);
  }

  /** The templates a name's tags (and its alias) point at, oldest first. */
  buildsOf(name: string): TemplateRow[] {
    const ids = new Set(this.tags.ofName(name).map((t) => t.templateId));
    return this.list().filter((t) => ids.has(t.id) || aliasesOf(t).includes(name));
  }

  /** Sets the `public` flag (PATCH /templates/{id}); returns how many rows changed. */
  setPublic(id: string, value: boolean): number {
    return this.db.update(templates).set({ public: value, updatedAt: Date.now() }).where(eq(templates.id, id)).returning({ id: templates.id }).all().length;
  }

  /** A built template's aliases and defaults (src/builds: a rebuild moves the name to the new build). */
  update(id: string, set: { aliases?: string[]; defaults?: string; buildId?: string }): number {
    const v: { aliases?: string; defaults?: string; buildId?: string; updatedAt: number } = { updatedAt: Date.now() };
    if (set.aliases) v.aliases = JSON.stringify(set.aliases);
    if (set.defaults !== undefined) v.defaults = set.defaults;
    if (set.buildId !== undefined) v.buildId = set.buildId;
    return this.db.update(templates).set(v).where(eq(templates.id, id)).returning({ id: templates.id }).all().length;
  }

  /** The row and every tag pointing at it (a tag never names a template that is gone). */
  delete(id: string): number {
    this.tags.deleteTemplate(id);
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
