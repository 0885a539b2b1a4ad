// The vmm's per-VM identity on this host's /dev/kvm: its own uid/gid, no capabilities, one uid per live VM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JAIL_ID_BASE } from "./jail.ts";
import { VmProcess } from "./vm-process.ts";
import type { VmSpec } from "./vm-spec.ts";

const guests = join(import.meta.dir, "../../ffi/build/guests");
const haveKvm = existsSync("/dev/kvm") && existsSync(join(guests, "counter.bin"));
const dirs: string[] = [];
const wasSet = process.env.ONEBOX_VMM_JAIL;
beforeAll(() => {
  process.env.ONEBOX_VMM_JAIL = "1"; // opt-in while the default is root (jail.ts)
});
afterAll(() => {
  if (wasSet === undefined) delete process.env.ONEBOX_VMM_JAIL;
  else process.env.ONEBOX_VMM_JAIL = wasSet;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function spec(): VmSpec {
  const runDir = mkdtempSync(join(tmpdir(), "vmm-jail-"));
  dirs.push(runDir);
  return {
    id: "jail",
    runDir,
    consolePath: join(runDir, "console.log"),
    exitFile: join(runDir, "exit.json"),
    memMib: 32,
    vcpus: 2,
    kernel: "",
    cmdline: "",
    testGuest: join(guests, "counter.bin"),
    disks: [],
    rng: false,
  };
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
  test("own uid/gid, no groups, no capabilities, run dir 0700 owned by it; two VMs never share a uid", async () => {
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
      const st = statSync(a.runDir);
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([uid, uid, 0o700]);
      expect(JSON.parse(readFileSync(join(a.runDir, "vmm.json"), "utf8")).jail).toEqual({ uid, gid: uid });
      // the guest keeps running after the drop (the counter guest prints forever)
      expect((await va.ping()).state).toBe("running");
      // adopt learns the identity from vmm.json (it takes over the control connection, so it also stops the VM)
      const adopted = await VmProcess.adopt(a.runDir);
      expect(adopted?.jail?.uid).toBe(uid);
      await adopted?.stop();
    } finally {
      await va.stop();
      await vb.stop();
    }
    // the exit record is renamed into place by the unprivileged process
    expect((await va.exited).reason).toBe("stopped");
    expect(JSON.parse(readFileSync(a.exitFile, "utf8")).reason).toBe("stopped");
  });
});
