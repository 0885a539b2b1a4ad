// filesystem.Filesystem unary RPCs: Stat, MakeDir, Move, ListDir, Remove (e2b-protocol.md §3.3).
import { cpSync, lstatSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ConnectError } from "./connect.ts";
import { optUint, raw, reqNonEmpty } from "./fields.ts";
import { entryInfo } from "./fs-entry.ts";
import { mkdirOwned, parentOf } from "./owned-dirs.ts";
import { resolvePath } from "./paths.ts";
import type { RpcContext } from "./process-rpc.ts";

type Obj = Record<string, unknown>;

/** Bounds ListDir's answer (and memory) on huge trees. */
const MAX_LIST_ENTRIES = 100_000;

/** Maps an errno from node:fs to a Connect error with a useful message. */
export function fsError(e: unknown, path: string): ConnectError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const msg = (e as Error)?.message ?? String(e);
  switch (code) {
    case "ENOENT":
      return new ConnectError("not_found", `path '${path}' does not exist`);
    case "EEXIST":
      return new ConnectError("already_exists", `path '${path}' already exists`);
    case "ENOTDIR":
      return new ConnectError("invalid_argument", `a component of '${path}' is not a directory`);
    case "EISDIR":
      return new ConnectError("invalid_argument", `path '${path}' is a directory`);
    case "EACCES":
    case "EPERM":
      return new ConnectError("permission_denied", `permission denied on '${path}'`);
    case "ENOSPC":
      return new ConnectError("resource_exhausted", `no space left on device writing '${path}'`);
    default:
      return new ConnectError("internal", `${path}: ${msg}`);
  }
}

/** Go's string order (UTF-8 bytes), which differs from JS's UTF-16 order for astral characters. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function statOrThrow(path: string) {
  try {
    return lstatSync(path);
  } catch (e) {
    throw fsError(e, path);
  }
}

export function createFilesystemService() {
  return {
    async Stat(ctx: RpcContext, body: Obj): Promise<Response> {
      const path = resolvePath(raw(body, "path"), ctx.user(), ctx.state.defaultWorkdir);
      return Response.json({ entry: entryInfo(path, statOrThrow(path)) });
    },

    async MakeDir(ctx: RpcContext, body: Obj): Promise<Response> {
      const user = ctx.user();
      const path = resolvePath(raw(body, "path"), user, ctx.state.defaultWorkdir);
      let existing;
      try {
        existing = lstatSync(path);
      } catch {
        // does not exist: create below
      }
      if (existing?.isDirectory()) throw new ConnectError("already_exists", `directory '${path}' already exists`);
      if (existing) throw new ConnectError("invalid_argument", `path '${path}' exists and is not a directory`);
      try {
        mkdirOwned(path, user);
      } catch (e) {
        throw fsError(e, path);
      }
      return Response.json({ entry: entryInfo(path) });
    },

    async Move(ctx: RpcContext, body: Obj): Promise<Response> {
      const user = ctx.user();
      const source = resolvePath(reqNonEmpty(body, "source"), user, undefined, "source");
      const destination = resolvePath(reqNonEmpty(body, "destination"), user, undefined, "destination");
      statOrThrow(source);
      try {
        mkdirOwned(parentOf(destination), user);
        try {
          renameSync(source, destination);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
          cpSync(source, destination, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
          rmSync(source, { recursive: true, force: true });
        }
      } catch (e) {
        throw fsError(e, destination);
      }
      return Response.json({ entry: entryInfo(destination) });
    },

    async ListDir(ctx: RpcContext, body: Obj): Promise<Response> {
      const path = resolvePath(raw(body, "path"), ctx.user(), ctx.state.defaultWorkdir);
      const depth = Math.max(1, optUint(body, "depth") ?? 1); // depth 0 is treated as 1 (§3.3)
      let root: string;
      try {
        root = realpathSync(path); // symlinks are resolved at the root
        if (!statSync(root).isDirectory()) throw new ConnectError("invalid_argument", `path '${path}' is not a directory`);
      } catch (e) {
        throw e instanceof ConnectError ? e : fsError(e, path);
      }
      const entries: Obj[] = [];
      const walk = (real: string, shown: string, level: number) => {
        let names: string[];
        try {
          names = readdirSync(real);
        } catch {
          return; // unreadable subdirectory: list what we can
        }
        names.sort(byteOrder); // envd's filepath.WalkDir visits each directory's names in byte order
        for (const name of names) {
          if (entries.length >= MAX_LIST_ENTRIES) return;
          const r = join(real, name);
          const s = join(shown, name);
          let st;
          try {
            st = lstatSync(r);
          } catch {
            continue; // vanished meanwhile
          }
          const e = entryInfo(r, st);
          e.path = s;
          entries.push(e);
          if (st.isDirectory() && level < depth) walk(r, s, level + 1);
        }
      };
      walk(root, path, 1);
      return Response.json({ entries });
    },

    async Remove(ctx: RpcContext, body: Obj): Promise<Response> {
      // An empty path would mean the working directory: never remove that by accident.
      const path = resolvePath(reqNonEmpty(body, "path"), ctx.user());
      try {
        rmSync(path, { recursive: true, force: true }); // succeeds on a missing path (§3.3)
      } catch (e) {
        throw fsError(e, path);
      }
      return Response.json({});
    },
  };
}
