// Reads the end of a (log) file, cut at a line boundary: at most maxBytes, and never a FIFO or a device.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

/** Last `maxBytes` of a file, cut at a line boundary; "" when it is missing or not a regular file. The console
 *  log is written by a jailed VMM, so the read must not follow a link or block: O_NOFOLLOW and O_NONBLOCK, and
 *  only a regular file is read (a FIFO would hang the daemon, a device could answer forever). */
export function tailFile(path: string, maxBytes = 64 * 1024): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return "";
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return "";
    const start = Math.max(0, st.size - maxBytes);
    const buf = Buffer.alloc(st.size - start);
    // The file may shrink meanwhile (the VMM rotates it in place, docs/vmm.md): use what was read.
    const n = readSync(fd, buf, 0, buf.length, start);
    const text = buf.subarray(0, n).toString("utf8");
    return start > 0 ? text.slice(text.indexOf("\n") + 1) : text;
  } finally {
    closeSync(fd);
  }
}
