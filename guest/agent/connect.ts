// Connect protocol (JSON codec) framing: envelopes, errors and server-stream responses (e2b-protocol.md §3.1).

/** Connect error codes as strings (§3.1); HTTP statuses per the Connect spec for unary errors. */
export const CONNECT_CODES = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
} as const;
export type ConnectCode = keyof typeof CONNECT_CODES;

/** A typed RPC failure; handlers throw it, the router turns it into the wire shape. */
export class ConnectError extends Error {
  constructor(
    readonly code: ConnectCode,
    message: string,
  ) {
    super(message);
  }
}

/** Largest request envelope / unary body we accept: RPC requests are small JSON messages. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

const FLAG_COMPRESSED = 0x01;
const FLAG_END_STREAM = 0x02;

export function unaryError(err: ConnectError): Response {
  return Response.json({ code: err.code, message: err.message }, { status: CONNECT_CODES[err.code] });
}

/** Reads a request body with a size cap; oversize is invalid_argument, never a crash. */
export async function readCapped(req: Request, cap = MAX_REQUEST_BYTES): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > cap) throw new ConnectError("invalid_argument", `request body larger than ${cap} bytes`);
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > cap) throw new ConnectError("invalid_argument", `request body larger than ${cap} bytes`);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = bytes.byteLength === 0 ? {} : JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new ConnectError("invalid_argument", "request is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConnectError("invalid_argument", "request must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Unary request: `application/json` body (§3.1). */
export async function readUnaryRequest(req: Request): Promise<Record<string, unknown>> {
  const ct = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (ct !== "application/json") throw new ConnectError("invalid_argument", `unsupported content type "${ct}" (want application/json)`);
  return parseJsonObject(await readCapped(req));
}

/** Decodes exactly one request envelope of a server-streaming call (§3.1): flags 0, 4-byte BE length. */
export function decodeSingleEnvelope(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength < 5) throw new ConnectError("invalid_argument", "truncated Connect envelope");
  const flags = bytes[0]!;
  if (flags & FLAG_COMPRESSED) throw new ConnectError("invalid_argument", "compressed envelopes are not supported");
  if (flags !== 0) throw new ConnectError("invalid_argument", `unexpected envelope flags 0x${flags.toString(16)}`);
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1, false);
  if (len !== bytes.byteLength - 5) throw new ConnectError("invalid_argument", "envelope length does not match the body");
  return parseJsonObject(bytes.subarray(5));
}

export async function readStreamRequest(req: Request): Promise<Record<string, unknown>> {
  const ct = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (ct !== "application/connect+json") {
    throw new ConnectError("invalid_argument", `unsupported content type "${ct}" (want application/connect+json)`);
  }
  return decodeSingleEnvelope(await readCapped(req));
}

export function encodeEnvelope(flags: number, message: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(5 + json.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, json.byteLength, false);
  out.set(json, 5);
  return out;
}

export function endStreamEnvelope(err?: ConnectError): Uint8Array {
  return encodeEnvelope(FLAG_END_STREAM, err ? { error: { code: err.code, message: err.message }, metadata: {} } : {});
}

/** A server stream writer: messages, then exactly one end-stream envelope. */
export interface StreamSink {
  send(message: unknown): void;
  /** Ends with `{}` or an error; later calls are ignored. */
  end(err?: ConnectError): void;
  readonly closed: boolean;
  /** Resolves when the client went away or the stream ended. */
  readonly done: Promise<void>;
  /** Resolves once the client's queue is below its high-water mark (back-pressure). */
  ready(): Promise<void>;
  /** Bytes queued for the client beyond what it has read. */
  readonly backlog: number;
}

const STREAM_HIGH_WATER_BYTES = 1024 * 1024;

/** `Connect-Timeout-Ms` (§3.1): the call's deadline in ms from its arrival; undefined when absent or 0. */
export function requestDeadlineMs(req: Request): number | undefined {
  const h = req.headers.get("connect-timeout-ms");
  if (h === null) return undefined;
  if (!/^\d{1,10}$/.test(h.trim())) throw new ConnectError("invalid_argument", "invalid Connect-Timeout-Ms header");
  const n = Number(h);
  return n > 0 ? n : undefined;
}

/** What connect-go sends when a handler's context deadline passes (envd's streams end so). */
export const DEADLINE_MESSAGE = "context deadline exceeded";

/**
 * Builds a 200 `application/connect+json` response (errors after the headers travel in the
 * end-stream envelope, §3.1) and hands its sink to `run`. With `deadlineMs` (the request's
 * Connect-Timeout-Ms) a stream still open then ends with deadline_exceeded, as envd's do, which
 * the SDKs raise as their TimeoutError / TimeoutException.
 */
export function streamResponse(run: (sink: StreamSink) => void | Promise<void>, deadlineMs?: number): Response {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let waiters: (() => void)[] = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const finish = () => {
    if (closed) return;
    closed = true;
    if (deadline) clearTimeout(deadline);
    wake();
    resolveDone();
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        wake();
      },
      cancel() {
        finish();
      },
    },
    { highWaterMark: STREAM_HIGH_WATER_BYTES, size: (chunk) => chunk?.byteLength ?? 0 },
  );
  const sink: StreamSink = {
    send(message) {
      if (closed) return;
      try {
        controller.enqueue(encodeEnvelope(0, message));
      } catch {
        finish();
      }
    },
    end(err) {
      if (closed) return;
      try {
        controller.enqueue(endStreamEnvelope(err));
        controller.close();
      } catch {
        // the client is gone already
      }
      finish();
    },
    get closed() {
      return closed;
    },
    done,
    get backlog() {
      return closed ? 0 : STREAM_HIGH_WATER_BYTES - (controller.desiredSize ?? 0);
    },
    ready() {
      if (closed || (controller.desiredSize ?? 1) > 0) return Promise.resolve();
      return new Promise((r) => waiters.push(r));
    },
  };
  // Armed before `run`, so it fires before a timer `run` sets for the same span (Start's process lifetime).
  if (deadlineMs !== undefined) deadline = setTimeout(() => sink.end(new ConnectError("deadline_exceeded", DEADLINE_MESSAGE)), deadlineMs);
  queueMicrotask(async () => {
    try {
      await run(sink);
    } catch (e) {
      sink.end(e instanceof ConnectError ? e : new ConnectError("internal", String((e as Error)?.message ?? e)));
    }
  });
  return new Response(body, { status: 200, headers: { "content-type": "application/connect+json" } });
}
