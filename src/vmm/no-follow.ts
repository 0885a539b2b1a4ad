// Touching names that another uid (a jailed vmm) may create or replace, as root: never through a symlink, only
// the kind of file expected, owned by whom it should be, read with a byte cap (docs/vmm.md "Isolation").
import { randomBytes } from "node:crypto";
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync, readdirSync, readSync, renameSync } from "node:fs";
import { join } from "node:path";

/** open(2) flag for an fd that names a file without opening it (Linux; not in node:fs constants). */
const O_PATH = 0o10000000;

/** The regular file at path, at most `cap` bytes; throws for a symlink, anything but a regular file, or more. */
export function readCapped(path: string, cap: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const buf = Buffer.alloc(Math.min(st.size, cap) + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > cap) throw new Error(`${path} is over ${cap} bytes`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Opens the unix socket at path without following a symlink and checks it is a socket owned by one of `uids`.
 *  Returns the fd (O_PATH): connecting to `/proc/self/fd/<fd>` reaches exactly that socket, whatever the name
 *  points at by then. The caller closes it. */
export function openSocket(path: string, uids: number[]): number {
  const fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  const st = fstatSync(fd);
  if (!st.isSocket() || !uids.includes(st.uid)) {
    closeSync(fd);
    throw new Error(`${path} is not a socket of uid ${uids.join(" or ")}`);
  }
  return fd;
}

export const fdPath = (fd: number) => `/proc/self/fd/${fd}`;

/** Makes a snapshot directory a jailed vmm wrote (`from`, in its own dir) the daemon's: renames it to `to` (in a
 *  dir only root can write; `to` must not exist), then, through fds, makes the dir root's 0700 first (from then on
 *  the vmm can add, rename or replace nothing in it) and each file root's 0600. Only `files` may be there, each a
 *  regular file with one link, owned by `uid`; anything else and the directory is moved back to `trash` (which
 *  the daemon removes once the vmm is gone, when nothing can change under the removal) and this throws. */
export function claimVmmDir(from: string, to: string, uid: number, files: string[], trash: string): void {
  renameSync(from, to);
  const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  let problem: string | null = null;
  const dfd = openSync(to, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(dfd);
    if (st.uid !== uid) problem = `owned by uid ${st.uid}, not ${uid}`;
    else {
      fchownSync(dfd, me.uid, me.gid);
      fchmodSync(dfd, 0o700);
    }
  } finally {
    closeSync(dfd);
  }
  for (const name of problem ? [] : readdirSync(to)) {
    if (!files.includes(name)) {
      problem = `holds ${JSON.stringify(name)}`;
      break;
    }
    let fd: number;
    try {
      fd = openSync(join(to, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      problem = `${name}: ${(e as Error).message}`;
      break;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.nlink !== 1 || st.uid !== uid) problem = `${name} is not a regular file of uid ${uid} with one link`;
      else {
        fchownSync(fd, me.uid, me.gid);
        fchmodSync(fd, 0o600);
      }
    } finally {
      closeSync(fd);
    }
    if (problem) break;
  }
  if (problem) {
    renameSync(to, join(trash, `refused-${randomBytes(4).toString("hex")}`));
    throw new Error(`the vmm's snapshot directory ${from} ${problem}: refused`);
  }
}
