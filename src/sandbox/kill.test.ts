// Kill and a VM's own end, with the machine layer faked: the end reason comes from the one field a transition
// writes (Live.ending), so a killed or parked VM's exit is not a crash, and a VM that dies by itself is.
import { afterEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import { sandboxPaths } from "./paths.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("kill: stopping then ended (killed), the VM stopped, its layer and run dir gone, console and exit record kept", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const vm = s.fm.vm(row.runDir!)!;
  await s.manager.kill(row.id);
  const ended = s.manager.get(row.id)!;
  expect(ended).toMatchObject({ state: "ended", endReason: "killed", endDetail: "killed through the API", vmPid: null });
  expect(s.state.sandboxes.eventsOf(row.id).map((e) => e.kind)).toEqual(["create", "cold-boot", "running", "stopping", "end"]);
  expect(vm.state).toBe("ended");
  expect(s.files(row.id)).toEqual({ sandboxDir: true, runDir: false, layer: false, paused: false });
  expect(existsSync(sandboxPaths(s.config, row.id).exitFile)).toBe(true);
  expect(s.manager.route(row.id)).toBeNull();
  expect(() => s.manager.getVisible(row.id)).toThrow("not found");
  await expect(s.manager.kill(row.id)).rejects.toMatchObject({ kind: "not-found" });
});

test("a kill of a starting sandbox waits for its boot; of one whose create fails, it answers 404", async () => {
  s = await fakeSandboxes();
  let open!: () => void;
  s.fm.gate.ready = new Promise<void>((r) => (open = r));
  const creating = s.create();
  await Bun.sleep(50);
  const [row] = s.state.sandboxes.live();
  expect(row?.state).toBe("starting");
  const killing = s.manager.kill(row!.id);
  open();
  await creating;
  await killing;
  expect(s.manager.get(row!.id)?.state).toBe("ended");

  s.fm.gate.ready = new Promise<void>((r) => (open = r));
  s.fm.fail.add("init");
  const failing = s.create().catch(() => "failed");
  await Bun.sleep(50);
  const [second] = s.state.sandboxes.live();
  const kill2 = s.manager.kill(second!.id).catch((e: { kind: string }) => e.kind);
  open();
  expect(await failing).toBe("failed");
  expect(await kill2).toBe("not-found");
  expect(s.manager.get(second!.id)).toBeUndefined();
});

test("a VM that dies by itself ends its sandbox with the reason from its exit", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  s.fm.vm(row.runDir!)!.crash("panic", "Kernel panic - not syncing");
  await Bun.sleep(20);
  expect(s.manager.get(row.id)).toMatchObject({ state: "ended", endReason: "panic", endDetail: "Kernel panic - not syncing" });
  expect(s.files(row.id).layer).toBe(false);
});

test("kill with reason timeout records it as the end reason", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  await s.manager.kill(row.id, "timeout");
  expect(s.manager.get(row.id)).toMatchObject({ state: "ended", endReason: "timeout", endDetail: "the sandbox reached its end time" });
});

test("a daemon that detaches leaves its VMs running: their later exit is the next daemon's to see", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  await s.manager.detachAll();
  s.fm.vm(row.runDir!)!.crash("poweroff");
  await Bun.sleep(20);
  expect(s.manager.get(row.id)?.state).toBe("running");
});
