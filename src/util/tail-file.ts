// Reads the end of a (log) file, cut at a line boundary.
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";

/** Last `maxBytes` of a file, cut at a line boundary. */
export function tailFile(path: string, maxBytes = 64 * 1024): string {
  if (!existsSync(path)) return "";
  const size = statSync(path).size;
  const start = Math.max(0, size - maxBytes);
  const buf = Buffer.alloc(size - start);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buf.toString("utf8");
  return start > 0 ? text.slice(text.indexOf("\n") + 1) : text;
}
