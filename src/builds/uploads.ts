// COPY uploads of template builds: GET /templates/{id}/files/{hash} answers whether the SDK's tar of those files is
// stored, and if not a signed URL of onebox's own (PUT /templates/uploads/{hash}) that takes it, capped, checked as
// a tar whose names stay inside the copy, and stored under $DATA/builds/files/<hash>.tar by its files hash, within the
// build cache's bound (cache-quota.ts: older entries make room, else 413).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { badRequest, OneboxError, unauthorized } from "../util/errors.ts";
import type { BuildCacheQuota } from "./cache-quota.ts";

/** How long a link stays valid: the SDK uploads right after asking (all COPY steps in parallel). */
export const UPLOAD_LINK_MS = 60 * 60_000;
const HASH = /^[0-9a-f]{64}$/;

export class BuildUploads {
  /** Per daemon process: a restart invalidates open links (the SDK asks again on its next build). */
  private readonly key = randomBytes(32);
  readonly dir: string;

  constructor(
    dataDir: string,
    private readonly maxBytes: number,
    private readonly quota: BuildCacheQuota,
  ) {
    this.dir = join(dataDir, "builds", "files");
  }

  path(hash: string): string {
    checkHash(hash);
    return join(this.dir, `${hash}.tar`);
  }

  present(hash: string): boolean {
    return existsSync(this.path(hash));
  }

  /** hash's upload is used now (the cache's LRU order); with an owner, that build holds it (until untilMs, or
   *  until the build ends), so the cache's pruning leaves it. */
  use(hash: string, owner?: string, untilMs?: number): void {
    if (owner) this.quota.pin(owner, this.path(hash), untilMs);
    this.quota.touch(this.path(hash));
  }

  /** The signed path of the upload route for hash, valid UPLOAD_LINK_MS from now. */
  link(hash: string, now = Date.now()): string {
    checkHash(hash);
    const expires = now + UPLOAD_LINK_MS;
    return `/templates/uploads/${hash}?expires=${expires}&signature=${this.sign(hash, expires)}`;
  }

  /** Throws 401 unless signature is this daemon's for hash and has not expired. */
  verify(hash: string, expires: string | undefined, signature: string | undefined, now = Date.now()): void {
    checkHash(hash);
    const exp = Number(expires);
    if (!signature || !Number.isSafeInteger(exp)) throw unauthorized("upload link without its expires and signature: ask GET /templates/{id}/files/{hash} for one");
    const want = Buffer.from(this.sign(hash, exp));
    const got = Buffer.from(signature);
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw unauthorized("upload link signature does not match: ask GET /templates/{id}/files/{hash} for a new one");
    if (exp < now) throw unauthorized("upload link expired: ask GET /templates/{id}/files/{hash} for a new one");
  }

  /** Stores body as hash's tar: at most maxBytes (413 past it), a (gzipped) tar whose entries are relative and
   *  never climb out with `..`, written to a temporary file and renamed, so a half upload is never present. */
  async store(hash: string, body: ReadableStream<Uint8Array> | null, declared: number | null): Promise<number> {
    const dest = this.path(hash);
    if (declared !== null && declared > this.maxBytes) throw tooLarge(this.maxBytes);
    if (!body) throw badRequest("upload without a body: PUT the tar of the COPY's files");
    if (declared !== null) this.makeRoom(declared);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${dest}.${randomBytes(6).toString("hex")}.tmp`;
    const sink = Bun.file(tmp).writer();
    let n = 0;
    try {
      for await (const chunk of body) {
        n += chunk.byteLength;
        if (n > this.maxBytes) throw tooLarge(this.maxBytes);
        sink.write(chunk);
      }
      await sink.end();
      // Without a declared size the file itself (counted while it is written) must fit.
      if (declared === null) this.makeRoom(0);
      await checkTar(tmp);
      renameSync(tmp, dest);
      return n;
    } catch (e) {
      await Promise.resolve(sink.end()).catch(() => undefined);
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Room for `bytes` more in the build cache (older entries no build holds go), else a 413 saying so. */
  private makeRoom(bytes: number): void {
    const r = this.quota.makeRoom(bytes);
    if (r.fits) return;
    const mib = (n: number) => Math.ceil(n / 1048576);
    throw new OneboxError(
      "too-large",
      `the build cache is full: this upload (${mib(bytes)} MiB) does not fit under --build-cache-mib ${mib(this.quota.maxBytes)} (${mib(r.used)} MiB used, ${mib(r.held)} MiB of it held by builds in flight): wait for them to finish, copy fewer files, or raise --build-cache-mib`,
    );
  }

  private sign(hash: string, expires: number): string {
    return createHmac("sha256", this.key).update(`${hash}:${expires}`).digest("hex");
  }
}

function checkHash(hash: string): void {
  if (!HASH.test(hash)) throw badRequest(`files hash '${hash.slice(0, 80)}' must be 64 lowercase hex digits (the SDK's sha256 of the COPY)`);
}

function tooLarge(max: number): OneboxError {
  return new OneboxError("too-large", `upload is larger than ${Math.round(max / 1048576)} MiB (maxBuildUploadBytes): copy fewer files, or install them with a RUN step`);
}

/** Lists the archive with the host's tar (gzip detected by it): it must be a tar, its names relative, no `..`. */
async function checkTar(file: string): Promise<void> {
  const p = Bun.spawn(["tar", "-tf", file], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw badRequest(`upload is not a tar (or gzipped tar) archive: ${err.trim().split("\n")[0] ?? ""}`);
  for (const name of out.split("\n")) {
    if (name === "") continue;
    if (name.startsWith("/") || name.split("/").includes("..")) throw badRequest(`upload has an entry '${name.slice(0, 200)}' outside the copy: names must be relative, without '..'`);
  }
}
