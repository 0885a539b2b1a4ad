// The SDK journey against real microVMs, through `onebox serve` as a subprocess: create, list with
// metadata + paging, getInfo, setTimeout, isRunning, commands, connect, kill, timeout expiry, and a
// daemon restart with live sandboxes. Runs only inside the test host (scripts/test-e2e.sh).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { Sandbox, SandboxNotFoundError } from "e2b";
import { pidAlive } from "../../src/vmm/index.ts";
import { eventually } from "./lib/eventually.ts";
import { apiImageDir, BOOT_MS, onebox, run, ServeDaemon } from "./lib/serve-daemon.ts";

const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const d = new ServeDaemon(`/tmp/obx-api-${process.pid}`);
const { dataDir, runRoot, port } = d;
const opts = () => d.opts();
const image = apiImageDir("api-journey");

describe.skipIf(!IN_TESTHOST || !image)("SDK journey against real microVMs", () => {
  beforeAll(async () => {
    d.addTemplate("base", image!);
    await d.start();
  }, 1_200_000);

  afterAll(() => d.cleanup({ journey: "1" }));

  let a: Sandbox;
  let b: Sandbox;
  let c: Sandbox;
  let e: Sandbox;

  test("create four sandboxes concurrently; all report running", async () => {
    const make = (name: string) => Sandbox.create("base", { ...opts(), metadata: { journey: "1", name }, timeoutMs: 600_000 });
    [a, b, c, e] = await Promise.all([make("a"), make("b"), make("c"), make("e")]);
    expect(a.sandboxId).toMatch(/^[a-z0-9]{20}$/);
    expect(new Set([a, b, c, e].map((x) => x.sandboxId)).size).toBe(4);
    for (const x of [a, b, c, e]) expect(await x.isRunning()).toBe(true);
  }, 2 * BOOT_MS);

  function lifecycleOf(id: string): string {
    return run([...onebox(), "sandbox", "logs", id, "--data-dir", dataDir])
      .split("\n")
      .filter((l) => l.includes(" lifecycle "))
      .join("\n");
  }

  test("creates restore the template snapshot; each clone has its own identity, entropy and clock", async () => {
    const probe = `printf '%s\\n' "$(cat /run/onebox/sandbox-id)" "$(hostname)" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')" "$(date +%s)"`;
    const seen = await Promise.all(
      [a, b].map(async (x) => {
        expect(lifecycleOf(x.sandboxId)).toContain("lifecycle restore");
        const [id, host, rnd, clock] = (await x.commands.run(probe)).stdout.trim().split("\n");
        expect(id).toBe(x.sandboxId);
        expect(host).toBe(x.sandboxId);
        expect(Math.abs(Number(clock) - Date.now() / 1000)).toBeLessThan(10);
        return rnd!;
      }),
    );
    expect(seen[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(seen[0]).not.toBe(seen[1]);
  }, 60_000);

  test("list with metadata filter and paging (limit 1)", async () => {
    const ids: string[] = [];
    const pager = Sandbox.list({ ...opts(), limit: 1, query: { metadata: { journey: "1" } } });
    while (pager.hasNext) ids.push(...(await pager.nextItems()).map((s) => s.sandboxId));
    expect(ids.sort()).toEqual([a, b, c, e].map((x) => x.sandboxId).sort());
    const onlyB = await Sandbox.list({ ...opts(), query: { metadata: { name: "b" } } }).nextItems();
    expect(onlyB.map((s) => s.sandboxId)).toEqual([b.sandboxId]);
  });

  test("getInfo and setTimeout", async () => {
    const info = await Sandbox.getInfo(a.sandboxId, opts());
    expect(info.state).toBe("running");
    expect(info.metadata).toEqual({ journey: "1", name: "a" });
    await a.setTimeout(120_000);
    const after = await Sandbox.getInfo(a.sandboxId, opts());
    expect(Math.abs(after.endAt.getTime() - (Date.now() + 120_000))).toBeLessThan(5_000);
  });

  test("the data plane reaches the agent: a command runs as user", async () => {
    const r = await a.commands.run("echo hello; whoami");
    expect(r.stdout).toBe("hello\nuser\n");
  }, 60_000);

  test("connect returns the same sandbox and extends only", async () => {
    const before = (await Sandbox.getInfo(a.sandboxId, opts())).endAt.getTime();
    const c = await Sandbox.connect(a.sandboxId, { ...opts(), timeoutMs: 10_000 });
    expect(c.sandboxId).toBe(a.sandboxId);
    expect(await c.isRunning()).toBe(true);
    expect((await Sandbox.getInfo(a.sandboxId, opts())).endAt.getTime()).toBeGreaterThanOrEqual(before);
  });

  test("files through the data plane, and signed URLs routed by their signature alone", async () => {
    await a.files.write("/home/user/x.txt", "data");
    expect(await a.files.read("/home/user/x.txt")).toBe("data");
    const down = await a.downloadUrl("/home/user/x.txt");
    expect(down).toContain("signature=");
    const res = await fetch(down);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("data");
    const up = await a.uploadUrl("/home/user/y.txt");
    const form = new FormData();
    form.append("file", new Blob(["uploaded"]), "y.txt");
    expect((await fetch(up, { method: "POST", body: form })).status).toBe(200);
    expect(await a.files.read("/home/user/y.txt")).toBe("uploaded");
    // A signature no sandbox issued: 401 from the proxy.
    const forged = down.replace(/signature=[^&]+/, "signature=v1_forged");
    expect((await fetch(forged)).status).toBe(401);
  }, 60_000);

  test("metrics: a current sample from the guest", async () => {
    const m = await a.getMetrics();
    expect(m.length).toBeGreaterThan(0);
    expect(m[0]!.cpuCount).toBeGreaterThan(0);
    expect(m[0]!.memTotal).toBeGreaterThan(0);
  });

  /** The pid the sandbox's vmm recorded, if that process is alive. */
  function livePid(id: string): number | null {
    try {
      const { pid } = JSON.parse(readFileSync(join(runRoot, "vms", id, "vmm.json"), "utf8")) as { pid: number };
      // An adopted vmm (after the daemon restart) may linger as a zombie until PID 1 reaps it: ended.
      return pidAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  test("pause to disk and resume, twice: the VM process is gone while paused; files and processes survive", async () => {
    await a.files.write("/home/user/kept.txt", "before pause");
    await a.commands.run("nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 & echo $! > /home/user/loop.pid", { background: false });
    const loopPid = (await a.files.read("/home/user/loop.pid")).trim();
    // A background command of the SDK's, paused in its sleep, finishes after the resume (E2B's behaviour).
    await a.commands.run("sleep 2 && echo done > /home/user/bg-done", { background: true });
    for (let round = 0; round < 2; round++) {
      expect(await a.pause()).toBe(true);
      expect(await a.isRunning()).toBe(false);
      expect((await Sandbox.getInfo(a.sandboxId, opts())).state).toBe("paused");
      expect(livePid(a.sandboxId)).toBeNull();
      expect(await Sandbox.pause(a.sandboxId, opts())).toBe(false);
      const c = await Sandbox.connect(a.sandboxId, opts());
      expect(await c.isRunning()).toBe(true);
      expect((await Sandbox.getInfo(a.sandboxId, opts())).state).toBe("running");
      expect(await c.files.read("/home/user/kept.txt")).toBe("before pause");
      expect((await c.commands.run(`kill -0 ${loopPid} && echo alive`)).stdout).toBe("alive\n");
      const clock = Number((await c.commands.run("date +%s")).stdout.trim());
      expect(Math.abs(clock - Date.now() / 1000)).toBeLessThan(10);
      if (round === 0) {
        const done = async () => (await c.files.exists("/home/user/bg-done")) && (await c.files.read("/home/user/bg-done")) === "done\n";
        expect(await eventually(done, 15_000)).toBe(true);
      }
    }
    // A clone of the template snapshot is saved as a diff over it (docs/snapshot.md "Pause to disk").
    expect(lifecycleOf(a.sandboxId).match(/saved: diff over the template snapshot/g)?.length).toBe(2);
    // A connect while the pause is in flight waits for it and resumes, as E2B's (was: 409 "is pausing").
    const pausing = a.pause();
    await Bun.sleep(100);
    const during = await Sandbox.connect(a.sandboxId, opts());
    expect(await pausing).toBe(true);
    expect((await Sandbox.getInfo(a.sandboxId, opts())).state).toBe("running");
    expect(await during.files.read("/home/user/kept.txt")).toBe("before pause");
  }, 240_000);

  test("pause({keepMemory: false}) keeps only the files: connect boots them afresh (new boot id, no old processes)", async () => {
    const f = await Sandbox.create("base", opts());
    try {
      await f.files.write("/home/user/fs-only.txt", "kept on disk");
      const bootId = (await f.commands.run("cat /proc/sys/kernel/random/boot_id")).stdout.trim();
      await f.commands.run("nohup sleep 600 >/dev/null 2>&1 &");
      expect(await f.pause({ keepMemory: false })).toBe(true);
      expect(lifecycleOf(f.sandboxId)).toContain("saved: filesystem only");
      expect(livePid(f.sandboxId)).toBeNull();
      const c = await Sandbox.connect(f.sandboxId, opts());
      expect(await c.files.read("/home/user/fs-only.txt")).toBe("kept on disk");
      expect((await c.commands.run("cat /proc/sys/kernel/random/boot_id")).stdout.trim()).not.toBe(bootId);
      expect((await c.commands.run("pgrep -x sleep || echo none")).stdout.trim()).toBe("none");
      expect(lifecycleOf(f.sandboxId)).toContain("rebooted");
    } finally {
      await f.kill();
    }
  }, 300_000);

  test("a command with a newline in it runs as a two-line script and prints both lines", async () => {
    const r = await a.commands.run('echo "Hello,\nWorld!"');
    expect(r.stdout).toBe("Hello,\nWorld!\n");
    expect((await a.commands.run("echo one\necho two")).stdout).toBe("one\ntwo\n");
  }, 60_000);

  /** A process.Process/Start stream (`sleep 600`) over a raw TCP connection to the data plane. */
  function rawStart(id: string, token: string): { started: Promise<void>; ended: Promise<string> } {
    const json = JSON.stringify({ process: { cmd: "/bin/bash", args: ["-l", "-c", "sleep 600"] } });
    const body = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), Buffer.from(json)]);
    body.writeUInt32BE(json.length, 1);
    const head =
      `POST /process.Process/Start HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nE2b-Sandbox-Id: ${id}\r\nE2b-Sandbox-Port: 49983\r\n` +
      `X-Access-Token: ${token}\r\nAuthorization: Basic ${btoa("user:")}\r\nContent-Type: application/connect+json\r\n` +
      `Connect-Protocol-Version: 1\r\nContent-Length: ${body.length}\r\n\r\n`;
    let got = "";
    let onStart!: () => void;
    const started = new Promise<void>((r) => (onStart = r));
    const sock = connect(port, "127.0.0.1", () => sock.write(Buffer.concat([Buffer.from(head), body])));
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes('"start"')) onStart();
    });
    const ended = new Promise<string>((r) => {
      sock.on("end", () => r("FIN"));
      sock.on("error", (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
    });
    return { started, ended };
  }

  function endOf(id: string): { endReason: string | null; endDetail: string | null } | undefined {
    const rows = JSON.parse(run([...onebox(), "sandbox", "ls", "--all", "--json", "--data-dir", dataDir])) as {
      id: string; endReason: string | null; endDetail: string | null;
    }[];
    return rows.find((r) => r.id === id);
  }

  async function waitEnded(x: Sandbox, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end && !endOf(x.sandboxId)?.endReason) await Bun.sleep(500);
  }

  test("a guest kernel panic ends the sandbox with reason panic", async () => {
    await c.commands.run("echo c > /proc/sysrq-trigger", { user: "root", background: true }).catch(() => undefined);
    await waitEnded(c);
    expect(endOf(c.sandboxId)?.endReason).toBe("panic");
    expect(await c.isRunning()).toBe(false);
    await expect(Sandbox.getInfo(c.sandboxId, opts())).rejects.toBeInstanceOf(SandboxNotFoundError);
  }, 90_000);

  test("a VM process killed from outside ends the sandbox with reason vmm-crash", async () => {
    const { pid } = JSON.parse(readFileSync(join(runRoot, "vms", e.sandboxId, "vmm.json"), "utf8")) as { pid: number };
    process.kill(pid, "SIGKILL");
    await waitEnded(e);
    const end = endOf(e.sandboxId);
    expect(["vmm-crash", "oom"]).toContain(end?.endReason ?? "");
    expect(end?.endDetail ?? "").toContain("SIGKILL");
    expect(await e.isRunning()).toBe(false);
  }, 90_000);

  test("kill: true, then not running, not found, and a second kill is false", async () => {
    // An open command stream is cut when the sandbox is killed (spec §3.1): wait() fails, never hangs.
    const h = await b.commands.run("sleep 600", { background: true });
    // The same kind of stream on a raw connection: envd's end with the connection closed in the body (FIN), not a reset.
    const token = (b as unknown as { envdAccessToken?: string }).envdAccessToken ?? "";
    const raw = rawStart(b.sandboxId, token);
    await raw.started;
    expect(await Sandbox.kill(b.sandboxId, opts())).toBe(true);
    const outcome = await Promise.race([h.wait().then(() => "resolved", (e: Error) => `${e.name}: ${e.message}`), Bun.sleep(20_000).then(() => "hung")]);
    expect(outcome).toStartWith("TimeoutError");
    expect(outcome).toContain("The sandbox was killed or reached its end of life");
    expect(await Promise.race([raw.ended, Bun.sleep(15_000).then(() => "open")])).toBe("FIN");
    expect(await b.isRunning()).toBe(false);
    await expect(Sandbox.getInfo(b.sandboxId, opts())).rejects.toBeInstanceOf(SandboxNotFoundError);
    expect(await Sandbox.kill(b.sandboxId, opts())).toBe(false);
    const rows = JSON.parse(run([...onebox(), "sandbox", "ls", "--all", "--json", "--data-dir", dataDir])) as {
      id: string; endReason: string | null;
    }[];
    expect(rows.find((r) => r.id === b.sandboxId)?.endReason).toBe("killed");
  });

  test("daemon restart: live sandboxes are re-adopted and keep working", async () => {
    expect(await d.stop()).toBe(true);
    await d.start();
    expect(await a.isRunning()).toBe(true);
    const info = await Sandbox.getInfo(a.sandboxId, opts());
    expect(info.state).toBe("running");
    const r = await a.commands.run("echo again");
    expect(r.stdout).toBe("again\n");
  }, 120_000);

  test("timeout expiry ends the sandbox soon after its deadline, reason timeout", async () => {
    await a.setTimeout(2_000);
    await Bun.sleep(4_000);
    expect(await a.isRunning()).toBe(false);
    // Stopping the VM takes a moment (emulated, on a shared host): the row ends once it is gone.
    await waitEnded(a, 30_000);
    await expect(Sandbox.getInfo(a.sandboxId, opts())).rejects.toBeInstanceOf(SandboxNotFoundError);
    const rows = JSON.parse(run([...onebox(), "sandbox", "ls", "--all", "--json", "--data-dir", dataDir])) as {
      id: string; endReason: string | null; endAt: number; endedAt: number | null;
    }[];
    const row = rows.find((r) => r.id === a.sandboxId)!;
    expect(row.endReason).toBe("timeout");
    expect(row.endedAt! - row.endAt).toBeLessThan(15_000);
    // Nothing of the ended sandboxes is left in the run dir.
    expect(existsSync(join(runRoot, "vms", a.sandboxId))).toBe(false);
  }, 60_000);

  test("autoPause at the deadline, then autoResume by the next data-plane request", async () => {
    const f = await Sandbox.create("base", {
      ...opts(),
      metadata: { journey: "1", name: "f" },
      timeoutMs: 5_000,
      lifecycle: { onTimeout: "pause", autoResume: true },
    });
    let state = "";
    for (let i = 0; i < 60 && state !== "paused"; i++) {
      state = (await Sandbox.getInfo(f.sandboxId, opts())).state;
      if (state !== "paused") await Bun.sleep(500);
    }
    expect(state).toBe("paused");
    expect(endOf(f.sandboxId)?.endReason ?? null).toBeNull();
    // Traffic resumes it (spec §1.3 autoResume); the command then runs.
    expect((await f.commands.run("echo auto")).stdout).toBe("auto\n");
    expect((await Sandbox.getInfo(f.sandboxId, opts())).state).toBe("running");
    expect(await Sandbox.kill(f.sandboxId, opts())).toBe(true);
  }, BOOT_MS + 60_000);
});
