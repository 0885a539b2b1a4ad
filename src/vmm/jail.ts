// Per-VM unprivileged identity (docs/vmm.md "Isolation"): a uid/gid no other live VM has, and the directories it may write.
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { envOn } from "../util/config.ts";

/** uid = gid = JAIL_ID_BASE + slot; far above login and system ids, below the 2^32 - 1 "no id" value. */
export const JAIL_ID_BASE = 200_000;
export const JAIL_SLOTS = 65_536;

export interface JailIds {
  uid: number;
  gid: number;
}

/** On for a root daemon; ONEBOX_VMM_JAIL=0 keeps the vmm root, for debugging only (docs/vmm.md "Isolation"). */
export function jailEnabled(): boolean {
  return envOn("ONEBOX_VMM_JAIL") && process.getuid?.() === 0;
}

// Slots handed out by this daemon and not yet released; a slot is also taken while any process runs as its uid
// (a VM of an earlier daemon not adopted yet, one still exiting, another daemon's), which a /proc scan sees.
const reserved = new Set<number>();

const UID_LINE = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m;

function uidsInUse(): Set<number> {
  const used = new Set<number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = UID_LINE.exec(readFileSync(`/proc/${name}/status`, "utf8"));
      if (m) for (const v of m.slice(1)) used.add(Number(v));
    } catch {
      // the process ended while we looked
    }
  }
  return used;
}

async function uidsInUseAsync(): Promise<Set<number>> {
  const used = new Set<number>();
  const names = (await readdir("/proc")).filter((n) => /^\d+$/.test(n));
  await Promise.all(
    names.map(async (name) => {
      const m = UID_LINE.exec(await readFile(`/proc/${name}/status`, "utf8").catch(() => ""));
      if (m) for (const v of m.slice(1)) used.add(Number(v));
    }),
  );
  return used;
}

// The scan costs ~75 us per process (10 ms for 130 processes on this loaded host): too much for every create.
// The first allocation scans synchronously; each allocation then refreshes the cache in the background for the
// next one. A cache a moment old misses only a VM that another daemon started in that moment, the same race a
// fresh scan has until the vmm's setresuid.
let usedCache: Set<number> | null = null;
let refreshing = false;
function refreshUsedSoon(): void {
  if (refreshing) return;
  refreshing = true;
  void uidsInUseAsync()
    .then((u) => {
      usedCache = u;
    })
    .catch(() => undefined)
    .finally(() => {
      refreshing = false;
    });
}

/** A uid/gid pair no live VM has; call releaseJailIds when the VM is gone. */
export function allocateJailIds(): JailIds {
  usedCache ??= uidsInUse();
  const used = usedCache;
  refreshUsedSoon();
  for (let slot = 0; slot < JAIL_SLOTS; slot++) {
    const id = JAIL_ID_BASE + slot;
    if (reserved.has(id) || used.has(id)) continue;
    reserved.add(id);
    return { uid: id, gid: id };
  }
  throw new Error(`no free vmm uid in ${JAIL_ID_BASE}..${JAIL_ID_BASE + JAIL_SLOTS - 1}`);
}

export function releaseJailIds(ids: JailIds): void {
  reserved.delete(ids.uid);
}

/** Marks ids as taken (adopt: the VM already runs with them). */
export function reserveJailIds(ids: JailIds): void {
  reserved.add(ids.uid);
}

/** Creates dir (mode 0700) owned by ids: the one directory the vmm may write in (vm-process.ts vmmDirFor). Its
 *  ancestors stay as they are (root-only): the vmm reaches dir through an inherited fd, never by its path, and no
 *  other uid can reach it at all (docs/vmm.md "Isolation"). */
export function prepareJailDir(dir: string, ids: JailIds): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, ids.uid, ids.gid);
  chmodSync(dir, 0o700);
}
