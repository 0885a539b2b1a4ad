// Looks up users and groups in /etc/passwd and /etc/group, and picks the acting user (e2b-protocol.md §3.5).
import { readFileSync } from "node:fs";
import { ConnectError } from "./connect.ts";

export interface UserInfo {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** Supplementary group ids (from /etc/group membership, plus the primary group). */
  groups: number[];
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n");
  } catch {
    return [];
  }
}

/** Reads the files every time: they are tiny and users may be added at run time (useradd). */
export function lookupUser(name: string, etc = "/etc"): UserInfo | undefined {
  for (const line of readLines(`${etc}/passwd`)) {
    const f = line.split(":");
    if (f.length < 7 || f[0] !== name) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
    const groups = new Set<number>([gid]);
    for (const g of readLines(`${etc}/group`)) {
      const gf = g.split(":");
      if (gf.length < 4) continue;
      const members = gf[3]!.split(",").map((m) => m.trim());
      const id = Number(gf[2]);
      if (members.includes(name) && Number.isInteger(id)) groups.add(id);
    }
    return { name, uid, gid, home: f[5] || "/", shell: f[6] || "/bin/sh", groups: [...groups] };
  }
  return undefined;
}

const nameCache = { users: new Map<number, string>(), groups: new Map<number, string>(), at: 0 };

/** uid/gid -> name for EntryInfo owner/group (§3.3); refreshed every few seconds. */
export function idNames(): { user(uid: number): string; group(gid: number): string } {
  const now = Date.now();
  if (now - nameCache.at > 2000) {
    nameCache.users.clear();
    nameCache.groups.clear();
    for (const l of readLines("/etc/passwd")) {
      const f = l.split(":");
      if (f.length >= 3 && !nameCache.users.has(Number(f[2]))) nameCache.users.set(Number(f[2]), f[0]!);
    }
    for (const l of readLines("/etc/group")) {
      const f = l.split(":");
      if (f.length >= 3 && !nameCache.groups.has(Number(f[2]))) nameCache.groups.set(Number(f[2]), f[0]!);
    }
    nameCache.at = now;
  }
  return {
    user: (uid) => nameCache.users.get(uid) ?? String(uid),
    group: (gid) => nameCache.groups.get(gid) ?? String(gid),
  };
}

/**
 * The user named by `Authorization: Basic base64("<name>:")` (§2.2), else the default user.
 * An unknown user is `unauthenticated` (§3.5).
 */
export function userFromAuthorization(header: string | null, defaultUser: string): UserInfo {
  let name = defaultUser;
  if (header) {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) throw new ConnectError("unauthenticated", "malformed Authorization header");
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    name = colon >= 0 ? decoded.slice(0, colon) : decoded;
    if (name === "") name = defaultUser;
  }
  return resolveUser(name);
}

export function resolveUser(name: string): UserInfo {
  const u = lookupUser(name);
  if (!u) throw new ConnectError("unauthenticated", `invalid username: '${name}'`);
  return u;
}
