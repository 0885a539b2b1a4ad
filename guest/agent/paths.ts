// Resolves request paths for a user like envd: empty -> default workdir, `~` expansion, relative against home (e2b-protocol.md §3.3).
import { resolve } from "node:path";
import { ConnectError } from "./connect.ts";
import type { UserInfo } from "./users.ts";

export function resolvePath(raw: unknown, user: UserInfo, defaultWorkdir?: string, field = "path"): string {
  if (raw === undefined || raw === null) raw = "";
  if (typeof raw !== "string") throw new ConnectError("invalid_argument", `${field} must be a string`);
  if (raw.includes("\0")) throw new ConnectError("invalid_argument", `${field} contains a NUL byte`);
  let p = raw === "" ? (defaultWorkdir ?? "") : raw;
  if (p.startsWith("~")) {
    if (p.length > 1 && p[1] !== "/") throw new ConnectError("invalid_argument", `cannot expand another user's home dir in '${p}'`);
    p = user.home + p.slice(1);
  }
  return resolve(user.home, p);
}
