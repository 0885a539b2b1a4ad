// Slot pool and host setup in a network namespace of the test's own: nothing is left after release and stop.
import { describe, expect, test } from "bun:test";
import { canRunNetns, runInNetns } from "./testing/run-in-netns.ts";

const here = import.meta.dir;

describe.skipIf(!canRunNetns)("slot pool (in its own network namespace)", () => {
  test("made ahead, released even while a VMM holds the TAP, and stop leaves no TAP, program, map, route or nft table", async () => {
    const { result: r } = await runInNetns<any>(`${here}/testing/scenario-lifecycle.ts`);
    expect(r.before).toEqual({ taps: [], routes: [], nft: false, pinned: [], forward: "0" });
    expect(r.running.taps.sort()).toEqual(["obx0", "obx1"]);
    expect(r.running.nft).toBe(true);
    expect(r.running.forward).toBe("1");
    expect(r.running.pinned.map((p: string) => p.split("/").pop()).sort()).toEqual([
      "net-v1", "onebox", "onebox_allow_out", "onebox_deny_out", "onebox_drops", "onebox_host_deny", "onebox_open",
      "onebox_slot_drops", "onebox_slots",
    ]); // the dirs and the seven maps
    expect(r.running.routes.some((l: string) => l.startsWith("198.18.0.1 dev obx0"))).toBe(true);
    expect(r.running.routes.some((l: string) => l.startsWith("local 169.254.68.5 dev lo"))).toBe(true);
    expect(r.attached.tap).toBe("obx0");
    expect(r.attached.ip).toBe("198.18.0.1");
    expect(r.attached.progIds.length).toBe(2);
    expect(r.attached.progsAlive).toEqual([true, true]);
    expect(r.afterRelease).toEqual({ tapGone: true, vmmStillRunning: true });
    expect(r.refilled.ready).toBe(2); // a replacement (obx2: addresses are reused last)
    expect(r.stopErrors).toEqual([]);
    expect(r.after).toEqual({ taps: [], routes: [], nft: false, pinned: [], forward: "0" });
    expect(r.progsAliveAfter).toEqual([false, false]);
  }, 60_000);

  test("after a daemon dies, the next re-adopts the slot a VMM still holds (it still translates), reaps the rest, and leaves nothing", async () => {
    const { result: r } = await runInNetns<any>(`${here}/testing/scenario-restart.ts`);
    expect(r.first.taps).toEqual(["obx0", "obx1", "obx2"]); // one in use, two made ahead
    expect(r.between.taps).toEqual(["obx0"]); // the ready ones died with their daemon's fds; the VMM's stayed
    expect(r.between.nft).toBe(true);
    expect(r.adopted).toEqual([{ tap: "obx0", ip: "198.18.0.1", fd: null }]);
    expect(r.reaped.sort()).toEqual(["ifindex 3", "ifindex 4"]); // the dead ready slots' map entries
    expect(r.seen).toEqual([{ dstMac: "02:00:a9:fe:44:06", src: "203.0.113.10", dst: "169.254.68.6", text: "to the adopted slot" }]);
    expect(r.afterRelease).toEqual(["obx1"]); // the adopted TAP is gone though the VMM still held it; obx1 is the new ready one
    expect(r.stopErrors).toEqual([]);
    expect(r.after).toEqual({ taps: [], routes: [], nft: false, pinned: [], forward: "0" });
  }, 60_000);

  test("a start that fails part-way undoes every step (pinned maps too); 16 concurrent acquires get 16 distinct slots", async () => {
    const { result: r } = await runInNetns<any>(`${here}/testing/scenario-failures.ts`);
    const clean = { taps: [], routes: [], nft: false, pinned: [], forward: "0" };
    expect(r.noNft.error).toContain("`nft` is not installed");
    expect(r.noNft.left).toEqual(clean);
    expect(r.port53Taken.error).toContain("EADDRINUSE");
    expect(r.port53Taken.left).toEqual(clean);
    expect(r.burst).toEqual({ taps: 16, ips: 16 });
    expect(r.burstStopErrors).toEqual([]);
    expect(r.after).toEqual(clean);
  }, 60_000);
});
