// Where one vmm process's host memory goes (bench:density, issue 18): its guest RAM mapping against the rest of the
// process (smaps), its page tables (status VmPTE), its cgroup's kernel-side memory (memory.stat: KVM's nested page
// tables, slab, stacks), and which guest pages it dirtied (pagemap), with what they hold (zero / same as the template).
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

const KIB = 1024;
const PAGE = 4096;

export interface Mapping {
  start: number;
  end: number;
  path: string;
  /** smaps fields in bytes (Rss, Pss, Private_Dirty, Anonymous, ...). */
  f: Record<string, number>;
}

/** /proc/PID/smaps as a list of mappings (empty if the process is gone). */
export function smaps(pid: number | "self"): Mapping[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return [];
  }
  const out: Mapping[] = [];
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      out.push({ start: parseInt(head[1] ?? "", 16), end: parseInt(head[2] ?? "", 16), path: head[3] ?? "", f: {} });
      continue;
    }
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    const last = out[out.length - 1];
    if (field?.[1] && last) last.f[field[1]] = Number(field[2]) * KIB;
  }
  return out;
}

/** The guest RAM mapping: the largest one (guest RAM is one mapping of --mem-mib; nothing else comes close). */
export function guestMapping(maps: Mapping[]): Mapping | undefined {
  return maps.reduce<Mapping | undefined>((a, m) => (!a || m.end - m.start > a.end - a.start ? m : a), undefined);
}

/** Sum of one smaps field over mappings. */
export const sumField = (maps: Mapping[], key: string): number => maps.reduce((a, m) => a + (m.f[key] ?? 0), 0);

/** The rest of the process by kind: its heap, anonymous mappings (thread stacks, malloc arenas), KVM's own
 *  (kvm_run pages), and files (the vmm binary, libc). PSS in bytes. */
export function restByKind(rest: Mapping[]): Record<string, number> {
  const kind = (m: Mapping): string =>
    m.path === "[heap]" ? "heap" : m.path === "" ? "anon" : m.path.startsWith("anon_inode:") ? "kvm" : m.path.startsWith("[") ? "other" : "files";
  const out: Record<string, number> = { heap: 0, anon: 0, kvm: 0, files: 0, other: 0 };
  for (const m of rest) out[kind(m)] = (out[kind(m)] ?? 0) + (m.f.Pss ?? 0);
  return out;
}

/** A field of /proc/PID/status in bytes (VmPTE, VmRSS, ...); 0 if absent. */
export function statusBytes(pid: number | "self", key: string): number {
  try {
    return Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * KIB;
  } catch {
    return 0;
  }
}

/** cgroup v2 memory.stat as bytes per key ({} if unreadable: v1 or no cgroup). */
export function memoryStat(dir: string | undefined): Record<string, number> {
  if (!dir) return {};
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync(`${dir}/memory.stat`, "utf8").split("\n")) {
      const [k, v] = line.split(" ");
      if (k && v) out[k] = Number(v);
    }
    return out;
  } catch {
    return {};
  }
}

/** The guest's own pages: in the MAP_PRIVATE mapping of the template's memory file, a page the guest wrote is a
 *  private anonymous copy (Anonymous); Private_Clean would also count template pages only this clone has read. */
export const guestOwnBytes = (g: Mapping | undefined): number => g?.f.Anonymous ?? 0;

export interface DirtyPages {
  /** Pages of the guest mapping that are the process's own (copied on write, or anonymous), by guest physical
   *  bucket of `bucketBytes`. */
  buckets: number[];
  total: number;
  /** Of those, when `classify`: pages all zero, pages equal to the template's page at the same offset, others. */
  zero: number;
  sameAsFile: number;
  other: number;
  /** Page indices (= guest frame numbers) of those pages, when `list`. */
  pfns: number[];
}

/** The guest pages a process privately holds (pagemap: present and not a file/shared page), bucketed by guest
 *  physical address; with `classify`, their contents are read (root: /proc/PID/mem) and compared with zero and with
 *  the template memory file `filePath` at the same offset. Guest physical address = offset in the mapping (RAM is
 *  one mapping from GPA 0, docs/vmm.md). */
export function dirtyPages(pid: number, g: Mapping, bucketBytes: number, classify: boolean, filePath?: string, list = false): DirtyPages {
  const pages = (g.end - g.start) / PAGE;
  const r: DirtyPages = { buckets: new Array(Math.ceil((g.end - g.start) / bucketBytes)).fill(0), total: 0, zero: 0, sameAsFile: 0, other: 0, pfns: [] };
  const pm = openSync(`/proc/${pid}/pagemap`, "r");
  const mem = classify ? openSync(`/proc/${pid}/mem`, "r") : -1;
  let file = -1;
  try {
    if (classify && filePath?.startsWith("/") && !filePath.endsWith("(deleted)")) file = openSync(filePath, "r");
  } catch {
    // the template file is gone or unreadable: its pages count as "other"
  }
  try {
    const CHUNK = 8192; // pages per pagemap read (64 KiB of entries)
    const buf = Buffer.alloc(CHUNK * 8);
    const page = Buffer.alloc(PAGE);
    const orig = Buffer.alloc(PAGE);
    for (let first = 0; first < pages; first += CHUNK) {
      const n = Math.min(CHUNK, pages - first);
      const got = readSync(pm, buf, 0, n * 8, (g.start / PAGE + first) * 8);
      for (let i = 0; i < got / 8; i++) {
        const e = buf.readBigUInt64LE(i * 8);
        const present = (e >> 63n) & 1n;
        const fileOrShared = (e >> 61n) & 1n;
        if (!present || fileOrShared) continue;
        const p = first + i;
        r.total++;
        const b = Math.floor((p * PAGE) / bucketBytes);
        r.buckets[b] = (r.buckets[b] ?? 0) + 1;
        if (list) r.pfns.push(p);
        if (!classify) continue;
        readSync(mem, page, 0, PAGE, g.start + p * PAGE);
        if (page.every((b) => b === 0)) r.zero++;
        else if (file >= 0 && readSync(file, orig, 0, PAGE, p * PAGE) === PAGE && page.equals(orig)) r.sameAsFile++;
        else r.other++;
      }
    }
  } finally {
    closeSync(pm);
    if (mem >= 0) closeSync(mem);
    if (file >= 0) closeSync(file);
  }
  return r;
}

/** A guest shell command (run as root) that sorts the guest frames listed in FILE (one per line) by what the guest
 *  kernel says they are now (/proc/kpageflags): free, slab, page table, anon, page cache, reserved, other kernel. */
export const GUEST_PAGE_KINDS_CMD = (file: string): string =>
  `od -An -v -tx8 -w8 /proc/kpageflags | awk '
    function hex(s,  i, n) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return n }
    function bit(n, b) { return int(n / 2 ^ b) % 2 }
    NR == FNR { want[$1 + 0] = 1; next }
    (FNR - 1) in want {
      x = $1; lo = hex(substr(x, 9, 8)); hi = hex(substr(x, 1, 8))
      k = bit(lo, 10) ? "free" : bit(lo, 7) ? "slab" : bit(lo, 26) ? "pagetable" : bit(lo, 12) ? "anon" : bit(lo, 5) ? "pagecache" : bit(hi, 0) ? "reserved" : "kernel_other"
      n[k]++
    }
    END { for (k in n) printf "%s=%d ", k, n[k]; print "" }' ${file} -`;
