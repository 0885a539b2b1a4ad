// The guest agent's SDK surface inside real microVMs (issue 5): the official npm `e2b` SDK against an
// in-process daemon, through its data plane, on two sandboxes: A takes the functional tests
// (commands, pty, files, watchDir, 100 MiB round trip, 50 concurrent commands), B takes a memory hog
// and a fork bomb while A and the daemon must stay healthy. Runs only inside the test host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CommandExitError, FilesystemEventType, InvalidArgumentError, Sandbox, TimeoutError, type FilesystemEvent } from "e2b";
import { startTestDaemon, type TestDaemon } from "../../src/api/test-support.ts";
import { registerTemplate } from "../../src/templates/register.ts";
import { eventually } from "./lib/eventually.ts";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
// Creates are emulated (TCG) in the test host: minutes, not milliseconds.
const BOOT_MS = 300_000;
const root = `/tmp/obx-agent-${process.pid}`;
const enc = new TextEncoder();

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
}

/** The same image as api-journey: $ONEBOX_E2E_TEMPLATE_DIR, or .cache/api-e2e-template built on the
 *  outer host with `scripts/mkrootfs.sh --out .cache/api-e2e-template --variant minimal`. */
function imageDir(): string | null {
  const dir = process.env.ONEBOX_E2E_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-template");
  return existsSync(join(dir, "rootfs.ext4")) ? dir : null;
}
if (IN_TESTHOST && !imageDir()) {
  console.warn("agent-sdk: skipped: no template image; build .cache/api-e2e-template on the outer host (see imageDir())");
}


let d: TestDaemon;
let a: Sandbox;
let b: Sandbox;
const opts = () => ({ apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: BOOT_MS });

describe.skipIf(!IN_TESTHOST || !imageDir())("the guest agent through the e2b SDK in real microVMs", () => {
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    const initrd = join(root, "initramfs.cpio.gz");
    run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
    d = await startTestDaemon({ bootTimeoutMs: BOOT_MS });
    await registerTemplate(d.state, d.dataDir, {
      name: "base",
      from: imageDir()!,
      kernel: process.env.ONEBOX_TEST_KERNEL ?? "",
      initrd,
      cpuCount: 1,
      memoryMb: 512,
      diskSizeMb: 2048,
    });
    const t0 = Date.now();
    [a, b] = await Promise.all(["a", "b"].map((name) => Sandbox.create("base", { ...opts(), metadata: { name }, timeoutMs: 1_800_000 })));
    console.log(`agent-sdk: two sandboxes created in ${Date.now() - t0} ms`);
  }, 2 * BOOT_MS);

  afterAll(async () => {
    for (const row of d?.state.sandboxes.live() ?? []) await d.manager.kill(row.id).catch(() => undefined);
    await d?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("commands.run: stdout, stderr, exit codes and CommandExitError", async () => {
    const r = await a.commands.run("echo out; echo err >&2");
    expect([r.exitCode, r.stdout, r.stderr]).toEqual([0, "out\n", "err\n"]);
    const e = await a.commands.run("echo partial; exit 3").catch((x) => x);
    expect(e).toBeInstanceOf(CommandExitError);
    expect([e.exitCode, e.stdout, e.error]).toEqual([3, "partial\n", "exit status 3"]);
  }, 60_000);

  test("envs, cwd and user: user by default, root on request, a missing cwd is invalid", async () => {
    const u = await a.commands.run('id -un; echo "$HOME $FOO"; pwd', { envs: { FOO: "bar" } });
    expect(u.stdout).toBe("user\n/home/user bar\n/home/user\n");
    expect((await a.commands.run('echo "[$FOO]"')).stdout).toBe("[]\n");
    const r = await a.commands.run("id -u; echo $HOME; pwd", { user: "root", cwd: "/tmp" });
    expect(r.stdout).toBe("0\n/root\n/tmp\n");
    expect(await a.commands.run("pwd", { cwd: "/no/such/dir" }).catch((x) => x)).toBeInstanceOf(InvalidArgumentError);
    // Root's commands are user commands too: both run in the limited cgroup (docs/guest.md).
    expect((await a.commands.run("cat /proc/self/cgroup")).stdout).toBe("0::/user\n");
    expect((await a.commands.run("cat /proc/self/cgroup", { user: "root" })).stdout).toBe("0::/user\n");
    // Moving each command there is cheap only with favordynmods (guest/init/mounts.c); the test kernel has it.
    expect((await a.commands.run("grep '^cgroup2 ' /proc/mounts")).stdout).toContain("favordynmods");
  }, 60_000);

  test("stdin, background + list + connect + kill, and a timeout", async () => {
    const cat = await a.commands.run("cat", { background: true, stdin: true });
    await a.commands.sendStdin(cat.pid, "hello stdin\n");
    await a.commands.closeStdin(cat.pid);
    expect((await cat.wait()).stdout).toBe("hello stdin\n");

    const h = await a.commands.run("echo started; sleep 600", { background: true });
    const listed = (await a.commands.list()).find((p) => p.pid === h.pid);
    expect(listed?.args).toEqual(["-l", "-c", "echo started; sleep 600"]);
    const seen: string[] = [];
    const c = await a.commands.connect(h.pid, { onStdout: (s) => void seen.push(s) });
    expect(await a.commands.kill(h.pid)).toBe(true);
    const killed = await c.wait().catch((x) => x);
    expect(killed).toBeInstanceOf(CommandExitError);
    expect(killed.error).toBe("signal: killed");
    expect(await a.commands.kill(h.pid)).toBe(false);

    const t = await a.commands.run("sleep 600; echo never", { timeoutMs: 2_000 }).catch((x) => x);
    expect(t).toBeInstanceOf(TimeoutError);
    // The agent ends the process at the same deadline (Connect-Timeout-Ms is its lifetime).
    expect(await eventually(async () => !(await a.commands.list()).some((p) => p.args.join(" ").includes("echo never")), 10_000)).toBe(true);
  }, 90_000);

  test("pty: create, sendInput, and resize as the shell sees it (stty size)", async () => {
    let out = "";
    const td = new TextDecoder();
    const h = await a.pty.create({ cols: 80, rows: 24, onData: (x) => void (out += td.decode(x)), timeoutMs: 60_000 });
    const until = async (re: RegExp) => expect(await eventually(() => re.test(out), 20_000) ? out : `missing ${re} in: ${out}`).toMatch(re);
    await a.pty.sendInput(h.pid, enc.encode("stty size; id -un\n"));
    await until(/24 80\r?\n/);
    await until(/user\r?\n/);
    await a.pty.resize(h.pid, { cols: 132, rows: 43 });
    await a.pty.sendInput(h.pid, enc.encode("stty size; exit 7\n"));
    await until(/43 132\r?\n/);
    expect((await h.wait().catch((x) => x)).exitCode).toBe(7);
  }, 90_000);

  test("pty reconnect: disconnect, pty.connect to the same PTY, output after it arrives on the new stream", async () => {
    // The SDK's own test, with its fixed 300 ms wait replaced by waiting for the output (emulated guests are slower).
    let first = "";
    let again = "";
    const td = new TextDecoder();
    const h = await a.pty.create({ cols: 80, rows: 24, onData: (x) => void (first += td.decode(x)), envs: { FOO: "bar" }, timeoutMs: 60_000 });
    await a.pty.sendInput(h.pid, enc.encode("echo [$FOO]\n"));
    expect(await eventually(() => first.includes("[bar]"), 20_000) ? first : `no [bar] in: ${first}`).toContain("[bar]");
    await h.disconnect();
    const h2 = await a.pty.connect(h.pid, { onData: (x) => void (again += td.decode(x)), timeoutMs: 60_000 });
    await a.pty.sendInput(h.pid, enc.encode("echo [$FOO]\nexit\n"));
    expect((await h2.wait()).exitCode).toBe(0);
    expect(again).toContain("[bar]");
  }, 90_000);

  test("files: write/read text and bytes, list with depth, exists, rename, remove, makeDir", async () => {
    const dir = "/home/user/ft";
    expect(await a.files.makeDir(`${dir}/x/y`)).toBe(true);
    expect(await a.files.makeDir(`${dir}/x/y`)).toBe(false);
    await a.files.write(`${dir}/t.txt`, "hello text");
    expect(await a.files.read(`${dir}/t.txt`)).toBe("hello text");
    const bytes = new Uint8Array(512).map((_, i) => (i * 7) & 0xff);
    await a.files.write(`${dir}/x/b.bin`, bytes.buffer);
    expect(await a.files.read(`${dir}/x/b.bin`, { format: "bytes" })).toEqual(bytes);
    expect((await a.files.list(dir)).map((e) => e.name).sort()).toEqual(["t.txt", "x"]);
    const deep = (await a.files.list(dir, { depth: 3 })).map((e) => e.path).sort();
    expect(deep).toEqual([`${dir}/t.txt`, `${dir}/x`, `${dir}/x/b.bin`, `${dir}/x/y`]);
    expect(await a.files.exists(`${dir}/t.txt`)).toBe(true);
    expect(await a.files.exists(`${dir}/nope`)).toBe(false);
    expect(await a.files.rename(`${dir}/t.txt`, `${dir}/x/y/moved.txt`)).toMatchObject({ name: "moved.txt", type: "file" });
    expect(await a.files.exists(`${dir}/t.txt`)).toBe(false);
    expect(await a.files.read(`${dir}/x/y/moved.txt`)).toBe("hello text");
    // The guest's own view agrees: owner user, content on the overlay root.
    expect((await a.commands.run(`stat -c %U ${dir}/x/y/moved.txt; cat ${dir}/x/y/moved.txt`)).stdout).toBe("user\nhello text");
    await a.files.remove(dir);
    expect(await a.files.exists(dir)).toBe(false);
  }, 90_000);

  test("watchDir reports create, write, rename and remove", async () => {
    const dir = "/home/user/watched";
    await a.files.makeDir(dir);
    const events: FilesystemEvent[] = [];
    const w = await a.files.watchDir(dir, (e) => void events.push(e), { timeoutMs: 120_000 });
    try {
      await a.files.write(`${dir}/one.txt`, "1");
      await a.commands.run(`echo more >> ${dir}/one.txt; mv ${dir}/one.txt ${dir}/two.txt; rm ${dir}/two.txt`);
      const has = (name: string, type: FilesystemEventType) => events.some((e) => e.name === name && e.type === type);
      const all = () => has("one.txt", FilesystemEventType.CREATE) && has("one.txt", FilesystemEventType.WRITE) &&
        has("one.txt", FilesystemEventType.RENAME) && has("two.txt", FilesystemEventType.CREATE) && has("two.txt", FilesystemEventType.REMOVE);
      expect(await eventually(all, 20_000) ? "all" : JSON.stringify(events)).toBe("all");
    } finally {
      await w.stop();
    }
  }, 90_000);

  test("upload and download of a 100 MiB random binary, byte-identical (sha256)", async () => {
    const data = randomBytes(100 * 1024 * 1024);
    const sha = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    const t0 = Date.now();
    await a.files.write("/home/user/big.bin", new Blob([data]));
    const t1 = Date.now();
    expect((await a.commands.run("sha256sum /home/user/big.bin", { timeoutMs: 120_000 })).stdout).toBe(`${sha}  /home/user/big.bin\n`);
    const t2 = Date.now();
    const back = await a.files.read("/home/user/big.bin", { format: "bytes", requestTimeoutMs: 300_000 });
    console.log(`agent-sdk: 100 MiB upload ${t1 - t0} ms, download ${Date.now() - t2} ms (emulated)`);
    expect(back.length).toBe(data.length);
    expect(new Bun.CryptoHasher("sha256").update(back).digest("hex")).toBe(sha);
    await a.files.remove("/home/user/big.bin");
  }, 600_000);

  test("50 concurrent commands on one sandbox each get their own output", async () => {
    // One emulated vCPU runs all 50 shells: allow minutes, not the SDK's default 60 s.
    const slow = { timeoutMs: 300_000, requestTimeoutMs: 300_000 };
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => a.commands.run(`echo ${i}; echo e${i} >&2; exit $((${i} % 3))`, slow).catch((x) => x)));
    console.log(`agent-sdk: 50 concurrent commands in ${Date.now() - t0} ms (emulated)`);
    rs.forEach((r, i) => {
      if (i % 3) expect(r instanceof CommandExitError ? "CommandExitError" : String(r)).toBe("CommandExitError");
      expect([r.stdout, r.stderr, r.exitCode]).toEqual([`${i}\n`, `e${i}\n`, i % 3]);
    });
    expect(await a.commands.list()).toEqual([]);
  }, 400_000);

  /** A and the daemon stay healthy while B is abused. */
  async function bystandersHealthy(): Promise<void> {
    expect((await fetch(`${d.url}/health`)).status).toBe(200);
    expect((await a.commands.run("echo a-ok")).stdout).toBe("a-ok\n");
  }

  /** B answers again within `ms`, or it died and its end reason is recorded. */
  async function bSurvived(ms: number): Promise<void> {
    const alive = await eventually(async () => {
      const r = await b.commands.run("echo b-ok", { requestTimeoutMs: 10_000 }).catch(() => null);
      return r?.stdout === "b-ok\n";
    }, ms);
    const row = d.state.sandboxes.get(b.sandboxId);
    expect({ alive, endReason: row?.endReason ?? null }).toEqual({ alive: true, endReason: null });
  }

  test("a memory hog in B is OOM-killed inside its cgroup with a clear error; B, A and the daemon survive", async () => {
    const limit = Number((await b.commands.run("cat /sys/fs/cgroup/user/memory.max")).stdout);
    const total = Number(/MemTotal:\s+(\d+)/.exec((await b.commands.run("cat /proc/meminfo")).stdout)![1]) * 1024;
    expect(limit).toBeGreaterThan(total / 2);
    expect(limit).toBeLessThan(total);
    // tail buffers /dev/zero looking for a newline: it grows until something stops it.
    const e = await b.commands.run("tail /dev/zero", { timeoutMs: 240_000 }).catch((x) => x);
    expect(e).toBeInstanceOf(CommandExitError);
    expect([-1, 137]).toContain(e.exitCode);
    expect(e.error).toContain("out of memory");
    expect((await b.commands.run("grep oom_kill /sys/fs/cgroup/user/memory.events")).stdout).toMatch(/oom_kill [1-9]/);
    await bSurvived(30_000);
    await bystandersHealthy();
  }, 300_000);

  test("a fork bomb in B is contained by the cgroup; killing it frees B; A and the daemon stay healthy", async () => {
    // Read through the agent's file API: while the bomb fills pids.max, a new command could not fork.
    const cg = async (f: string) => b.files.read(`/sys/fs/cgroup/user/${f}`);
    const oomKills = async () => Number(/oom_kill (\d+)/.exec(await cg("memory.events"))?.[1] ?? 0);
    expect(Number(await cg("pids.max"))).toBeGreaterThan(100);
    const oomBefore = await oomKills();
    // Its members share the command's process group (no job control): killing the command reaches all.
    const bomb = await b.commands.run("bomb() { bomb | bomb & }; bomb; exec sleep 600", { background: true, timeoutMs: 600_000 });
    const t0 = Date.now();
    let peak = 0;
    const contained = await eventually(async () => {
      peak = Math.max(peak, Number(await cg("pids.current")));
      return /max [1-9]/.test(await cg("pids.events")) || (await oomKills()) > oomBefore;
    }, 300_000);
    console.log(`agent-sdk: fork bomb reached ${peak} processes, contained=${contained} after ${Date.now() - t0} ms; ` +
      `pids.events ${JSON.stringify(await cg("pids.events"))}, oom_kill +${(await oomKills()) - oomBefore}`);
    expect(contained).toBe(true);
    await bystandersHealthy();
    expect(await b.commands.kill(bomb.pid)).toBe(true);
    expect(await eventually(async () => Number(await cg("pids.current")) === 0, 60_000) ? 0 : await cg("pids.current")).toBe(0);
    await bSurvived(60_000);
    await bystandersHealthy();
  }, 600_000);
});
