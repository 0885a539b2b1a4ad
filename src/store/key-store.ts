// Queries on api_keys: create (returns the key once), verify by hash, list, revoke.
import { and, asc, count, eq, isNull, or, sql } from "drizzle-orm";
import { newApiKey, newSandboxId, sha256Hex } from "../util/ids.ts";
import type { Db } from "./db.ts";
import { apiKeys, type ApiKeyRow } from "./schema.ts";

export type KeyInfo = Omit<ApiKeyRow, "hash">;

export class KeyStore {
  constructor(private readonly db: Db) {}

  /** Creates a key; the plain key is returned here only and never stored. */
  create(name: string): { key: string; info: KeyInfo } {
    const key = newApiKey();
    const row: ApiKeyRow = {
      id: newSandboxId(12),
      name,
      hash: sha256Hex(key),
      prefix: key.slice(0, 10),
      createdAt: Date.now(),
      revokedAt: null,
      lastUsedAt: null,
    };
    this.db.insert(apiKeys).values(row).run();
    const { hash: _hash, ...info } = row;
    return { key, info };
  }

  /** True when the key exists and is not revoked. */
  verify(key: string): boolean {
    return this.identify(key) !== null;
  }

  /** The id of the key (what the audit log records: never the key) if it exists and is not revoked, else null. */
  identify(key: string): string | null {
    const row = this.db
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(eq(apiKeys.hash, sha256Hex(key)), isNull(apiKeys.revokedAt)))
      .get();
    return row?.id ?? null;
  }

  list(): KeyInfo[] {
    return this.db
      .select({
        id: apiKeys.id,
        name: apiKeys.name,
        prefix: apiKeys.prefix,
        createdAt: apiKeys.createdAt,
        revokedAt: apiKeys.revokedAt,
        lastUsedAt: apiKeys.lastUsedAt,
      })
      .from(apiKeys)
      .orderBy(asc(apiKeys.createdAt))
      .all();
  }

  /** The admin key's id: the first key made (at first start, written to $DATA/admin-key), null once it is revoked.
   *  Key management over HTTP (api/routes-onebox.ts) takes only this key: any other key is a user, not an operator. */
  adminId(): string | null {
    const first = this.db.select({ id: apiKeys.id, revokedAt: apiKeys.revokedAt }).from(apiKeys).orderBy(asc(apiKeys.createdAt), asc(sql`rowid`)).limit(1).get();
    return first && first.revokedAt === null ? first.id : null;
  }

  activeCount(): number {
    return this.db.select({ n: count() }).from(apiKeys).where(isNull(apiKeys.revokedAt)).get()?.n ?? 0;
  }

  /** Revokes the key with this id only (HTTP: a name may be chosen to look like another key's id). */
  revokeId(id: string): boolean {
    return this.db.update(apiKeys).set({ revokedAt: Date.now() }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).returning({ id: apiKeys.id }).all().length > 0;
  }

  /** Revokes by id or by name; returns how many keys were revoked. */
  revoke(idOrName: string): number {
    const res = this.db
      .update(apiKeys)
      .set({ revokedAt: Date.now() })
      .where(and(or(eq(apiKeys.id, idOrName), eq(apiKeys.name, idOrName)), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id })
      .all();
    return res.length;
  }
}
