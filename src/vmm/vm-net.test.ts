// virtio-net wiring on this host's /dev/kvm: the TAP the daemon opened reaches the vmm as fd 4 (--net 4,MAC) and is
// set up there (docs/virtio.md "virtio-net on a TAP"); a snapshot of a VM with a network restores only with --net,
// onto another TAP (the clone's own), keeping the snapshot's MAC; an fd that is not a TAP is refused at start.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { linkDel } from "../sys/rtnetlink.ts";
import { openTap, type Tap } from "../sys/tap.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";
import { VmProcess } from "./vm-process.ts";
import { VMM_NET_FD, vmmArgs, type VmSpec } from "./vm-spec.ts";

const MAC = "02:00:a9:fe:44:06";
const canRun = haveTestGuest("counter.bin") && process.getuid?.() === 0 && existsSync("/dev/net/tun");
const dirs: string[] = [];
const taps: Tap[] = [];
afterAll(async () => {
  for (const t of taps) {
    await linkDel(t.name).catch(() => {});
    try {
      closeSync(t.fd);
    } catch {}
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function spec(extra: Partial<VmSpec> = {}): VmSpec {
  const d = mkdtempSync(join(tmpdir(), "vmm-net-"));
  dirs.push(d);
  return testGuestSpec(d, "counter.bin", { id: "net", ...extra });
}

async function tap(): Promise<Tap> {
  const t = await openTap(`obxvt${process.pid % 10000}${taps.length}`, new Uint8Array([2, 0, 0xa9, 0xfe, 0x44, 5]));
  taps.push(t);
  return t;
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

test("--net names the inherited fd and the MAC, after every other device", () => {
  const args = vmmArgs({ ...testGuestSpec("/r", null, { rng: true }), net: { tapFd: 17, mac: MAC } });
  expect(args.slice(-3)).toEqual(["--rng", "--net", `${VMM_NET_FD},${MAC}`]);
});

describe.skipIf(!canRun)("virtio-net on a TAP (test guest)", () => {
  test("the vmm holds the TAP as fd 4; the snapshot restores only with --net, onto the clone's own TAP (spawned and pooled)", async () => {
    const a = await tap();
    const s = spec({ net: { tapFd: a.fd, mac: MAC } });
    const vm = await VmProcess.spawn(s);
    await waitFor(() => read(s.consolePath).includes("count"));
    expect(readlinkSync(`/proc/${vm.pid}/fd/${VMM_NET_FD}`)).toBe("/dev/net/tun");
    // The vmm set the vnet header and offloads at setup: the TAP's flags say IFF_VNET_HDR (0x4000) and still TAP.
    expect(Number.parseInt(readFileSync(`/sys/class/net/${a.name}/tun_flags`, "utf8"), 16) & 0x4002).toBe(0x4002);
    await vm.pause();
    const dir = join(spec().runDir, "snap");
    await vm.snapshot(dir);
    await vm.stop();

    const without = spec({ testGuest: undefined, restoreFrom: dir });
    await expect(VmProcess.spawn(without)).rejects.toThrow(/exited during start: error/);
    expect(JSON.parse(read(without.exitFile)).detail).toContain("virtio devices");

    const b = await tap();
    const other = "02:00:00:00:00:42"; // the command line's MAC is for a boot: the snapshot's is kept
    const c = spec({ testGuest: undefined, restoreFrom: dir, net: { tapFd: b.fd, mac: other } });
    const clone = await VmProcess.spawn(c);
    await waitFor(() => read(c.consolePath).includes("count"));
    expect(readlinkSync(`/proc/${clone.pid}/fd/${VMM_NET_FD}`)).toBe("/dev/net/tun");
    await clone.stop();
    expect(JSON.parse(read(c.exitFile)).reason).toBe("stopped");

    // A pooled vmm (the warm pool's create path) is built with its TAP and restores the same snapshot onto it.
    const p = spec({ testGuest: undefined, restoreFrom: dir, net: { tapFd: (await tap()).fd, mac: MAC } });
    const pooled = await VmProcess.spawnPooled(p);
    expect((await pooled.ping()).state).toBe("pooled");
    await pooled.restore(dir);
    await waitFor(() => read(p.consolePath).includes("count"));
    expect((await pooled.ping()).state).toBe("running");
    await pooled.stop();
    expect(JSON.parse(read(p.exitFile)).reason).toBe("stopped");
  });

  test("an fd that is not a TAP is refused at start, saying so", async () => {
    const notTap = openSync("/dev/null", "r");
    try {
      const s = spec({ net: { tapFd: notTap, mac: MAC } });
      await expect(VmProcess.spawn(s)).rejects.toThrow(/exited during start: error/);
      expect(JSON.parse(read(s.exitFile)).detail).toContain("is not a TAP");
    } finally {
      closeSync(notTap);
    }
  });
});
