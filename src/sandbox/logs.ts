// A sandbox's logs: its serial console (tail) and its lifecycle events, for the API and the CLI.
import type { State } from "../store/index.ts";
import type { Config } from "../util/config.ts";
import { tailFile } from "../util/tail-file.ts";
import { sandboxPaths } from "./paths.ts";

export interface LogLine {
  timestamp: string;
  level: "info" | "warn" | "error";
  source: "console" | "lifecycle";
  message: string;
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
