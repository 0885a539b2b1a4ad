// bun run bench:net [--runs 8]: guest networking's cost and speed (issue 13), in the test host. Creates (SDK,
// sequential, warm pool off so every create restores into a fresh vmm) against a daemon with networking and one
// without; from one sandbox, TCP download throughput and request RTT to an HTTP server on a dummy link in the test
// host (203.0.113.10); the slot setup time of the daemon's pool. Last line JSON (ms; emulated, nested under TCG).
// Not measured here: QEMU's own virtio-net for comparison (`qemu_tcp_mbps` and the ratio are null).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { startTestDaemon, type TestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";
import { note, pct, REPO, rerunInTesthost } from "./bench-lib.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "8" } } });
const RUNS = Number(values.runs);
const IMAGE = join(REPO, ".cache", "api-e2e-base-template");
const INTERNET = "203.0.113.10";
const BIG_MIB = 64;

if (process.env.ONEBOX_TESTHOST !== "1") {
  // The test host has no network for debootstrap: the image (curl) is built out here, from mkrootfs.sh's cache.
  const p = Bun.spawn(["bash", "scripts/mkrootfs.sh", "--out", IMAGE, "--variant", "base"], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error("building the base image failed (see above)");
  await rerunInTesthost(`bun scripts/bench-net.ts --runs ${RUNS}`, ["--timeout", "3600", "--mem", "8192"]);
}

function sh(cmd: string): string {
  const r = Bun.spawnSync(["sh", "-c", cmd], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed (${r.exitCode}): ${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

const root = `/tmp/obx-bench-net-${process.pid}`;
mkdirSync(root, { recursive: true });
const initrd = join(root, "initramfs.cpio.gz");
sh(`bash scripts/mkinitramfs.sh --modules ${join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules")} --out ${initrd}`);
sh(`ip link add obxbench-inet type dummy && ip addr add ${INTERNET}/24 dev obxbench-inet && ip link set obxbench-inet up`);
const big = new Uint8Array(BIG_MIB << 20);
const http = Bun.serve({ hostname: INTERNET, port: 80, fetch: (req) => new Response(new URL(req.url).pathname === "/big" ? big : "ok\n") });

async function daemon(network: boolean): Promise<TestDaemon> {
  // The dummy-link server is one of the test host's own addresses, always denied to sandboxes unless opened.
  const d = await startTestDaemon({ network, warmPoolSize: 0, bootTimeoutMs: 600_000, netAllowPrivate: ["203.0.113.0/24"] }, mkdtempSync(join(root, "data-")));
  if (d.config.network !== network) throw new Error(`the daemon's networking is ${d.config.network}, wanted ${network}`);
  await registerTemplate(d.state, d.dataDir, { name: "bench-net", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 256, diskSizeMb: 2048 });
  await d.manager.warmTemplates(); // the template snapshot, before the timed creates
  return d;
}

async function creates(d: TestDaemon): Promise<number[]> {
  const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 600_000 };
  await (await Sandbox.create("bench-net", opts)).kill(); // first create after the snapshot: not timed
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const s = await Sandbox.create("bench-net", opts);
    ms.push(performance.now() - t0);
    await s.kill();
  }
  return ms;
}

const round = (x: number) => Math.round(x * 100) / 100;
try {
  const off = await daemon(false);
  const nonet = await creates(off);
  await off.stop();
  note(`creates without networking: ${nonet.map(round).join(", ")} ms`);

  const on = await daemon(true);
  await on.network?.pool.whenFilled();
  const slotSetupMs = on.network?.pool.stats().lastMakeMs ?? null;
  const net = await creates(on);
  note(`creates with networking: ${net.map(round).join(", ")} ms`);
  const opts = { apiKey: on.key, apiUrl: on.url, sandboxUrl: on.url, requestTimeoutMs: 600_000 };
  const s = await Sandbox.create("bench-net", opts);
  const run = async (cmd: string) => (await s.commands.run(cmd, { timeoutMs: 300_000 })).stdout;
  await run(`curl -sS -o /dev/null http://${INTERNET}/`); // ARP, conntrack, page cache
  const speeds: number[] = [];
  for (let i = 0; i < 3; i++) speeds.push(Number(await run(`curl -sS -o /dev/null -w '%{speed_download}' http://${INTERNET}/big`)));
  const rtts = (await run(`for i in $(seq 20); do curl -sS -o /dev/null -w '%{time_total}\\n' http://${INTERNET}/; done`))
    .trim()
    .split("\n")
    .map((x) => Number(x) * 1000);
  await s.kill();
  await on.stop();

  const tcpMbps = (pct(speeds, 50) * 8) / 1e6;
  const out = {
    runs: RUNS,
    create_net_p50_ms: pct(net, 50),
    create_net_p99_ms: pct(net, 99),
    create_nonet_p50_ms: pct(nonet, 50),
    create_nonet_p99_ms: pct(nonet, 99),
    create_net_ratio: round(pct(net, 50) / pct(nonet, 50)),
    tcp_mbps: round(tcpMbps),
    qemu_tcp_mbps: null,
    throughput_ratio_vs_qemu: null,
    rtt_p50_ms: pct(rtts, 50),
    rtt_p99_ms: pct(rtts, 99),
    slot_setup_ms: slotSetupMs === null ? null : round(slotSetupMs),
    emulated: true,
  };
  console.log(JSON.stringify(out));
} finally {
  http.stop(true);
  Bun.spawnSync(["ip", "link", "del", "obxbench-inet"]);
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
}
