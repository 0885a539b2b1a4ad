// The store facade: one object holding the database and its query classes.
import { openStore, type Store } from "./db.ts";
import { AuditStore } from "./audit-store.ts";
import { KeyStore } from "./key-store.ts";
import { MetricsStore } from "./metrics-store.ts";
import { SandboxStore } from "./sandbox-store.ts";
import { TagStore } from "./tag-store.ts";
import { TemplateStore } from "./template-store.ts";

export interface State extends Store {
  sandboxes: SandboxStore;
  keys: KeyStore;
  templates: TemplateStore;
  tags: TagStore;
  metrics: MetricsStore;
  audit: AuditStore;
}

export function openState(dataDir: string | null): State {
  const store = openStore(dataDir);
  const tags = new TagStore(store.db);
  return {
    ...store,
    sandboxes: new SandboxStore(store.db),
    keys: new KeyStore(store.db),
    templates: new TemplateStore(store.db, tags),
    tags,
    metrics: new MetricsStore(store.db),
    audit: new AuditStore(store.db),
  };
}

export { END_REASONS, SANDBOX_STATES, type EndReason, type SandboxState } from "./schema.ts";
export type { SandboxRow, TemplateRow, NewTemplateRow, ApiKeyRow, EventRow, NewSandboxRow, MetricSampleRow } from "./schema.ts";
export type { MetricsStore } from "./metrics-store.ts";
export type { AuditStore } from "./audit-store.ts";
export type { AuditRow } from "./schema.ts";
export type { Claims, PageQuery } from "./sandbox-list.ts";
export type { SandboxStore } from "./sandbox-store.ts";
export type { TemplateStore } from "./template-store.ts";
export type { TagStore } from "./tag-store.ts";
export type { TemplateTagRow } from "./schema.ts";
