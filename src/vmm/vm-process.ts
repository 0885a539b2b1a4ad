// One running onebox-vmm process: spawn (detached, survives a daemon restart) or adopt it, control requests,
// and `exited`, which resolves with the exit record, or `vmm-crash` when the process is gone without one.
import { randomBytes } from "node:crypto";
import { closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { nativePath } from "../sys/natives.ts";
import {
  adoptVmCgroup,
  cgroupDirs,
  chargeSnapshotElsewhere,
  createVmCgroup,
  oomKills,
  recordVmOom,
  removeVmCgroup,
  type VmCgroup,
  vmLimits,
} from "./cgroup.ts";
import { CLOSED, ControlClient, VmmControlError } from "./control-client.ts";
import { allocateJailIds, type JailIds, jailEnabled, prepareJailDir, releaseJailIds, reserveJailIds } from "./jail.ts";
import { readExitRecord } from "./exit-record.ts";
import { claimVmmDir, fdPath, openSocket, readCapped } from "./no-follow.ts";
import { ctlPath, type RestoreTimings, RUN_FILES, type VmExit, type VmSpec, type VmStats, vmmArgs } from "./vm-spec.ts";

const SPAWN_READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** runDir/vmm.json, written by the daemon into its own runDir (the vmm cannot write there): what adopt() needs
 *  after a daemon restart. The pid is checked against the process itself; paths are never taken from here. */
const VmState = z.object({
  pid: z.number().int().positive(),
  /** The vmm's own uid/gid (docs/vmm.md "Isolation"); absent when it runs as root (ONEBOX_VMM_JAIL=0). */
  jail: z.object({ uid: z.number().int(), gid: z.number().int() }).optional(),
  /** Its cgroup, removed when it ends; absent when it has none (ONEBOX_VMM_CGROUP=0, or no cgroup hierarchy). */
  cgroup: z.unknown().optional(),
});
type VmState = z.infer<typeof VmState>;

const MiB = 1024 * 1024;

/** The one directory the vmm may write in after it dropped root: `<dir of its exit file>/vmm`, owned by its uid,
 *  inside a directory only root can enter. The vmm never gets its path: it inherits it as fd 3 and reaches it as
 *  /proc/self/fd/3 (run-time forward sockets, snapshots); the daemon claims what it made there (claimVmmDir). */
export function vmmDirFor(exitFile: string): string {
  return join(dirname(exitFile), "vmm");
}
const VMM_DIR_IN_VMM = "/proc/self/fd/3";

/** The uid that owns what the vmm creates: its jail uid, or ours when it runs as we do. */
const ownUid = () => process.getuid?.() ?? 0;

/** Guest RAM for the cgroup limit: a restore takes its size from the snapshot's memory file, not the spec. */
function guestMemMib(spec: VmSpec): number {
  if (!spec.restoreFrom) return spec.memMib;
  try {
    return Math.max(spec.memMib, Math.ceil(statSync(join(spec.restoreFrom, "memory")).size / MiB));
  } catch {
    return spec.memMib; // the vmm reports the missing snapshot itself
  }
}

/** Whether pid runs the onebox-vmm binary (an upgrade may have replaced the file: "onebox-vmm (deleted)"). */
function isVmmProcess(pid: number): boolean {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`)).startsWith("onebox-vmm");
  } catch {
    return false;
  }
}

/** The real uid/gid of pid, from /proc (the process's own word, not a file anyone could write). */
function procIds(pid: number): JailIds | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const uid = /^Uid:\s+(\d+)/m.exec(text)?.[1];
    const gid = /^Gid:\s+(\d+)/m.exec(text)?.[1];
    return uid && gid ? { uid: Number(uid), gid: Number(gid) } : null;
  } catch {
    return null;
  }
}

/** Socket files of the vmm in runDir: bound as root before the drop, so a jailed vmm cannot unlink them itself. */
function removeRunSockets(runDir: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(runDir);
  } catch {
    return;
  }
  for (const n of names) {
    if (n === RUN_FILES.ctl || n === RUN_FILES.vsock || n.startsWith(`${RUN_FILES.vsock}.tcp-`)) rmSync(join(runDir, n), { force: true });
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  // An adopted vmm (the daemon restarted) is not our child: once it exits it stays a zombie until
  // PID 1 reaps it, and kill(0) still succeeds. A zombie has ended; waiting on it only adds delay.
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT"; // reaped between the two calls
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class VmProcess {
  readonly exited: Promise<VmExit>;
  private ctl: ControlClient | null = null;
  private exitedValue: VmExit | null = null;
  /** O_PATH fds of run-time forward sockets (see forward()), closed a while after the VM ended. */
  private readonly forwardFds: number[] = [];

  private constructor(
    readonly pid: number,
    readonly runDir: string,
    private readonly exitFile: string,
    /** The uid/gid the vmm runs as, or null when it stays root. */
    readonly jail: JailIds | null,
    /** Its own cgroup (docs/vmm.md "Isolation"), or null when it has none. */
    readonly cgroup: VmCgroup | null,
    waitGone: () => Promise<string | number | undefined>,
  ) {
    this.exited = (async () => {
      const signal = await waitGone();
      // Nothing runs as the vmm's uid any more: its dir can be removed without anything changing under the removal.
      rmSync(vmmDirFor(exitFile), { recursive: true, force: true });
      removeRunSockets(runDir);
      if (jail) releaseJailIds(jail);
      this.ctl?.close();
      // Read the OOM count before the cgroup goes; end-reasons.ts asks for it by pid.
      const oom = cgroup ? oomKills(cgroup) > 0 : false;
      if (cgroup) {
        recordVmOom(pid, oom);
        await removeVmCgroup(cgroup);
      }
      // A proxied connection may still be on its way to a forward socket: its fd number must not be reused yet.
      setTimeout(() => {
        for (const fd of this.forwardFds.splice(0)) closeSync(fd);
      }, 60_000).unref();
      const record = await readExitRecord(exitFile);
      const why = oom
        ? `killed by the OOM killer: the VM reached its cgroup memory limit (${Math.round((cgroup?.memoryBytes ?? 0) / MiB)} MiB)`
        : `ended without an exit record${signal !== undefined ? ` (${signal})` : ""}`;
      const exit: VmExit = record ?? {
        reason: "vmm-crash",
        detail: `onebox-vmm (pid ${pid}) ${why}; see ${join(runDir, RUN_FILES.stderr)}`,
        consoleTail: "",
        signal,
      };
      this.exitedValue = exit;
      return exit;
    })();
  }

  /** Starts onebox-vmm for spec in its own session (opts.memoryLimitBytes overrides its cgroup's memory limit,
   *  vmLimits by default); resolves once it answers `ping` (or once the guest has already
   *  ended, with `exited` resolved); rejects if the vmm could not set the VM up. */
  static async spawn(spec: VmSpec, opts: { binary?: string; memoryLimitBytes?: number } = {}): Promise<VmProcess> {
    const binary = opts.binary ?? (await nativePath("onebox-vmm"));
    // runDir is the daemon's (0700): the sockets the vmm binds before it drops root, vmm.json, its stdout/stderr.
    // The vmm's uid can write nothing there, so nothing the daemon reads or connects to there is the vmm's choice.
    mkdirSync(spec.runDir, { recursive: true, mode: 0o700 });
    const rst = lstatSync(spec.runDir);
    if (!rst.isDirectory() || rst.uid !== ownUid()) throw new Error(`run dir ${spec.runDir} is not a directory of uid ${ownUid()}`);
    const jail = jailEnabled() ? allocateJailIds() : null;
    // The exit record is created by the vmm itself at start, before it drops root; an earlier run's must not count.
    rmSync(spec.exitFile, { force: true });
    const vmmDir = vmmDirFor(spec.exitFile);
    rmSync(vmmDir, { recursive: true, force: true }); // an earlier vmm's (it is gone: spawn runs when none is)
    const args = [...vmmArgs(spec), "--forward-dir", VMM_DIR_IN_VMM];
    let cgroup: VmCgroup | null = null;
    let child: Bun.Subprocess;
    try {
      if (jail) {
        prepareJailDir(vmmDir, jail);
        args.push("--uid", String(jail.uid), "--gid", String(jail.gid));
      } else {
        mkdirSync(vmmDir, { mode: 0o700 });
      }
      // Its own cgroup, which the vmm joins first thing (--cgroup): every page and thread it makes is limited.
      // A random suffix: spec ids need not be unique across daemons or tests.
      cgroup = createVmCgroup(`${spec.id}-${randomBytes(4).toString("hex")}`, {
        ...vmLimits(guestMemMib(spec), spec.vcpus),
        ...(opts.memoryLimitBytes ? { memoryBytes: opts.memoryLimitBytes } : {}),
      });
      for (const dir of cgroup ? cgroupDirs(cgroup) : []) args.push("--cgroup", dir);
      const out = openSync(join(spec.runDir, RUN_FILES.stdout), "a", 0o600);
      const err = openSync(join(spec.runDir, RUN_FILES.stderr), "a", 0o600);
      const dirFd = openSync(vmmDir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        // detached: setsid(), so a daemon restart (or its process group being signalled) leaves the VM running.
        // fd 3: the vmm's own dir (vmmDirFor), the only place it can write after the drop; fd 4 (VMM_NET_FD): the TAP.
        const stdio: (number | "ignore")[] = ["ignore", out, err, dirFd];
        if (spec.net) stdio.push(spec.net.tapFd);
        child = Bun.spawn([binary, ...args], { detached: true, stdio: stdio as ["ignore", number, number, number] });
      } finally {
        closeSync(out);
        closeSync(err);
        closeSync(dirFd);
      }
    } catch (e) {
      // No process exists: undo here (once it does, `exited` releases the ids and removes the cgroup).
      if (jail) releaseJailIds(jail);
      if (cgroup) await removeVmCgroup(cgroup);
      throw e;
    }
    child.unref();
    const vm = new VmProcess(child.pid, spec.runDir, spec.exitFile, jail, cgroup, async () => {
      await child.exited;
      return child.signalCode ?? child.exitCode ?? undefined;
    });
    const state: VmState = { pid: child.pid, ...(jail ? { jail } : {}), ...(cgroup ? { cgroup } : {}) };
    writeFileSync(join(spec.runDir, RUN_FILES.state), `${JSON.stringify(state)}\n`, { mode: 0o600 });
    const deadline = Date.now() + SPAWN_READY_TIMEOUT_MS;
    for (;;) {
      if (vm.exitedValue) break;
      try {
        await vm.connect();
        return vm;
      } catch (e) {
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(`onebox-vmm did not answer on ${ctlPath(spec.runDir)} within ${SPAWN_READY_TIMEOUT_MS} ms: ${e}`);
        }
        // Either not listening yet or it already exited: the exited promise tells which.
        await Promise.race([sleep(5), vm.exited]);
      }
    }
    // A guest may run to its end before the first ping (tiny guests do): that VM did start, and `exited` says
    // how it ended. Only a vmm that failed its own setup (reason error) or died rejects the spawn.
    const exit = await vm.exited;
    if (exit.reason !== "error" && exit.reason !== "vmm-crash") return vm;
    throw new Error(`onebox-vmm exited during start: ${exit.reason}: ${exit.detail}`);
  }

  /** Starts a pooled vmm: the machine for spec (memMib, vcpus, devices, sockets) is built and waits, without a
   *  guest, for `restore(dir)`, which then does only what depends on the snapshot (docs/snapshot.md). With
   *  spec.restoreFrom (the daemon always gives it: a pool entry is made for one snapshot) the vmm reads that
   *  snapshot at start, as root: the snapshot's files stay private to root. */
  static spawnPooled(spec: VmSpec, opts: { binary?: string } = {}): Promise<VmProcess> {
    return VmProcess.spawn({ ...spec, pooled: true }, opts);
  }

  /** Re-attaches to a vmm left running by an earlier daemon; null if none is alive in runDir. Paths come from the
   *  caller (the daemon's own state: sandbox id -> paths), never from runDir: vmm.json gives only a pid, taken only
   *  if that process is an onebox-vmm whose control socket answers with that pid. */
  static async adopt(runDir: string, exitFile: string): Promise<VmProcess | null> {
    const rst = lstatSync(runDir, { throwIfNoEntry: false });
    // A run dir of an older daemon was the vmm's own: its vmm.json may say anything, so only the pid counts.
    const trusted = !!rst && rst.isDirectory() && rst.uid === ownUid() && (rst.mode & 0o022) === 0;
    let state: VmState;
    try {
      state = VmState.parse(JSON.parse(readCapped(join(runDir, RUN_FILES.state), 64 * 1024).toString("utf8")));
    } catch {
      return null;
    }
    // Ended while no daemon watched: its exit record is where the caller reads it (the vmm wrote it there).
    if (!pidAlive(state.pid) || !isVmmProcess(state.pid)) return null;
    const ids = procIds(state.pid);
    if (!ids) return null;
    const jail = ids.uid !== ownUid() ? ids : null;
    if (jail) reserveJailIds(jail);
    const cgroup = trusted ? adoptVmCgroup(state.cgroup) : null;
    // Not our child: we learn of its end from the control socket closing, then wait for the pid to go.
    const vm: VmProcess = new VmProcess(state.pid, runDir, exitFile, jail, cgroup, async () => {
      await null; // runs from the constructor: let `vm` be assigned first
      for (;;) {
        if (vm.ctl && !vm.ctl.closed) await vm.ctl.waitClosed();
        if (!pidAlive(state.pid)) return undefined;
        await sleep(50);
        if (vm.ctl?.closed && pidAlive(state.pid)) await vm.connect().catch(() => undefined);
      }
    });
    try {
      const pong = await vm.connect();
      if (Number(pong.pid) !== state.pid) {
        vm.ctl?.close();
        if (jail) releaseJailIds(jail);
        return null;
      }
    } catch {
      if (jail) releaseJailIds(jail);
      return null;
    }
    return vm;
  }

  private async connect(): Promise<Record<string, string>> {
    // Through an fd of the socket file itself, checked to be a socket of ours or of the vmm's uid: whatever a name
    // in runDir points at (an older daemon's run dir was the vmm's), the daemon talks to that socket only.
    const fd = openSocket(ctlPath(this.runDir), [ownUid(), ...(this.jail ? [this.jail.uid] : [])]);
    let client: ControlClient;
    try {
      client = await ControlClient.connect(fdPath(fd), () => {
        /* `event exit` precedes the process end; `exited` resolves from the process itself */
      });
    } finally {
      closeSync(fd);
    }
    try {
      const pong = await client.request("ping");
      this.ctl = client;
      return pong;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  private async request(line: string, timeoutMs?: number): Promise<Record<string, string>> {
    if (this.exitedValue) throw new Error(`the VM has exited (${this.exitedValue.reason})`);
    if (!this.ctl || this.ctl.closed) await this.connect();
    if (!this.ctl) throw new Error("no control connection");
    try {
      return await this.ctl.request(line, timeoutMs);
    } catch (e) {
      // The vmm serves one client at a time and drops the old one when another connects (an adopting
      // daemon, an operator's tool). It answers each line before it accepts a new client, so a close
      // with no reply means our line was never handled: reconnect and send it once more.
      if (!(e instanceof VmmControlError) || e.message !== CLOSED || this.exitedValue || !pidAlive(this.pid)) throw e;
      await this.connect();
      return this.ctl.request(line, timeoutMs);
    }
  }

  async ping(): Promise<{ pid: number; state: string }> {
    const r = await this.request("ping");
    return { pid: Number(r.pid), state: r.state ?? "" };
  }

  async pause(): Promise<void> {
    await this.request("pause");
  }

  async resume(): Promise<void> {
    await this.request("resume");
  }

  /** Ends the VM (reason `stopped`) and waits for the process; SIGKILL if it does not go in time. */
  async stop(): Promise<void> {
    if (this.exitedValue) return;
    try {
      await this.request("stop", STOP_TIMEOUT_MS);
    } catch {
      // fall through: the deadline below still ends it
    }
    const done = await Promise.race([this.exited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
    if (!done) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await this.exited;
    }
  }

  /** Writes a snapshot into dir, a new directory (it must not exist) in a directory only root can write.
   *  The vmm writes it into its own dir (vmmDirFor: it has no path to any other after the drop); the daemon then
   *  moves it to dir and makes it root's, through fds, before it trusts a name in it (claimVmmDir).
   *  `diff`: only the pages this VM changed since its restore, over the snapshot it was restored from (a pause;
   *  docs/snapshot.md "Diff snapshots"); refused for a cold-booted VM. */
  async snapshot(dir: string, opts: { diff?: boolean } = {}): Promise<void> {
    if (existsSync(dir)) throw new Error(`snapshot directory ${dir} already exists: a snapshot goes into a new one`);
    const name = `snap-${randomBytes(6).toString("hex")}`;
    // A failed snapshot's leftovers stay in the vmm's dir, removed with it once the vmm is gone. The memory file's
    // pages are charged to a sibling cgroup, not to the guest's limit (chargeSnapshotElsewhere says why).
    const write = () => this.request(`${opts.diff ? "snapshot-diff" : "snapshot"} ${VMM_DIR_IN_VMM}/${name}`, 120_000);
    await (this.cgroup ? chargeSnapshotElsewhere(this.cgroup, this.pid, write) : write());
    const vmmDir = vmmDirFor(this.exitFile);
    claimVmmDir(join(vmmDir, name), dir, this.jail?.uid ?? ownUid(), ["state", "memory"], vmmDir);
  }

  /** Restores the snapshot in dir into this pooled vmm and starts it. Rejects with the vmm's reason if the snapshot
   *  is refused (corrupted, other host kind, other shape or devices: the vmm stays pooled) or the restore failed
   *  after the VM was changed (the vmm then ends with reason `error`). dir is the spawn's restoreFrom, which the
   *  vmm read as root at start; any other dir it would open by path as its own uid, which a data dir private to
   *  root refuses. */
  async restore(dir: string): Promise<RestoreTimings> {
    const r = await this.request(`restore ${dir}`);
    return {
      readNs: Number(r.read_ns),
      validateNs: Number(r.validate_ns),
      mmapNs: Number(r.mmap_ns),
      vmNs: Number(r.vm_ns),
      vcpuNs: Number(r.vcpu_ns),
      devicesNs: Number(r.devices_ns),
      threadsNs: Number(r.threads_ns),
      totalNs: Number(r.total_ns),
    };
  }

  async stats(): Promise<VmStats> {
    const r = await this.request("stats");
    return {
      rssKib: Number(r.rss_kib),
      pssKib: Number(r.pss_kib),
      cpuNs: Number(r.cpu_ns),
      startUs: Number(r.start_us ?? 0),
      enterUs: Number(r.enter_us ?? 0),
    };
  }

  /** Starts a forward socket for guest TCP port; returns a path to connect to. The vmm binds it in its own dir
   *  (after the drop it can bind nowhere else); the path returned is an fd of that very socket (/proc/self/fd/N),
   *  checked to be the vmm's socket, so a name the vmm swaps later is never followed. The vmm's `path=` is ignored. */
  async forward(port: number): Promise<string> {
    await this.request(`forward ${port}`);
    const fd = openSocket(join(vmmDirFor(this.exitFile), `tcp-${port}`), [this.jail?.uid ?? ownUid()]);
    this.forwardFds.push(fd);
    return fdPath(fd);
  }

  /** Closes this client's control connection (the vmm keeps running). */
  detach(): void {
    this.ctl?.close();
  }
}
