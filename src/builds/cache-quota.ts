// The build cache's disk bound (`onebox serve --build-cache-mib`): the step cache ($DATA/builds/cache/<hash>/), the
// COPY uploads ($DATA/builds/files/<hash>.tar) and the pulled images ($DATA/builds/images/<hash>/) together hold at
// most maxBytes. Past it the least recently used go first, never one a build in flight holds (pinned). An entry's
// last use is its mtime (touched on every use), so the order survives a restart. docs/templates.md "Build cache".
import { lstatSync, readdirSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";

export type CacheKind = "step" | "upload" | "image";

export interface CacheItem {
  kind: CacheKind;
  path: string;
  /** What removing it frees: allocated blocks of its files not hard-linked elsewhere (an image's root image is
   *  linked into the templates built from it: those blocks stay with them). */
  bytes: number;
  usedAt: number;
  /** A staging dir or file (an entry being made): counted, never removed here. */
  staging: boolean;
}

const MIB = 1024 * 1024;

export class BuildCacheQuota {
  /** owner (a build id) -> paths it holds, each until a time (Infinity: until unpinned). */
  private readonly pins = new Map<string, Map<string, number>>();

  constructor(
    readonly dirs: { steps: string; uploads: string; images: string },
    readonly maxBytes: number,
    /** A staging entry older than this was left by a build that ended without cleaning up (a daemon that was
     *  killed): no build runs that long (--build-timeout-s), so it is pruned like any entry. */
    private readonly stagingMaxAgeMs = Infinity,
  ) {}

  /** owner holds path until unpinAll(owner), or until untilMs (a link handed out before the build started). */
  pin(owner: string, path: string, untilMs = Infinity): void {
    let m = this.pins.get(owner);
    if (!m) this.pins.set(owner, (m = new Map()));
    m.set(path, Math.max(m.get(path) ?? 0, untilMs));
  }

  unpinAll(owner: string): void {
    this.pins.delete(owner);
  }

  isPinned(path: string, now = Date.now()): boolean {
    for (const m of this.pins.values()) if ((m.get(path) ?? 0) > now) return true;
    return false;
  }

  /** Marks path used now (the LRU order). A path that is gone is no error. */
  touch(path: string): void {
    const now = new Date();
    try {
      utimesSync(path, now, now);
    } catch {
      /* removed meanwhile: nothing to order */
    }
  }

  /** Every entry on disk, oldest use first. */
  items(): CacheItem[] {
    const out: CacheItem[] = [];
    const seen = new Set<number>();
    const scan = (dir: string, kind: CacheKind) => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const name of names) {
        const path = join(dir, name);
        try {
          const st = lstatSync(path);
          const staging = (name.endsWith(".tmp") || name.startsWith(".")) && Date.now() - st.mtimeMs < this.stagingMaxAgeMs;
          out.push({ kind, path, bytes: ownBytes(path, seen), usedAt: st.mtimeMs, staging });
        } catch {
          /* removed while we looked */
        }
      }
    };
    scan(this.dirs.steps, "step");
    scan(this.dirs.uploads, "upload");
    scan(this.dirs.images, "image");
    return out.sort((a, b) => a.usedAt - b.usedAt);
  }

  usage(): { used: number; held: number } {
    let used = 0;
    let held = 0;
    const now = Date.now();
    for (const i of this.items()) {
      used += i.bytes;
      if (i.staging || this.isPinned(i.path, now)) held += i.bytes;
    }
    return { used, held };
  }

  /** Removes the least recently used entries no build holds until `more` bytes fit under the bound; false when
   *  they cannot (what is left is held by builds in flight or being written). */
  makeRoom(more: number): { fits: boolean; used: number; held: number } {
    const now = Date.now();
    const items = this.items();
    let used = items.reduce((n, i) => n + i.bytes, 0);
    const heldNow = (i: CacheItem) => i.staging || this.isPinned(i.path, now);
    const held = items.filter(heldNow).reduce((n, i) => n + i.bytes, 0);
    // What can never fit (held entries plus the new bytes past the bound) removes nothing.
    if (held + more > this.maxBytes) return { fits: false, used, held };
    for (const i of items) {
      if (used + more <= this.maxBytes) break;
      if (heldNow(i)) continue;
      rmSync(i.path, { recursive: true, force: true });
      used -= i.bytes;
      log.info("build cache: removed the least recently used entry", { kind: i.kind, entry: i.path, mib: +(i.bytes / MIB).toFixed(1), usedAt: new Date(i.usedAt).toISOString() });
    }
    return { fits: used + more <= this.maxBytes, used, held };
  }

  /** After an entry was added or a build let go of its own: back under the bound if builds in flight allow. */
  prune(): void {
    const r = this.makeRoom(0);
    if (!r.fits) log.warn("build cache is over its bound while builds in flight hold it", { usedMib: Math.round(r.used / MIB), heldMib: Math.round(r.held / MIB), maxMib: Math.round(this.maxBytes / MIB) });
  }
}

/** Allocated bytes of path's files (recursively) that only it holds: each inode once, none with other links. */
function ownBytes(path: string, seen: Set<number>): number {
  const st = lstatSync(path);
  if (st.isDirectory()) {
    let n = 0;
    for (const name of readdirSync(path)) n += ownBytes(join(path, name), seen);
    return n;
  }
  if (seen.has(st.ino) || st.nlink > 1) return 0;
  seen.add(st.ino);
  return st.blocks * 512;
}
