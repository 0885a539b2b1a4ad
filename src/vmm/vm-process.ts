// One running onebox-vmm process: spawn (detached, survives a daemon restart) or adopt it, control requests,
// and `exited`, which resolves with the exit record, or `vmm-crash` when the process is gone without one.
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { nativePath } from "../sys/natives.ts";
import {
  adoptVmCgroup,
  cgroupDirs,
  createVmCgroup,
  oomKills,
  recordVmOom,
  removeVmCgroup,
  setMemoryLimit,
  type VmCgroup,
  vmLimits,
} from "./cgroup.ts";
import { CLOSED, ControlClient, VmmControlError } from "./control-client.ts";
import {
  allocateJailIds,
  type JailIds,
  jailEnabled,
  makeSearchable,
  prepareJailDir,
  reclaimJailDir,
  releaseJailIds,
  reserveJailIds,
} from "./jail.ts";
import { readExitRecord } from "./exit-record.ts";
import { ctlPath, type RestoreTimings, RUN_FILES, type VmExit, type VmSpec, type VmStats, vmmArgs } from "./vm-spec.ts";

const SPAWN_READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** What adopt() finds in runDir/vmm.json. */
interface VmState {
  pid: number;
  exitFile: string;
  consolePath: string;
  /** The vmm's own uid/gid (docs/vmm.md "Isolation"); absent when it runs as root (ONEBOX_VMM_JAIL=0). */
  jail?: JailIds;
  /** Its cgroup, removed when it ends; absent when it has none (ONEBOX_VMM_CGROUP=0, or no cgroup hierarchy). */
  cgroup?: VmCgroup;
}

const MiB = 1024 * 1024;

/** Where the vmm itself writes its exit record. It renames its tmp file into place after it dropped root, and as
 *  its own uid it can create names only in its runDir; an exitFile elsewhere (the sandbox layer keeps it in the
 *  sandbox's data dir) gets the record from the daemon, copied as root once the vmm is gone. */
function vmmExitFile(runDir: string, exitFile: string): string {
  return dirname(exitFile) === runDir ? exitFile : join(runDir, "vmm-exit.json");
}

/** Copies the vmm's record to exitFile (tmp + rename: readers never see half of it); no-op when they are one. */
function publishExitRecord(runDir: string, exitFile: string): void {
  const from = vmmExitFile(runDir, exitFile);
  if (from === exitFile) return;
  try {
    const text = readFileSync(from);
    writeFileSync(`${exitFile}.tmp`, text);
    renameSync(`${exitFile}.tmp`, exitFile);
  } catch {
    // no record (killed from outside): readExitRecord reports the crash
  }
}

/** Guest RAM for the cgroup limit: a restore takes its size from the snapshot's memory file, not the spec. */
function guestMemMib(spec: VmSpec): number {
  if (!spec.restoreFrom) return spec.memMib;
  try {
    return Math.max(spec.memMib, Math.ceil(statSync(join(spec.restoreFrom, "memory")).size / MiB));
  } catch {
    return spec.memMib; // the vmm reports the missing snapshot itself
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
      if (jail) releaseJailIds(jail);
      this.ctl?.close();
      // Read the OOM count before the cgroup goes; end-reasons.ts asks for it by pid.
      const oom = cgroup ? oomKills(cgroup) > 0 : false;
      if (cgroup) {
        recordVmOom(pid, oom);
        await removeVmCgroup(cgroup);
      }
      publishExitRecord(runDir, exitFile);
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
    mkdirSync(spec.runDir, { recursive: true, mode: 0o700 });
    // The vmm drops root after setup; it still renames its exit record and binds forward sockets in runDir.
    const jail = jailEnabled() ? allocateJailIds() : null;
    // A record of an earlier run of this sandbox must not be taken for this one's (the vmm clears only its own path).
    rmSync(spec.exitFile, { force: true });
    const args = vmmArgs({ ...spec, exitFile: vmmExitFile(spec.runDir, spec.exitFile) });
    let cgroup: VmCgroup | null = null;
    let child: Bun.Subprocess;
    try {
      if (jail) {
        prepareJailDir(spec.runDir, jail);
        args.push("--uid", String(jail.uid), "--gid", String(jail.gid));
      }
      // Its own cgroup, which the vmm joins first thing (--cgroup): every page and thread it makes is limited.
      // A random suffix: spec ids need not be unique across daemons or tests.
      cgroup = createVmCgroup(`${spec.id}-${randomBytes(4).toString("hex")}`, {
        ...vmLimits(guestMemMib(spec), spec.vcpus),
        ...(opts.memoryLimitBytes ? { memoryBytes: opts.memoryLimitBytes } : {}),
      });
      for (const dir of cgroup ? cgroupDirs(cgroup) : []) args.push("--cgroup", dir);
      const out = openSync(join(spec.runDir, RUN_FILES.stdout), "a");
      const err = openSync(join(spec.runDir, RUN_FILES.stderr), "a");
      try {
        // detached: setsid(), so a daemon restart (or its process group being signalled) leaves the VM running.
        child = Bun.spawn([binary, ...args], { detached: true, stdin: "ignore", stdout: out, stderr: err });
      } finally {
        closeSync(out);
        closeSync(err);
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
    const state: VmState = {
      pid: child.pid,
      exitFile: spec.exitFile,
      consolePath: spec.consolePath,
      ...(jail ? { jail } : {}),
      ...(cgroup ? { cgroup } : {}),
    };
    writeFileSync(join(spec.runDir, RUN_FILES.state), `${JSON.stringify(state)}\n`);
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
   *  guest, for `restore(dir)`, which then does only what depends on the snapshot (docs/snapshot.md). */
  static spawnPooled(spec: VmSpec, opts: { binary?: string } = {}): Promise<VmProcess> {
    return VmProcess.spawn({ ...spec, pooled: true }, opts);
  }

  /** Re-attaches to a vmm left running by an earlier daemon; null if none is alive in runDir. */
  static async adopt(runDir: string): Promise<VmProcess | null> {
    let state: VmState;
    try {
      state = JSON.parse(readFileSync(join(runDir, RUN_FILES.state), "utf8")) as VmState;
    } catch {
      return null;
    }
    if (!Number.isInteger(state.pid) || !pidAlive(state.pid)) {
      // It ended while no daemon watched: the caller reads exitFile next, so put the vmm's record there.
      if (typeof state.exitFile === "string") publishExitRecord(runDir, state.exitFile);
      return null;
    }
    // Not our child: we learn of its end from the control socket closing, then wait for the pid to go.
    const jail = state.jail && Number.isInteger(state.jail.uid) ? state.jail : null;
    if (jail) reserveJailIds(jail);
    const cgroup = adoptVmCgroup(state.cgroup);
    const vm: VmProcess = new VmProcess(state.pid, runDir, state.exitFile, jail, cgroup, async () => {
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
    const client = await ControlClient.connect(ctlPath(this.runDir), () => {
      /* `event exit` precedes the process end; `exited` resolves from the process itself */
    });
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

  /** Writes a snapshot into dir; a jailed vmm can only write where its uid may, so dir is made its own first.
   *  `diff`: only the pages this VM changed since its restore, over the snapshot it was restored from (a pause;
   *  docs/snapshot.md "Diff snapshots"); refused for a cold-booted VM. */
  async snapshot(dir: string, opts: { diff?: boolean } = {}): Promise<void> {
    if (this.jail) prepareJailDir(dir, this.jail);
    // The memory file is written through the page cache (or into tmpfs), charged to the VM's cgroup next to the
    // guest's RAM: room for a second copy. Not lowered again: with the copy still charged (tmpfs cannot be
    // reclaimed without swap) a v2 memory.max below usage OOM-kills the VM, and a snapshot is normally followed
    // by stop anyway (template build, pause).
    const cg = this.cgroup;
    if (cg) setMemoryLimit(cg, 2 * cg.memoryBytes);
    try {
      await this.request(`${opts.diff ? "snapshot-diff" : "snapshot"} ${dir}`, 120_000);
    } finally {
      if (this.jail) reclaimJailDir(dir);
    }
  }

  /** Restores the snapshot in dir into this pooled vmm and starts it. Rejects with the vmm's reason if the snapshot
   *  is refused (corrupted, other host kind, other shape or devices: the vmm stays pooled) or the restore failed
   *  after the VM was changed (the vmm then ends with reason `error`). */
  async restore(dir: string): Promise<RestoreTimings> {
    // A pooled vmm already runs as its VM's uid: it opens the snapshot's files by path, so it needs o+x on the way.
    if (this.jail) makeSearchable(dir);
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

  /** Starts a forward socket for guest TCP port; returns its path. */
  async forward(port: number): Promise<string> {
    const r = await this.request(`forward ${port}`);
    if (!r.path) throw new Error("vmm answered forward without a path");
    return r.path;
  }

  /** Closes this client's control connection (the vmm keeps running). */
  detach(): void {
    this.ctl?.close();
  }
}
