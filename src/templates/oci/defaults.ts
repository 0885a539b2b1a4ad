// An image config's ENV, USER, WORKDIR, ENTRYPOINT and CMD become the template's defaults
// (store/template-defaults.ts): what docker run would give a process, in E2B's terms.
import { chmodSync, lstatSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { badRequest } from "../../util/errors.ts";
import { E2B_DEFAULT_USER, type TemplateDefaults } from "../../store/template-defaults.ts";
import type { ImageConfig } from "./layout.ts";

/** Reads ROOT/etc/passwd without following a link out of the tree (the image is untrusted). */
export function readImagePasswd(root: string): { name: string; uid: number }[] {
  for (const p of [join(root, "etc"), join(root, "etc", "passwd")]) {
    try {
      const st = lstatSync(p);
      if (st.isSymbolicLink()) throw badRequest(`the image's ${p.slice(root.length)} is a symlink; onebox does not follow it`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }
  const text = readFileSync(join(root, "etc", "passwd"), "utf8").slice(0, 1024 * 1024);
  return text
    .split("\n")
    .map((l) => l.split(":"))
    .filter((f) => f.length >= 7 && f[0] && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]) }));
}

/** POSIX shell quoting of one word (only when it needs it). */
function shellQuote(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'"'"'`)}'`;
}

/** The template defaults of an image; root is its unpacked tree (for USER's name). */
export function imageDefaults(config: ImageConfig, root: string): TemplateDefaults {
  const c = config.config ?? {};
  const envVars: Record<string, string> = {};
  for (const kv of c.Env ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) envVars[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const d: TemplateDefaults = {};
  if (Object.keys(envVars).length) d.envVars = envVars;
  // USER is name, uid, name:group or uid:gid; the agent runs a user with its own groups, so only the
  // user part counts. No USER: E2B's `user` (which the image step adds), not the image's root.
  const spec = (c.User ?? "").split(":")[0]!.trim();
  if (spec && spec !== E2B_DEFAULT_USER) {
    if (spec === "root" || spec === "0") d.user = "root";
    else {
      const users = readImagePasswd(root);
      const u = /^\d+$/.test(spec) ? users.find((x) => x.uid === Number(spec)) : users.find((x) => x.name === spec);
      if (!u) throw badRequest(`the image's USER '${c.User}' is not in its /etc/passwd: the agent runs commands as a named user; add the user to the image`);
      d.user = u.name;
    }
  }
  if (c.WorkingDir && c.WorkingDir.startsWith("/")) d.workdir = c.WorkingDir;
  const argv = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (argv.length) d.startCmd = argv.map(shellQuote).join(" ");
  return d;
}

/** Docker creates WORKDIR when it is missing; so does onebox, in the unpacked tree, without following a
 *  link out of it (a path through a symlink is left as it is: it resolves inside the guest). */
export function ensureWorkdir(root: string, dir: string): void {
  let at = root;
  for (const part of dir.split("/").filter((p) => p && p !== ".")) {
    if (part === "..") return;
    at = join(at, part);
    try {
      const st = lstatSync(at);
      if (!st.isDirectory()) return;
    } catch {
      mkdirSync(at);
      chmodSync(at, 0o755); // the CLI's umask is 077 (src/main.ts); inside the image it is the usual mode

    }
  }
}
