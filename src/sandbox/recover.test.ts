// Recovery after a daemon restart with the machine layer faked: running VMs are re-adopted with their timers,
// paused-to-disk sandboxes stay paused, VMs caught mid-operation are ended, and dead ones get their end reason.
import { afterEach, expect, test } from "bun:test";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import { sandboxPaths } from "./paths.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("a restart adopts running VMs (their exit is an end again), keeps parked ones, ends the rest with reasons", async () => {
  s = await fakeSandboxes();
  const running = await s.create();
  const parked = await s.create();
  await s.manager.pause(parked.id);
  const crashed = await s.create();
  const lost = await s.create();
  const starting = await s.create();
  s.state.sandboxes.update(starting.id, { state: "starting" }); // as if the daemon stopped during its boot
  await s.manager.detachAll();
  // While no daemon ran: one VM powered off (exit record), one vanished without a record.
  s.fm.vm(crashed.runDir!)!.crash("poweroff");
  s.fm.exits.set(sandboxPaths(s.config, crashed.id).exitFile, { reason: "poweroff", detail: "", consoleTail: "" });
  s.fm.vm(lost.runDir!)!.crash("vmm-crash");
  await s.restart();
  const m = s.manager;
  expect(m.get(running.id)?.state).toBe("running");
  expect(m.route(running.id)).not.toBeNull();
  expect(s.state.sandboxes.eventsOf(running.id).map((e) => e.kind).at(-1)).toBe("adopted");
  expect(m.get(parked.id)?.state).toBe("paused");
  expect(m.get(crashed.id)).toMatchObject({ state: "ended", endReason: "poweroff", endDetail: "the guest powered off (while the daemon was down)" });
  expect(m.get(lost.id)).toMatchObject({ state: "ended", endReason: "lost" });
  expect(m.get(starting.id)).toMatchObject({ state: "ended", endReason: "start-failed", endDetail: "daemon restarted while starting" });
  expect(s.fm.vm(starting.runDir!)!.state).toBe("ended");
  // The adopted VM is watched again.
  s.fm.vm(running.runDir!)!.crash("panic");
  await Bun.sleep(20);
  expect(m.get(running.id)).toMatchObject({ state: "ended", endReason: "panic" });
  // The parked one resumes under the new daemon.
  expect((await m.resume(parked.id)).state).toBe("running");
});
