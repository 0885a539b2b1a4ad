// The vmm's own cgroup on this host's /dev/kvm: it joins it before any thread starts, with the memory/pids/CPU
// limits of its VM; the cgroup is gone after the VM ends; a guest that outgrows the memory limit is OOM-killed
// and recorded as such.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { endReasonOf, wasOomKilled } from "../sandbox/end-reasons.ts";
import { cgroupDirs, hostCgroupVersion, VM_PIDS_MAX, vmLimits } from "./cgroup.ts";
import { VmProcess } from "./vm-process.ts";
import type { VmSpec } from "./vm-spec.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";

const haveKvm = haveTestGuest("touch_mem.bin");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function spec(guest: string, memMib: number, vcpus: number): VmSpec {
  const runDir = mkdtempSync(join(tmpdir(), "vmm-cg-"));
  dirs.push(runDir);
  return testGuestSpec(runDir, guest, { id: "cgroup-test", memMib, vcpus });
}

const read = (dir: string, file: string) => readFileSync(join(dir, file), "utf8").trim();

async function waitConsole(s: VmSpec, text: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(existsSync(s.consolePath) && readFileSync(s.consolePath, "utf8").includes(text))) {
    if (Date.now() > end) throw new Error(`no '${text}' on the console after ${ms} ms`);
    await Bun.sleep(20);
  }
}

// Root and a cgroup hierarchy are needed (this dev host: v1 memory/pids/cpu); without, VMs run unlimited with a warning.
const version = haveKvm && process.getuid?.() === 0 ? hostCgroupVersion() : null;
describe.skipIf(version === null)("onebox-vmm runs in its VM's own cgroup", () => {
  test("every thread is in the VM's cgroup with its limits; the cgroup is removed when the VM ends", async () => {
    const s = spec("touch_mem.bin", 64, 2);
    const vm = await VmProcess.spawn(s);
    let removed: string[] = [];
    try {
      const cg = vm.cgroup;
      if (!cg) throw new Error(`no cgroup although this host has cgroup v${version}`);
      removed = cgroupDirs(cg);
      await waitConsole(s, "touched"); // 56 MiB written, well inside the limit
      const limits = vmLimits(64, 2);
      const mem = cg.dirs.memory ?? "";
      const pids = cg.dirs.pids ?? "";
      if (cg.version === 1) {
        expect(Number(read(mem, "memory.limit_in_bytes"))).toBe(limits.memoryBytes);
        // charged to the VM: the guest's 56 MiB (plus the vmm itself), not to the daemon
        expect(Number(read(mem, "memory.usage_in_bytes"))).toBeGreaterThan(56 * 1024 * 1024);
        console.log(`vmm cgroup v1: max usage ${Number(read(mem, "memory.max_usage_in_bytes")) >> 20} MiB of ${limits.memoryBytes >> 20} MiB for a 64 MiB guest that touched 56 MiB`);
        if (cg.dirs.cpu) expect(read(cg.dirs.cpu, "cpu.shares")).toBe("2048");
      } else {
        expect(Number(read(mem, "memory.max"))).toBe(limits.memoryBytes);
        expect(Number(read(mem, "memory.current"))).toBeGreaterThan(56 * 1024 * 1024);
        if (cg.dirs.cpu) expect(read(cg.dirs.cpu, "cpu.weight")).toBe("200");
      }
      expect(read(pids, "pids.max")).toBe(String(VM_PIDS_MAX));
      // The process and all its threads (main, event loop, 2 vCPUs) are in the VM's cgroup in every hierarchy.
      expect(read(mem, "cgroup.procs").split("\n")).toEqual([String(vm.pid)]);
      const tids = readdirSync(`/proc/${vm.pid}/task`);
      expect(tids.length).toBeGreaterThanOrEqual(4);
      for (const tid of tids) {
        const own = read(`/proc/${vm.pid}/task/${tid}`, "cgroup");
        for (const dir of cgroupDirs(cg)) expect(own).toContain(dir.slice(dir.indexOf("/onebox/")));
      }
    } finally {
      await vm.stop();
    }
    expect((await vm.exited).reason).toBe("stopped");
    for (const d of removed) expect(existsSync(d)).toBe(false);
  });

  test("a guest that outgrows the memory limit is OOM-killed, recorded as oom, and its cgroup removed", async () => {
    const s = spec("touch_mem.bin", 64, 1);
    // 40 MiB for a guest that writes 56 MiB: the kernel's OOM killer must end the vmm, the only process there.
    const vm = await VmProcess.spawn(s, { memoryLimitBytes: 40 * 1024 * 1024 });
    const removed = vm.cgroup ? cgroupDirs(vm.cgroup) : [];
    expect(removed.length).toBeGreaterThan(0);
    const exit = await vm.exited;
    expect(exit.reason).toBe("vmm-crash");
    expect(exit.signal).toBe("SIGKILL");
    expect(exit.detail).toContain("OOM killer");
    expect(readFileSync(s.consolePath, "utf8")).not.toContain("touched");
    const oom = await wasOomKilled(vm.pid);
    expect(oom).toBe(true);
    expect(endReasonOf(exit, oom).reason).toBe("oom");
    for (const d of removed) expect(existsSync(d)).toBe(false);
  });

  test("a snapshot's memory file is charged to a sibling: the running VM keeps its limit and its usage", async () => {
    // In tmpfs (as a test host's data dir is) the copy cannot be reclaimed: charged to the VM's cgroup, it would
    // sit inside the guest's limit for as long as the sandbox runs on after a snapshot or a fork.
    const shm = mkdtempSync(join("/dev/shm", "vmm-cg-snap-"));
    dirs.push(shm);
    const s = testGuestSpec(join(shm, "run"), "touch_mem.bin", { id: "cgroup-snap", memMib: 64, vcpus: 1 });
    const vm = await VmProcess.spawn(s);
    try {
      const cg = vm.cgroup;
      if (!cg) throw new Error(`no cgroup although this host has cgroup v${version}`);
      const mem = cg.dirs.memory ?? "";
      const usage = () => Number(read(mem, cg.version === 2 ? "memory.current" : "memory.usage_in_bytes"));
      const limit = () => Number(read(mem, cg.version === 2 ? "memory.max" : "memory.limit_in_bytes"));
      await waitConsole(s, "touched");
      await vm.pause();
      const before = usage();
      const snap = join(shm, "snap");
      await vm.snapshot(snap);
      const copy = statSync(join(snap, "memory")).blocks * 512;
      expect(copy).toBeGreaterThan(50 * 1024 * 1024); // the 56 MiB the guest wrote are in tmpfs
      expect(limit()).toBe(cg.memoryBytes);
      expect(usage()).toBeLessThan(before + 8 * 1024 * 1024);
      expect(existsSync(`${mem}.snap`)).toBe(false);
      expect(read(mem, "cgroup.procs").split("\n")).toEqual([String(vm.pid)]);
      console.log(`vmm cgroup v${cg.version}: ${before >> 20} MiB before the snapshot, ${usage() >> 20} MiB after; the ${copy >> 20} MiB copy is charged elsewhere`);
      await vm.resume();
    } finally {
      await vm.stop();
    }
    expect((await vm.exited).reason).toBe("stopped");
  });

  test("a cgroup the vmm cannot join fails the start cleanly", async () => {
    // The vmm refuses to run unconfined: a missing cgroup directory is a setup error, not a VM without limits.
    const s = spec("touch_mem.bin", 64, 1);
    const binary = join(import.meta.dir, "../../ffi/build/onebox-vmm");
    const p = Bun.spawnSync([binary, "--ctl", join(s.runDir, "c.sock"), "--exit-file", s.exitFile, "--mem-mib", "64", "--test-guest", s.testGuest ?? "", "--cgroup", join(s.runDir, "no-such-cgroup")]);
    expect(p.exitCode).toBe(2);
    expect(p.stderr.toString()).toContain("join cgroup");
    expect(JSON.parse(readFileSync(s.exitFile, "utf8")).reason).toBe("error");
  });
});
