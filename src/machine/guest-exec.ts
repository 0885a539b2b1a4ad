// Runs one shell command in a guest through its agent (process.Process/Start, Connect JSON over the forward socket
// of guest port 49983): the template builder's RUN steps, start and ready commands (src/builds, src/templates).
import { ENVD_PORT } from "../../guest/protocol.ts";
import { forwardSocketPath } from "./vm-driver.ts";

export interface ExecOptions {
  /** The guest user the command runs as (`Authorization: Basic base64("<user>:")`, spec §2.2). */
  user: string;
  cwd?: string;
  envs?: Record<string, string>;
  /** Ends the command (the agent kills it at its deadline, spec §3.1). Unset: the process may outlive the call. */
  timeoutMs?: number;
  /** Each line of stdout and stderr, as it comes. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Detach once the process started: it runs on in the guest (a template's start command). */
  detach?: boolean;
  accessToken?: string;
}

export interface ExecResult {
  pid: number;
  /** -1 when detached or when the process was killed without an exit status. */
  exitCode: number;
  /** The agent's error text for a command that could not run (e.g. no such user or cwd). */
  error?: string;
  /** The last lines of output (stdout and stderr interleaved), for failure messages. */
  tail: string[];
}

const TAIL_LINES = 20;
const MAX_LINE = 4096;

export function agentSocket(runDir: string): string {
  return forwardSocketPath(runDir, ENVD_PORT);
}

function envelope(message: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(5 + json.byteLength);
  new DataView(out.buffer).setUint32(1, json.byteLength, false);
  out.set(json, 5);
  return out;
}

/** Runs `/bin/bash -l -c cmd` as the SDK does (commands.run). Rejects only when the agent cannot be reached.
 *  agent: the forward socket's path, or an http:// URL (an agent run by a test on a port). */
export async function guestExec(agent: string, cmd: string, o: ExecOptions): Promise<ExecResult> {
  const headers: Record<string, string> = {
    "content-type": "application/connect+json",
    "connect-protocol-version": "1",
    authorization: `Basic ${Buffer.from(`${o.user}:`).toString("base64")}`,
  };
  if (o.timeoutMs) headers["connect-timeout-ms"] = String(o.timeoutMs);
  if (o.accessToken) headers["x-access-token"] = o.accessToken;
  const proc: Record<string, unknown> = { cmd: "/bin/bash", args: ["-l", "-c", cmd], envs: o.envs ?? {} };
  if (o.cwd) proc.cwd = o.cwd;
  const ac = new AbortController();
  const tcp = agent.startsWith("http://");
  const res = await fetch(`${tcp ? agent : "http://sandbox"}/process.Process/Start`, {
    method: "POST",
    body: envelope({ process: proc, stdin: false }),
    headers,
    ...(tcp ? {} : { unix: agent }),
    signal: o.timeoutMs ? AbortSignal.any([ac.signal, AbortSignal.timeout(o.timeoutMs + 10_000)]) : ac.signal,
  });
  if (!res.ok || !res.body) throw new Error(`guest agent answered ${res.status} to process start: ${(await res.text()).slice(0, 300)}`);
  const result: ExecResult = { pid: 0, exitCode: -1, tail: [] };
  const partial = { stdout: "", stderr: "" };
  const line = (l: string, stream: "stdout" | "stderr") => {
    const s = l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l;
    result.tail.push(s);
    if (result.tail.length > TAIL_LINES) result.tail.shift();
    o.onLine?.(s, stream);
  };
  const data = (stream: "stdout" | "stderr", b64: string) => {
    const text = partial[stream] + Buffer.from(b64, "base64").toString("utf8");
    const lines = text.split("\n");
    partial[stream] = lines.pop() ?? "";
    for (const l of lines) line(l, stream);
    if (partial[stream].length > MAX_LINE) {
      line(partial[stream], stream);
      partial[stream] = "";
    }
  };
  const reader = res.body.getReader();
  let buf = new Uint8Array(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const next = new Uint8Array(buf.byteLength + value.byteLength);
      next.set(buf);
      next.set(value, buf.byteLength);
      buf = next;
      while (buf.byteLength >= 5) {
        const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1, false);
        if (buf.byteLength < 5 + len) break;
        const flags = buf[0]!;
        const msg = JSON.parse(new TextDecoder().decode(buf.subarray(5, 5 + len))) as Record<string, any>;
        buf = buf.subarray(5 + len);
        if (flags & 2) {
          if (msg.error) result.error = `${msg.error.code}: ${msg.error.message}`;
          continue;
        }
        const ev = msg.event ?? {};
        if (ev.start) {
          result.pid = Number(ev.start.pid);
          if (o.detach) return result;
        }
        if (ev.data?.stdout) data("stdout", ev.data.stdout);
        if (ev.data?.stderr) data("stderr", ev.data.stderr);
        if (ev.end) {
          result.exitCode = typeof ev.end.exitCode === "number" ? ev.end.exitCode : -1;
          if (ev.end.error) result.error = String(ev.end.error);
        }
      }
    }
  } finally {
    // Detached: the agent keeps the process when its stream goes (spec §3.1).
    ac.abort();
  }
  for (const s of ["stdout", "stderr"] as const) if (partial[s]) line(partial[s], s);
  return result;
}
