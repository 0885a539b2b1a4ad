// A directory watcher on raw inotify (through libc), so renames, chmods and writes are told apart like envd's fsnotify (e2b-protocol.md §3.3).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { inotifyLib } from "./libc.ts";

// <sys/inotify.h>
const IN_MODIFY = 0x2;
const IN_ATTRIB = 0x4;
const IN_MOVED_FROM = 0x40;
const IN_MOVED_TO = 0x80;
const IN_CREATE = 0x100;
const IN_DELETE = 0x200;
const IN_DELETE_SELF = 0x400;
const IN_Q_OVERFLOW = 0x4000;
const IN_IGNORED = 0x8000;
const IN_ONLYDIR = 0x01000000;
const IN_ISDIR = 0x40000000;
const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
const WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_ONLYDIR;
/** struct inotify_event: wd, mask, cookie, len, then `len` bytes of NUL-padded name. */
const EVENT_HEADER = 16;

export type RawKind = "create" | "write" | "remove" | "rename" | "chmod";

/** The fsnotify mapping envd uses: IN_MOVED_TO is a create, IN_MOVED_FROM a rename. */
function kinds(mask: number): RawKind[] {
  const out: RawKind[] = [];
  if (mask & (IN_CREATE | IN_MOVED_TO)) out.push("create");
  if (mask & IN_MOVED_FROM) out.push("rename");
  if (mask & IN_ATTRIB) out.push("chmod");
  if (mask & IN_MODIFY) out.push("write");
  if (mask & IN_DELETE) out.push("remove");
  return out;
}

export class InotifyWatcher {
  private wds = new Map<number, string>(); // wd -> directory relative to the root ("" = root)
  private reader: ReadableStreamDefaultReader<Uint8Array>;
  private closed = false;

  private constructor(
    private fd: number,
    private root: string,
    private recursive: boolean,
    private onEvent: (kind: RawKind, rel: string) => void,
  ) {
    this.reader = Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>;
  }

  /** Undefined when inotify is unavailable (no glibc, or out of instances): the caller falls back. */
  static open(root: string, recursive: boolean, onEvent: (kind: RawKind, rel: string) => void): InotifyWatcher | undefined {
    const lib = inotifyLib();
    if (!lib) return undefined;
    const fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return undefined;
    const w = new InotifyWatcher(fd, root, recursive, onEvent);
    if (!w.add("")) {
      w.close();
      return undefined;
    }
    void w.loop();
    return w;
  }

  /** Watches `rel` (and, when recursive, the directories below it); false if `rel` itself failed. */
  private add(rel: string): boolean {
    const lib = inotifyLib()!;
    const wd = lib.inotify_add_watch(this.fd, Buffer.from(join(this.root, rel) + "\0"), WATCH_MASK);
    if (wd < 0) return false;
    this.wds.set(wd, rel);
    if (this.recursive) {
      let names: import("node:fs").Dirent[] = [];
      try {
        names = readdirSync(join(this.root, rel), { withFileTypes: true });
      } catch {
        // vanished or unreadable: nothing below to watch
      }
      for (const d of names) if (d.isDirectory()) this.add(rel ? `${rel}/${d.name}` : d.name);
    }
    return true;
  }

  private forget(relDir: string): void {
    const lib = inotifyLib()!;
    for (const [wd, rel] of this.wds) {
      if (rel === relDir || rel.startsWith(relDir + "/")) {
        lib.inotify_rm_watch(this.fd, wd);
        this.wds.delete(wd);
      }
    }
  }

  private async loop(): Promise<void> {
    let carry = Buffer.alloc(0);
    try {
      for (;;) {
        const r = await this.reader.read();
        if (r.done || this.closed) return;
        let buf = carry.byteLength ? Buffer.concat([carry, r.value]) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        let off = 0;
        while (off + EVENT_HEADER <= buf.byteLength) {
          const wd = buf.readInt32LE(off);
          const mask = buf.readUInt32LE(off + 4);
          const len = buf.readUInt32LE(off + 12);
          if (off + EVENT_HEADER + len > buf.byteLength) break;
          const name = buf.toString("utf8", off + EVENT_HEADER, off + EVENT_HEADER + len).replace(/\0+$/, "");
          off += EVENT_HEADER + len;
          this.handle(wd, mask, name);
        }
        carry = Buffer.from(buf.subarray(off));
        buf = carry;
      }
    } catch {
      // fd closed under us: the watcher is over
    }
  }

  private handle(wd: number, mask: number, name: string): void {
    if (mask & IN_Q_OVERFLOW) return; // events were lost; nothing sensible to report
    const dir = this.wds.get(wd);
    if (mask & IN_IGNORED) {
      this.wds.delete(wd);
      return;
    }
    if (dir === undefined || name === "") return; // self events: the parent reports the change
    const rel = dir ? `${dir}/${name}` : name;
    if (this.recursive && mask & IN_ISDIR) {
      if (mask & (IN_CREATE | IN_MOVED_TO)) this.add(rel);
      if (mask & (IN_MOVED_FROM | IN_DELETE)) this.forget(rel);
    }
    for (const k of kinds(mask)) this.onEvent(k, rel);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Cancel the read first, then close: closing under a pending read would leave it polling.
    void this.reader.cancel().catch(() => {}).finally(() => inotifyLib()?.close(this.fd));
  }
}
