// The shapes the dashboard reads from the API (src/api/routes-onebox.ts, routes-admin.ts, serialize.ts).
export interface Row {
  sandboxID: string;
  templateID: string;
  alias: string | null;
  state: string;
  cpuCount: number;
  memoryMB: number;
  diskSizeMB: number;
  envdVersion: string;
  startedAt: number;
  endAt: number;
  endedAt: number | null;
  endReason: string | null;
  endDetail: string | null;
  keyId: string | null;
  metadata: Record<string, string>;
  spark?: { cpu: number[]; mem: number[] };
}

export interface Sample {
  timestampUnix: number;
  cpuUsedPct: number;
  memUsed: number;
  memTotal: number;
  diskUsed: number;
  diskTotal: number;
}

export interface Detail {
  sandbox: Row;
  events: { at: number; kind: string; detail: string }[];
  logs: { timestamp: string; level: string; source: string; message: string }[];
  metrics: Sample[];
}

export interface Key {
  id: string;
  name: string;
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  admin: boolean;
}

export interface AuditRow {
  id: number;
  at: number;
  keyId: string | null;
  plane: string;
  op: string;
  sandboxId: string | null;
  detail: string;
  status: number | null;
}

export interface Template {
  templateID: string;
  aliases: string[];
  cpuCount: number;
  memoryMB: number;
  diskSizeMB?: number;
  envdVersion?: string;
  createdAt: string;
  public?: boolean;
}

/** Live states (not ended): what "live" in the list's filter means. */
export const LIVE = ["starting", "running", "pausing", "paused", "resuming", "stopping"];
