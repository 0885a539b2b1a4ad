// The cgroup of user commands that onebox-init creates (guest/init/user-cgroup.c, docs/guest.md
// "Resource limits"): the agent moves every process it starts into it and reads its OOM count.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Same path as USER_CGROUP_DIR in guest/init/user-cgroup.h; ONEBOX_AGENT_USER_CGROUP overrides it (tests). */
export const DEFAULT_USER_CGROUP = "/sys/fs/cgroup/user";

export class UserCgroup {
  /** undefined: no such cgroup (the agent runs as a host process, or an old init): no limits, no OOM notes. */
  readonly dir: string | undefined;

  constructor(dir = process.env.ONEBOX_AGENT_USER_CGROUP ?? DEFAULT_USER_CGROUP) {
    this.dir = existsSync(join(dir, "cgroup.procs")) ? dir : undefined;
  }

  /**
   * Moves a just-spawned process in. Bun cannot spawn into a cgroup (envd uses clone3's
   * CLONE_INTO_CGROUP), so this runs right after the spawn, while the child is still exec'ing
   * setpriv or bash and has forked nothing: its descendants then inherit the cgroup.
   */
  join(pid: number): void {
    if (!this.dir) return;
    try {
      writeFileSync(join(this.dir, "cgroup.procs"), String(pid));
    } catch {
      // already gone
    }
  }

  /** How many processes the OOM killer killed in the cgroup so far (memory.events `oom_kill`). */
  oomKills(): number {
    if (!this.dir) return 0;
    try {
      return parseOomKills(readFileSync(join(this.dir, "memory.events"), "utf8"));
    } catch {
      return 0;
    }
  }

  /** memory.max in MiB, or undefined when unlimited or unknown. */
  memoryMaxMiB(): number | undefined {
    if (!this.dir) return undefined;
    try {
      const raw = readFileSync(join(this.dir, "memory.max"), "utf8").trim();
      return raw === "max" ? undefined : Math.floor(Number(raw) / (1024 * 1024));
    } catch {
      return undefined;
    }
  }
}

export function parseOomKills(memoryEvents: string): number {
  const m = /^oom_kill (\d+)$/m.exec(memoryEvents);
  return m ? Number(m[1]) : 0;
}

/**
 * The end event's error for a command that died of SIGKILL (or a shell's 137) that the agent did not
 * send, while the OOM killer acted in the user cgroup: says why instead of a bare "signal: killed".
 */
export function oomNote(error: string, limitMiB: number | undefined): string {
  const limit = limitMiB === undefined ? "" : ` (user commands may use ${limitMiB} MiB together)`;
  return `${error}: out of memory: the guest's OOM killer stopped a process of this command${limit}`;
}
