// process.Process RPC handlers: Start, Connect, List, SendInput, StreamInput, SendSignal, Update, CloseStdin (e2b-protocol.md §3.2).
import { ConnectError, decodeSingleEnvelope, encodeEnvelope, endStreamEnvelope, readCapped, requestDeadlineMs, streamResponse, type StreamSink } from "./connect.ts";
import { optBool, optBytes, optObject, optString, optStringArray, optStringMap, optUint, raw, reqObject, reqString } from "./fields.ts";
import { signalNumber, type EndEvent, type ManagedProcess, type ProcessManager, type Subscriber } from "./process-manager.ts";
import type { AgentState } from "./state.ts";
import type { UserInfo } from "./users.ts";
import { resolvePath } from "./paths.ts";

type Obj = Record<string, unknown>;

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** A pty cannot be paused: past this backlog a slow client loses pty output instead of growing memory. */
const MAX_PTY_BACKLOG = 16 * 1024 * 1024;
const MAX_PTY_DIM = 10_000;

export interface RpcContext {
  req: Request;
  state: AgentState;
  user: () => UserInfo;
}

/** `Keepalive-Ping-Interval` in seconds (§2.2); envd's default is 90. */
function keepaliveMs(req: Request): number {
  const v = Number(req.headers.get("keepalive-ping-interval"));
  return (Number.isFinite(v) && v > 0 ? Math.max(v, 1) : 90) * 1000;
}

function selector(o: Obj): { pid?: number; tag?: string } {
  const sel = reqObject(o, "process");
  const pid = optUint(sel, "pid");
  const tag = optString(sel, "tag");
  if (pid === undefined && tag === undefined) throw new ConnectError("invalid_argument", "process selector needs pid or tag");
  return pid !== undefined ? { pid } : { tag };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** A subscriber that writes `ProcessEvent`s to a Connect stream and applies back-pressure. */
function streamSubscriber(sink: StreamSink): Subscriber {
  return {
    data(kind, bytes) {
      if (sink.closed) return;
      if (kind === "pty" && sink.backlog > MAX_PTY_BACKLOG) return;
      sink.send({ event: { data: { [kind]: b64(bytes) } } });
      if (kind !== "pty" && sink.backlog > 0) return sink.ready();
    },
    end(end: EndEvent) {
      sink.send({ event: { end } });
      sink.end();
    },
  };
}

function withKeepalive(sink: StreamSink, mp: ManagedProcess, sub: Subscriber, req: Request): void {
  const timer = setInterval(() => sink.send({ event: { keepalive: {} } }), keepaliveMs(req));
  // A client disconnect only detaches this stream: the process keeps running (§3.1).
  void sink.done.then(() => {
    clearInterval(timer);
    mp.subscribers.delete(sub);
  });
}

function processInfo(p: ManagedProcess): Obj {
  const config: Obj = { cmd: p.config.cmd, args: p.config.args, envs: p.config.envs };
  if (p.config.cwd !== undefined) config.cwd = p.config.cwd;
  const info: Obj = { config, pid: p.pid };
  if (p.tag !== undefined) info.tag = p.tag;
  return info;
}

export function createProcessService(pm: ProcessManager) {
  return {
    async Start(ctx: RpcContext, body: Obj): Promise<Response> {
      const user = ctx.user();
      const proc = reqObject(body, "process");
      const cmd = reqString(proc, "cmd");
      if (cmd === "") throw new ConnectError("invalid_argument", "process.cmd must not be empty");
      const args = optStringArray(proc, "args");
      const envs = optStringMap(proc, "envs");
      const cwdRaw = optString(proc, "cwd");
      const ptyMsg = optObject(body, "pty");
      let pty: { cols: number; rows: number } | undefined;
      if (ptyMsg) {
        const size = optObject(ptyMsg, "size") ?? {};
        pty = { cols: optUint(size, "cols", MAX_PTY_DIM) || 80, rows: optUint(size, "rows", MAX_PTY_DIM) || 24 };
      }
      const tag = optString(body, "tag");
      const stdin = optBool(body, "stdin") ?? true;
      const lifetime = requestDeadlineMs(ctx.req); // also the process's maximum lifetime, as envd's procCtx (§3.1)
      const cwd = resolvePath(cwdRaw ?? "", user, ctx.state.defaultWorkdir, "cwd"); // request, else default workdir, else home
      const env: Record<string, string> = {
        PATH: process.env.PATH || DEFAULT_PATH, // envd passes its own PATH on
        HOME: user.home,
        USER: user.name,
        LOGNAME: user.name,
        ...ctx.state.envVars,
        ...envs,
      };
      for (const [k, v] of Object.entries(env)) {
        if (k === "" || k.includes("=") || k.includes("\0") || v.includes("\0")) {
          throw new ConnectError("invalid_argument", `invalid environment variable "${k}"`);
        }
      }
      const config = { cmd, args, envs, cwd: cwdRaw };
      // Errors from here on travel in the end-stream envelope of a 200 response (§3.1).
      return streamResponse((sink) => {
        const inner = streamSubscriber(sink);
        const sub: Subscriber & { started(pid: number): void } = {
          started: (pid) => sink.send({ event: { start: { pid } } }),
          data: (kind, bytes) => inner.data(kind, bytes),
          end: (end) => inner.end(end),
        };
        const mp = pm.start({ config, user, cwd, env, tag, pty, stdin, timeoutMs: lifetime }, sub);
        if (!sink.closed) withKeepalive(sink, mp, sub, ctx.req);
      }, lifetime);
    },

    async Connect(ctx: RpcContext, body: Obj): Promise<Response> {
      const mp = pm.find(selector(body));
      const deadline = requestDeadlineMs(ctx.req); // ends this stream only: the process runs on
      return streamResponse((sink) => {
        sink.send({ event: { start: { pid: mp.pid } } });
        if (mp.endEvent) {
          sink.send({ event: { end: mp.endEvent } });
          sink.end();
          return;
        }
        const sub = streamSubscriber(sink);
        mp.subscribers.add(sub);
        withKeepalive(sink, mp, sub, ctx.req);
      }, deadline);
    },

    async List(): Promise<Response> {
      return Response.json({ processes: pm.list().map(processInfo) });
    },

    async SendInput(_ctx: RpcContext, body: Obj): Promise<Response> {
      const mp = pm.find(selector(body));
      const input = reqObject(body, "input");
      const pty = optBytes(input, "pty");
      const stdin = optBytes(input, "stdin");
      if (pty !== undefined) await mp.writeInput("pty", pty);
      else if (stdin !== undefined) await mp.writeInput("stdin", stdin);
      else throw new ConnectError("invalid_argument", "input needs stdin or pty");
      return Response.json({});
    },

    async SendSignal(_ctx: RpcContext, body: Obj): Promise<Response> {
      const sel = selector(body);
      const sig = signalNumber(raw(body, "signal"));
      if (sig === undefined) throw new ConnectError("invalid_argument", "unsupported signal");
      const mp = pm.find(sel);
      if (mp.endEvent) throw new ConnectError("not_found", `process ${mp.pid} has exited`);
      mp.signal(sig);
      return Response.json({});
    },

    async Update(_ctx: RpcContext, body: Obj): Promise<Response> {
      const mp = pm.find(selector(body));
      const pty = optObject(body, "pty");
      if (pty) {
        const size = reqObject(pty, "size");
        const cols = optUint(size, "cols", MAX_PTY_DIM) ?? 0;
        const rows = optUint(size, "rows", MAX_PTY_DIM) ?? 0;
        if (cols < 1 || rows < 1) throw new ConnectError("invalid_argument", "pty size must be at least 1x1");
        mp.resize(cols, rows);
      }
      return Response.json({});
    },

    async CloseStdin(_ctx: RpcContext, body: Obj): Promise<Response> {
      pm.find(selector(body)).closeStdin();
      return Response.json({});
    },

    /**
     * Client streaming (unused by the SDKs, §3.1): envelopes of `start {process}`, `data {input}`,
     * `keepalive`; over HTTP/1.1 the whole request body arrives before we answer.
     */
    async StreamInput(req: Request): Promise<Response> {
      const bytes = await readCapped(req);
      let target: ManagedProcess | undefined;
      let off = 0;
      while (off < bytes.byteLength) {
        if (bytes.byteLength - off < 5) throw new ConnectError("invalid_argument", "truncated Connect envelope");
        const len = new DataView(bytes.buffer, bytes.byteOffset + off + 1, 4).getUint32(0, false);
        if (off + 5 + len > bytes.byteLength) throw new ConnectError("invalid_argument", "truncated Connect envelope");
        const msg = decodeSingleEnvelope(bytes.subarray(off, off + 5 + len));
        off += 5 + len;
        const start = optObject(msg, "start");
        const data = optObject(msg, "data");
        if (start) target = pm.find(selector(start));
        else if (data) {
          if (!target) throw new ConnectError("failed_precondition", "StreamInput data before start");
          const input = reqObject(data, "input");
          const pty = optBytes(input, "pty");
          const stdin = optBytes(input, "stdin");
          if (pty !== undefined) await target.writeInput("pty", pty);
          else if (stdin !== undefined) await target.writeInput("stdin", stdin);
        }
      }
      // Client-streaming responses are enveloped too: the `{}` message, then end-stream.
      const body = new Blob([encodeEnvelope(0, {}), endStreamEnvelope()]);
      return new Response(body, { headers: { "content-type": "application/connect+json" } });
    },
  };
}
