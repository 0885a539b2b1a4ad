// Query parameters of the sandbox log routes (E2B openapi: v1 start/limit; v2 cursor/direction/level/limit/search).
import { z } from "zod";
import type { LogLine } from "../sandbox/logs.ts";

/** E2B's own page cap for log routes. */
export const MAX_LOG_LINES = 1000;

const limit = z.coerce.number().int().min(1).max(MAX_LOG_LINES).default(MAX_LOG_LINES);
const ms = z.coerce.number().int().min(0);

/** GET /sandboxes/{id}/logs (deprecated v1): lines from `start` (unix ms) on, oldest first. */
export const LogsQueryV1 = z.object({ start: ms.optional(), limit });

/** GET /v2/sandboxes/{id}/logs. */
export const LogsQueryV2 = z.object({
  /** Unix ms to start from: forward gives lines at or after it, backward lines at or before it. */
  cursor: ms.optional(),
  direction: z.enum(["forward", "backward"]).default("forward"),
  /** Minimum level. */
  level: z.enum(["debug", "info", "warn", "error"]).optional(),
  limit,
  /** Case-sensitive substring of the message. */
  search: z.string().max(1024).optional(),
});

const RANK = { debug: 0, info: 1, warn: 2, error: 3 } as const;

export interface LogFilter {
  cursor?: number;
  direction: "forward" | "backward";
  level?: keyof typeof RANK;
  limit: number;
  search?: string;
}

/** Orders lines by time (stable: lifecycle events and console lines keep their order within one
 *  millisecond), applies the filter, and takes `limit` from the cursor in `direction`. */
export function filterLogs(lines: LogLine[], f: LogFilter): LogLine[] {
  const at = (l: LogLine) => Date.parse(l.timestamp);
  const min = f.level ? RANK[f.level] : 0;
  const kept = lines
    .map((l, i) => ({ l, i, t: at(l) }))
    .filter(({ l, t }) => {
      if (RANK[l.level] < min) return false;
      if (f.search !== undefined && !l.message.includes(f.search)) return false;
      if (f.cursor === undefined) return true;
      return f.direction === "forward" ? t >= f.cursor : t <= f.cursor;
    })
    .sort((a, b) => a.t - b.t || a.i - b.i)
    .map((x) => x.l);
  return f.direction === "forward" ? kept.slice(0, f.limit) : kept.reverse().slice(0, f.limit);
}
