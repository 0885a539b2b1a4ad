// Data-plane benchmark inside the test host: one real microVM through `onebox serve` and the e2b SDK; commands.run and file round trips.
//
// usage: bun run bench:exec [--runs N]   (re-runs itself inside scripts/testhost unless ONEBOX_TESTHOST=1)
// Last line on stdout: JSON of measured p50/p99 in ms (timings inside the test host are emulated: TCG).
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildImageOutside, killLeftoverVms, note, oneboxCmd, rerunInTesthost, pct, REPO, startDaemon, timed, type Daemon } from "./bench-lib.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "30" }, inside: { type: "boolean", default: false } } });
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 2) throw new Error(`--runs must be an integer >= 2, got '${values.runs}'`);

if (process.env.ONEBOX_TESTHOST !== "1") {
  // Outside: sandboxes cannot boot on a PVM host, so run this same script inside the test host. Its image is built
  // out here (the test host has no network for debootstrap), where registerTemplate() below finds it.
  if (!process.env.ONEBOX_E2E_TEMPLATE_DIR) await buildImageOutside(join(REPO, ".cache", "api-e2e-template"), "minimal");
  await rerunInTesthost(`bun scripts/bench-exec.ts --inside --runs ${RUNS}`, ["--timeout", "2400"]);
}

const { Sandbox } = await import("e2b");
const BOOT_MS = 600_000;
const root = `/tmp/obx-bench-exec-${process.pid}`;
const dataDir = join(root, "data");
const runRoot = join(root, "run");

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
}

/** Same provisioning as tests/e2e/api-journey.test.ts: prebuilt image dir if present, else mkrootfs; test kernel + initramfs. */
function registerTemplate(): void {
  let dir = process.env.ONEBOX_E2E_TEMPLATE_DIR;
  const cached = join(REPO, ".cache", "api-e2e-template");
  if (!dir && existsSync(join(cached, "rootfs.ext4"))) dir = cached;
  if (!dir) {
    dir = join(root, "image");
    run(["bash", "scripts/mkrootfs.sh", "--out", dir, "--variant", "minimal"]);
  }
  const initrd = join(root, "initramfs.cpio.gz");
  run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
  run([...oneboxCmd(), "template", "add", "--name", "base", "--from", dir, "--kernel", process.env.ONEBOX_TEST_KERNEL ?? "",
    "--initrd", initrd, "--memory-mib", "512", "--data-dir", dataDir]);
}

const r2 = (x: number): number => Math.round(x * 100) / 100;
let daemon: Daemon | null = null;
let sbx: InstanceType<typeof Sandbox> | null = null;
let failed = false;
try {
  mkdirSync(root, { recursive: true });
  registerTemplate();
  daemon = await startDaemon({ dataDir, runRoot, extra: ["--boot-timeout-ms", String(BOOT_MS)] });
  const opts = { apiKey: daemon.key, apiUrl: daemon.url, sandboxUrl: daemon.url, requestTimeoutMs: BOOT_MS };
  let t0 = performance.now();
  sbx = await Sandbox.create("base", { ...opts, timeoutMs: 1_800_000 });
  const createMs = performance.now() - t0;
  note(`created ${sbx.sandboxId} in ${createMs.toFixed(0)} ms (emulated boot)`);
  const s = sbx;

  // Warm-up: first connections and the agent's first process spawn are not what we measure.
  for (let i = 0; i < 3; i++) await s.commands.run("echo hi");

  const check = async (): Promise<void> => {
    const r = await s.commands.run("echo hi");
    if (r.stdout !== "hi\n") throw new Error(`echo hi gave ${JSON.stringify(r.stdout)}`);
  };
  const seq = await timed(RUNS, 1, check);
  note(`commands.run('echo hi') sequential x${RUNS}: p50 ${pct(seq, 50)} p99 ${pct(seq, 99)} ms`);
  const par = await timed(Math.max(RUNS, 40), 20, check);
  note(`commands.run('echo hi') 20 in parallel x${par.length}: p50 ${pct(par, 50)} p99 ${pct(par, 99)} ms`);

  // Files: a 4 KiB file read and a 4 MiB write, each through the data plane with its own content.
  const small = "x".repeat(4096);
  await s.files.write("/home/user/bench-4k.txt", small);
  const READS = Math.max(10, Math.floor(RUNS / 2));
  const rd = await timed(READS, 1, async () => {
    const got = await s.files.read("/home/user/bench-4k.txt");
    if (got.length !== 4096) throw new Error(`4 KiB read returned ${got.length} bytes`);
  });
  note(`files.read 4 KiB x${READS}: p50 ${pct(rd, 50)} p99 ${pct(rd, 99)} ms`);
  const big = new Uint8Array(4 * 1024 * 1024).map((_, i) => i & 0xff);
  const WRITES = 8;
  const wr = await timed(WRITES, 1, async (i) => {
    await s.files.write(`/home/user/bench-4m-${i}.bin`, big.buffer as ArrayBuffer);
  });
  const sz = (await s.commands.run("stat -c %s /home/user/bench-4m-0.bin")).stdout.trim();
  if (sz !== String(big.length)) throw new Error(`4 MiB write left ${sz} bytes`);
  note(`files.write 4 MiB x${WRITES}: p50 ${pct(wr, 50)} p99 ${pct(wr, 99)} ms`);

  // Inside the guest: the cost of spawning `bash -c 'echo hi'` there, timed by the guest's own clock.
  // This is the process-spawn part of a command, without the agent's HTTP/Connect handling or the host path.
  /** ms per run of cmd in the guest, timed by the guest's own clock (as user, or as root). */
  // bash's $EPOCHREALTIME, not `$(date +%s%N)`: a date process on either side put most of a fork and exec into every
  // interval (runs before session 11 did that; `guest_bash_echo_datefork_p50_ms` is the old way, for comparison).
  const inGuest = async (cmd: string, user?: "root", clock: "bash" | "date" = "bash") => {
    const now = clock === "bash" ? "${EPOCHREALTIME/./}" : "$(( $(date +%s%N) / 1000 ))";
    const script = `for i in $(seq ${RUNS}); do s=${now}; ${cmd} >/dev/null; e=${now}; echo $(( e - s )); done`;
    const ms = (await s.commands.run(script, user ? { user } : {})).stdout.trim().split("\n").map((us) => Number(us) / 1000);
    if (ms.length !== RUNS || ms.some((x) => !Number.isFinite(x))) throw new Error(`guest timing of ${cmd} printed a non-number`);
    note(`in-guest ${cmd}${clock === "date" ? " (timed with date)" : ""} x${RUNS}: p50 ${pct(ms, 50)} p99 ${pct(ms, 99)} ms`);
    return ms;
  };
  const guest = await inGuest("bash -c 'echo hi'");
  const guestDateClock = await inGuest("bash -c 'echo hi'", undefined, "date");
  // What the agent runs for commands.run (E2B's login shell: /etc/profile and the user's dot files)...
  const guestLogin = await inGuest("bash -l -c 'echo hi'");
  // ...and the start-up files it reads, as the image has them and as Debian ships /etc/profile (its `$(id -u)`,
  // which scripts/mkrootfs.sh replaces with bash's EUID), sourced by a plain bash so that only the profile differs.
  await s.commands.run(`sed 's/"\${EUID:-\$(id -u)}"/"$(id -u)"/g' /etc/profile >/tmp/profile.debian`);
  const profileEdited = await inGuest(`bash -c '. /etc/profile; . ~/.profile; echo hi'`);
  const profileDebian = await inGuest(`bash -c '. /tmp/profile.debian; . ~/.profile; echo hi'`);
  // ...and how it becomes the user first, the two ways the agent has (guest/agent/process-manager.ts), from root.
  const ids = (await s.commands.run("echo $(id -u) $(id -g) $(id -G | tr ' ' ,)")).stdout.trim().split(" ");
  const viaSetpriv = await inGuest(`setpriv --reuid=${ids[0]} --regid=${ids[1]} --groups=${ids[2]} -- bash -c 'echo hi'`, "root");
  const viaRunas = await inGuest(`/opt/onebox/bin/onebox-runas ${ids[0]} ${ids[1]} ${ids[2]} -- bash -c 'echo hi'`, "root");

  // Inside the guest: the agent's own handling of the same command and of the 4 KiB read, over loopback
  // (guest/tools/agent-bench.js run by the guest's bun): no host, proxy or vsock in the path.
  await s.files.write("/tmp/agent-bench.js", await Bun.file(join(REPO, "guest", "tools", "agent-bench.js")).text());
  const token = (s as unknown as { envdAccessToken?: string }).envdAccessToken ?? "";
  const inner = await s.commands.run("/opt/onebox/bin/bun /tmp/agent-bench.js", {
    envs: { RUNS: String(RUNS), FILE: "/home/user/bench-4k.txt", TOKEN: token },
    timeoutMs: 600_000,
  });
  const agentTimes = JSON.parse(inner.stdout) as { start: number[]; read: number[] };
  note(`in-guest agent Start 'echo hi' x${RUNS}: p50 ${pct(agentTimes.start, 50)} p99 ${pct(agentTimes.start, 99)} ms; ` +
    `GET /files 4 KiB p50 ${pct(agentTimes.read, 50)} ms`);

  // The agent moves every command into the user cgroup after the spawn (guest/agent/user-cgroup.ts); onebox-init
  // mounts cgroup2 with favordynmods so that a move does not wait for an RCU grace period. Both ways in this guest:
  // one move of a sleeping process every 0.2 s, timed by bash's own clock (no fork in the timed part), and the
  // agent's Start, alternating (the option switched by a remount naming the source, so that mount(8) takes the
  // options given instead of merging the current ones, then switched back).
  const cgMount = (await s.commands.run("grep '^cgroup2 ' /proc/mounts", { user: "root" })).stdout.trim();
  note(`in-guest ${cgMount}`);
  const favored = /\bfavordynmods\b/.test(cgMount);
  const remount = async (favor: boolean): Promise<void> => {
    const r = await s.commands.run(`mount -t cgroup2 -o remount,nsdelegate${favor ? ",favordynmods" : ""} cgroup2 /sys/fs/cgroup && ` +
      "grep '^cgroup2 ' /proc/mounts", { user: "root" });
    if (/\bfavordynmods\b/.test(r.stdout) !== favor) throw new Error(`the remount left ${r.stdout.trim()}`);
  };
  const moves = async (): Promise<number[]> => {
    const script = `cg=/sys/fs/cgroup/obx-bench; mkdir -p $cg; for i in $(seq ${RUNS}); do sleep 30 & p=$!; sleep 0.2; ` +
      `s=$EPOCHREALTIME; echo $p >$cg/cgroup.procs; e=$EPOCHREALTIME; kill $p; echo "$s $e"; done; rmdir $cg 2>/dev/null; true`;
    const out = (await s.commands.run(script, { user: "root", timeoutMs: 600_000 })).stdout.trim().split("\n");
    return out.map((l) => { const [a, b] = l.split(" ").map(Number); return (b! - a!) * 1000; });
  };
  const agentStart = async (): Promise<number[]> => {
    const r = await s.commands.run("/opt/onebox/bin/bun /tmp/agent-bench.js", {
      envs: { RUNS: String(RUNS), FILE: "/home/user/bench-4k.txt", TOKEN: token }, timeoutMs: 600_000 });
    return (JSON.parse(r.stdout) as { start: number[] }).start;
  };
  const movesAsMounted = await moves();
  const startAsMounted = [...agentTimes.start];
  let movesToggled: number[] = [NaN];
  const startToggled: number[] = [];
  try {
    for (let round = 0; round < 2; round++) {
      await remount(!favored);
      if (round === 0) movesToggled = await moves();
      startToggled.push(...(await agentStart()));
      await remount(favored);
      startAsMounted.push(...(await agentStart()));
    }
  } catch (e) {
    note(`in-guest: switching favordynmods by a remount failed, so no comparison: ${(e as Error).message}`);
    await remount(favored).catch(() => undefined);
  }
  if (startToggled.length === 0) startToggled.push(NaN);
  const [movesFavor, movesPlain] = favored ? [movesAsMounted, movesToggled] : [movesToggled, movesAsMounted];
  const [startFavor, startPlain] = favored ? [startAsMounted, startToggled] : [startToggled, startAsMounted];
  note(`in-guest cgroup move x${RUNS}: favordynmods p50 ${pct(movesFavor, 50)} ms, without p50 ${pct(movesPlain, 50)} ms; ` +
    `agent Start x${startFavor.length} p50 with ${pct(startFavor, 50)} ms, x${startPlain.length} without ${pct(startPlain, 50)} ms`);

  await s.kill();
  sbx = null;
  t0 = performance.now();
  console.log(
    JSON.stringify({
      emulated: true,
      create_ms: r2(createMs),
      cmd_p50_ms: pct(seq, 50),
      cmd_p99_ms: pct(seq, 99),
      cmd_c20_p50_ms: pct(par, 50),
      cmd_c20_p99_ms: pct(par, 99),
      read_4k_p50_ms: pct(rd, 50),
      write_4m_p50_ms: pct(wr, 50),
      guest_bash_echo_p50_ms: pct(guest, 50),
      guest_bash_echo_p99_ms: pct(guest, 99),
      guest_bash_echo_datefork_p50_ms: pct(guestDateClock, 50),
      guest_bash_login_echo_p50_ms: pct(guestLogin, 50),
      guest_profile_edited_echo_p50_ms: pct(profileEdited, 50),
      guest_profile_debian_echo_p50_ms: pct(profileDebian, 50),
      guest_setpriv_echo_p50_ms: pct(viaSetpriv, 50),
      guest_runas_echo_p50_ms: pct(viaRunas, 50),
      agent_over_bash: r2(pct(agentTimes.start, 50) / pct(guest, 50)),
      agent_over_bash_login: r2(pct(agentTimes.start, 50) / pct(guestLogin, 50)),
      guest_agent_cmd_p50_ms: pct(agentTimes.start, 50),
      guest_agent_cmd_p99_ms: pct(agentTimes.start, 99),
      guest_agent_read_4k_p50_ms: pct(agentTimes.read, 50),
      guest_cgroup2_favordynmods: favored,
      guest_cgroup_move_favordynmods_p50_ms: pct(movesFavor, 50),
      guest_cgroup_move_plain_p50_ms: pct(movesPlain, 50),
      guest_agent_cmd_favordynmods_p50_ms: pct(startFavor, 50),
      guest_agent_cmd_plain_cgroup_p50_ms: pct(startPlain, 50),
      runs: RUNS,
    }),
  );
} catch (e) {
  failed = true;
  console.error("bench:exec failed:", e);
} finally {
  if (sbx) await Promise.race([sbx.kill().catch(() => undefined), Bun.sleep(30_000)]);
  if (daemon) await daemon.stop().catch(() => undefined);
  killLeftoverVms(runRoot);
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
