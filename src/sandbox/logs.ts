// A sandbox's logs: its serial console (tail) and its lifecycle events, for the API and the CLI.
import { existsSync, openSync, readSync, closeSync, statSync } from "node:fs";
import type { State } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { sandboxPaths } from "./runtime.ts";

export interface LogLine {
  timestamp: string;
  level: "info" | "warn" | "error";
  source: "console" | "lifecycle";
  message: string;
}

/** Last `maxBytes` of a file, cut at a line boundary. */
export function tailFile(path: string, maxBytes = 64 * 1024): string {
  if (!existsSync(path)) return "";
  const size = statSync(path).size;
  const start = Math.max(0, size - maxBytes);
  const buf = Buffer.alloc(size - start);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buf.toString("utf8");
  return start > 0 ? text.slice(text.indexOf("\n") + 1) : text;
}

export function sandboxLogs(state: State, config: Config, id: string, limit = 1000): LogLine[] {
  const row = state.sandboxes.get(id);
  if (!row) return [];
  const lines: LogLine[] = state.sandboxes.eventsOf(id).map((e) => ({
    timestamp: new Date(e.at).toISOString(),
    level: e.kind === "end" && !/^(killed|timeout)/.test(e.detail) ? "warn" : "info",
    source: "lifecycle",
    message: e.detail ? `${e.kind}: ${e.detail}` : e.kind,
  }));
  // The console has no timestamps of its own: stamp its lines with the sandbox's start.
  const at = new Date(row.startedAt).toISOString();
  for (const line of tailFile(sandboxPaths(config, id).console).split("\n")) {
    if (line.trim()) lines.push({ timestamp: at, level: "info", source: "console", message: line.replace(/\r$/, "") });
  }
  return lines.slice(-limit);
}
