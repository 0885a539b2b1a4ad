// Bounded reads of bytes a guest, a VMM or a client controls: every read has a byte cap and a deadline
// (docs/architecture.md "Reads of guest- and VMM-controlled bytes"); the daemon never holds more of such an answer than it asked for.

/** Why a bounded read stopped: the peer sent too much, or not enough in time. The message names `what`. */
export class BoundedReadError extends Error {
  constructor(
    readonly why: "too-large" | "deadline" | "closed",
    message: string,
  ) {
    super(message);
    this.name = "BoundedReadError";
  }
}

/** Reads a whole stream (an HTTP body) of at most `maxBytes` bytes, within `timeoutMs`. Past the cap or the
 *  deadline it cancels the stream (which closes the connection) and throws: the rest is never read. */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  timeoutMs: number,
  what: string,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), timeoutMs);
  });
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), deadline]);
      if (r === "deadline") throw new BoundedReadError("deadline", `${what}: no complete answer within ${timeoutMs} ms`);
      if (r.done) break;
      size += r.value.byteLength;
      if (size > maxBytes) throw new BoundedReadError("too-large", `${what}: answer larger than ${maxBytes} bytes, refused`);
      parts.push(r.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** An HTTP response body as text, capped and with a deadline (readCapped). */
export async function readCappedText(res: Response, maxBytes: number, timeoutMs: number, what: string): Promise<string> {
  return new TextDecoder().decode(await readCapped(res.body, maxBytes, timeoutMs, what));
}

/** Splits a byte stream into `\n`-terminated lines of at most `maxLine` bytes. Each chunk is scanned once
 *  (only the new bytes, never the whole buffer again), and a line that passes the cap without a newline
 *  throws at once instead of being buffered. */
export class LineReader {
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(
    readonly maxLine: number,
    readonly what: string,
  ) {}

  /** Adds a chunk; returns the lines it completed (without the `\n`), at most `maxLines` of them. With a
   *  limit, bytes after the last returned line are kept unscanned for rest(): stop pushing then. */
  push(chunk: Buffer, maxLines = Number.POSITIVE_INFINITY): Buffer[] {
    const lines: Buffer[] = [];
    let from = 0;
    while (lines.length < maxLines) {
      const nl = chunk.indexOf(10, from);
      if (nl < 0) break;
      this.check(this.heldBytes + (nl - from));
      const part = chunk.subarray(from, nl);
      lines.push(this.heldBytes === 0 ? Buffer.from(part) : Buffer.concat([...this.held, part]));
      this.held = [];
      this.heldBytes = 0;
      from = nl + 1;
    }
    if (from < chunk.length) {
      const tail = chunk.subarray(from);
      if (lines.length < maxLines) this.check(this.heldBytes + tail.length);
      this.held.push(Buffer.from(tail));
      this.heldBytes += tail.length;
    }
    return lines;
  }

  /** The bytes after the last returned line. */
  rest(): Buffer {
    return Buffer.concat(this.held);
  }

  private check(n: number): void {
    if (n > this.maxLine) {
      throw new BoundedReadError("too-large", `${this.what}: a line longer than ${this.maxLine} bytes, refused`);
    }
  }
}
