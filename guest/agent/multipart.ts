// Streaming multipart/form-data parser for POST /files (e2b-protocol.md §3.4): parts are never buffered whole.

export interface Part {
  headers: Record<string, string>;
  /** form field name and filename from Content-Disposition */
  name: string | undefined;
  filename: string | undefined;
  /** The part's bytes; must be consumed (or is drained) before the next part is produced. */
  body: AsyncGenerator<Uint8Array>;
}

export class MultipartError extends Error {}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PREAMBLE_BYTES = 64 * 1024;

export function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary=(?:"([^"]{1,200})"|([^\s;]{1,200}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Browser/undici encoding of names in Content-Disposition: `"` -> %22, CR -> %0D, LF -> %0A. */
function decodeQuoted(v: string): string {
  return v.replace(/%22/g, '"').replace(/%0D/gi, "\r").replace(/%0A/gi, "\n").replace(/\\(.)/g, "$1");
}

function dispositionParam(disposition: string, key: string): string | undefined {
  const re = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${key}=([^;\\s]+)`, "i");
  const m = re.exec(disposition);
  if (!m) return undefined;
  return m[1] !== undefined ? decodeQuoted(m[1]) : m[2];
}

class ByteReader {
  buf: Buffer = Buffer.alloc(0);
  eof = false;
  constructor(private reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }) {}
  async fill(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.reader.read();
    if (r.done || !r.value) {
      this.eof = r.done;
      return !r.done;
    }
    this.buf = this.buf.byteLength ? Buffer.concat([this.buf, r.value]) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    return true;
  }
  /** Ensures at least n bytes are buffered; false at EOF. */
  async need(n: number): Promise<boolean> {
    while (this.buf.byteLength < n) if (!(await this.fill())) return false;
    return true;
  }
  take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

export async function* parseMultipart(stream: ReadableStream<Uint8Array>, boundary: string): AsyncGenerator<Part> {
  const r = new ByteReader(stream.getReader());
  const dash = Buffer.from("--" + boundary);
  const delim = Buffer.from("\r\n--" + boundary);
  // preamble, then the first boundary
  for (;;) {
    const i = r.buf.indexOf(dash);
    if (i >= 0) {
      r.take(i + dash.byteLength);
      break;
    }
    if (r.buf.byteLength > MAX_PREAMBLE_BYTES) throw new MultipartError("multipart boundary not found");
    if (!(await r.fill())) throw new MultipartError("multipart body ended before the first boundary");
  }
  for (;;) {
    if (!(await r.need(2))) throw new MultipartError("truncated multipart body");
    const after = r.take(2).toString("latin1");
    if (after === "--") return; // close delimiter
    if (after !== "\r\n") throw new MultipartError("malformed multipart boundary line");
    let end: number;
    while ((end = r.buf.indexOf("\r\n\r\n")) < 0) {
      if (r.buf.byteLength > MAX_HEADER_BYTES) throw new MultipartError("multipart part headers too large");
      if (!(await r.fill())) throw new MultipartError("truncated multipart part headers");
    }
    const headers: Record<string, string> = {};
    for (const line of r.take(end + 4).toString("utf8").split("\r\n")) {
      const c = line.indexOf(":");
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    let finished = false;
    async function* body(): AsyncGenerator<Uint8Array> {
      for (;;) {
        const i = r.buf.indexOf(delim);
        if (i >= 0) {
          if (i > 0) yield new Uint8Array(r.take(i));
          r.take(delim.byteLength);
          finished = true;
          return;
        }
        // keep a tail that could be the start of the delimiter
        const safe = r.buf.byteLength - (delim.byteLength - 1);
        if (safe > 0) yield new Uint8Array(r.take(safe));
        if (!(await r.fill())) throw new MultipartError("multipart body ended inside a part");
      }
    }
    const disposition = headers["content-disposition"] ?? "";
    const gen = body();
    yield { headers, name: dispositionParam(disposition, "name"), filename: dispositionParam(disposition, "filename"), body: gen };
    if (!finished) for await (const _ of gen); // drain what the consumer left
  }
}
