// GET /v2/sandboxes and the v1 list (spec §1.3 query parameters): the metadata filter's parsing,
// the opaque X-Next-Token cursor, and one page from SQLite (filters and keyset paging run in SQL).
import type { SandboxRow, SandboxState, SandboxStore } from "../store/index.ts";
import { badRequest } from "../util/errors.ts";

export interface ListQuery {
  /** All pairs must match (infra's parseFilters). */
  metadata: [string, string][];
  /** Row states to include (already mapped from the API's running/paused). */
  states: SandboxState[];
  /** Page size; no limit and no next token when absent (v1 list). */
  limit?: number;
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
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === "string") return [v[0] as number, v[1]];
  } catch {
    // fall through to the error below
  }
  throw badRequest("nextToken is not a token this server issued: pass the X-Next-Token of the previous page");
}

export const MAX_METADATA_PAIRS = 64;

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
  // Each pair is two SQL parameters; a bound keeps a hostile query string a 400, not a SQLite error.
  if (pairs.length > MAX_METADATA_PAIRS) throw badRequest(`metadata filter has ${pairs.length} pairs; at most ${MAX_METADATA_PAIRS} are allowed`);
  return pairs;
}

/** One page: asks SQLite for limit + 1 rows after the cursor; the extra row only says whether a
 *  next page exists (X-Next-Token is absent on the last page, which ends the SDK's iteration).
 *  Keyset paging: rows added or removed between pages never shift the others, so a walk sees
 *  every row that stayed live exactly once. */
export function listPage(store: SandboxStore, q: ListQuery): { items: SandboxRow[]; nextToken: string | null } {
  const after = q.nextToken ? decodeCursor(q.nextToken) : undefined;
  const rows = store.page({
    states: q.states,
    metadata: q.metadata,
    templateIds: q.templateIds,
    startedAfterMs: q.startedAfterMs,
    after,
    order: q.order,
    limit: q.limit === undefined ? undefined : q.limit + 1,
  });
  if (q.limit === undefined || rows.length <= q.limit) return { items: rows, nextToken: null };
  const items = rows.slice(0, q.limit);
  return { items, nextToken: encodeCursor(items[items.length - 1]!) };
}
