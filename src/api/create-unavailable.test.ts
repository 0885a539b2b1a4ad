// Tests that create fails cleanly with 503 where sandboxes cannot start (this PVM host), leaving nothing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
  // A complete-looking template, so the only thing missing is what the host itself lacks.
  const dir = join(d.dataDir, "templates", "tplreal");
  mkdirSync(dir, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(dir, f), "");
  const now = Date.now();
  d.state.templates.insert({
    id: "tplreal", aliases: '["base"]', dir, kernel: join(dir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 256,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
  });
});
afterAll(() => d.stop());

test("create answers 503 in E2B shape naming the problem and the fix; nothing is left behind", async () => {
  for (const path of ["/v2/sandboxes", "/sandboxes"]) {
    const res = await d.api(path, { method: "POST", body: JSON.stringify({ templateID: "base", timeout: 60 }), headers: { "content-type": "application/json" } });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(503);
    expect(body.message).toStartWith("cannot start a sandbox: ");
    // On a PVM host the message names PVM and the fix.
    if (existsSync("/sys/module/kvm_pvm")) expect(body.message).toContain("--pvm-kernel");
  }
  expect(d.state.sandboxes.count()).toBe(0);
  const sb = join(d.dataDir, "sandboxes");
  expect(existsSync(sb) ? readdirSync(sb) : []).toEqual([]);
  const vms = join(d.config.runRoot, "vms");
  expect(existsSync(vms) ? readdirSync(vms) : []).toEqual([]);
  expect((await fetch(d.url + "/health")).status).toBe(200);
});

test("a full host answers 429 with Retry-After before trying anything", async () => {
  const small = await startTestDaemon({ cpuBudget: 1, retryAfterSec: 7 });
  try {
    const now = Date.now();
    small.state.templates.insert({
      id: "tplbig", aliases: '["big"]', dir: "/nonexistent", kernel: "/nonexistent", initrd: null, cpuCount: 2, memoryMb: 256,
      diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
    });
    const res = await small.api("/v2/sandboxes", { method: "POST", body: JSON.stringify({ templateID: "big" }) });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(429);
    expect(body.message).toContain("host is full");
    expect(small.state.sandboxes.count()).toBe(0);
  } finally {
    await small.stop();
  }
});

test("a boot that fails in the real vmm (not a kernel) is undone: 503, no row, no dirs, no process", async () => {
  const img = join(d.dataDir, "junk");
  mkdirSync(img, { recursive: true });
  writeFileSync(join(img, "vmlinuz"), "not a kernel\n");
  // With a 'PVM kernel' configured, the host check passes on PVM hosts and the vmm itself is tried.
  const boot = await startTestDaemon({ pvmKernel: join(img, "vmlinuz") });
  try {
    const dir = join(boot.dataDir, "templates", "tpljunk");
    mkdirSync(dir, { recursive: true });
    for (const f of ["rootfs.ext4", "layer.ext4"]) writeFileSync(join(dir, f), Buffer.alloc(65536));
    const now = Date.now();
    boot.state.templates.insert({
      id: "tpljunk", aliases: '["base"]', dir, kernel: join(img, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 128,
      diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
    });
    const res = await boot.api("/v2/sandboxes", { method: "POST", body: JSON.stringify({ templateID: "base" }) });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(503);
    expect(body.message).toStartWith("cannot start a sandbox: ");
    expect(boot.state.sandboxes.count()).toBe(0);
    expect(boot.state.sqlite.query("SELECT COUNT(*) AS n FROM events").get()).toEqual({ n: 0 });
    const sb = join(boot.dataDir, "sandboxes");
    expect(existsSync(sb) ? readdirSync(sb) : []).toEqual([]);
    const vms = join(boot.config.runRoot, "vms");
    expect(existsSync(vms) ? readdirSync(vms) : []).toEqual([]);
    const procs = Bun.spawnSync(["pgrep", "-f", boot.config.runRoot]).stdout.toString().trim();
    expect(procs).toBe("");
  } finally {
    await boot.stop();
  }
});
