// Per-VM cgroup (docs/vmm.md "Isolation"): finds this host's memory/pids/cpu controllers (cgroup v2, else v1),
// creates one limited cgroup per VM that the vmm joins itself (--cgroup), reads its OOM kills, and removes it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { envOn } from "../util/config.ts";

const MiB = 1024 * 1024;
/** Controllers a VM cgroup limits; memory and pids are required, cpu (weight only) is used when present. */
const CONTROLLERS = ["memory", "pids", "cpu"] as const;
type Controller = (typeof CONTROLLERS)[number];
/** The directory under the daemon's own cgroup (per hierarchy) that holds one child per VM. */
const PARENT = "onebox";
/** v2 only: the leaf the daemon moves itself to when its cgroup must stop holding processes (see enableV2). */
const DAEMON_LEAF = "onebox-daemon";
/** Main thread, event loop and up to VM_MAX_VCPUS vCPU threads, with room to spare; the vmm never forks. */
export const VM_PIDS_MAX = 32;
/** An empty VM cgroup this old is a leftover (its VM ended while no daemon watched it); younger ones may be
 *  waiting for their vmm to join. */
const STALE_MS = 60_000;

export interface VmCgroup {
  version: 1 | 2;
  /** Controller -> this VM's directory in that controller's hierarchy (v2: one directory for all). */
  dirs: Partial<Record<Controller, string>>;
  /** The memory limit set at creation. */
  memoryBytes: number;
}

export interface VmLimits {
  memoryBytes: number;
  pids: number;
  vcpus: number;
}

/** The limits for a VM of memMib guest RAM: RAM plus the vmm's own overhead. The overhead covers the vmm's heap,
 *  thread stacks, vsock buffers, KVM's page tables for guest RAM (kernel memory, charged too) and the page cache
 *  of its disk and snapshot I/O: 256 MiB plus 1/4 of RAM. The page cache is reclaimable, but a limit that keeps
 *  it under constant reclaim broke guests: with RAM + 64 MiB + RAM/16, a 2-vCPU 1 GiB code-interpreter guest
 *  reading its 1.1 GiB image triple-faulted while booting in the test host (nested KVM); with this headroom
 *  it boots. The limit is a bound on a runaway vmm, not a squeeze. */
export function vmLimits(memMib: number, vcpus: number): VmLimits {
  return { memoryBytes: (memMib + 256 + Math.ceil(memMib / 4)) * MiB, pids: VM_PIDS_MAX, vcpus };
}

/** On unless ONEBOX_VMM_CGROUP=0 (debugging only) and only for a root daemon (cgroup files are root's). */
export function cgroupsEnabled(): boolean {
  return envOn("ONEBOX_VMM_CGROUP") && process.getuid?.() === 0;
}

interface Layout {
  version: 1 | 2;
  /** Controller -> the per-VM parent directory ("onebox" under the daemon's own cgroup). */
  parents: Partial<Record<Controller, string>>;
}

function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/** mountinfo fields: 4 = root of the mount inside its hierarchy, 5 = mount point; after "-": fstype, source, super options. */
function cgroupMounts(): { point: string; root: string; fstype: string; options: string[] }[] {
  const out = [];
  for (const line of readText("/proc/self/mountinfo").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 0) continue;
    const fstype = f[dash + 1] ?? "";
    if (fstype !== "cgroup" && fstype !== "cgroup2") continue;
    const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    out.push({ root: unescape(f[3] ?? ""), point: unescape(f[4] ?? ""), fstype, options: (f[dash + 3] ?? "").split(",") });
  }
  return out;
}

/** /proc/self/cgroup: "0::PATH" for v2 (key ""), "N:ctrl,ctrl:PATH" per v1 hierarchy (key = each controller). */
function ownCgroupPaths(): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of readText("/proc/self/cgroup").split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[2] === "") paths.set("", m[3] ?? "/");
    for (const c of (m[2] ?? "").split(",")) if (c) paths.set(c, m[3] ?? "/");
  }
  return paths;
}

/** Where our own cgroup `path` appears under a mount whose root is `root`; null if that mount cannot see it. */
function underMount(point: string, root: string, path: string): string | null {
  if (root === "/") return join(point, path);
  if (path === root || path.startsWith(`${root}/`)) return join(point, path.slice(root.length));
  return null;
}

const splitWords = (s: string) => s.split(/\s+/).filter(Boolean);

/** v2: controllers must be enabled in the daemon's cgroup's subtree_control. A non-root cgroup that holds processes
 *  cannot do that ("no internal processes"), so the daemon first moves itself into a leaf beside the VMs (what
 *  systemd's Delegate= expects of a service managing its own subtree). */
function enableV2(base: string, want: string[]): void {
  const enable = () => writeFileSync(join(base, "cgroup.subtree_control"), want.map((c) => `+${c}`).join(" "));
  try {
    enable();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EBUSY") throw e;
    mkdirSync(join(base, DAEMON_LEAF), { recursive: true });
    writeFileSync(join(base, DAEMON_LEAF, "cgroup.procs"), `${process.pid}\n`);
    enable();
  }
}

function detect(): Layout | null {
  const mounts = cgroupMounts();
  const own = ownCgroupPaths();
  const v2 = mounts.find((m) => m.fstype === "cgroup2");
  const v2path = own.get("");
  if (v2 && v2path !== undefined) {
    const base = underMount(v2.point, v2.root, v2path);
    const avail = base && existsSync(join(base, "cgroup.controllers")) ? splitWords(readText(join(base, "cgroup.controllers"))) : [];
    if (base && avail.includes("memory") && avail.includes("pids")) {
      const want = CONTROLLERS.filter((c) => avail.includes(c));
      enableV2(base, want);
      return { version: 2, parents: Object.fromEntries(want.map((c) => [c, join(base, PARENT)])) };
    }
  }
  // v1 (or hybrid): one hierarchy per controller, each with our own cgroup in it.
  const parents: Partial<Record<Controller, string>> = {};
  for (const c of CONTROLLERS) {
    const m = mounts.find((x) => x.fstype === "cgroup" && x.options.includes(c));
    const path = own.get(c);
    const base = m && path !== undefined ? underMount(m.point, m.root, path) : null;
    if (!base || !existsSync(base)) continue;
    parents[c] = join(base, PARENT);
  }
  return parents.memory && parents.pids ? { version: 1, parents } : null;
}

let layout: Layout | null | undefined;
let warned = false;

/** The host's layout, found once; null (with one warning) when no usable memory + pids hierarchy exists. */
function hostLayout(): Layout | null {
  if (layout !== undefined) return layout;
  try {
    layout = detect();
  } catch (e) {
    layout = null;
    if (!warned) console.warn(`onebox: cannot set up VM cgroups (${(e as Error).message}); VMs run without memory/pids limits`);
    warned = true;
    return layout;
  }
  if (!layout && !warned) console.warn("onebox: no cgroup v2 or v1 memory+pids hierarchy is mounted; VMs run without memory/pids limits");
  warned = true;
  return layout;
}

/** 2 or 1 when VMs get cgroups on this host (root daemon, a hierarchy found), else null. */
export function hostCgroupVersion(): 1 | 2 | null {
  return cgroupsEnabled() ? (hostLayout()?.version ?? null) : null;
}

/** The distinct directories the vmm joins (--cgroup each): co-mounted v1 controllers share one. */
export function cgroupDirs(cg: VmCgroup): string[] {
  return [...new Set(Object.values(cg.dirs))];
}

// VM cgroups this daemon created and has not removed: the stale sweep leaves them alone.
const live = new Set<string>();

/** Makes `parent` (it is removed again with its last VM, so nothing of ours outlives the VMs in a cgroup tree
 *  that someone else manages) and, on v2, lets its children use the controllers. */
function ensureParent(version: 1 | 2, parent: string, controllers: string[]): void {
  if (existsSync(parent)) return;
  mkdirSync(parent, { recursive: true });
  if (version === 2) writeFileSync(join(parent, "cgroup.subtree_control"), controllers.map((c) => `+${c}`).join(" "));
}

function sweepStale(parent: string): void {
  for (const name of readdirSync(parent)) {
    const dir = join(parent, name);
    if (live.has(dir)) continue;
    try {
      if (!statSync(dir).isDirectory() || Date.now() - statSync(dir).mtimeMs < STALE_MS) continue;
      rmdirSync(dir); // fails (EBUSY) while any process is in it: a VM adopted or about to be
    } catch {
      // busy, or gone meanwhile
    }
  }
}

function writeLimits(cg: VmCgroup, limits: VmLimits): void {
  const { memory, pids, cpu } = cg.dirs;
  if (!memory || !pids) throw new Error("VM cgroup without memory or pids directory");
  setMemoryLimit(cg.version, memory, limits.memoryBytes);
  writeFileSync(join(pids, "pids.max"), `${limits.pids}\n`);
  // CPU share proportional to vCPUs, relative to the default of one cgroup (v1 shares 1024, v2 weight 100).
  if (cpu && cg.version === 1) writeFileSync(join(cpu, "cpu.shares"), `${1024 * limits.vcpus}\n`);
  if (cpu && cg.version === 2) writeFileSync(join(cpu, "cpu.weight"), `${Math.min(10_000, 100 * limits.vcpus)}\n`);
}

/** Sets the memory limit of a VM's memory cgroup directory. */
function setMemoryLimit(version: 1 | 2, dir: string, bytes: number): void {
  writeFileSync(join(dir, version === 2 ? "memory.max" : "memory.limit_in_bytes"), `${bytes}\n`);
}

/** Suffix of the sibling a VM's process writes a snapshot from (chargeSnapshotElsewhere). */
const SNAPSHOT_SUFFIX = ".snap";

/** Runs `write` (a snapshot of the VM whose process is pid) with that process moved into a sibling memory cgroup
 *  with the same limit, then moves it back and removes the sibling.
 *  Why: the memory file is written through the page cache (or into tmpfs), and a page is charged to the memory
 *  cgroup of the task that allocates it, for as long as it lives: written from the VM's own cgroup, the copy
 *  would count against the guest's limit while the sandbox runs on (a snapshot of a running sandbox, a fork),
 *  and a tmpfs copy cannot be reclaimed without swap, so the guest would be OOM-killed for memory it never used.
 *  Charges stay where they were made when a process moves (v2 always, v1 with move_charge_at_immigrate 0, the
 *  default): the guest's RAM stays on the VM's cgroup, the copy goes to the sibling, and once the sibling is
 *  removed to the onebox parent, which has no limit of its own. The sibling has the VM's limit (the copy is at most
 *  guest RAM, below it). If the sibling cannot be made, the write runs where the process is (and may OOM-kill a
 *  VM near its limit: logged). */
export async function chargeSnapshotElsewhere<T>(cg: VmCgroup, pid: number, write: () => Promise<T>): Promise<T> {
  const home = cg.dirs.memory;
  if (!home) return write();
  const sibling = `${home}${SNAPSHOT_SUFFIX}`;
  const moveTo = (dir: string) => writeFileSync(join(dir, "cgroup.procs"), `${pid}\n`);
  try {
    live.add(sibling);
    mkdirSync(sibling);
    setMemoryLimit(cg.version, sibling, cg.memoryBytes);
    // v2: the sibling holds every controller the VM's cgroup has; keep the pids bound while the process is there.
    if (cg.version === 2) writeFileSync(join(sibling, "pids.max"), `${VM_PIDS_MAX}\n`);
    moveTo(sibling);
  } catch (e) {
    console.warn(`onebox: the snapshot of vmm ${pid} is charged to the VM's own cgroup (${(e as Error).message})`);
    removeSibling(sibling);
    return write();
  }
  try {
    return await write();
  } finally {
    try {
      moveTo(home);
    } catch (e) {
      // The process ended meanwhile (ESRCH), or the move failed: it stays under the same limit in the sibling,
      // which the stale sweep removes once the process is gone.
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") console.warn(`onebox: vmm ${pid} stays in ${sibling}: ${(e as Error).message}`);
    }
    removeSibling(sibling);
  }
}

function removeSibling(dir: string): void {
  live.delete(dir);
  try {
    rmdirSync(dir);
  } catch {
    // not made, or still holds the process (the stale sweep takes it once empty)
  }
}

/** Creates and limits the cgroup for one VM (name: unique among live VMs), or null when cgroups are off or the
 *  host has none. Throws if creating or limiting fails, after removing what it made. */
export function createVmCgroup(name: string, limits: VmLimits): VmCgroup | null {
  if (!cgroupsEnabled()) return null;
  const host = hostLayout();
  if (!host) return null;
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 100);
  const cg: VmCgroup = { version: host.version, dirs: {}, memoryBytes: limits.memoryBytes };
  const made: string[] = [];
  try {
    for (const [c, parent] of Object.entries(host.parents) as [Controller, string][]) {
      const dir = join(parent, safe);
      if (!made.includes(dir)) {
        const controllers = Object.keys(host.parents);
        ensureParent(host.version, parent, controllers);
        sweepStale(parent);
        try {
          mkdirSync(dir); // EEXIST: another live VM has this name; the caller picks unique names
        } catch (e) {
          // ENOENT: another daemon removed the empty parent between our two mkdirs; once more.
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
          ensureParent(host.version, parent, controllers);
          mkdirSync(dir);
        }
        made.push(dir);
        live.add(dir);
      }
      cg.dirs[c] = dir;
    }
    writeLimits(cg, limits);
    return cg;
  } catch (e) {
    for (const d of made.reverse()) {
      live.delete(d);
      try {
        rmdirSync(d);
        rmdirSync(dirname(d));
      } catch {
        // the parent still has other VMs (or an operator raced us: the sweep takes it later)
      }
    }
    throw new Error(`cannot create the VM's cgroup ${safe}: ${(e as Error).message}`);
  }
}

/** The cgroup of a VM left running by an earlier daemon, as recorded in its vmm.json; null unless every directory
 *  is a VM cgroup of this host's layout (the vmm can write vmm.json, so the daemon must not rmdir what it names). */
export function adoptVmCgroup(raw: unknown): VmCgroup | null {
  const host = cgroupsEnabled() ? hostLayout() : null;
  const r = raw as Partial<VmCgroup> | undefined;
  if (!host || !r || r.version !== host.version || typeof r.dirs !== "object" || !r.dirs) return null;
  if (!Number.isSafeInteger(r.memoryBytes) || (r.memoryBytes ?? 0) <= 0) return null;
  const dirs: Partial<Record<Controller, string>> = {};
  for (const c of CONTROLLERS) {
    const d = r.dirs[c];
    if (d === undefined) continue;
    const parent = host.parents[c];
    if (typeof d !== "string" || !parent || dirname(d) !== parent || d.includes("/../") || !existsSync(d)) return null;
    dirs[c] = d;
    live.add(d);
  }
  return dirs.memory && dirs.pids ? { version: host.version, dirs, memoryBytes: r.memoryBytes as number } : null;
}

/** OOM kills in the VM's memory cgroup so far (v2 memory.events, v1 memory.oom_control "oom_kill"). */
export function oomKills(cg: VmCgroup): number {
  const dir = cg.dirs.memory;
  if (!dir) return 0;
  try {
    const text = readText(join(dir, cg.version === 2 ? "memory.events" : "memory.oom_control"));
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Removes the VM's cgroup once its process is gone. The kernel empties a cgroup a moment after the exit is
 *  reaped, so rmdir may see EBUSY briefly; it retries for up to 2 s, then leaves it to the stale sweep. */
export async function removeVmCgroup(cg: VmCgroup): Promise<void> {
  for (const dir of cgroupDirs(cg)) {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(dir);
        try {
          rmdirSync(dirname(dir)); // the last VM takes the parent with it
        } catch {
          // other VMs still live there
        }
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        if (code !== "EBUSY" || i >= 100) break;
        await Bun.sleep(20);
      }
    }
    live.delete(dir);
  }
}

/** Whether the cgroup of the VM whose process was `pid` recorded an OOM kill when it ended (see end-reasons.ts);
 *  undefined when that VM had no cgroup. Read once: the entry is dropped. */
const oomByPid = new Map<number, boolean>();
export function recordVmOom(pid: number, killed: boolean): void {
  if (oomByPid.size > 4096) oomByPid.clear(); // nobody asked about those; bound the memory
  oomByPid.set(pid, killed);
}
export function takeVmOom(pid: number): boolean | undefined {
  const v = oomByPid.get(pid);
  oomByPid.delete(pid);
  return v;
}
