// Template builds requested over the API, in memory: their status and log entries (the status and logs routes),
// and the queue that bounds how many run at once. A build's outcome that matters past a restart is the template
// it registers; a build in flight when the daemon stops is lost (the SDK's status poll then gets 404).
import { conflict, notFound } from "../util/errors.ts";
import { newTemplateId } from "../util/ids.ts";

export type BuildStatus = "waiting" | "building" | "ready" | "error";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface LogEntry {
  timestamp: string;
  level: LogLevel;
  message: string;
  step?: string;
}

export interface Build {
  templateID: string;
  buildID: string;
  /** The template name ("name" of "name:tag"). */
  alias: string;
  tags: string[];
  cpuCount: number;
  memoryMb: number;
  status: BuildStatus;
  logs: LogEntry[];
  reason?: { message: string; step?: string; logEntries?: LogEntry[] };
  createdAt: number;
  updatedAt: number;
}

/** Kept per build: E2B's status route pages through them by offset. Past it the oldest go. */
export const MAX_LOG_ENTRIES = 10_000;
/** Finished builds kept for their status and logs (the newest). */
const MAX_FINISHED = 64;

export class BuildRegistry {
  private builds = new Map<string, Build>();
  private running = 0;
  private queue: (() => void)[] = [];

  constructor(private readonly maxConcurrent: number) {}

  request(alias: string, tags: string[], shape: { cpuCount: number; memoryMb: number }): Build {
    for (const b of this.builds.values()) {
      if (b.alias === alias && (b.status === "building" || b.status === "waiting")) throw conflict(`template '${alias}' is being built (build ${b.buildID}): wait for it to finish`);
    }
    const now = Date.now();
    // The build's template id is the id the template is registered under when it is ready.
    const b: Build = { templateID: newTemplateId(), buildID: crypto.randomUUID(), alias, tags, ...shape, status: "waiting", logs: [], createdAt: now, updatedAt: now };
    this.builds.set(b.buildID, b);
    this.trim();
    return b;
  }

  get(templateID: string, buildID: string): Build {
    const b = this.builds.get(buildID);
    if (!b || (b.templateID !== templateID && b.alias !== templateID)) throw notFound(`build '${buildID}' of template '${templateID}' not found`);
    return b;
  }

  /** By template id or alias: the newest build (GET /templates/{id} of a template being built). */
  latest(idOrAlias: string): Build | undefined {
    return [...this.builds.values()].filter((b) => b.templateID === idOrAlias || b.alias === idOrAlias).at(-1);
  }

  /** Every build kept (running, waiting, the newest finished), newest first: the dashboard's templates page. */
  list(): Build[] {
    return [...this.builds.values()].reverse();
  }

  log(b: Build, level: LogLevel, message: string, step?: string): void {
    b.logs.push({ timestamp: new Date().toISOString(), level, message, ...(step !== undefined ? { step } : {}) });
    if (b.logs.length > MAX_LOG_ENTRIES) b.logs.splice(0, b.logs.length - MAX_LOG_ENTRIES);
    b.updatedAt = Date.now();
  }

  /** Runs fn when a slot is free (at most maxConcurrent builds at once); the build waits meanwhile. */
  async run(b: Build, fn: () => Promise<void>): Promise<void> {
    if (b.status !== "waiting") throw conflict(`build ${b.buildID} was already started (${b.status})`);
    b.status = "building";
    if (this.running >= this.maxConcurrent) {
      this.log(b, "info", `waiting for ${this.running} other build(s) to finish (at most ${this.maxConcurrent} at once)`);
      await new Promise<void>((r) => this.queue.push(r));
    }
    this.running++;
    try {
      await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  finish(b: Build, error?: { message: string; step?: string }): void {
    b.status = error ? "error" : "ready";
    if (error) b.reason = { ...error, logEntries: b.logs.slice(-20) };
    b.updatedAt = Date.now();
  }

  private trim(): void {
    const done = [...this.builds.values()].filter((b) => b.status === "ready" || b.status === "error");
    for (const b of done.slice(0, Math.max(0, done.length - MAX_FINISHED))) this.builds.delete(b.buildID);
  }
}
