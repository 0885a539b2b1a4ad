// Drives the agent's process.Process service with the official e2b SDK (e2b-protocol.md §3.2).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { CommandExitError, Sandbox, TimeoutError } from "e2b";
import { ensureGroupedTestUser, ensureTestUser, startTestAgent, type RunningAgent } from "./test-harness.ts";

let agent: RunningAgent;
let sbx: Sandbox;

beforeAll(async () => {
  ensureTestUser();
  agent = await startTestAgent();
  const r = await agent.init({ envVars: { GLOBAL_ONE: "g1", SHARED: "global" }, defaultUser: "user", timestamp: new Date().toISOString() });
  expect(r.status).toBe(204);
  expect(r.headers.get("x-envd-version")).toMatch(/^\d+\.\d+\.\d+$/);
  sbx = agent.sandbox();
});
afterAll(async () => agent.stop());

test("run: stdout, stderr, exit code 0", async () => {
  const r = await sbx.commands.run("echo out; echo err >&2");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe("out\n");
  expect(r.stderr).toBe("err\n");
});

test("run: non-zero exit raises CommandExitError with output", async () => {
  const e = await sbx.commands.run("echo partial; exit 3").catch((x) => x);
  expect(e).toBeInstanceOf(CommandExitError);
  expect(e.exitCode).toBe(3);
  expect(e.stdout).toBe("partial\n");
  expect(e.error).toBe("exit status 3");
});

test("envs: global from /init, per-command overrides, no leak between commands", async () => {
  const a = await sbx.commands.run('echo "$GLOBAL_ONE $SHARED $ONLY_HERE"', { envs: { SHARED: "cmd", ONLY_HERE: "x" } });
  expect(a.stdout).toBe("g1 cmd x\n");
  const b = await sbx.commands.run('echo "$GLOBAL_ONE $SHARED [$ONLY_HERE]"');
  expect(b.stdout).toBe("g1 global []\n");
});

test("user: default user from /init, root on request, HOME/USER set", async () => {
  const u = await sbx.commands.run('id -un; echo "$HOME $USER $LOGNAME"; pwd');
  expect(u.stdout).toBe("user\n/home/user user user\n/home/user\n");
  const r = await sbx.commands.run("id -u; echo $HOME", { user: "root" });
  expect(r.stdout).toBe("0\n/root\n");
  const bad = await sbx.commands.run("true", { user: "no-such-user-xyz" }).catch((x) => x);
  expect(bad?.constructor?.name).toBe("AuthenticationError");
});

test("cwd: honoured, missing cwd is invalid_argument", async () => {
  const r = await sbx.commands.run("pwd", { cwd: agent.dir });
  expect(r.stdout).toBe(`${agent.dir}\n`);
  const e = await sbx.commands.run("pwd", { cwd: `${agent.dir}/missing` }).catch((x) => x);
  expect(e?.constructor?.name).toBe("InvalidArgumentError");
});

test("stdin: piped input, closeStdin gives EOF", async () => {
  const h = await sbx.commands.run("cat", { background: true, stdin: true });
  await sbx.commands.sendStdin(h.pid, "hello stdin\n");
  await sbx.commands.closeStdin(h.pid);
  const r = await h.wait();
  expect(r.stdout).toBe("hello stdin\n");
  // stdin: false (the SDK default) is /dev/null: cat ends at once
  expect((await sbx.commands.run("cat")).stdout).toBe("");
});

test("background + list + connect + kill", async () => {
  const h = await sbx.commands.run("echo started; sleep 30", { background: true });
  const listed = await sbx.commands.list();
  const mine = listed.find((p) => p.pid === h.pid);
  expect(mine?.cmd).toBe("/bin/bash");
  expect(mine?.args).toEqual(["-l", "-c", "echo started; sleep 30"]);
  const seen: string[] = [];
  const c = await sbx.commands.connect(h.pid, { onStdout: (d) => void seen.push(d) });
  expect(await sbx.commands.kill(h.pid)).toBe(true);
  const e = await c.wait().catch((x) => x);
  expect(e).toBeInstanceOf(CommandExitError);
  expect(e.exitCode).toBe(-1);
  expect(e.error).toBe("signal: killed");
  expect(await sbx.commands.kill(h.pid)).toBe(false); // gone: not_found -> false
  expect(await sbx.commands.kill(999_999)).toBe(false);
});

test("timeout: Connect-Timeout-Ms kills the process", async () => {
  const t0 = Date.now();
  const e = await sbx.commands.run("sleep 20; echo never", { timeoutMs: 700 }).catch((x) => x);
  expect(e).toBeInstanceOf(TimeoutError);
  await Bun.sleep(300);
  const left = (await sbx.commands.list()).filter((p) => p.args.join(" ").includes("sleep 20; echo never"));
  expect(left).toEqual([]);
  expect(Date.now() - t0).toBeLessThan(5000);
});

test("timeout: waiting on a handle that outlives its timeoutMs raises TimeoutError (background Start, and Connect)", async () => {
  const h = await sbx.commands.run("sleep 20; echo never", { background: true, timeoutMs: 700 });
  const t0 = Date.now();
  expect(await h.wait().catch((x) => x)).toBeInstanceOf(TimeoutError);
  expect(Date.now() - t0).toBeLessThan(5000);
  const bg = await sbx.commands.run("sleep 20", { background: true, timeoutMs: 0 });
  const c = await sbx.commands.connect(bg.pid, { timeoutMs: 500 });
  expect(await c.wait().catch((x) => x)).toBeInstanceOf(TimeoutError);
  expect(await sbx.commands.kill(bg.pid)).toBe(true); // Connect's deadline left it running
});

/** The envelopes of a Connect server-stream body: [flags, message]. */
function envelopes(buf: Uint8Array): [number, Record<string, unknown>][] {
  const out: [number, Record<string, unknown>][] = [];
  for (let off = 0; off + 5 <= buf.byteLength; ) {
    const len = new DataView(buf.buffer, buf.byteOffset + off + 1, 4).getUint32(0, false);
    out.push([buf[off]!, JSON.parse(new TextDecoder().decode(buf.subarray(off + 5, off + 5 + len)))]);
    off += 5 + len;
  }
  return out;
}

test("timeout: a stream that outlives Connect-Timeout-Ms ends with deadline_exceeded, as envd's (Start as the Python SDK sends it, Connect, WatchDir)", async () => {
  const call = async (method: string, msg: unknown, timeout: number) => {
    const json = new TextEncoder().encode(JSON.stringify(msg));
    const env = new Uint8Array(5 + json.byteLength);
    new DataView(env.buffer).setUint32(1, json.byteLength, false);
    env.set(json, 5);
    const t0 = Date.now();
    const res = await fetch(`${agent.url}/${method}`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "connect-timeout-ms": String(timeout) },
      body: env,
    });
    expect(res.status).toBe(200);
    const all = envelopes(new Uint8Array(await res.arrayBuffer()));
    return { all, ms: Date.now() - t0 };
  };
  const start = await call("process.Process/Start", { process: { cmd: "/bin/bash", args: ["-l", "-c", "echo hi; sleep 20"] }, tag: "deadline-start" }, 600);
  const last = start.all[start.all.length - 1]!;
  expect(last).toEqual([2, { error: { code: "deadline_exceeded", message: "context deadline exceeded" }, metadata: {} }]);
  expect(start.all.some(([, m]) => (m.event as Record<string, unknown> | undefined)?.end)).toBe(false); // no "exited with -1"
  expect(start.ms).toBeLessThan(3000);
  await Bun.sleep(200);
  expect((await sbx.commands.list()).some((p) => p.tag === "deadline-start")).toBe(false); // and the process was killed, as envd's procCtx does

  const h = await sbx.commands.run("sleep 20", { background: true, timeoutMs: 0 });
  const conn = await call("process.Process/Connect", { process: { pid: h.pid } }, 400);
  expect(conn.all[conn.all.length - 1]![1]).toMatchObject({ error: { code: "deadline_exceeded" } });
  expect((await sbx.commands.list()).some((p) => p.pid === h.pid)).toBe(true); // Connect's deadline leaves the process be
  await sbx.commands.kill(h.pid);

  const w = await call("filesystem.Filesystem/WatchDir", { path: agent.dir }, 400);
  expect(w.all[w.all.length - 1]![1]).toMatchObject({ error: { code: "deadline_exceeded" } });
});

test("client disconnect leaves the process running", async () => {
  const h = await sbx.commands.run("sleep 30", { background: true });
  await h.disconnect();
  await Bun.sleep(100);
  expect((await sbx.commands.list()).some((p) => p.pid === h.pid)).toBe(true);
  await sbx.commands.kill(h.pid);
});

test("pty: create, sendInput, resize, output", async () => {
  let out = "";
  const td = new TextDecoder();
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => void (out += td.decode(d)), timeoutMs: 20_000, user: "root" });
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("stty size; tty\n"));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 100 && !re.test(out); i++) await Bun.sleep(50);
    expect(out).toMatch(re);
  };
  await until(/24 80/);
  await until(/\/dev\/pts\//);
  await sbx.pty.resize(h.pid, { cols: 120, rows: 40 });
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("stty size; exit 5\n"));
  await until(/40 120/);
  const e = await h.wait().catch((x) => x);
  expect(e.exitCode).toBe(5);
});

test("pty: the shell's session owns the pty (job control: no 'no job control' warning, ^C stops the foreground job)", async () => {
  let out = "";
  const td = new TextDecoder();
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => void (out += td.decode(d)), timeoutMs: 20_000, user: "root" });
  const until = async (re: RegExp) => {
    for (let i = 0; i < 100 && !re.test(out); i++) await Bun.sleep(50);
    expect(out).toMatch(re);
  };
  // The session's controlling tty as the kernel sees it (ps shows ? without one), and the shell's own pid.
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('echo "ctty=$(ps -o tty= -p $$) pid=$$"\n'));
  await until(/ctty=pts\/\d+ pid=\d+/);
  expect(Number(/ctty=pts\/\d+ pid=(\d+)/.exec(out)![1])).toBe(h.pid); // the pid the agent reports is the shell's
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("sleep 30\n"));
  await Bun.sleep(300);
  await sbx.pty.sendInput(h.pid, new Uint8Array([3])); // ^C: SIGINT to the foreground process group, the sleep
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("echo after=$?\n"));
  await until(/after=130/);
  expect(out).not.toContain("no job control");
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("exit 0\n"));
  await h.wait();
});

test("pty reconnect as the SDK's own test does it: create with envs, disconnect, pty.connect, both streams see the output", async () => {
  const td = new TextDecoder();
  let first = "";
  let again = "";
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => void (first += td.decode(d)), envs: { FOO: "bar" }, timeoutMs: 20_000 });
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("echo [$FOO]\n"));
  await Bun.sleep(300); // the SDK's test gives the first output 300 ms
  expect(first).toContain("[bar]");
  await h.disconnect();
  const h2 = await sbx.pty.connect(h.pid, { onData: (d) => void (again += td.decode(d)), timeoutMs: 20_000 });
  expect(h2.pid).toBe(h.pid);
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode("echo [$FOO]\nexit\n"));
  expect((await h2.wait()).exitCode).toBe(0);
  expect(again).toContain("[bar]");
});

test("a debug sandbox from Sandbox.create (no API call, envdVersion 99.99.99) works against the agent", async () => {
  const s = await Sandbox.create({ debug: true, sandboxUrl: agent.url });
  expect(s.sandboxId).toBe("debug_sandbox_id");
  expect((await s.commands.run("echo debug; id -un")).stdout).toBe("debug\nuser\n");
  expect(await s.files.exists("/etc/passwd")).toBe(true);
});

test("pty as a non-root user gets the user's identity and groups", async () => {
  let out = "";
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => void (out += new TextDecoder().decode(d)), timeoutMs: 20_000 });
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('echo "[$(id -un)/$(id -gn)/$(id -G | wc -w)]"; exit\n'));
  await h.wait().catch(() => {});
  const groups = Bun.spawnSync(["id", "-G", "user"]).stdout.toString().trim().split(/\s+/).length;
  expect(out).toContain(`[user/${Bun.spawnSync(["id", "-gn", "user"]).stdout.toString().trim()}/${groups}]`);
});

test("a user with no group beyond its own gets no supplementary groups, as envd gives (Credential with NoSetGroups)", async () => {
  const own = Bun.spawnSync(["id", "-g", "user"]).stdout.toString().trim();
  const all = Bun.spawnSync(["id", "-G", "user"]).stdout.toString().trim().split(/\s+/);
  const r = await sbx.commands.run("id -u; id -g; grep '^Groups:' /proc/self/status");
  const [uid, gid, groupsLine] = r.stdout.trim().split("\n");
  expect(uid).toBe(Bun.spawnSync(["id", "-u", "user"]).stdout.toString().trim());
  expect(gid).toBe(own);
  const groups = groupsLine!.replace(/^Groups:/, "").trim();
  // Extra groups (from /etc/group) still come, with the primary one, through onebox-runas; none: an empty list.
  expect(groups === "" ? [] : groups.split(/\s+/).sort()).toEqual(all.some((g) => g !== own) ? [...all].sort() : []);
});

test("a user's supplementary groups from /etc/group are set", async () => {
  const extra = ensureGroupedTestUser();
  const r = await agent.sandbox().commands.run("id -un; id -G", { user: "grpuser" });
  const [name, ids] = r.stdout.trim().split("\n");
  expect(name).toBe("grpuser");
  expect(ids!.split(" ")).toContain(String(extra));
});

test("a background child holding stdout does not hold up the end event", async () => {
  const t0 = Date.now();
  const r = await sbx.commands.run("(sleep 3; echo late) & echo now");
  expect(r.stdout).toBe("now\n");
  expect(Date.now() - t0).toBeLessThan(1500);
});

test("large output arrives complete and in order", async () => {
  const r = await sbx.commands.run("seq 1 300000");
  expect(r.stdout.length).toBe(1_988_895); // = `seq 1 300000 | wc -c`
  expect(r.stdout.endsWith("299999\n300000\n")).toBe(true);
});

test("the agent is shielded from the OOM killer, user processes are not", async () => {
  // Lowering the score needs CAP_SYS_RESOURCE, which the guest's root has (some CI containers do not).
  const capEff = BigInt("0x" + (/CapEff:\s+([0-9a-f]+)/.exec(await Bun.file("/proc/self/status").text())?.[1] ?? "0"));
  const canLower = (capEff >> 24n) & 1n;
  expect((await Bun.file(`/proc/${agent.proc.pid}/oom_score_adj`).text()).trim()).toBe(canLower ? "-1000" : "0");
  expect((await sbx.commands.run("cat /proc/self/oom_score_adj")).stdout).toBe("100\n");
  expect((await sbx.commands.run("cat /proc/self/oom_score_adj", { user: "root" })).stdout).toBe("100\n");
});

test("many concurrent commands each get their own output", async () => {
  const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => sbx.commands.run(`echo ${i}; echo e${i} >&2`)));
  rs.forEach((r, i) => {
    expect(r.stdout).toBe(`${i}\n`);
    expect(r.stderr).toBe(`e${i}\n`);
  });
  expect(await sbx.commands.list()).toEqual([]);
});

test("connect sees only new output; an exited process still gives start + end for a while", async () => {
  const h = await sbx.commands.run("echo before; sleep 0.5; echo after", { background: true });
  await Bun.sleep(200);
  const seen: string[] = [];
  const c = await sbx.commands.connect(h.pid, { onStdout: (d) => void seen.push(d) });
  const r = await c.wait();
  expect(r.stdout).toBe("after\n");
  expect(seen.join("")).toBe("after\n");
  const again = await sbx.commands.connect(h.pid);
  expect((await again.wait()).exitCode).toBe(0);
});
