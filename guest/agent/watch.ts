// Directory watching: WatchDir (stream) and the polling CreateWatcher/GetWatcherEvents/RemoveWatcher (e2b-protocol.md §3.3).
import { lstatSync, readFileSync, realpathSync, statSync, watch, type FSWatcher } from "node:fs";
import { join, relative, sep } from "node:path";
import { ConnectError, requestDeadlineMs, streamResponse } from "./connect.ts";
import { optBool, raw } from "./fields.ts";
import { fsError } from "./filesystem-rpc.ts";
import { InotifyWatcher, type RawKind } from "./inotify.ts";
import { entryInfo } from "./fs-entry.ts";
import { resolvePath } from "./paths.ts";
import type { RpcContext } from "./process-rpc.ts";

type Obj = Record<string, unknown>;
export type EventTypeName = "EVENT_TYPE_CREATE" | "EVENT_TYPE_WRITE" | "EVENT_TYPE_REMOVE" | "EVENT_TYPE_RENAME" | "EVENT_TYPE_CHMOD";

/** Names of the agent's own temporary upload files: never reported (uploads are atomic, §3.4). */
export const UPLOAD_TEMP_PREFIX = ".onebox-upload-";

const MAX_POLL_QUEUE = 1000;
/** How long an upload's events wait for its rename to come through inotify before being reported anyway. */
const UPLOAD_EVENT_WAIT_MS = 500;
/** Each watcher holds one inotify instance; the kernel's default is 128 per user. */
const MAX_WATCHERS = 100;
const MAX_STREAM_BACKLOG = 4 * 1024 * 1024;
/** A polling watcher nobody asked about for this long is removed (bounded per-sandbox growth). */
const POLL_IDLE_MS = 10 * 60_000;
const NETWORK_FS = new Set(["nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs"]);

const KIND_TO_TYPE: Record<RawKind, EventTypeName> = {
  create: "EVENT_TYPE_CREATE",
  write: "EVENT_TYPE_WRITE",
  remove: "EVENT_TYPE_REMOVE",
  rename: "EVENT_TYPE_RENAME",
  chmod: "EVENT_TYPE_CHMOD",
};

class DirWatcher {
  private ino: InotifyWatcher | undefined;
  private fsw: FSWatcher | undefined;
  constructor(
    readonly root: string,
    readonly recursive: boolean,
    private includeEntry: boolean,
    private emit: (ev: Obj) => void,
  ) {
    this.ino = InotifyWatcher.open(root, recursive, (kind, rel) => {
      if (isTemp(rel)) return;
      const up = this.uploads.get(rel);
      if (kind === "create" && up) {
        // the upload's rename: stands for the whole sequence envd's open/chown/write would give
        this.uploads.delete(rel);
        clearTimeout(up.timer);
        if (!up.sent) for (const t of up.types) this.report(rel, t);
        return;
      }
      this.report(rel, KIND_TO_TYPE[kind]);
      // A directory made for an upload whose rename came before its watch was added: report the
      // upload after the events already read with this one (the directory's own CHMOD).
      if (kind === "create") {
        setTimeout(() => {
          for (const [r, u] of this.uploads) if (!u.sent && r.startsWith(rel + sep)) this.flushUpload(r, u);
        }, 0);
      }
    });
    if (!this.ino) {
      // Fallback without inotify through libc: fs.watch cannot tell renames from removals.
      this.fsw = watch(root, { recursive }, (kind, filename) => {
        if (typeof filename === "string" && filename !== "") this.onFsWatch(kind, filename);
      });
      this.fsw.on("error", () => this.close());
    }
    active.add(this);
  }

  private onFsWatch(kind: string, name: string): void {
    if (isTemp(name)) return;
    const full = join(this.root, name);
    let st;
    try {
      st = lstatSync(full);
    } catch {
      // gone
    }
    let type: EventTypeName;
    if (kind === "rename") type = st ? "EVENT_TYPE_CREATE" : "EVENT_TYPE_REMOVE";
    else if (!st) return;
    // inotify IN_ATTRIB and IN_MODIFY both arrive as "change": a chmod moves only ctime
    else type = st.ctimeMs > st.mtimeMs + 1 ? "EVENT_TYPE_CHMOD" : "EVENT_TYPE_WRITE";
    this.report(name, type);
  }

  /** Uploads landed (renamed into place) whose inotify CREATE has not been read yet. */
  private uploads = new Map<string, { types: EventTypeName[]; sent: boolean; timer: ReturnType<typeof setTimeout> }>();

  /** Reports an atomic upload as envd's in-place write shows: in the inotify stream's order, at its rename. */
  uploaded(rel: string, types: EventTypeName[]): void {
    if (!this.ino) {
      for (const t of types) if (t !== "EVENT_TYPE_CREATE") this.report(rel, t); // fs.watch reports the create itself
      return;
    }
    const old = this.uploads.get(rel);
    if (old) clearTimeout(old.timer);
    const u = { types, sent: false, timer: undefined as unknown as ReturnType<typeof setTimeout> };
    // The rename's event can be lost (queue overflow, a directory not watched yet): report anyway.
    u.timer = setTimeout(() => {
      this.uploads.delete(rel);
      if (!u.sent) for (const t of u.types) this.report(rel, t);
    }, UPLOAD_EVENT_WAIT_MS);
    this.uploads.set(rel, u);
  }

  private flushUpload(rel: string, u: { types: EventTypeName[]; sent: boolean }): void {
    u.sent = true; // kept until the timer, to swallow the rename's CREATE should it still come
    for (const t of u.types) this.report(rel, t);
  }

  report(name: string, type: EventTypeName): void {
    const ev: Obj = { name, type };
    if (this.includeEntry && type !== "EVENT_TYPE_REMOVE" && type !== "EVENT_TYPE_RENAME") {
      try {
        ev.entry = entryInfo(join(this.root, name));
      } catch {
        // vanished before we could stat it
      }
    }
    this.emit(ev);
  }

  covers(path: string): string | undefined {
    const rel = relative(this.root, path);
    if (rel === "" || rel.startsWith("..") || rel.startsWith(sep)) return undefined;
    if (!this.recursive && rel.includes(sep)) return undefined;
    return rel;
  }

  close(): void {
    active.delete(this);
    for (const u of this.uploads.values()) clearTimeout(u.timer);
    this.uploads.clear();
    this.ino?.close();
    try {
      this.fsw?.close();
    } catch {
      // closed
    }
  }
}

const active = new Set<DirWatcher>();

function isTemp(rel: string): boolean {
  return (rel.split(sep).pop() ?? rel).startsWith(UPLOAD_TEMP_PREFIX);
}

/**
 * Called after an atomic upload was renamed into place. envd writes in place (open O_CREAT|O_TRUNC,
 * chown, write, then xattrs), so its watchers see CREATE (new files only), CHMOD, WRITE (if any
 * bytes), CHMOD (if metadata was set); the rename shows only one CREATE, so report that sequence.
 */
export function notifyWritten(path: string, how: { created: boolean; bytes: number; metadata: boolean }): void {
  const types: EventTypeName[] = [];
  if (how.created) types.push("EVENT_TYPE_CREATE");
  types.push("EVENT_TYPE_CHMOD");
  if (how.bytes > 0 || !how.created) types.push("EVENT_TYPE_WRITE"); // O_TRUNC of an existing file is a write too
  if (how.metadata) types.push("EVENT_TYPE_CHMOD");
  for (const w of active) {
    const rel = w.covers(path);
    if (rel !== undefined) w.uploaded(rel, types);
  }
}

function mountFsType(real: string): string | undefined {
  let best = "";
  let type: string | undefined;
  try {
    for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
      const f = line.split(" ");
      if (f.length < 3) continue;
      const mp = f[1]!.replace(/\\040/g, " ");
      if ((real === mp || real.startsWith(mp.endsWith("/") ? mp : mp + "/")) && mp.length >= best.length) {
        best = mp;
        type = f[2];
      }
    }
  } catch {
    // no /proc: assume local
  }
  return type;
}

function openWatcher(ctx: RpcContext, body: Obj, emit: (ev: Obj) => void): DirWatcher {
  const path = resolvePath(raw(body, "path"), ctx.user(), ctx.state.defaultWorkdir);
  const recursive = optBool(body, "recursive") ?? false;
  const includeEntry = optBool(body, "includeEntry") ?? false;
  const allowNetwork = optBool(body, "allowNetworkMounts") ?? false;
  if (active.size >= MAX_WATCHERS) throw new ConnectError("resource_exhausted", "too many directory watchers");
  let real: string;
  try {
    real = realpathSync(path);
    if (!statSync(real).isDirectory()) throw new ConnectError("invalid_argument", `path '${path}' is not a directory`);
  } catch (e) {
    throw e instanceof ConnectError ? e : fsError(e, path);
  }
  const fsType = mountFsType(real);
  if (!allowNetwork && fsType && (NETWORK_FS.has(fsType) || fsType.startsWith("fuse"))) {
    throw new ConnectError("invalid_argument", `path '${path}' is on a network mount (${fsType}); set allowNetworkMounts to watch it`);
  }
  try {
    return new DirWatcher(real, recursive, includeEntry, emit);
  } catch (e) {
    throw fsError(e, path);
  }
}

interface PollWatcher {
  watcher: DirWatcher;
  events: Obj[];
  lastPoll: number;
}

export function createWatchService() {
  const polling = new Map<string, PollWatcher>();
  const sweep = () => {
    const now = Date.now();
    for (const [id, p] of polling) {
      if (now - p.lastPoll > POLL_IDLE_MS) {
        p.watcher.close();
        polling.delete(id);
      }
    }
  };
  setInterval(sweep, 60_000).unref();
  return {
    async WatchDir(ctx: RpcContext, body: Obj): Promise<Response> {
      const keepaliveS = Number(ctx.req.headers.get("keepalive-ping-interval"));
      const interval = (Number.isFinite(keepaliveS) && keepaliveS > 0 ? Math.max(keepaliveS, 1) : 90) * 1000;
      const deadline = requestDeadlineMs(ctx.req);
      return streamResponse((sink) => {
        const w = openWatcher(ctx, body, (ev) => {
          if (sink.backlog < MAX_STREAM_BACKLOG) sink.send({ filesystem: ev });
        });
        sink.send({ start: {} }); // the first message must be start (§3.3)
        const timer = setInterval(() => sink.send({ keepalive: {} }), interval);
        void sink.done.then(() => {
          clearInterval(timer);
          w.close();
        });
      }, deadline);
    },

    async CreateWatcher(ctx: RpcContext, body: Obj): Promise<Response> {
      sweep();
      const id = crypto.randomUUID();
      const entry: PollWatcher = { watcher: undefined as unknown as DirWatcher, events: [], lastPoll: Date.now() };
      entry.watcher = openWatcher(ctx, body, (ev) => {
        entry.events.push(ev);
        if (entry.events.length > MAX_POLL_QUEUE) entry.events.shift();
      });
      polling.set(id, entry);
      return Response.json({ watcherId: id });
    },

    async GetWatcherEvents(_ctx: RpcContext, body: Obj): Promise<Response> {
      const id = raw(body, "watcherId");
      const p = typeof id === "string" ? polling.get(id) : undefined;
      if (!p) throw new ConnectError("not_found", `watcher '${String(id)}' not found`);
      p.lastPoll = Date.now();
      const events = p.events;
      p.events = [];
      return Response.json({ events });
    },

    async RemoveWatcher(_ctx: RpcContext, body: Obj): Promise<Response> {
      const id = raw(body, "watcherId");
      const p = typeof id === "string" ? polling.get(id) : undefined;
      if (!p) throw new ConnectError("not_found", `watcher '${String(id)}' not found`);
      p.watcher.close();
      polling.delete(id as string);
      return Response.json({});
    },
  };
}
