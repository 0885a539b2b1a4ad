// Filtering and cursor paging of sandbox rows for GET /v2/sandboxes (spec §1.3 query parameters).
import type { SandboxRow } from "../store/index.ts";
import { badRequest } from "../util/errors.ts";
import { parseJsonObject } from "./json-fields.ts";

export interface ListQuery {
  /** All pairs must match (infra's parseFilters). */
  metadata: [string, string][];
  /** Row states to include (already mapped from the API's running/paused). */
  states: string[];
  limit: number;
  nextToken?: string;
  order: "asc" | "desc";
  startedAfterMs?: number;
  templateIds?: string[];
}

/** Opaque cursor: the (startedAt, id) of the last item of the page, base64url JSON. */
export function encodeCursor(row: Pick<SandboxRow, "startedAt" | "id">): string {
  return Buffer.from(JSON.stringify([row.startedAt, row.id])).toString("base64url");
}

export function decodeCursor(token: string): [number, string] {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "string") return [v[0], v[1]];
  } catch {
    // fall through to the error below
  }
  throw badRequest("nextToken is not a token this server issued: pass the X-Next-Token of the previous page");
}

function cmp(a: [number, string], b: [number, string]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/** Parses the SDK's metadata parameter (spec §1.3): value already decoded once by the framework,
 *  decode again, split on & and =, decode each part. */
export function parseMetadataFilter(raw: string | undefined): [string, string][] {
  if (!raw) return [];
  let once: string;
  try {
    once = decodeURIComponent(raw);
  } catch {
    throw badRequest("metadata filter is not valid URL encoding: encode each key and value, join as k=v&k2=v2");
  }
  const pairs: [string, string][] = [];
  for (const part of once.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw badRequest(`metadata filter '${part}' has no '=': use key=value pairs joined by '&'`);
    try {
      pairs.push([decodeURIComponent(part.slice(0, eq)), decodeURIComponent(part.slice(eq + 1))]);
    } catch {
      throw badRequest(`metadata filter '${part}' is not valid URL encoding`);
    }
  }
  return pairs;
}

export function filterAndPage(rows: SandboxRow[], q: ListQuery): { items: SandboxRow[]; nextToken: string | null } {
  const sign = q.order === "asc" ? 1 : -1;
  const cursor = q.nextToken ? decodeCursor(q.nextToken) : null;
  const matched = rows
    .filter((r) => q.states.includes(r.state))
    .filter((r) => q.startedAfterMs === undefined || r.startedAt > q.startedAfterMs)
    .filter((r) => !q.templateIds || q.templateIds.includes(r.templateId))
    .filter((r) => {
      if (q.metadata.length === 0) return true;
      const md = parseJsonObject(r.metadata);
      return q.metadata.every(([k, v]) => md[k] === v);
    })
    .sort((a, b) => sign * cmp([a.startedAt, a.id], [b.startedAt, b.id]))
    .filter((r) => !cursor || sign * cmp([r.startedAt, r.id], cursor) > 0);
  const items = matched.slice(0, q.limit);
  const last = items[items.length - 1];
  const nextToken = matched.length > q.limit && last ? encodeCursor(last) : null;
  return { items, nextToken };
}
