// Resolves request paths for a user: `~` expansion, relative paths against home (e2b-protocol.md §3.3).
import { resolve } from "node:path";
import { ConnectError } from "./connect.ts";
import type { UserInfo } from "./users.ts";

export function resolvePath(raw: unknown, user: UserInfo, field = "path"): string {
  if (typeof raw !== "string") throw new ConnectError("invalid_argument", `${field} must be a string`);
  if (raw.includes("\0")) throw new ConnectError("invalid_argument", `${field} contains a NUL byte`);
  let p = raw;
  if (p === "~") p = user.home;
  else if (p.startsWith("~/")) p = user.home + p.slice(1);
  return resolve(user.home, p);
}
