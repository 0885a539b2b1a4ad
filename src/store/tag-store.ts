// Queries on template tags: a name's tag points at one build (a template row); src/templates/tags.ts moves them.
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Db } from "./db.ts";
import { templateTags, type TemplateTagRow } from "./schema.ts";

export class TagStore {
  constructor(private readonly db: Db) {}

  get(name: string, tag: string): TemplateTagRow | undefined {
    return this.db.select().from(templateTags).where(and(eq(templateTags.name, name), eq(templateTags.tag, tag))).get();
  }

  /** A name's tags, oldest assignment first. */
  ofName(name: string): TemplateTagRow[] {
    return this.db.select().from(templateTags).where(eq(templateTags.name, name)).orderBy(asc(templateTags.createdAt), asc(templateTags.tag)).all();
  }

  /** The tags (of any name) pointing at a template. */
  ofTemplate(templateId: string): TemplateTagRow[] {
    return this.db.select().from(templateTags).where(eq(templateTags.templateId, templateId)).all();
  }

  /** Points name:tag at templateId (replacing where it pointed); returns the template it pointed at before. */
  set(name: string, tag: string, templateId: string, now = Date.now()): string | undefined {
    const before = this.get(name, tag)?.templateId;
    this.db
      .insert(templateTags)
      .values({ name, tag, templateId, createdAt: now })
      .onConflictDoUpdate({ target: [templateTags.name, templateTags.tag], set: { templateId, createdAt: now } })
      .run();
    return before;
  }

  delete(name: string, tags: string[]): number {
    if (tags.length === 0) return 0;
    return this.db.delete(templateTags).where(and(eq(templateTags.name, name), inArray(templateTags.tag, tags))).returning({ tag: templateTags.tag }).all().length;
  }

  /** Every tag pointing at a template (the template is being removed). */
  deleteTemplate(templateId: string): number {
    return this.db.delete(templateTags).where(eq(templateTags.templateId, templateId)).returning({ tag: templateTags.tag }).all().length;
  }
}
