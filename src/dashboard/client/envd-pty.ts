// A PTY in a sandbox over envd's process.Process Connect RPCs (JSON codec), through the daemon's data plane, as the
// E2B SDK's `sandbox.pty.create` does: the E2b-Sandbox-Id/-Port headers route it, X-Access-Token is the sandbox's
// envd token (the data plane and the agent check it; docs/api.md "Data-plane access").
const ENVD_PORT = "49983";

export interface Pty {
  pid: number;
  /** Keystrokes, in order. */
  send(data: Uint8Array): Promise<void>;
  resize(cols: number, rows: number): Promise<void>;
  kill(): Promise<void>;
  /** Resolves when the process ends or the stream breaks, with why. */
  done: Promise<string>;
}

function toBase64(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** One Connect envelope: flags, 4-byte big-endian length, the JSON message. */
function envelope(msg: unknown): Uint8Array<ArrayBuffer> {
  const body = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}

/** Splits a response stream into envelopes: [flags, parsed JSON]. */
async function* envelopes(body: ReadableStream<Uint8Array>): AsyncGenerator<[number, Record<string, unknown>]> {
  const reader = body.getReader();
  let buf = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (buf.length < 5 + len) break;
      const flags = buf[0]!;
      yield [flags, JSON.parse(new TextDecoder().decode(buf.subarray(5, 5 + len))) as Record<string, unknown>];
      buf = buf.slice(5 + len);
    }
  }
}

/** `base`: the daemon's origin; "" in the page (same origin), the daemon's URL in tests/e2e/dashboard.test.ts. */
export async function openPty(sandboxId: string, token: string | undefined, size: { cols: number; rows: number }, onData: (d: Uint8Array) => void, base = ""): Promise<Pty> {
  const headers = (contentType: string): Record<string, string> => ({
    "content-type": contentType,
    "connect-protocol-version": "1",
    "e2b-sandbox-id": sandboxId,
    "e2b-sandbox-port": ENVD_PORT,
    ...(token ? { "x-access-token": token } : {}),
  });
  const unary = async (method: string, msg: unknown) => {
    const res = await fetch(`${base}/process.Process/${method}`, { method: "POST", headers: headers("application/json"), body: JSON.stringify(msg) });
    if (!res.ok) throw new Error(`${method}: ${((await res.json().catch(() => null)) as { message?: string } | null)?.message ?? res.status}`);
  };
  const aborter = new AbortController();
  const res = await fetch(`${base}/process.Process/Start`, {
    method: "POST",
    headers: { ...headers("application/connect+json"), "keepalive-ping-interval": "50" },
    body: envelope({
      process: { cmd: "/bin/bash", args: ["-i", "-l"], envs: { TERM: "xterm-256color", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" } },
      pty: { size },
    }),
    signal: aborter.signal,
  });
  if (!res.ok || !res.body) {
    const m = ((await res.json().catch(() => null)) as { message?: string } | null)?.message;
    throw new Error(`the sandbox's envd refused the terminal (${res.status}${m ? `: ${m}` : ""})`);
  }
  const stream = envelopes(res.body);
  // The first message names the process.
  let pid = -1;
  for (;;) {
    const { value, done } = await stream.next();
    if (done) throw new Error("envd closed the stream before the terminal started");
    const [flags, msg] = value;
    if (flags & 2) throw new Error(`envd: ${(msg.error as { message?: string } | undefined)?.message ?? "stream ended"}`);
    const start = (msg.event as { start?: { pid?: number } } | undefined)?.start;
    if (start?.pid !== undefined) {
      pid = start.pid;
      break;
    }
  }
  const done = (async () => {
    try {
      for await (const [flags, msg] of stream) {
        if (flags & 2) return (msg.error as { message?: string } | undefined)?.message ?? "the terminal closed";
        const ev = msg.event as { data?: { pty?: string }; end?: { exitCode?: number; status?: string } } | undefined;
        if (ev?.data?.pty) onData(fromBase64(ev.data.pty));
        if (ev?.end) return `the shell exited${ev.end.exitCode !== undefined ? ` (${ev.end.exitCode})` : ""}`;
      }
      return "the terminal closed";
    } catch (e) {
      return `the connection broke: ${e instanceof Error ? e.message : String(e)}`;
    }
  })();
  let queue: Promise<void> = Promise.resolve();
  const proc = { pid };
  return {
    pid,
    send(data) {
      const sent = queue.then(() => unary("SendInput", { process: proc, input: { pty: toBase64(data) } }));
      queue = sent.catch(() => undefined); // one lost keystroke must not block the next ones
      return sent;
    },
    resize: (cols, rows) => unary("Update", { process: proc, pty: { size: { cols, rows } } }),
    async kill() {
      await unary("SendSignal", { process: proc, signal: "SIGNAL_SIGKILL" }).catch(() => undefined);
      aborter.abort();
    },
    done,
  };
}
