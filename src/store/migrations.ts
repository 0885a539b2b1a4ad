// Embedded migrations: SQL strings compiled into the binary (drizzle's file migrator cannot read them).
// Append only: never edit a shipped migration, add a new one. Mirrors schema.ts.

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    id: 1,
    name: "initial",
    sql: `
CREATE TABLE sandboxes (
  id TEXT PRIMARY KEY,
  template_id TEXT NOT NULL,
  alias TEXT,
  state TEXT NOT NULL,
  cpu_count INTEGER NOT NULL,
  memory_mb INTEGER NOT NULL,
  disk_size_mb INTEGER NOT NULL,
  envd_version TEXT NOT NULL,
  envd_access_token TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  env_vars TEXT NOT NULL DEFAULT '{}',
  secure INTEGER NOT NULL DEFAULT 1,
  allow_internet_access INTEGER,
  on_timeout TEXT NOT NULL DEFAULT 'kill',
  auto_resume INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  run_dir TEXT,
  sandbox_dir TEXT,
  vm_pid INTEGER,
  ended_at INTEGER,
  end_reason TEXT,
  end_detail TEXT
);
CREATE INDEX sandboxes_state_started ON sandboxes(state, started_at);
CREATE TABLE templates (
  id TEXT PRIMARY KEY,
  aliases TEXT NOT NULL DEFAULT '[]',
  dir TEXT NOT NULL,
  kernel TEXT NOT NULL,
  initrd TEXT,
  cpu_count INTEGER NOT NULL,
  memory_mb INTEGER NOT NULL,
  disk_size_mb INTEGER NOT NULL,
  envd_version TEXT NOT NULL,
  public INTEGER NOT NULL DEFAULT 0,
  cmdline_extra TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  last_used_at INTEGER
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sandbox_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_sandbox ON events(sandbox_id, at);
`,
  },
  {
    id: 2,
    name: "template ready port",
    // A guest TCP port whose GET /health must answer before create returns (e.g. 49999 for the
    // code interpreter): cold boots have no template snapshot taken after a ready command.
    sql: "ALTER TABLE templates ADD COLUMN ready_port INTEGER;",
  },
  {
    id: 3,
    name: "live sandbox indexes",
    // GET /v2/sandboxes pages by keyset over (started_at, id) and admission sums the claims of live
    // sandboxes (src/store/sandbox-list.ts). Partial indexes keep both proportional to the live
    // rows: ended rows stay forever and never enter them. The (state, started_at) index goes: with
    // it the planner picks state=? and sorts every match, which is what made a page O(table).
    // ended_at is a column of sandboxes_live_claims (always NULL there) only so that the index
    // covers the claims query: SQLite 3.54 still reads the table row to check a partial index's
    // WHERE column otherwise (src/store/sandbox-list.test.ts checks both plans).
    sql: `
DROP INDEX sandboxes_state_started;
CREATE INDEX sandboxes_live_started ON sandboxes(started_at, id) WHERE ended_at IS NULL;
CREATE INDEX sandboxes_live_claims ON sandboxes(state, cpu_count, memory_mb, ended_at) WHERE ended_at IS NULL;
`,
  },
  {
    id: 4,
    name: "live claims index covers vm_pid",
    // A sandbox paused to disk has no VM process (vm_pid NULL) and claims no CPU or memory
    // (SandboxManager.pause); the claims query tells it apart by vm_pid, so the index carries it.
    sql: `
DROP INDEX sandboxes_live_claims;
CREATE INDEX sandboxes_live_claims ON sandboxes(state, cpu_count, memory_mb, vm_pid, ended_at) WHERE ended_at IS NULL;
`,
  },
  {
    id: 5,
    name: "sandbox network config",
    // E2B's `network` (allowOut, denyOut, allowPublicTraffic, maskRequestHost) as JSON, returned by GET
    // /sandboxes/{id} and replaced by PUT /sandboxes/{id}/network (docs/network.md "Egress policy").
    sql: "ALTER TABLE sandboxes ADD COLUMN network TEXT;",
  },
  {
    id: 6,
    name: "sandbox traffic access token",
    // E2B's trafficAccessToken (network.allowPublicTraffic: false), checked by the data plane on every port but envd's.
    sql: "ALTER TABLE sandboxes ADD COLUMN traffic_access_token TEXT;",
  },
  {
    id: 7,
    name: "template snapshot of a sandbox",
    // A template made by POST /sandboxes/{id}/snapshots (src/sandbox/snapshot.ts) names the sandbox it was taken
    // of: GET /snapshots lists these rows (and filters by sandboxID); NULL for templates registered from images.
    sql: "ALTER TABLE templates ADD COLUMN snapshot_of TEXT;",
  },
  {
    id: 8,
    name: "fork captures",
    // A fork's capture (POST /sandboxes/{id}/fork, src/sandbox/fork.ts) is a snapshot template of its own, hidden
    // from GET /snapshots and removed once no live sandbox was created from it.
    sql: "ALTER TABLE templates ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;",
  },
  {
    id: 9,
    name: "filesystem-only auto-pause",
    // E2B's lifecycle.onTimeout {action: "pause", keepMemory: false} (the create body's autoPauseMemory): the
    // timeout's pause keeps only the filesystem and the resume boots it afresh (src/sandbox/pause.ts).
    sql: "ALTER TABLE sandboxes ADD COLUMN auto_pause_memory INTEGER NOT NULL DEFAULT 1;",
  },
  {
    id: 10,
    name: "sandbox metrics history",
    // The guest's CPU, memory and disk, sampled every few seconds while a sandbox runs (src/sandbox/metrics-sampler.ts),
    // kept for a bounded time: GET /sandboxes/{id}/metrics?start&end answers from here.
    sql: `
CREATE TABLE sandbox_metrics (
  sandbox_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  cpu_count INTEGER NOT NULL,
  cpu_used_pct REAL NOT NULL,
  mem_used INTEGER NOT NULL,
  mem_total INTEGER NOT NULL,
  mem_cache INTEGER NOT NULL,
  disk_used INTEGER NOT NULL,
  disk_total INTEGER NOT NULL,
  PRIMARY KEY (sandbox_id, ts)
) WITHOUT ROWID;
CREATE INDEX sandbox_metrics_ts ON sandbox_metrics (ts);`,
  },
  {
    id: 11,
    name: "audit log",
    // Every operation that changes something (src/api/audit.ts, src/proxy/audit-body.ts): who (the API key's id; for
    // the data plane the key that created the sandbox), when, what, on which sandbox. Append-only; kept for the
    // retention (src/store/audit-store.ts). sandboxes.key_id: the key a sandbox was created with.
    sql: `
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  key_id TEXT,
  plane TEXT NOT NULL,
  op TEXT NOT NULL,
  sandbox_id TEXT,
  detail TEXT NOT NULL DEFAULT '',
  status INTEGER
);
CREATE INDEX audit_log_at ON audit_log (at);
ALTER TABLE sandboxes ADD COLUMN key_id TEXT;`,
  },
  {
    id: 12,
    name: "template defaults",
    // A template's env, user, workdir and start command (an OCI image's ENV, USER, WORKDIR, ENTRYPOINT + CMD:
    // src/templates/oci/), sent to the agent's /init of each sandbox; '{}' keeps E2B's defaults.
    sql: "ALTER TABLE templates ADD COLUMN defaults TEXT NOT NULL DEFAULT '{}';",
  },
  {
    id: 13,
    name: "template tags",
    // E2B's tags (POST/DELETE /templates/tags, GET /templates/{id}/tags, "name:tag" in creates): a name's tag points
    // at one build, which is a template row of its own (src/templates/tags.ts). templates.build_id: the build's id
    // (a UUID) for a template made by the build API; NULL for those registered otherwise (their id stands in).
    sql: `
CREATE TABLE template_tags (
  name TEXT NOT NULL,
  tag TEXT NOT NULL,
  template_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (name, tag)
) WITHOUT ROWID;
CREATE INDEX template_tags_template ON template_tags (template_id);
ALTER TABLE templates ADD COLUMN build_id TEXT;`,
  },
];
