// Client of the vmm control socket (docs/architecture.md "Control socket"): one request at a time, `ok`/`err`
// replies in order, `event ...` lines pushed at any time.
import { createConnection, type Socket } from "node:net";
import { LineReader } from "../util/bounded-read.ts";

export class VmmControlError extends Error {}

/** The message of the error every pending request gets when the connection closes. */
export const CLOSED = "control socket closed";

/** Longest line either side sends (docs/architecture.md "Control socket"): a longer one from the vmm is a
 *  broken or taken-over vmm, and the connection is closed instead of buffering it. */
export const CONTROL_LINE_MAX = 4096;

interface Pending {
  line: string;
  resolve: (fields: Record<string, string>) => void;
  reject: (err: Error) => void;
}

export class ControlClient {
  private lines = new LineReader(CONTROL_LINE_MAX, "vmm control socket");
  private queue: Pending[] = [];
  private inflight: Pending | null = null;
  private closedErr: Error | null = null;
  private closeWaiters: (() => void)[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly onEvent: (name: string, fields: Record<string, string>) => void,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.onClose(err));
    socket.on("close", () => this.onClose(new VmmControlError(CLOSED)));
  }

  /** Connects to the control socket at path; rejects if nothing listens there. */
  static connect(path: string, onEvent: (name: string, fields: Record<string, string>) => void): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const fail = (err: Error) => reject(err);
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.off("error", fail);
        resolve(new ControlClient(socket, onEvent));
      });
    });
  }

  /** Sends one request line; resolves with the `k=v` fields of `ok ...`, rejects with the message of `err ...`. */
  request(line: string, timeoutMs = 10_000): Promise<Record<string, string>> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new VmmControlError(`vmm did not answer '${line}' within ${timeoutMs} ms`));
        this.socket.destroy(); // replies would now be out of step: start over with a new connection
      }, timeoutMs);
      this.queue.push({
        line,
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.pump();
    });
  }

  get closed(): boolean {
    return this.closedErr !== null;
  }

  /** Resolves once the socket is closed (the vmm exited, or replaced us with a newer client). */
  waitClosed(): Promise<void> {
    if (this.closedErr) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }

  private pump(): void {
    if (this.inflight || this.queue.length === 0) return;
    this.inflight = this.queue.shift() ?? null;
    if (this.inflight) this.socket.write(`${this.inflight.line}\n`);
  }

  private onData(chunk: Buffer): void {
    let lines: Buffer[];
    try {
      lines = this.lines.push(chunk);
    } catch (e) {
      this.onClose(new VmmControlError(e instanceof Error ? e.message : String(e)));
      this.socket.destroy();
      return;
    }
    for (const line of lines) {
      if (this.closedErr) return;
      this.onLine(line.toString("utf8"));
    }
  }

  private onLine(line: string): void {
    const [head = "", ...rest] = line.split(" ");
    if (head === "event") {
      const [name = "", ...kv] = rest;
      this.onEvent(name, parseFields(kv));
      return;
    }
    const p = this.inflight;
    this.inflight = null;
    if (p) {
      if (head === "ok") p.resolve(parseFields(rest));
      else p.reject(new VmmControlError(`vmm: ${p.line}: ${rest.join(" ") || line}`));
    }
    this.pump();
  }

  private onClose(err: Error): void {
    if (this.closedErr) return;
    this.closedErr = err;
    const all = [...(this.inflight ? [this.inflight] : []), ...this.queue];
    this.inflight = null;
    this.queue = [];
    for (const p of all) p.reject(err);
    for (const w of this.closeWaiters.splice(0)) w();
  }
}

function parseFields(parts: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of parts) {
    const eq = p.indexOf("=");
    if (eq > 0) out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}
