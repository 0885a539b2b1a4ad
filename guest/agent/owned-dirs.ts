// Creates directories (with parents) owned by the acting user, as envd does for MakeDir and uploads (§3.3, §3.4).
import { chownSync, mkdirSync } from "node:fs";
import { dirname, sep } from "node:path";
import type { UserInfo } from "./users.ts";

/** mkdir -p, chowning every directory it created; returns whether `dir` itself was created. */
export function mkdirOwned(dir: string, user: UserInfo): boolean {
  const first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return false;
  // chown the created chain: `first` .. `dir`
  let p = dir;
  const chain: string[] = [];
  while (p.length >= first.length) {
    chain.push(p);
    if (p === first) break;
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of chain) chownSync(d, user.uid, user.gid);
  return true;
}

export function parentOf(path: string): string {
  const d = dirname(path);
  return d === "" ? sep : d;
}
