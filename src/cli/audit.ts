// `onebox audit export [--since WHEN]`: the audit log as JSON lines (one object per operation, oldest first), read
// from the database directly (daemon running or not). WHEN: an ISO 8601 time, or an age like 90m, 24h, 7d.
import { openState } from "../store/index.ts";
import { dataDirOf, parseArgs, str } from "./args.ts";

const USAGE = `usage: onebox audit export [--since 2026-12-01T00:00:00Z | 24h | 7d] [--data-dir DIR]
  prints one JSON object per line: {id, at, keyId, plane, op, sandboxId, detail, status}`;

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Unix ms of --since: an ISO time or an age before now; null when it is neither. */
export function parseSince(v: string, now = Date.now()): number | null {
  const age = /^(\d+)([smhd])$/.exec(v);
  if (age) return now - Number(age[1]) * UNITS[age[2]!]!;
  if (!/^\d{4}-\d{2}-\d{2}/.test(v)) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

export async function auditCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ["help"]);
  const [sub] = a.positionals;
  if (sub !== "export") {
    console.error(USAGE);
    return 2;
  }
  const sinceArg = str(a, "since");
  const since = sinceArg === undefined ? 0 : parseSince(sinceArg);
  if (since === null) {
    console.error(`onebox audit export: --since wants an ISO time (2026-12-01T00:00:00Z) or an age (90m, 24h, 7d), not '${sinceArg}'`);
    return 2;
  }
  const state = openState(dataDirOf(a));
  try {
    // Paged by id, so an export of a long log holds one page in memory, and rows appended meanwhile come at the end.
    for (let after = 0; ; ) {
      const rows = state.audit.since(since, after, 1000);
      if (rows.length === 0) break;
      const out = rows.map((r) => JSON.stringify({ ...r, at: new Date(r.at).toISOString() })).join("\n");
      process.stdout.write(`${out}\n`);
      after = rows[rows.length - 1]!.id;
    }
    return 0;
  } finally {
    state.close();
  }
}
