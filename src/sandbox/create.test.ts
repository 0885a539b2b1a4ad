// Create with the machine layer faked (fake-machine.ts): the row, events and files of a good create, and for each
// step that can fail, that the rollback leaves nothing (no row, no files, no VM, no live entry, attachments undone).
import { afterEach, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type { FakeStep } from "../machine/fake-machine.ts";
import { OneboxError } from "../util/errors.ts";
import { fakeSandboxes, type FakeSandboxes } from "./fake-sandboxes.ts";
import { sandboxPaths } from "./paths.ts";

let s: FakeSandboxes;
afterEach(() => s.close());

const events = (id: string) => s.state.sandboxes.eventsOf(id).map((e) => e.kind);

test("a create: the row runs, with its VM, run dir and layer; events create, cold-boot, running", async () => {
  s = await fakeSandboxes();
  const row = await s.create({ envVars: { A: "1" } });
  expect(row.state).toBe("running");
  expect(row.runDir).toBe(sandboxPaths(s.config, row.id).runDir);
  expect(row.envdAccessToken).toBeString();
  expect(s.files(row.id)).toEqual({ sandboxDir: true, runDir: true, layer: true, paused: false });
  expect(s.fm.vm(row.runDir!)?.state).toBe("running");
  expect(row.vmPid).toBe(s.fm.vm(row.runDir!)!.pid);
  expect(events(row.id)).toEqual(["create", "cold-boot", "running"]);
  expect(s.fm.calls.filter((c) => c !== "stats")).toEqual(["spawn", "ready", "init", `init ${row.runDir}`]);
  expect(s.manager.route(row.id)).not.toBeNull();
});

for (const step of ["spawn", "ready", "init"] as FakeStep[]) {
  test(`create fails at ${step}: 503, and no row, no files, no VM, no route are left`, async () => {
    s = await fakeSandboxes();
    s.fm.fail.add(step);
    const e = await s.create().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OneboxError);
    expect((e as OneboxError).kind).toBe("unavailable");
    expect((e as OneboxError).message).toContain("cannot start a sandbox");
    expect(s.state.sandboxes.inStates(null)).toEqual([]);
    expect(s.sandboxDirs()).toEqual([]);
    for (const vm of s.fm.vms.values()) expect(vm.state).toBe("ended");
    if (step !== "spawn") expect(s.fm.calls).toContain("stop");
  });
}

test("a template the host cannot boot: 503 before anything is written", async () => {
  s = await fakeSandboxes();
  rmSync(s.template.kernel);
  await expect(s.create()).rejects.toMatchObject({ kind: "unavailable" });
  expect(s.state.sandboxes.inStates(null)).toEqual([]);
  expect(s.fm.calls).toEqual([]);
});

test("attachments are acquired in order before the VM, and undone in reverse when a later step fails", async () => {
  const log: string[] = [];
  const attach = (name: string, fail = false) => ({
    name,
    acquire({ id, undo }: { id: string; undo: { push(n: string, f: () => void): void } }) {
      if (fail) throw new Error(`${name} refused`);
      log.push(`+${name} ${id.length}`);
      undo.push(name, () => void log.push(`-${name}`));
    },
  });
  s = await fakeSandboxes({}, [attach("a"), attach("b")]);
  const row = await s.create();
  expect(log).toEqual(["+a 20", "+b 20"]);
  await s.manager.kill(row.id);
  log.length = 0;
  s.fm.fail.add("init");
  await expect(s.create()).rejects.toMatchObject({ kind: "unavailable" });
  expect(log).toEqual(["+a 20", "+b 20", "-b", "-a"]);
  await s.close();

  log.length = 0;
  s = await fakeSandboxes({}, [attach("a"), attach("c", true)]);
  await expect(s.create()).rejects.toThrow("c refused");
  expect(log).toEqual(["+a 20", "-a"]);
  expect(s.fm.calls).toEqual([]); // no VM was started
  expect(s.state.sandboxes.inStates(null)).toEqual([]);
});

test("with template snapshots: a restore gets hygiene; a refused snapshot is dropped and the create cold-boots", async () => {
  s = await fakeSandboxes({ templateSnapshots: true });
  const a = await s.create();
  expect(s.state.sandboxes.eventsOf(a.id).map((e) => e.kind)).toEqual(["create", "restore", "running"]);
  expect(s.fm.calls.filter((c) => !c.startsWith("warmUp ") && c !== "stats")).toEqual([
    // the template's VM: booted, ready, one warm-up command, paused, snapshotted, stopped; then the clone: one
    // exchange, /init carrying its hygiene (issue 18), no readiness probe (a snapshot is of a ready guest), no
    // control-channel hygiene
    "adopt", "spawn", "ready", "warmUp", "pause", "snapshot", "stop", "spawn", "init", `init ${a.runDir} +hygiene`,
  ]);
  // A clone that does not take its hygiene: the create fails and leaves nothing.
  s.fm.fail.add("hygiene");
  await expect(s.create()).rejects.toThrow("did not take its clock, entropy and identity");
  expect(s.state.sandboxes.inStates(null).map((r) => r.id)).toEqual([a.id]);
  expect(s.sandboxDirs()).toEqual([a.id]);
  s.fm.fail.delete("hygiene");
  // The vmm refuses the snapshot: it is dropped, this create cold-boots, the next one rebuilds it.
  s.fm.calls.length = 0;
  s.fm.failOnce.add("spawn");
  const b = await s.create();
  expect(s.state.sandboxes.eventsOf(b.id).map((e) => e.kind)).toEqual(["create", "cold-boot", "running"]);
  const c = await s.create();
  expect(s.state.sandboxes.eventsOf(c.id).map((e) => e.kind)).toEqual(["create", "restore", "running"]);
  expect(s.fm.calls.filter((x) => x === "snapshot")).toEqual(["snapshot"]);
});

test("a restored guest whose agent does not take hygiene with /init (an older image) gets it over the control channel", async () => {
  s = await fakeSandboxes({ templateSnapshots: true });
  s.fm.agentHygiene = false;
  await s.create(); // the template's snapshot
  s.fm.calls.length = 0;
  const a = await s.create();
  expect(s.fm.calls.filter((c) => c !== "stats")).toEqual(["spawn", "init", `init ${a.runDir}`, "hygiene"]);
  // ... and a clone that does not take it there fails its create, as before.
  s.fm.fail.add("hygiene");
  await expect(s.create()).rejects.toThrow("did not take its clock, entropy and identity");
  expect(s.state.sandboxes.inStates(null).map((r) => r.id)).toHaveLength(2);
});
