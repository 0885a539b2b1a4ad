// Shows a template build's steps as they run: a spinner line with elapsed time on a terminal,
// plain step lines otherwise (pipes, CI), or log records for `onebox serve`.
import { log } from "../util/log.ts";

export type StepOutcome = "done" | "cached" | "failed" | "interrupted";

/** What a build reports; the step runner (build-steps.ts) is the only caller. */
export interface ProgressReporter {
  /** A step starts; index is 1-based in a build of total steps. */
  begin(step: string, index: number, total: number): void;
  /** A line of detail for the running step (e.g. the script's own step text). */
  detail(text: string): void;
  end(step: string, outcome: StepOutcome, ms: number): void;
  /** The whole build ends; a failure's message is printed by the caller. */
  finish(ok: boolean, ms: number): void;
}

export function formatMs(ms: number): string {
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

/** Plain lines, one when a step starts and one when it ends: readable in logs and pipes. */
export class LineProgress implements ProgressReporter {
  constructor(
    private readonly name: string,
    private readonly write: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  ) {}
  begin(step: string, index: number, total: number): void {
    this.write(`${this.name}: [${index}/${total}] ${step} ...`);
  }
  detail(): void {
    // Details go to the build log only: a pipe reader wants one line per step.
  }
  end(step: string, outcome: StepOutcome, ms: number): void {
    this.write(`${this.name}: ${step} ${outcome} (${formatMs(ms)})`);
  }
  finish(ok: boolean, ms: number): void {
    this.write(`${this.name}: ${ok ? "built" : "failed"} in ${formatMs(ms)}`);
  }
}

/** Log records, for the builds `onebox serve` runs in the background at first start. */
export class LogProgress implements ProgressReporter {
  constructor(private readonly name: string) {}
  begin(step: string, index: number, total: number): void {
    log.info("template build step", { template: this.name, step, of: `${index}/${total}` });
  }
  detail(): void {}
  end(step: string, outcome: StepOutcome, ms: number): void {
    (outcome === "failed" ? log.warn : log.info)("template build step " + outcome, { template: this.name, step, ms: Math.round(ms) });
  }
  finish(): void {}
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** A bar of steps plus a spinner and the running step's elapsed time, redrawn in place on a TTY. */
export class TtyProgress implements ProgressReporter {
  private timer: ReturnType<typeof setInterval> | null = null;
  private frame = 0;
  private step = "";
  private index = 0;
  private total = 0;
  private since = 0;
  private text = "";
  private readonly start = performance.now();

  constructor(
    private readonly name: string,
    private readonly out: { write(s: string): unknown; columns?: number } = process.stdout,
  ) {}

  private draw(): void {
    const done = this.index - 1;
    const bar = "#".repeat(done) + ">" + ".".repeat(Math.max(0, this.total - this.index));
    const line = `${FRAMES[this.frame++ % FRAMES.length]} ${this.name} [${bar}] ${this.index}/${this.total} ${this.step} ${formatMs(performance.now() - this.since)} (total ${formatMs(performance.now() - this.start)})${this.text ? "  " + this.text : ""}`;
    const width = (this.out.columns ?? 100) - 1;
    this.out.write("\r\x1b[2K" + (line.length > width ? line.slice(0, width) : line));
  }

  begin(step: string, index: number, total: number): void {
    Object.assign(this, { step, index, total, since: performance.now(), text: "" });
    this.draw();
    this.timer ??= setInterval(() => this.draw(), 100);
  }
  detail(text: string): void {
    this.text = text;
  }
  end(step: string, outcome: StepOutcome, ms: number): void {
    const mark = outcome === "failed" || outcome === "interrupted" ? "✗" : "✓";
    this.out.write(`\r\x1b[2K${mark} ${this.name}: ${step} ${outcome} (${formatMs(ms)})\n`);
  }
  finish(ok: boolean, ms: number): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.out.write(`${ok ? "✓" : "✗"} ${this.name}: ${ok ? "built" : "failed"} in ${formatMs(ms)}\n`);
  }
}

/** The right reporter for the CLI: a spinner on a terminal, plain lines otherwise. */
export function cliProgress(name: string): ProgressReporter {
  return process.stdout.isTTY ? new TtyProgress(name) : new LineProgress(name);
}
