// Times the guest agent's own cost for one command on THIS host: process.Process/Start of `echo hi` over its real
// Connect RPC (as the SDK's commands.run sends it), phase by phase, next to the same command spawned bare.
//
// usage: bun run bench:agent-spawn [--runs N]   (root: commands run as user `user` through onebox-runas, as in a guest)
// Phases of one Start, from the request's send: headers (the 200 arrived), start (the pid event), data (hi), end
// (the end event), close (the body ended). Bare baselines are spawned by this process with Bun.spawn as the user
// (Bun's uid/gid, or from root through onebox-runas) and awaited.
// Last line on stdout: JSON of p50s in ms and the ratios agent/bash.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureTestUser, startTestAgent } from "../guest/agent/test-harness.ts";
import { note, pct, REPO } from "./bench-lib.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "50" } } });
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 2) throw new Error(`--runs must be an integer >= 2, got '${values.runs}'`);

ensureTestUser();
const agent = await startTestAgent();
const init = await agent.init({ defaultUser: "user", timestamp: new Date().toISOString() });
if (init.status !== 204) throw new Error(`/init answered ${init.status}`);

/** One Connect JSON envelope (flags 0, big-endian length), as the SDK sends a server-stream request. */
function envelope(msg: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + json.length);
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
}

type Phases = { headers: number; start: number; data: number; end: number; close: number };

/** One Start of `bash -l -c 'echo hi'` (what commands.run sends), with the time each event arrived. */
async function start(): Promise<Phases> {
  const t0 = performance.now();
  const res = await fetch(`${agent.url}/process.Process/Start`, {
    method: "POST",
    headers: { authorization: `Basic ${btoa("user:")}`, "content-type": "application/connect+json", "connect-protocol-version": "1" },
    body: envelope({ process: { cmd: "/bin/bash", args: ["-l", "-c", "echo hi"] }, stdin: false }),
  });
  const ph: Phases = { headers: performance.now() - t0, start: 0, data: 0, end: 0, close: 0 };
  let buf = new Uint8Array(0);
  let text = "";
  for await (const chunk of res.body!) {
    const now = performance.now() - t0;
    const b = new Uint8Array(buf.length + chunk.length);
    b.set(buf);
    b.set(chunk, buf.length);
    buf = b;
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset + 1, 4).getUint32(0);
      if (buf.length < 5 + len) break;
      const msg = new TextDecoder().decode(buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
      text += msg;
      if (msg.includes('"start"') && !ph.start) ph.start = now;
      if (msg.includes('"data"') && !ph.data) ph.data = now;
      if (msg.includes('"end"') && !ph.end) ph.end = now;
    }
  }
  ph.close = performance.now() - t0;
  if (!text.includes(btoa("hi\n")) || !ph.end) throw new Error(`unexpected Start stream: ${text.slice(0, 300)}`);
  return ph;
}

const runas = join(REPO, "guest", "init", "build", "onebox-runas");
const uid = Bun.spawnSync(["id", "-u", "user"]).stdout.toString().trim();
const gid = Bun.spawnSync(["id", "-g", "user"]).stdout.toString().trim();
const home = Bun.spawnSync(["sh", "-c", "getent passwd user | cut -d: -f6"]).stdout.toString().trim();
const userEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, USER: "user", LOGNAME: "user" };

/** ms for Bun.spawn(argv) as the user to exit with its stdout read, as the agent spawns (pipes, own session). */
async function bare(argv: string[], ids: { uid?: number; gid?: number } = { uid: Number(uid), gid: Number(gid) }): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(argv, { cwd: home, env: userEnv, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true, ...ids });
  const out = await new Response(p.stdout).text();
  await p.exited;
  if (out !== "hi\n") throw new Error(`${argv.join(" ")} printed ${JSON.stringify(out)}`);
  return performance.now() - t0;
}

/** A process's CPU time so far (utime + stime, /proc/PID/stat), in ms. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / TICKS;
}
const TICKS = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString()) || 100;

try {
  const asUser = [runas, uid, gid, gid, "--"];
  // Interleaved, one sample of each per round: a shared host's drifting load then weighs on all of them alike.
  const kinds = {
    bash: () => bare(["/bin/bash", "-c", "echo hi"]),
    login: () => bare(["/bin/bash", "-l", "-c", "echo hi"]),
    runasLogin: () => bare([...asUser, "/bin/bash", "-l", "-c", "echo hi"], {}),
  };
  const bash: number[] = [], login: number[] = [], runasLogin: number[] = [], phases: Phases[] = [];
  let agentCpu = 0;
  for (let i = -3; i < RUNS; i++) { // 3 warm-up rounds: page cache, the agent's JIT
    const b = await kinds.bash(), l = await kinds.login(), r = await kinds.runasLogin();
    const c0 = cpuMs(agent.proc.pid);
    const p = await start();
    if (i < 0) continue;
    agentCpu += cpuMs(agent.proc.pid) - c0;
    bash.push(b), login.push(l), runasLogin.push(r), phases.push(p);
  }
  const col = (k: keyof Phases) => pct(phases.map((p) => p[k]), 50);
  note(`bare bash -c 'echo hi' x${RUNS}: p50 ${pct(bash, 50)} ms`);
  note(`bare bash -l -c 'echo hi' x${RUNS}: p50 ${pct(login, 50)} ms`);
  note(`bare onebox-runas .. bash -l -c 'echo hi' x${RUNS}: p50 ${pct(runasLogin, 50)} ms`);
  note(`agent CPU (user+system, its own threads) per Start: ${(agentCpu / RUNS).toFixed(2)} ms`);
  note(`agent Start x${RUNS} p50 from send: headers ${col("headers")} start ${col("start")} data ${col("data")} end ${col("end")} close ${col("close")} ms`);
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  console.log(JSON.stringify({
    host: true,
    bash_p50_ms: pct(bash, 50),
    bash_login_p50_ms: pct(login, 50),
    runas_bash_login_p50_ms: pct(runasLogin, 50),
    agent_headers_p50_ms: col("headers"),
    agent_start_p50_ms: col("start"),
    agent_data_p50_ms: col("data"),
    agent_end_p50_ms: col("end"),
    agent_close_p50_ms: col("close"),
    agent_cpu_ms_per_start: r2(agentCpu / RUNS),
    agent_over_bash: r2(col("close") / pct(bash, 50)),
    agent_over_bash_login: r2(col("close") / pct(login, 50)),
    runs: RUNS,
  }));
} finally {
  await agent.stop();
}
