// drizzle schema of onebox's SQLite state: sandboxes, templates, API keys, lifecycle events.
// The SQL that creates these tables lives in migrations.ts; keep the two in step.
import { integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A sandbox row's states (src/sandbox/lifecycle.ts has the table of transitions between them). */
export const SANDBOX_STATES = ["starting", "running", "pausing", "paused", "resuming", "stopping", "ended"] as const;
export type SandboxState = (typeof SANDBOX_STATES)[number];

/** Why a sandbox ended; recorded on the row and shown by `onebox sandbox ls --all`. */
export const END_REASONS = [
  "timeout",
  "killed",
  "poweroff",
  "reboot",
  "panic",
  "vmm-crash",
  "vmm-error",
  "oom",
  "start-failed",
  "lost",
] as const;
export type EndReason = (typeof END_REASONS)[number];

export const sandboxes = sqliteTable("sandboxes", {
  id: text("id").primaryKey(),
  templateId: text("template_id").notNull(),
  alias: text("alias"),
  state: text("state", { enum: SANDBOX_STATES }).notNull(),
  cpuCount: integer("cpu_count").notNull(),
  memoryMb: integer("memory_mb").notNull(),
  diskSizeMb: integer("disk_size_mb").notNull(),
  envdVersion: text("envd_version").notNull(),
  envdAccessToken: text("envd_access_token"),
  /** JSON object of string -> string (spec §1.3 `metadata`). */
  metadata: text("metadata").notNull().default("{}"),
  /** JSON object of string -> string, replayed to the agent's /init (spec §3.4). */
  envVars: text("env_vars").notNull().default("{}"),
  secure: integer("secure", { mode: "boolean" }).notNull().default(true),
  allowInternetAccess: integer("allow_internet_access", { mode: "boolean" }),
  /** JSON of E2B's SandboxNetworkConfig as given on create or PUT /network (src/api/network-body.ts); NULL: none. */
  network: text("network"),
  /** E2B's trafficAccessToken, issued on create with `network.allowPublicTraffic: false`: every port but envd's
   *  then needs it in the `e2b-traffic-access-token` header (src/proxy/access.ts). NULL: ports public. */
  trafficAccessToken: text("traffic_access_token"),
  onTimeout: text("on_timeout").notNull().default("kill"),
  autoResume: integer("auto_resume", { mode: "boolean" }).notNull().default(false),
  /** false: the timeout's pause (onTimeout "pause") keeps only the filesystem (E2B's keepMemory: false). */
  autoPauseMemory: integer("auto_pause_memory", { mode: "boolean" }).notNull().default(true),
  /** The id of the API key the sandbox was created with (the audit log's "who" for its data plane); NULL: no auth. */
  keyId: text("key_id"),
  /** Unix ms. */
  startedAt: integer("started_at").notNull(),
  endAt: integer("end_at").notNull(),
  runDir: text("run_dir"),
  sandboxDir: text("sandbox_dir"),
  vmPid: integer("vm_pid"),
  endedAt: integer("ended_at"),
  endReason: text("end_reason", { enum: END_REASONS }),
  endDetail: text("end_detail"),
});

export const templates = sqliteTable("templates", {
  id: text("id").primaryKey(),
  /** JSON array of aliases (names), e.g. ["base"]. */
  aliases: text("aliases").notNull().default("[]"),
  dir: text("dir").notNull(),
  kernel: text("kernel").notNull(),
  initrd: text("initrd"),
  cpuCount: integer("cpu_count").notNull(),
  memoryMb: integer("memory_mb").notNull(),
  diskSizeMb: integer("disk_size_mb").notNull(),
  envdVersion: text("envd_version").notNull(),
  public: integer("public", { mode: "boolean" }).notNull().default(false),
  /** Extra kernel command line appended to the daemon's (e.g. for a PVM guest kernel). */
  cmdlineExtra: text("cmdline_extra").notNull().default(""),
  /** Guest port whose GET /health must answer before a create returns (migration 2). */
  readyPort: integer("ready_port"),
  /** The sandbox this template is a snapshot of (POST /sandboxes/{id}/snapshots, migration 7); NULL: a registered image. */
  snapshotOf: text("snapshot_of"),
  /** A fork's capture (migration 8): not listed as a snapshot, removed once no live sandbox uses it. */
  ephemeral: integer("ephemeral", { mode: "boolean" }).notNull().default(false),
  /** JSON of TemplateDefaults (template-defaults.ts, migration 12): the env, user, workdir and start command a
   *  template's sandboxes get, e.g. from an OCI image's config; "{}": E2B's (user `user`, /home/user). */
  defaults: text("defaults").notNull().default("{}"),
  /** The id (a UUID) of the API build that made this template (migration 13); NULL: registered otherwise. */
  buildId: text("build_id"),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** A template name's tag -> the build (template row) it points at (migration 13, src/templates/tags.ts). */
export const templateTags = sqliteTable(
  "template_tags",
  {
    name: text("name").notNull(),
    tag: text("tag").notNull(),
    templateId: text("template_id").notNull(),
    /** Unix ms: when the tag was assigned to this build. */
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.name, t.tag] })],
);

export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** sha256 hex of the full key; the key itself is shown once and never stored. */
  hash: text("hash").notNull().unique(),
  /** First characters of the key, to tell keys apart in listings. */
  prefix: text("prefix").notNull(),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
  lastUsedAt: integer("last_used_at"),
});

export const events = sqliteTable("events", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  sandboxId: text("sandbox_id").notNull(),
  at: integer("at").notNull(),
  kind: text("kind").notNull(),
  detail: text("detail").notNull().default(""),
});

/** One sample of a running sandbox's guest (the agent's /metrics), unix ms. */
export const sandboxMetrics = sqliteTable(
  "sandbox_metrics",
  {
    sandboxId: text("sandbox_id").notNull(),
    ts: integer("ts").notNull(),
    cpuCount: integer("cpu_count").notNull(),
    cpuUsedPct: real("cpu_used_pct").notNull(),
    memUsed: integer("mem_used").notNull(),
    memTotal: integer("mem_total").notNull(),
    memCache: integer("mem_cache").notNull(),
    diskUsed: integer("disk_used").notNull(),
    diskTotal: integer("disk_total").notNull(),
  },
  (t) => [primaryKey({ columns: [t.sandboxId, t.ts] })],
);

/** The audit log (append-only): one row per operation that changes something. */
export const auditLog = sqliteTable("audit_log", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  /** Unix ms. */
  at: integer("at").notNull(),
  keyId: text("key_id"),
  plane: text("plane", { enum: ["control", "data"] }).notNull(),
  op: text("op").notNull(),
  sandboxId: text("sandbox_id"),
  detail: text("detail").notNull().default(""),
  status: integer("status"),
});

export type SandboxRow = typeof sandboxes.$inferSelect;
export type NewSandboxRow = typeof sandboxes.$inferInsert;
export type TemplateRow = typeof templates.$inferSelect;
export type NewTemplateRow = typeof templates.$inferInsert;
export type TemplateTagRow = typeof templateTags.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type EventRow = typeof events.$inferSelect;
export type MetricSampleRow = typeof sandboxMetrics.$inferSelect;
export type AuditRow = typeof auditLog.$inferSelect;
export type NewAuditRow = typeof auditLog.$inferInsert;
