// Network slots on every path, with the machine layer faked (FakeNet): every VM spawned gets a slot (its TAP fd in the
// spec, the guest's eth0 on the cold boot's command line), and the slot goes back on every end: kill, timeout, crash,
// failed create, pause; a resume takes a new one; a warm pool entry takes one when made and its create inherits it;
// after a daemon restart running sandboxes keep theirs and the rest are released.
import { afterEach, expect, test } from "bun:test";
import { fakeSandboxes, until, type FakeSandboxes } from "./fake-sandboxes.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

test("a cold-booted sandbox's VM gets a slot's TAP and eth0's address; kill releases it", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const vm = s.fm.vm(row.runDir!)!;
  expect(s.fm.net.heldFds()).toEqual([vm.spec.net!.tapFd]);
  expect(vm.spec.net!.mac).toBe("02:00:a9:fe:44:06");
  expect(vm.spec.cmdline).toContain("onebox.net=169.254.68.6/30,169.254.68.5");
  await s.manager.kill(row.id);
  await until(() => s.fm.net.held.size === 0);
  expect(s.fm.net.released).toEqual([`obx${vm.spec.net!.tapFd}`]);
});

test("timeout and a crash release the slot", async () => {
  s = await fakeSandboxes();
  const a = await s.create();
  const b = await s.create();
  expect(s.fm.net.held.size).toBe(2);
  s.manager.setTimeout(a.id, 0.05);
  await until(() => s.manager.get(a.id)?.state === "ended");
  await until(() => s.fm.net.held.size === 1);
  s.fm.vm(b.runDir!)!.crash("vmm-crash");
  await until(() => s.manager.get(b.id)?.state === "ended");
  await until(() => s.fm.net.held.size === 0);
  expect(s.fm.net.released.length).toBe(2);
});

test("a failed create releases its slot: at /init, at the spawn; a slot that cannot be had fails the create cleanly", async () => {
  s = await fakeSandboxes();
  s.fm.failOnce.add("init");
  await expect(s.create()).rejects.toThrow();
  await until(() => s.fm.net.held.size === 0);
  expect(s.fm.net.released.length).toBe(1);
  s.fm.failOnce.add("spawn");
  await expect(s.create()).rejects.toThrow();
  expect(s.fm.net.held.size).toBe(0);
  expect(s.fm.net.released.length).toBe(2);
  s.fm.net.failAcquire = true;
  await expect(s.create()).rejects.toThrow("fake slot acquire failed");
  expect(s.fm.calls.filter((c) => c === "spawn").length).toBe(2); // no VM without its slot
  expect(s.state.sandboxes.inStates(null)).toEqual([]);
  expect(s.sandboxDirs()).toEqual([]);
});

test("pause releases the slot (its VM ends); resume takes a new one", async () => {
  s = await fakeSandboxes();
  const row = await s.create();
  const first = s.fm.vm(row.runDir!)!.spec.net!.tapFd;
  await s.manager.pause(row.id);
  await until(() => s.fm.net.held.size === 0);
  await s.manager.resume(row.id);
  const second = s.fm.vm(s.manager.get(row.id)!.runDir!)!.spec.net!.tapFd;
  expect(second).not.toBe(first);
  expect(s.fm.net.heldFds()).toEqual([second]);
  await s.manager.kill(row.id);
  await until(() => s.fm.net.held.size === 0);
});

test("template snapshots: the template VM has a slot (released after the snapshot); a warm pool entry takes one when made and its create inherits it", async () => {
  s = await fakeSandboxes({ templateSnapshots: true, warmPoolSize: 1 });
  const a = await s.create();
  // The template VM's command line configures eth0, so the snapshot's guest (every clone) has it.
  const templateVm = [...s.fm.vms.values()].find((v) => v.spec.id.startsWith("template-"))!;
  expect(templateVm.spec.cmdline).toContain("onebox.net=");
  expect(templateVm.spec.net).toBeDefined();
  expect(s.fm.net.held.has(templateVm.spec.net!.tapFd)).toBe(false);
  // The pool fills: its entry holds a slot before any create takes it.
  await until(() => [...s.fm.vms.values()].some((v) => v.state === "pooled"));
  const pooled = [...s.fm.vms.values()].find((v) => v.state === "pooled")!;
  expect(s.fm.net.held.has(pooled.spec.net!.tapFd)).toBe(true);
  const b = await s.create();
  expect(s.fm.vm(b.runDir!)).toBe(pooled);
  expect(s.fm.net.held.has(pooled.spec.net!.tapFd)).toBe(true);
  await s.manager.kill(b.id);
  await until(() => !s.fm.net.held.has(pooled.spec.net!.tapFd));
  await s.manager.kill(a.id);
  // Daemon stop: the pool's next entry ends, and its slot with it.
  await s.manager.detachAll();
  await until(() => s.fm.net.held.size === 0);
});

test("daemon restart: a running sandbox keeps its slot, slots nobody holds are released", async () => {
  s = await fakeSandboxes();
  const a = await s.create();
  const fd = s.fm.vm(a.runDir!)!.spec.net!.tapFd;
  const stray = await s.fm.net.acquire(); // held by no sandbox (e.g. a reaped warm pool entry's)
  const m = await s.restart();
  expect(s.fm.net.heldFds()).toEqual([fd]);
  expect(s.fm.net.released).toEqual([stray.tapName]);
  // The re-adopted slot still goes with its VM.
  await m.kill(a.id);
  await until(() => s.fm.net.held.size === 0);
});
