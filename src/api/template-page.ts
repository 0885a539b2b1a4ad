// One page of templates (GET /v2/templates, GET /snapshots): oldest first by (createdAt, id), cut in JS from the
// full list (a host has few), with the same opaque [time, id] X-Next-Token as GET /v2/sandboxes.
import { decodeCursor, encodeCursor } from "../sandbox/list-query.ts";
import type { TemplateRow } from "../store/index.ts";

export function templatePage(rows: TemplateRow[], limit: number, nextToken?: string): { page: TemplateRow[]; nextToken: string | null } {
  const all = [...rows].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let start = 0;
  if (nextToken) {
    const after = decodeCursor(nextToken);
    start = all.findIndex((t) => t.createdAt > after[0] || (t.createdAt === after[0] && t.id > after[1]));
    if (start < 0) start = all.length;
  }
  const page = all.slice(start, start + limit);
  const last = page[page.length - 1];
  return { page, nextToken: last && start + limit < all.length ? encodeCursor({ startedAt: last.createdAt, id: last.id }) : null };
}
