// POST /files/compose: concatenates uploaded chunks into one file, atomically, then removes them (e2b-protocol.md §3.4).
import { rmSync, statSync } from "node:fs";
import { basename } from "node:path";
import { ConnectError } from "./connect.ts";
import { errnoStatus, httpError, HttpError, iterate, writeAtomic } from "./files-http.ts";
import { resolvePath } from "./paths.ts";
import type { AgentState } from "./state.ts";
import { lookupUser } from "./users.ts";

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_SOURCES = 10_000;

async function* concat(paths: string[]): AsyncGenerator<Uint8Array> {
  for (const p of paths) yield* iterate(Bun.file(p).stream());
}

/** Body `{source_paths, destination, username?}` -> `{path, name, type: "file"}`; behind the token. */
export async function postCompose(req: Request, state: AgentState): Promise<Response> {
  let destination = "";
  try {
    const text = await req.text();
    if (text.length > MAX_BODY_BYTES) throw new HttpError(400, "compose body too large");
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text);
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error();
    } catch {
      throw new HttpError(400, "invalid request body: want a JSON object");
    }
    const sources = body.source_paths ?? body.sourcePaths;
    if (!Array.isArray(sources) || sources.length === 0 || sources.some((s) => typeof s !== "string")) {
      throw new HttpError(400, "source_paths must be a non-empty array of strings");
    }
    if (sources.length > MAX_SOURCES) throw new HttpError(400, `at most ${MAX_SOURCES} source paths`);
    if (typeof body.destination !== "string" || body.destination === "") throw new HttpError(400, "destination is required");
    const name = typeof body.username === "string" && body.username !== "" ? body.username : state.defaultUser;
    const user = lookupUser(name);
    if (!user) throw new HttpError(401, `invalid username: '${name}'`);
    destination = resolvePath(body.destination, user, state.defaultWorkdir);
    const resolved = (sources as string[]).map((s) => {
      const r = resolvePath(s, user, state.defaultWorkdir);
      if (r === destination) throw new HttpError(400, `source path '${s}' cannot be the same as destination`);
      let st;
      try {
        st = statSync(r);
      } catch {
        throw new HttpError(404, `source file not found: ${s}`);
      }
      if (!st.isFile()) throw new HttpError(400, `source path is not a regular file: ${s}`);
      return r;
    });
    await writeAtomic(destination, concat(resolved), user, {});
    for (const r of resolved) rmSync(r, { force: true });
    return Response.json({ path: destination, name: basename(destination), type: "file" });
  } catch (e) {
    if (e instanceof ConnectError) return httpError(400, e.message);
    const he = errnoStatus(e, destination);
    return httpError(he.status, he.message);
  }
}
