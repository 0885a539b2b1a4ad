// GET /files (download: Range, gzip) and POST /files (atomic multipart / octet-stream upload) (e2b-protocol.md §3.4).
import { chmodSync, chownSync, closeSync, lstatSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ConnectError } from "./connect.ts";
import { METADATA_XATTR_PREFIX } from "./fs-entry.ts";
import { setXattr } from "./libc.ts";
import { boundaryOf, MultipartError, parseMultipart } from "./multipart.ts";
import { mkdirOwned } from "./owned-dirs.ts";
import { resolvePath } from "./paths.ts";
import { checkFileAccess, type FileOp } from "./signature.ts";
import type { AgentState } from "./state.ts";
import { lookupUser, type UserInfo } from "./users.ts";
import { notifyWritten, UPLOAD_TEMP_PREFIX } from "./watch.ts";

/** envd's HTTP error body: `{code, message}` with the integer status (§3.4, §3.6). */
export function httpError(status: number, message: string): Response {
  return Response.json({ code: status, message }, { status });
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_METADATA_KEYS = 64;

function authorise(req: Request, url: URL, op: FileOp, state: AgentState): UserInfo {
  const denied = checkFileAccess(url, op, req.headers.get("x-access-token"), state.accessToken);
  if (denied) throw new HttpError(401, denied);
  const name = url.searchParams.get("username") || state.defaultUser;
  const user = lookupUser(name);
  if (!user) throw new HttpError(401, `invalid username: '${name}'`);
  return user;
}

export function errnoStatus(e: unknown, path: string): HttpError {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (e instanceof HttpError) return e;
  if (code === "ENOSPC" || code === "EDQUOT") return new HttpError(507, `not enough disk space to write '${path}'`);
  if (code === "ENOENT") return new HttpError(404, `path '${path}' does not exist`);
  if (code === "EISDIR") return new HttpError(400, `path '${path}' is a directory`);
  if (code === "ENOTDIR") return new HttpError(400, `a component of '${path}' is not a directory`);
  if (code === "EACCES" || code === "EPERM") return new HttpError(403, `permission denied on '${path}'`);
  return new HttpError(500, `${path}: ${(e as Error)?.message ?? e}`);
}

/** Single `bytes=a-b` / `bytes=a-` / `bytes=-n` range; undefined = whole file, null = unsatisfiable. */
export function parseRange(h: string | null, size: number): { start: number; end: number } | undefined | null {
  if (!h) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined; // multi-range or malformed: serve all, like many servers
  if (m[1] === "") {
    const n = Math.min(Number(m[2]), size);
    return n === 0 ? null : { start: size - n, end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return null;
  return { start, end };
}

/**
 * Accept-Encoding negotiation like envd's (RFC 7231 §5.3.4): the best-quality acceptable coding
 * we support; identity unless it is refused (q=0); undefined when nothing acceptable is left.
 */
export function negotiateEncoding(header: string): "gzip" | "" | undefined {
  if (header.trim() === "") return "";
  const items = header.split(",").map((part) => {
    const [name = "", ...params] = part.split(";").map((x) => x.trim());
    const q = params.find((p) => /^q=/i.test(p));
    const quality = q ? Number(q.slice(2)) : 1;
    return { name: name.toLowerCase(), quality: Number.isFinite(quality) ? quality : 1 };
  });
  items.sort((a, b) => b.quality - a.quality);
  const identityRefused = items.some((i) => (i.name === "identity" || i.name === "*") && i.quality === 0) &&
    !items.some((i) => i.name === "identity" && i.quality > 0);
  for (const i of items) {
    if (i.quality === 0) continue;
    if (i.name === "identity") return "";
    if (i.name === "gzip") return "gzip";
    if (i.name === "*") return identityRefused ? "gzip" : "";
  }
  return identityRefused ? undefined : "";
}

export async function getFile(req: Request, url: URL, state: AgentState): Promise<Response> {
  try {
    const user = authorise(req, url, "read", state);
    const path = resolvePath(url.searchParams.get("path") ?? "", user, state.defaultWorkdir);
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      throw errnoStatus(e, path);
    }
    if (st.isDirectory()) throw new HttpError(400, `path '${path}' is a directory`);
    if (!st.isFile()) throw new HttpError(400, `path '${path}' is not a regular file`);
    const headers = new Headers({
      "content-type": "application/octet-stream",
      "last-modified": st.mtime.toUTCString(),
      "content-disposition": `inline; filename="${encodeURIComponent(basename(path))}"`,
      "accept-ranges": "bytes",
    });
    const file = Bun.file(path);
    const accept = req.headers.get("accept-encoding") ?? "";
    const rangeHeader = req.headers.get("range");
    const encoding = negotiateEncoding(accept);
    if (encoding === undefined) throw new HttpError(406, `no acceptable encoding in '${accept}' (gzip or identity)`);
    // gzip when asked (the SDK's `gzip` option, §3.4), but never for a byte range of the file.
    if (encoding === "gzip" && !rangeHeader) {
      headers.set("content-encoding", "gzip");
      headers.set("vary", "Accept-Encoding");
      return new Response(file.stream().pipeThrough(new CompressionStream("gzip")), { headers });
    }
    const range = parseRange(rangeHeader, st.size);
    if (range === null) {
      headers.set("content-range", `bytes */${st.size}`);
      return new Response(null, { status: 416, headers });
    }
    if (range) {
      headers.set("content-range", `bytes ${range.start}-${range.end}/${st.size}`);
      headers.set("content-length", String(range.end - range.start + 1));
      return new Response(file.slice(range.start, range.end + 1), { status: 206, headers });
    }
    // Pseudo-files (/proc, /sys, cgroupfs) report size 0 yet have content: stream them to EOF.
    if (st.size === 0) return new Response(file.stream(), { headers });
    headers.set("content-length", String(st.size));
    return new Response(file, { headers });
  } catch (e) {
    const he = e instanceof HttpError ? e : errnoStatus(e, url.searchParams.get("path") ?? "");
    return httpError(he.status, he.message);
  }
}

function metadataFromHeaders(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of req.headers) {
    if (!k.startsWith("x-metadata-")) continue;
    const key = k.slice("x-metadata-".length).toLowerCase();
    if (!/^[\x21-\x7e]+$/.test(key) || !/^[\x20-\x7e]*$/.test(v)) throw new HttpError(400, `invalid metadata header '${k}'`);
    out[key] = v;
  }
  if (Object.keys(out).length > MAX_METADATA_KEYS) throw new HttpError(400, "too many metadata headers");
  return out;
}

/**
 * Writes `chunks` to `path` atomically: a temp file in the same directory, then rename (readers
 * never see a half-written file). An overwritten file keeps its mode, as envd's O_TRUNC would;
 * files end up owned by the uploading user like envd's, new ones 0644 (§3.3).
 */
export async function writeAtomic(requested: string, chunks: AsyncIterable<Uint8Array>, user: UserInfo, metadata: Record<string, string>) {
  // Writing through a symlink updates its target (as an open(2) would), the link stays.
  let path = requested;
  try {
    if (lstatSync(requested).isSymbolicLink()) path = realpathSync(requested);
  } catch {
    // missing or dangling: write at the requested path
  }
  const dir = dirname(path);
  mkdirOwned(dir, user);
  let mode = 0o644;
  let created = true;
  let bytes = 0;
  try {
    const old = statSync(path);
    if (old.isDirectory()) throw new HttpError(400, `path '${path}' is a directory`);
    created = false;
    if (old.isFile()) mode = old.mode & 0o777;
  } catch (e) {
    if (e instanceof HttpError) throw e;
  }
  const tmp = join(dir, `${UPLOAD_TEMP_PREFIX}${crypto.randomUUID()}`);
  const fd = openSync(tmp, "wx", 0o600);
  let open = true;
  try {
    // Synchronous writes to the page cache keep up with the socket, so the request body is not
    // queued up in memory while we write (measured: async writes let ~60 MB pile up on 100 MiB).
    for await (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
      bytes += c.byteLength;
    }
    open = false;
    closeSync(fd);
    chmodSync(tmp, mode);
    chownSync(tmp, user.uid, user.gid);
    for (const [k, v] of Object.entries(metadata)) setXattr(tmp, METADATA_XATTR_PREFIX + k, v); // best effort (§3.4)
    renameSync(tmp, path);
  } catch (e) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  notifyWritten(path, { created, bytes, metadata: Object.keys(metadata).length > 0 });
}

function decoded(req: Request): ReadableStream<Uint8Array> {
  const body = req.body ?? new Blob([]).stream();
  const enc = (req.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (enc === "gzip") return body.pipeThrough(new DecompressionStream("gzip"));
  if (enc === "" || enc === "identity") return body;
  throw new HttpError(400, `unsupported Content-Encoding '${enc}'`);
}

export async function* iterate(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const r = stream.getReader();
  try {
    for (;;) {
      const x = await r.read();
      if (x.done) return;
      yield x.value;
    }
  } finally {
    r.releaseLock();
  }
}

export async function postFile(req: Request, url: URL, state: AgentState): Promise<Response> {
  let current = url.searchParams.get("path") ?? "";
  try {
    const user = authorise(req, url, "write", state);
    const metadata = metadataFromHeaders(req);
    const ct = req.headers.get("content-type") ?? "";
    const written: Record<string, unknown>[] = [];
    const done = (path: string) => {
      const r: Record<string, unknown> = { path, name: basename(path), type: "file" };
      if (Object.keys(metadata).length) r.metadata = metadata;
      written.push(r);
    };
    if (/^application\/octet-stream\b/i.test(ct)) {
      const raw = url.searchParams.get("path");
      if (!raw) throw new HttpError(400, "the path query parameter is required for octet-stream uploads");
      const path = resolvePath(raw, user, state.defaultWorkdir);
      current = path;
      await writeAtomic(path, iterate(decoded(req)), user, metadata);
      done(path);
    } else if (/^multipart\/form-data\b/i.test(ct)) {
      const boundary = boundaryOf(ct);
      if (!boundary) throw new HttpError(400, "multipart body without a boundary");
      for await (const part of parseMultipart(decoded(req), boundary)) {
        if (part.name !== "file") continue;
        // Like envd: the `path` query parameter wins over the part's filename.
        const raw = url.searchParams.get("path") ?? part.filename;
        if (!raw) throw new HttpError(400, "a file part needs a filename or the path query parameter");
        const path = resolvePath(raw, user, state.defaultWorkdir);
        if (written.some((w) => w.path === path)) {
          throw new HttpError(400, `you cannot upload multiple files to the same path '${path}' in one upload request`);
        }
        current = path;
        await writeAtomic(path, part.body, user, metadata);
        done(path);
      }
      if (written.length === 0) throw new HttpError(400, "no file part in the multipart body");
    } else {
      throw new HttpError(400, `unsupported Content-Type '${ct}' (want multipart/form-data or application/octet-stream)`);
    }
    return Response.json(written);
  } catch (e) {
    if (e instanceof MultipartError) return httpError(400, e.message);
    if (e instanceof ConnectError) return httpError(e.code === "unauthenticated" ? 401 : 400, e.message);
    const he = errnoStatus(e, current);
    return httpError(he.status, he.message);
  }
}
