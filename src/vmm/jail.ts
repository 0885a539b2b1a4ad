// Per-VM unprivileged identity (docs/vmm.md "Isolation"): a uid/gid no other live VM has, and the directories it may write.
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";

/** uid = gid = JAIL_ID_BASE + slot; far above login and system ids, below the 2^32 - 1 "no id" value. */
export const JAIL_ID_BASE = 200_000;
export const JAIL_SLOTS = 65_536;

export interface JailIds {
  uid: number;
  gid: number;
}

/** Opt-in for now (ONEBOX_VMM_JAIL=1, daemon running as root): the jailed snapshot/restore e2e in the test host
 *  did not finish in time to be checked (docs/vmm.md "Isolation"), so the default stays root until it passes. */
export function jailEnabled(): boolean {
  return process.env.ONEBOX_VMM_JAIL === "1" && process.getuid?.() === 0;
}

// Slots handed out by this daemon and not yet released; a slot is also taken while any process runs as its uid
// (a VM adopted from an earlier daemon, or one still exiting), which the /proc scan sees.
const reserved = new Set<number>();

function uidsInUse(): Set<number> {
  const used = new Set<number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, "utf8"));
      if (m) for (const v of m.slice(1)) used.add(Number(v));
    } catch {
      // the process ended while we looked
    }
  }
  return used;
}

/** A uid/gid pair no live VM has; call releaseJailIds when the VM is gone. */
export function allocateJailIds(): JailIds {
  const used = uidsInUse();
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

/** Creates dir (mode 0700) owned by ids, and gives every ancestor search permission for others (x only, never
 *  r: nothing becomes listable) so the vmm can reach dir by its absolute path after it dropped root. */
export function prepareJailDir(dir: string, ids: JailIds): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, ids.uid, ids.gid);
  chmodSync(dir, 0o700);
  for (let p = dirname(dir); ; p = dirname(p)) {
    const st = statSync(p);
    if ((st.mode & 0o001) === 0) chmodSync(p, (st.mode & 0o7777) | 0o001);
    if (p === dirname(p)) break;
  }
}
