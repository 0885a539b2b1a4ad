// The vmm's per-VM identity on this host's /dev/kvm: its own uid/gid, no capabilities, one uid per live VM.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JAIL_ID_BASE } from "./jail.ts";
import { VmProcess, vmmDirFor } from "./vm-process.ts";
import type { VmSpec } from "./vm-spec.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";
import { jailedVmmSuite } from "./jail-test-support.ts";

const haveKvm = haveTestGuest("counter.bin");
const dirs = jailedVmmSuite();

function spec(guest = "counter.bin"): VmSpec {
  const runDir = mkdtempSync(join(tmpdir(), "vmm-jail-"));
  dirs.push(runDir);
  return testGuestSpec(runDir, guest, { id: "jail", vcpus: 2 });
}

/** Uid/Gid (real, effective, saved, fs) and the capability masks from /proc/PID/status. */
function procStatus(pid: number): { uids: number[]; gids: number[]; groups: string; caps: Record<string, string> } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => (new RegExp(`^${name}:[ \\t]*(.*)$`, "m").exec(text)?.[1] ?? "").trim();
  return {
    uids: field("Uid").split(/\s+/).map(Number),
    gids: field("Gid").split(/\s+/).map(Number),
    groups: field("Groups"),
    caps: { CapInh: field("CapInh"), CapPrm: field("CapPrm"), CapEff: field("CapEff"), CapBnd: field("CapBnd"), CapAmb: field("CapAmb") },
  };
}

describe.skipIf(!haveKvm || process.getuid?.() !== 0)("onebox-vmm runs as its VM's own uid", () => {
  test("own uid/gid, no groups, no capabilities, only its own dir is its; two VMs never share a uid", async () => {
    const a = spec();
    const b = spec();
    const va = await VmProcess.spawn(a);
    const vb = await VmProcess.spawn(b);
    try {
      const sa = procStatus(va.pid);
      const sb = procStatus(vb.pid);
      const uid = va.jail?.uid ?? -1;
      expect(uid).toBeGreaterThanOrEqual(JAIL_ID_BASE);
      expect(sa.uids).toEqual([uid, uid, uid, uid]);
      expect(sa.gids).toEqual([uid, uid, uid, uid]);
      expect(sa.groups).toBe("");
      for (const v of Object.values(sa.caps)) expect(v).toBe("0000000000000000");
      expect(sb.uids[0]).toBe(vb.jail?.uid ?? -2);
      expect(sb.uids[0]).not.toBe(uid);
      // The run dir (sockets bound before the drop, vmm.json) is root's; the vmm's own dir is the only one it owns.
      const st = statSync(a.runDir);
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, 0, 0o700]);
      const own = statSync(vmmDirFor(a.exitFile));
      expect([own.uid, own.gid, own.mode & 0o777]).toEqual([uid, uid, 0o700]);
      expect(JSON.parse(readFileSync(join(a.runDir, "vmm.json"), "utf8")).jail).toEqual({ uid, gid: uid });
      // the guest keeps running after the drop (the counter guest prints forever)
      expect((await va.ping()).state).toBe("running");
      // a snapshot is written by the VM's uid, then handed back to root: a later VM reusing the uid cannot touch it
      const snapDir = join(a.runDir, "snap");
      await va.pause();
      await va.snapshot(snapDir);
      for (const f of [snapDir, join(snapDir, "state"), join(snapDir, "memory")]) {
        const fst = statSync(f);
        expect([fst.uid, fst.mode & 0o777]).toEqual([0, f === snapDir ? 0o700 : 0o600]);
      }
      await va.resume();
      // adopt learns the identity from the process (it takes over the control connection, so it also stops the VM)
      const adopted = await VmProcess.adopt(a.runDir, a.exitFile);
      expect(adopted?.jail?.uid).toBe(uid);
      await adopted?.stop();
    } finally {
      await va.stop();
      await vb.stop();
    }
    // the exit record is written by the unprivileged process into the file it created as root at start
    expect((await va.exited).reason).toBe("stopped");
    expect(JSON.parse(readFileSync(a.exitFile, "utf8")).reason).toBe("stopped");
  });

  test("an exit file in a root-only dir gets the record; adopt of the ended vmm writes nothing", async () => {
    // The sandbox layer keeps exit.json in the sandbox's data dir, which the VM's uid cannot write: the vmm
    // creates it as root before the drop (a rename there failed once and every end read as vmm-crash).
    const s = spec("poweroff.bin");
    const dataDir = mkdtempSync(join(tmpdir(), "vmm-jail-data-"));
    dirs.push(dataDir);
    chmodSync(dataDir, 0o700);
    s.exitFile = join(dataDir, "exit.json");
    const vm = await VmProcess.spawn(s);
    expect(vm.jail).not.toBeNull();
    expect((await vm.exited).reason).toBe("poweroff");
    expect(JSON.parse(readFileSync(s.exitFile, "utf8")).reason).toBe("poweroff");
    const est = statSync(s.exitFile);
    expect([est.uid, est.mode & 0o777]).toEqual([0, 0o600]);
    // A daemon that was down when the VM ended: adopt finds no process; the record is where the caller reads it.
    expect(await VmProcess.adopt(s.runDir, s.exitFile)).toBeNull();
    expect(JSON.parse(readFileSync(s.exitFile, "utf8")).reason).toBe("poweroff");
  });

  test("ONEBOX_VMM_JAIL=0 keeps the vmm root (debugging only)", async () => {
    process.env.ONEBOX_VMM_JAIL = "0";
    try {
      const vm = await VmProcess.spawn(spec());
      try {
        expect(vm.jail).toBeNull();
        expect(procStatus(vm.pid).uids).toEqual([0, 0, 0, 0]);
      } finally {
        await vm.stop();
      }
    } finally {
      delete process.env.ONEBOX_VMM_JAIL;
    }
  });
});
