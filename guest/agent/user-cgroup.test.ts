// The agent's side of the user cgroup against a stand-in directory (the host has no such cgroup):
// processes are moved in, and a SIGKILL death during an OOM kill gets a clear error.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessManager, type EndEvent } from "./process-manager.ts";
import { oomNote, parseOomKills, UserCgroup } from "./user-cgroup.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-cgroup-"));
  writeFileSync(join(dir, "cgroup.procs"), "");
  writeFileSync(join(dir, "memory.max"), String(300 * 1024 * 1024));
  writeFileSync(join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const root = { name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/sh", groups: [0] };

function runToEnd(pm: ProcessManager, script: string, whileRunning?: (pid: number) => void): Promise<EndEvent> {
  return new Promise((resolve) => {
    const mp = pm.start(
      { config: { cmd: "/bin/sh", args: ["-c", script], envs: {} }, user: root, cwd: "/", env: { PATH: "/usr/bin:/bin" }, stdin: false },
      { started: () => {}, data: () => {}, end: resolve },
    );
    whileRunning?.(mp.pid);
  });
}

test("parseOomKills and oomNote", () => {
  expect(parseOomKills("oom 2\noom_kill 5\noom_group_kill 0\n")).toBe(5);
  expect(parseOomKills("")).toBe(0);
  expect(oomNote("signal: killed", 300)).toBe(
    "signal: killed: out of memory: the guest's OOM killer stopped a process of this command (user commands may use 300 MiB together)",
  );
  expect(new UserCgroup(join(dir, "missing")).dir).toBeUndefined();
  expect(new UserCgroup(dir).memoryMaxMiB()).toBe(300);
});

test("a started process is moved into the cgroup; a SIGKILL during an OOM kill is explained", async () => {
  const pm = new ProcessManager(new UserCgroup(dir));
  // The "OOM killer" acts while the command runs: bump oom_kill, then the shell dies of SIGKILL.
  const end = await runToEnd(pm, "sleep 0.3; kill -9 $$", (pid) => {
    expect(readFileSync(join(dir, "cgroup.procs"), "utf8")).toBe(String(pid));
    writeFileSync(join(dir, "memory.events"), "oom 2\noom_kill 1\n");
  });
  expect(end.exitCode).toBe(-1);
  expect(end.error).toContain("signal: killed: out of memory");
  expect(end.error).toContain("300 MiB");
  // A shell reporting its child's SIGKILL (137) counts too.
  const child = await runToEnd(pm, "sleep 0.3; sh -c 'kill -9 $$'; exit $?", () =>
    writeFileSync(join(dir, "memory.events"), "oom 3\noom_kill 2\n"));
  expect(child.exitCode).toBe(137);
  expect(child.error).toContain("exit status 137: out of memory");
});

test("no OOM note without an OOM kill, or when the agent itself sent the kill", async () => {
  const pm = new ProcessManager(new UserCgroup(dir));
  expect((await runToEnd(pm, "kill -9 $$")).error).toBe("signal: killed");
  let pidOf = 0;
  const ended = runToEnd(pm, "sleep 30", (pid) => (pidOf = pid));
  writeFileSync(join(dir, "memory.events"), "oom 9\noom_kill 9\n");
  pm.find({ pid: pidOf }).signal(9);
  expect((await ended).error).toBe("signal: killed");
});
