// Attacks of a vmm that its guest took over on the daemon's paths: the names it can rewrite or plant in the run
// dir, and what a restarted daemon's adopt does with them (docs/vmm.md "Isolation"). Real jailed vmms.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmProcess } from "./vm-process.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";
import { jailedVmmSuite } from "./jail-test-support.ts";

const haveKvm = haveTestGuest("counter.bin");
const dirs = jailedVmmSuite();

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Runs a shell script as uid (= gid), without groups: what the vmm's own uid can do after the drop. */
function asUid(uid: number, script: string): { ok: boolean; out: string } {
  const p = Bun.spawnSync(["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "sh", "-c", script], { stderr: "pipe" });
  return { ok: p.exitCode === 0, out: p.stdout.toString() + p.stderr.toString() };
}

async function gone(vm: VmProcess): Promise<void> {
  process.kill(vm.pid, "SIGKILL");
  await vm.exited;
}

describe.skipIf(!haveKvm || process.getuid?.() !== 0)("a hostile vmm and the daemon's paths", () => {
  test("the vmm's uid can neither rewrite vmm.json nor plant a name in the run dir", async () => {
    const s = testGuestSpec(tmp("vmm-paths-run-"), "counter.bin", { id: "paths" });
    const outside = tmp("vmm-paths-outside-");
    const vm = await VmProcess.spawn(s);
    try {
      const uid = vm.jail?.uid ?? -1;
      expect(uid).toBeGreaterThan(0);
      const r = asUid(
        uid,
        `rm -f ${s.runDir}/vmm.json
         printf '{"pid":${vm.pid},"exitFile":"${outside}/pwned"}' > ${s.runDir}/vmm.json || exit 1
         ln -s ${outside}/pwned ${s.runDir}/planted || exit 1`,
      );
      expect(r.ok).toBe(false);
      expect(readdirSync(s.runDir)).not.toContain("planted");
      expect(JSON.parse(readFileSync(join(s.runDir, "vmm.json"), "utf8")).pid).toBe(vm.pid);
    } finally {
      await vm.stop();
    }
  });

  test("a rewritten vmm.json and a planted record, then kill -9 and a daemon restart: adopt writes nothing", async () => {
    // The worst case, as if the vmm could write there (it could, before: the run dir was its own): vmm.json names
    // an exit file outside, the vmm's record next to it says what to write, and the vmm dies.
    const s = testGuestSpec(tmp("vmm-paths-run-"), "counter.bin", { id: "paths" });
    s.exitFile = join(tmp("vmm-paths-data-"), "exit.json");
    const outside = tmp("vmm-paths-outside-");
    const target = join(outside, "cron-job");
    const vm = await VmProcess.spawn(s);
    await gone(vm);
    writeFileSync(join(s.runDir, "vmm.json"), JSON.stringify({ pid: vm.pid, exitFile: target, consolePath: target }));
    writeFileSync(join(s.runDir, "vmm-exit.json"), "* * * * * root chosen content\n");
    symlinkSync(target, join(s.runDir, "exit.json.tmp"));
    expect(await VmProcess.adopt(s.runDir, s.exitFile)).toBeNull();
    expect(readdirSync(outside)).toEqual([]);
    // The same with the vmm still alive: adopt re-attaches (the pid is the vmm's) and, when it ends, writes nothing.
    const live = await VmProcess.spawn(s);
    live.detach();
    writeFileSync(join(s.runDir, "vmm.json"), JSON.stringify({ pid: live.pid, exitFile: target, consolePath: target }));
    const adopted = await VmProcess.adopt(s.runDir, s.exitFile);
    expect(adopted?.pid).toBe(live.pid);
    await adopted?.stop();
    expect((await adopted?.exited)?.reason).toBe("stopped");
    expect(readdirSync(outside)).toEqual([]);
  });

  test("a vmm.json naming another process, or symlinks in place of vmm.json or ctl.sock, are not followed", async () => {
    const s = testGuestSpec(tmp("vmm-paths-run-"), "counter.bin", { id: "paths" });
    const vm = await VmProcess.spawn(s);
    vm.detach();
    // A decoy socket of root's: a daemon that connected through the planted name would talk to it.
    const decoyDir = tmp("vmm-paths-decoy-");
    let decoyHits = 0;
    const decoy = createServer((c) => {
      decoyHits++;
      c.end(`ok pid=${vm.pid} state=running\n`);
    });
    await new Promise<void>((r) => decoy.listen(join(decoyDir, "root.sock"), r));
    try {
      // Any live process is not a vmm: pid 1.
      writeFileSync(join(s.runDir, "vmm.json"), JSON.stringify({ pid: 1 }));
      expect(await VmProcess.adopt(s.runDir, s.exitFile)).toBeNull();
      // vmm.json as a symlink to a file that names the real pid.
      const elsewhere = join(decoyDir, "state.json");
      writeFileSync(elsewhere, JSON.stringify({ pid: vm.pid }));
      rmSync(join(s.runDir, "vmm.json"));
      symlinkSync(elsewhere, join(s.runDir, "vmm.json"));
      expect(await VmProcess.adopt(s.runDir, s.exitFile)).toBeNull();
      // ctl.sock replaced by a symlink to the decoy.
      rmSync(join(s.runDir, "vmm.json"));
      writeFileSync(join(s.runDir, "vmm.json"), JSON.stringify({ pid: vm.pid }));
      rmSync(join(s.runDir, "ctl.sock"));
      symlinkSync(join(decoyDir, "root.sock"), join(s.runDir, "ctl.sock"));
      expect(await VmProcess.adopt(s.runDir, s.exitFile)).toBeNull();
      expect(decoyHits).toBe(0);
      process.kill(vm.pid, "SIGKILL");
      await vm.exited;
      // The run dir's socket names are removed at the end, never what a planted one points at.
      expect(existsSync(join(decoyDir, "root.sock"))).toBe(true);
    } finally {
      decoy.close();
      await vm.stop();
    }
  });
});
