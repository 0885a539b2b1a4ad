// Builds EntryInfo messages (e2b-protocol.md §3.3): Go-style permission strings, owner names, metadata.
import { lstatSync, realpathSync, statSync, type Stats } from "node:fs";
import { basename } from "node:path";
import { listXattrs } from "./libc.ts";
import { idNames } from "./users.ts";

export const METADATA_XATTR_PREFIX = "user.e2b.";

export type FileTypeName = "FILE_TYPE_FILE" | "FILE_TYPE_DIRECTORY" | "FILE_TYPE_SYMLINK" | "FILE_TYPE_UNSPECIFIED";

export function fileType(st: Stats): FileTypeName {
  if (st.isSymbolicLink()) return "FILE_TYPE_SYMLINK";
  if (st.isDirectory()) return "FILE_TYPE_DIRECTORY";
  if (st.isFile()) return "FILE_TYPE_FILE";
  return "FILE_TYPE_UNSPECIFIED";
}

/** Go's os.FileMode.String(), which envd sends: type letters, then rwx (e.g. `drwxr-xr-x`, `Lrwxrwxrwx`). */
export function permissionString(st: Stats): string {
  let prefix = "";
  if (st.isDirectory()) prefix += "d";
  if (st.isSymbolicLink()) prefix += "L";
  if (st.isBlockDevice()) prefix += "D";
  if (st.isCharacterDevice()) prefix += "Dc";
  if (st.isFIFO()) prefix += "p";
  if (st.isSocket()) prefix += "S";
  if (st.mode & 0o4000) prefix += "u";
  if (st.mode & 0o2000) prefix += "g";
  if (st.mode & 0o1000) prefix += "t";
  if (prefix === "") prefix = "-";
  const rwx = "rwxrwxrwx";
  let bits = "";
  for (let i = 0; i < 9; i++) bits += st.mode & (1 << (8 - i)) ? rwx[i] : "-";
  return prefix + bits;
}

/** EntryInfo for `path` as the client named it (ListDir builds paths from the requested path, §3.3). */
export function entryInfo(path: string, st?: Stats): Record<string, unknown> {
  const s = st ?? lstatSync(path);
  const names = idNames();
  // Like envd: a symlink reports its target's type and permission bits, its own permission string
  // (`Lrwxrwxrwx`) and size, and the resolved target (the path itself when unresolvable).
  let type = fileType(s);
  let mode = s.mode & 0o777;
  let symlinkTarget: string | undefined;
  if (s.isSymbolicLink()) {
    try {
      symlinkTarget = realpathSync(path);
      const t = statSync(symlinkTarget);
      type = fileType(t);
      mode = t.mode & 0o777;
    } catch {
      symlinkTarget ??= path;
      type = "FILE_TYPE_UNSPECIFIED";
      mode = 0;
    }
  }
  const entry: Record<string, unknown> = {
    name: basename(path) || path,
    type,
    path,
    size: String(s.size),
    mode,
    permissions: permissionString(s),
    owner: names.user(s.uid),
    group: names.group(s.gid),
    modifiedTime: s.mtime.toISOString(),
  };
  if (symlinkTarget !== undefined) entry.symlinkTarget = symlinkTarget;
  const metadata = listXattrs(path, METADATA_XATTR_PREFIX);
  if (Object.keys(metadata).length) entry.metadata = metadata;
  return entry;
}
