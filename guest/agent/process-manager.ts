// Spawns and tracks processes (pipes or a pty), fans their output out to subscribers (e2b-protocol.md §3.2).
import { existsSync, statSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { resolve as resolvePath } from "node:path";
import type { Subprocess, Terminal } from "bun";
import { ConnectError } from "./connect.ts";
import { oomNote, UserCgroup } from "./user-cgroup.ts";
import type { UserInfo } from "./users.ts";

export type OutputKind = "stdout" | "stderr" | "pty";

/** `ProcessEvent.end` (§3.2), in the shape Go's os.ProcessState gives envd. */
export interface EndEvent {
  exitCode: number;
  exited: boolean;
  status: string;
  error?: string;
}

export interface ProcessConfig {
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd?: string;
}

export interface Subscriber {
  /** Returns a promise when the subscriber wants the producer to wait (back-pressure). */
  data(kind: OutputKind, bytes: Uint8Array): void | Promise<void>;
  end(end: EndEvent): void;
}

export interface StartOptions {
  config: ProcessConfig;
  user: UserInfo;
  cwd: string;
  env: Record<string, string>;
  tag?: string;
  pty?: { cols: number; rows: number };
  /** false = /dev/null (§3.2: the SDK sends false unless asked); true or absent = a pipe. */
  stdin: boolean;
  /** Connect-Timeout-Ms: the process's maximum lifetime (§3.1). */
  timeoutMs?: number;
}

/** Exited processes stay visible to Connect for a while ("a recently exited process gives start + end"). */
const KEEP_EXITED_MS = 60_000;
/** After exit, output is still forwarded until the pipes are idle this long, and at most this long. */
const DRAIN_IDLE_MS = 100;
const DRAIN_AFTER_EXIT_MS = 2_000;
const MAX_EXITED_KEPT = 256;
const USER_OOM_SCORE_ADJ = "100";

const SIGNAL_NAMES: Record<number, string> = {
  1: "hangup", 2: "interrupt", 3: "quit", 6: "aborted", 9: "killed", 13: "broken pipe", 14: "alarm clock", 15: "terminated",
};
const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
};

export class ManagedProcess {
  readonly subscribers = new Set<Subscriber>();
  endEvent: EndEvent | undefined;
  endedAt = 0;
  lastOutputAt = Date.now();
  private stdinChain: Promise<void> = Promise.resolve();
  stdinOpen: boolean;
  /** The agent sent it a signal (SendSignal, lifetime): its death is not the OOM killer's doing. */
  signalledByAgent = false;
  /** The user cgroup's oom_kill count when it started (user-cgroup.ts). */
  oomKillsAtStart = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly pid: number,
    readonly config: ProcessConfig,
    readonly tag: string | undefined,
    readonly proc: Subprocess<"pipe" | "ignore", "pipe", "pipe"> | Subprocess,
    readonly terminal: Terminal | undefined,
    stdinPiped: boolean,
  ) {
    this.stdinOpen = stdinPiped || terminal !== undefined;
  }

  setLifetime(ms: number): void {
    this.timer = setTimeout(() => this.signal(9), ms);
  }

  clearLifetime(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Signals the process group (the command's children too), falling back to the pid. */
  signal(sig: number): void {
    if (this.endEvent) return;
    this.signalledByAgent = true;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  /**
   * Writes input; stdin resolves once the pipe took the bytes (like envd's blocking write), so a
   * child that does not read cannot make the agent buffer unbounded input.
   */
  async writeInput(kind: "stdin" | "pty", bytes: Uint8Array): Promise<void> {
    if (this.endEvent) throw new ConnectError("not_found", `process ${this.pid} has exited`);
    if (kind === "pty") {
      if (!this.terminal) throw new ConnectError("failed_precondition", "process has no pty; send stdin instead");
      this.terminal.write(bytes);
      return;
    }
    if (this.terminal) throw new ConnectError("failed_precondition", "process has a pty; send pty input instead");
    const sink = this.proc.stdin;
    if (!this.stdinOpen || !sink || typeof sink === "number") {
      throw new ConnectError("failed_precondition", "stdin is not open for this process");
    }
    // One write in flight per process: concurrent SendInputs queue here, not in the pipe's buffer.
    const prev = this.stdinChain;
    let release!: () => void;
    this.stdinChain = new Promise<void>((r) => (release = r));
    try {
      await prev;
      sink.write(bytes);
      await sink.flush();
    } catch (e) {
      throw new ConnectError("failed_precondition", `cannot write to stdin: ${(e as Error).message}`);
    } finally {
      release();
    }
  }

  closeStdin(): void {
    if (this.endEvent) throw new ConnectError("not_found", `process ${this.pid} has exited`);
    if (this.terminal) throw new ConnectError("failed_precondition", "cannot close stdin of a pty process");
    const sink = this.proc.stdin;
    if (this.stdinOpen && sink && typeof sink !== "number") void sink.end();
    this.stdinOpen = false;
  }

  resize(cols: number, rows: number): void {
    if (this.endEvent) throw new ConnectError("not_found", `process ${this.pid} has exited`);
    if (!this.terminal) throw new ConnectError("failed_precondition", "process has no pty");
    this.terminal.resize(cols, rows);
  }

  /** Delivers a chunk to all subscribers and waits while any of them is full. */
  async deliver(kind: OutputKind, bytes: Uint8Array): Promise<void> {
    this.lastOutputAt = Date.now();
    const waits: Promise<void>[] = [];
    for (const s of this.subscribers) {
      const w = s.data(kind, bytes);
      if (w) waits.push(w);
    }
    if (waits.length) await Promise.all(waits);
  }

  finish(end: EndEvent): void {
    if (this.endEvent) return;
    this.clearLifetime();
    this.endEvent = end;
    this.endedAt = Date.now();
    this.stdinOpen = false;
    for (const s of this.subscribers) s.end(end);
    this.subscribers.clear();
    try {
      this.terminal?.close();
    } catch {
      // closed already
    }
  }
}

export function signalNumber(name: unknown): number | undefined {
  if (name === "SIGNAL_SIGKILL" || name === 9) return 9;
  if (name === "SIGNAL_SIGTERM" || name === 15) return 15;
  if (typeof name === "string") return SIGNAL_NUMBERS[name];
  return undefined;
}

function endFromExit(code: number | null, signal: number | null): EndEvent {
  if (signal !== null && signal !== 0) {
    const status = `signal: ${SIGNAL_NAMES[signal] ?? `signal ${signal}`}`;
    return { exitCode: -1, exited: false, status, error: status };
  }
  const c = code ?? 0;
  const status = `exit status ${c}`;
  return c === 0 ? { exitCode: 0, exited: true, status } : { exitCode: c, exited: true, status, error: status };
}

const STOP = Symbol("stop");
const WAKE = Symbol("wake");

/**
 * Forwards one output pipe. After the process exits, the pipe is drained until it stays idle
 * for DRAIN_IDLE_MS or until DRAIN_AFTER_EXIT_MS (a background child may hold it open forever).
 * The next read starts only after subscribers took the chunk: back-pressure reaches the child.
 */
async function pump(p: ManagedProcess, kind: OutputKind, stream: ReadableStream<Uint8Array>, exited: Promise<void>) {
  const reader = stream.getReader();
  let isExited = false;
  void exited.then(() => (isExited = true));
  const hardStop = exited.then(() => Bun.sleep(DRAIN_AFTER_EXIT_MS)).then(() => STOP);
  const woke = exited.then(() => WAKE);
  let pending = reader.read();
  try {
    for (;;) {
      const r = await Promise.race([pending, hardStop, isExited ? Bun.sleep(DRAIN_IDLE_MS).then(() => STOP) : woke]);
      if (r === STOP) break;
      if (r === WAKE) continue;
      if (typeof r === "symbol" || r.done) break;
      if (r.value.byteLength) await p.deliver(kind, r.value);
      pending = reader.read();
    }
  } catch {
    // pipe error: treat as EOF
  } finally {
    reader.cancel().catch(() => {});
  }
}

function signalCodeNumber(sig: string | number | null | undefined): number | null {
  if (sig === null || sig === undefined || sig === 0) return null;
  if (typeof sig === "number") return sig;
  return (osConstants.signals as Record<string, number>)[sig] ?? null;
}

/** The process table: running and recently exited processes, by pid. */
export class ProcessManager {
  readonly processes = new Map<number, ManagedProcess>();
  /** onebox's own static tool (guest/init/tools/onebox-runas.c, in every image onebox builds): an exec cheaper than
   *  setpriv's, which an older image may need instead. ONEBOX_AGENT_RUNAS names it elsewhere (host tests). */
  private runasPath = [process.env.ONEBOX_AGENT_RUNAS ?? "/opt/onebox/bin/onebox-runas"].find((p) => existsSync(p));
  private setprivPath = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
  private cgroup: UserCgroup;

  constructor(cgroup = new UserCgroup()) {
    this.cgroup = cgroup;
  }

  list(): ManagedProcess[] {
    this.prune();
    return [...this.processes.values()].filter((p) => !p.endEvent);
  }

  /** By pid or tag (`ProcessSelector`, §3.2); includes recently exited processes. */
  find(selector: { pid?: number; tag?: string }): ManagedProcess {
    this.prune();
    if (selector.pid !== undefined) {
      const p = this.processes.get(selector.pid);
      if (p) return p;
      throw new ConnectError("not_found", `process with pid ${selector.pid} not found`);
    }
    for (const p of this.processes.values()) if (p.tag === selector.tag && !p.endEvent) return p;
    for (const p of this.processes.values()) if (p.tag === selector.tag) return p;
    throw new ConnectError("not_found", `process with tag ${selector.tag} not found`);
  }

  start(o: StartOptions, first: Subscriber & { started(pid: number): void }): ManagedProcess {
    try {
      if (!statSync(o.cwd).isDirectory()) throw new Error("not a directory");
    } catch {
      throw new ConnectError("invalid_argument", `cwd '${o.cwd}' does not exist or is not a directory`);
    }
    // Same answer for every user: a missing program fails the start (not an exit 127 from setpriv).
    const found = o.config.cmd.includes("/") ? existsSync(resolvePath(o.cwd, o.config.cmd)) : Bun.which(o.config.cmd, { PATH: o.env.PATH ?? "" }) !== null;
    if (!found) throw new ConnectError("invalid_argument", `executable file '${o.config.cmd}' not found in $PATH`);
    let argv = [o.config.cmd, ...o.config.args];
    let ids: { uid?: number; gid?: number } = {};
    const asOther = o.user.uid !== 0 || o.user.gid !== 0;
    if (asOther && !o.pty && o.user.groups.every((g) => g === o.user.gid)) {
      // No groups beyond the primary one (E2B's `user`): Bun sets the ids itself in the forked child, with no
      // supplementary groups, which is what envd gives (Go's Credential with NoSetGroups from a root envd), and
      // saves an exec per command (in an emulated guest about half of a `bash -c`).
      ids = { uid: o.user.uid, gid: o.user.gid };
    } else if (this.runasPath && (asOther || o.pty)) {
      // A pty command always goes through onebox-runas, root's too: --ctty makes the pty its controlling terminal
      // (Bun's terminal spawn does not), so an interactive shell has job control and ^C/^Z reach its foreground job.
      // It sets the supplementary groups too (Bun's uid/gid clear them), and execs: the pid stays.
      const groups = o.user.groups.length ? o.user.groups.join(",") : "-";
      argv = [this.runasPath, ...(o.pty ? ["--ctty"] : []), String(o.user.uid), String(o.user.gid), groups, "--", ...argv];
    } else if (asOther) {
      if (this.setprivPath) {
        argv = [this.setprivPath, `--reuid=${o.user.uid}`, `--regid=${o.user.gid}`, `--groups=${o.user.groups.join(",")}`, "--", ...argv];
      } else {
        ids = { uid: o.user.uid, gid: o.user.gid };
      }
    }
    const oomKillsAtStart = this.cgroup.oomKills();
    let proc: Subprocess;
    let terminal: Terminal | undefined;
    let mp: ManagedProcess | undefined;
    const early: Uint8Array[] = [];
    let ptyEof!: () => void;
    const ptyClosed = new Promise<void>((r) => (ptyEof = r));
    try {
      if (o.pty) {
        terminal = new Bun.Terminal({
          cols: o.pty.cols,
          rows: o.pty.rows,
          data: (_t, d) => {
            if (mp) void mp.deliver("pty", d);
            else early.push(d);
          },
          exit: () => ptyEof(),
        });
        proc = Bun.spawn(argv, { cwd: o.cwd, env: o.env, terminal, ...ids });
      } else {
        proc = Bun.spawn(argv, {
          cwd: o.cwd,
          env: o.env,
          stdin: o.stdin ? "pipe" : "ignore",
          stdout: "pipe",
          stderr: "pipe",
          detached: true,
          ...ids,
        });
      }
    } catch (e) {
      terminal?.close();
      throw new ConnectError("invalid_argument", `failed to start process: ${(e as Error).message}`);
    }
    // The agent protects itself from the OOM killer (main.ts); user processes must stay killable,
    // as envd does (oom_score_adj 100). Written right after the spawn: bash forks nothing this early.
    try {
      writeFileSync(`/proc/${proc.pid}/oom_score_adj`, USER_OOM_SCORE_ADJ);
    } catch {
      // already gone, or no /proc
    }
    // Root's commands too: the limits protect the agent, not files (docs/guest.md "Resource limits").
    this.cgroup.join(proc.pid);
    mp = new ManagedProcess(proc.pid, o.config, o.tag, proc, terminal, !o.pty && o.stdin);
    mp.oomKillsAtStart = oomKillsAtStart;
    this.processes.set(proc.pid, mp);
    mp.subscribers.add(first);
    first.started(proc.pid);
    for (const d of early) void mp.deliver("pty", d);
    if (o.timeoutMs && o.timeoutMs > 0) mp.setLifetime(o.timeoutMs);
    void this.watch(mp, proc, ptyClosed);
    return mp;
  }

  private async watch(mp: ManagedProcess, proc: Subprocess, ptyClosed: Promise<void>): Promise<void> {
    const exited = proc.exited.then(() => {});
    const pumps: Promise<void>[] = [];
    if (!mp.terminal) {
      const out = proc.stdout as ReadableStream<Uint8Array>;
      const err = proc.stderr as ReadableStream<Uint8Array>;
      pumps.push(pump(mp, "stdout", out, exited), pump(mp, "stderr", err, exited));
    }
    const code = await proc.exited;
    await Promise.all(pumps);
    if (mp.terminal) {
      // The pty's last bytes arrive through the data callback: wait for EOF on the master, or for
      // the output to go idle (a background job may keep the pty open), bounded.
      const until = Date.now() + DRAIN_AFTER_EXIT_MS;
      let closed = false;
      void ptyClosed.then(() => (closed = true));
      while (!closed && Date.now() < until && Date.now() - mp.lastOutputAt < DRAIN_IDLE_MS) await Bun.sleep(20);
      await Bun.sleep(0);
    }
    const end = endFromExit(proc.signalCode ? null : code, signalCodeNumber(proc.signalCode));
    const sigkilled = end.status === "signal: killed" || end.exitCode === 137;
    if (sigkilled && end.error && !mp.signalledByAgent && this.cgroup.oomKills() > mp.oomKillsAtStart) {
      end.error = oomNote(end.error, this.cgroup.memoryMaxMiB());
    }
    mp.finish(end);
    this.prune();
  }

  private prune(): void {
    const now = Date.now();
    const exited = [...this.processes.values()].filter((p) => p.endEvent);
    for (const p of exited) if (now - p.endedAt > KEEP_EXITED_MS) this.processes.delete(p.pid);
    const left = exited.filter((p) => this.processes.has(p.pid));
    for (let i = 0; i < left.length - MAX_EXITED_KEPT; i++) this.processes.delete(left[i]!.pid);
  }
}
