// The step runner of template builds: named steps reported as they run, a log file that gets every
// line of output, undo steps for partial output, failures that name their step and show the log's
// last lines, and an interrupt (AbortSignal) that stops the running process and undoes the rest.
import { appendFileSync } from "node:fs";
import { tailFile } from "../util/tail-file.ts";
import { CleanupStack, type Undo } from "../util/cleanup-stack.ts";
import type { ProgressReporter, StepOutcome } from "./progress.ts";

/** How many lines of the log a failure shows. */
export const LOG_TAIL_LINES = 15;

export class BuildError extends Error {
  constructor(
    readonly template: string,
    readonly step: string,
    readonly reason: string,
    readonly logFile: string,
    readonly logTail: string[],
  ) {
    super(`building '${template}' failed at step '${step}': ${reason} (log: ${logFile})`);
  }
}

export class BuildInterrupted extends Error {
  constructor(
    readonly template: string,
    readonly step: string,
    readonly logFile: string,
  ) {
    super(`building '${template}' was interrupted at step '${step}'; its partial output was removed, rerun to continue (finished steps are cached)`);
  }
}

export interface StepRunOptions {
  template: string;
  /** Every step of this build, in order: the progress display counts them. */
  steps: readonly string[];
  logFile: string;
  reporter: ProgressReporter;
  signal?: AbortSignal;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** A line of output that starts a step: returns its name (and whether it was cached), else null. */
  marker?: (line: string) => { step: string; cached: boolean } | null;
  /** A line worth showing next to the spinner. */
  detail?: (line: string) => string | null;
  /** Takes stdout instead of the log (capture()). */
  collect?: (text: string) => void;
  /** Names the command in a failure, with its last line of stderr (the tool's own reason). Default: its first two words. */
  label?: string;
}

/** The most stdout capture() keeps (a manifest or config answer is a few KiB). */
const CAPTURE_MAX = 4 * 1024 * 1024;

export function logTail(file: string, n = LOG_TAIL_LINES): string[] {
  // The end of the log only: a build's log has no size limit of its own.
  const text = tailFile(file, 64 * 1024).trimEnd();
  return text ? text.split("\n").slice(-n) : [];
}

export class StepRun {
  private readonly undo = new CleanupStack();
  private current: { step: string; since: number } | null = null;
  private readonly t0 = performance.now();

  constructor(private readonly o: StepRunOptions) {}

  /** The step running now ("" before the first). */
  get currentStep(): string {
    return this.current?.step ?? "";
  }

  log(line: string): void {
    appendFileSync(this.o.logFile, line.endsWith("\n") ? line : line + "\n");
  }

  /** Registers how to remove something this build made; runs only if the build fails or is interrupted. */
  onFailure(name: string, undo: Undo): void {
    this.undo.push(name, undo);
  }

  private end(outcome: StepOutcome): void {
    if (!this.current) return;
    this.o.reporter.end(this.current.step, outcome, performance.now() - this.current.since);
    this.current = null;
  }

  /** Starts `step`, ending the previous one as done (or marks it cached: done at once). */
  begin(step: string, cached = false): void {
    const index = this.o.steps.indexOf(step);
    if (index < 0) throw new Error(`unknown build step '${step}' (steps: ${this.o.steps.join(", ")})`);
    this.end("done");
    if (this.o.signal?.aborted) throw new Error("interrupted");
    this.current = { step, since: performance.now() };
    this.log(`== ${new Date().toISOString()} step ${step}${cached ? " (cached)" : ""}`);
    this.o.reporter.begin(step, index + 1, this.o.steps.length);
    if (cached) this.end("cached");
  }

  /** Runs fn as `step`. */
  async step<T>(step: string, fn: () => Promise<T> | T): Promise<T> {
    this.begin(step);
    return await fn();
  }

  /** Runs a command in its own process group, its output into the log; an interrupt stops the
   *  whole group (SIGTERM, then SIGKILL after 10 s) so that a script's own cleanup can run. */
  async spawn(cmd: string[], opts: SpawnOptions = {}): Promise<void> {
    if (this.o.signal?.aborted) throw new Error("interrupted");
    this.log(`$ ${cmd.join(" ")}`);
    // setsid: the child leads its own group (kill(-pid) reaches its children, e.g. debootstrap),
    // and a terminal's Ctrl-C reaches only us, so the interrupt goes through the abort path below.
    // umask 022: the daemon's 077 (src/main.ts) must not reach the files a build puts inside a guest image
    // (debootstrap, the initramfs); what lands in the data dir is copied there with the daemon's umask.
    const p = Bun.spawn(["setsid", "sh", "-c", 'umask 022 && exec "$@"', "sh", ...cmd], { cwd: opts.cwd, env: opts.env ? { ...process.env, ...opts.env } : undefined, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const stop = () => {
      try {
        process.kill(-p.pid, "SIGTERM");
      } catch {
        // already gone
      }
      setTimeout(() => {
        try {
          process.kill(-p.pid, "SIGKILL");
        } catch {
          // gone
        }
      }, 10_000).unref();
    };
    this.o.signal?.addEventListener("abort", stop, { once: true });
    let lastErr = "";
    const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean) => {
      const dec = new TextDecoder();
      if (!isErr && opts.collect) {
        for await (const chunk of stream) opts.collect(dec.decode(chunk, { stream: true }));
        return;
      }
      let rest = "";
      const onLine = (line: string) => {
        this.log(line);
        if (isErr && line.trim()) lastErr = line.trim();
        const m = opts.marker?.(line);
        if (m && !this.o.signal?.aborted && this.o.steps.includes(m.step)) {
          // The caller may have started this step already (before the script said so): keep one entry.
          if (m.step !== this.current?.step) this.begin(m.step, m.cached);
          else if (m.cached) this.end("cached");
        }
        const d = opts.detail?.(line);
        if (d) this.o.reporter.detail(d);
      };
      for await (const chunk of stream) {
        rest += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = rest.indexOf("\n")) >= 0) {
          onLine(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
      }
      if (rest) onLine(rest);
    };
    try {
      const [code] = await Promise.all([p.exited, pump(p.stdout, false), pump(p.stderr, true)]);
      if (this.o.signal?.aborted) throw new Error("interrupted");
      if (code !== 0) {
        if (opts.label) throw new Error(`${opts.label} exited with status ${code}${lastErr ? `: ${lastErr.slice(0, 500)}` : ""}`);
        throw new Error(`${cmd.slice(0, 2).join(" ")} exited with status ${code}`);
      }
    } finally {
      this.o.signal?.removeEventListener("abort", stop);
    }
  }

  /** Runs a command like spawn() and returns its stdout (at most 4 MiB; stderr goes to the log). */
  async capture(cmd: string[], opts: Omit<SpawnOptions, "collect"> = {}): Promise<string> {
    let out = "";
    let over = false;
    await this.spawn(cmd, {
      ...opts,
      collect: (t) => {
        if (out.length + t.length > CAPTURE_MAX) over = true;
        else out += t;
      },
    });
    if (over) throw new Error(`${opts.label ?? cmd[0]} wrote more than ${CAPTURE_MAX} bytes`);
    return out;
  }

  /** Runs a whole build: on success the undo steps are dropped; on failure or interrupt they run
   *  (newest first) and the error says which step it was and shows the log's last lines. */
  async run<T>(body: (r: StepRun) => Promise<T>): Promise<T> {
    this.log(`== ${new Date().toISOString()} building ${this.o.template} (steps: ${this.o.steps.join(", ")})`);
    try {
      const result = await body(this);
      this.end("done");
      this.undo.release();
      this.o.reporter.finish(true, performance.now() - this.t0);
      this.log(`== ${new Date().toISOString()} built ${this.o.template}`);
      return result;
    } catch (e) {
      const step = this.currentStep || this.o.steps[0] || "";
      const interrupted = this.o.signal?.aborted === true;
      this.end(interrupted ? "interrupted" : "failed");
      const reason = e instanceof Error ? e.message : String(e);
      this.log(`== ${new Date().toISOString()} ${interrupted ? "interrupted" : `failed at ${step}: ${reason}`}`);
      const tail = logTail(this.o.logFile);
      for (const err of await this.undo.unwind()) this.log(`cleanup: ${err.message}`);
      this.o.reporter.finish(false, performance.now() - this.t0);
      if (interrupted) throw new BuildInterrupted(this.o.template, step, this.o.logFile);
      throw new BuildError(this.o.template, step, reason, this.o.logFile, tail);
    }
  }
}
