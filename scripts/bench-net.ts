// bun run bench:net [--runs 12]: guest networking's cost and speed (issues 13, 14), in the test host. Creates (SDK,
// sequential, warm pool off so every create restores into a fresh vmm) against a daemon without networking, and
// against one with it, with and without a 100-entry egress policy (alternating); from one sandbox, TCP download
// throughput and request RTT to an HTTP server on a dummy link in the test host (203.0.113.10), with and without
// the policy, and PUT /network's latency (each one checked in the guest); the same curl workload from a guest on
// QEMU's own virtio-net (scripts/bench-net-qemu.ts, booted right before and after those downloads); the slot setup time of the daemon's pool. Last line JSON (ms;
// emulated: the test host runs under TCG, its guests nested). One run: 3-6 minutes in the test host.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sandbox } from "e2b";
import { startTestDaemon, type TestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";
import { buildImageOutside, note, pct, REPO, rerunInTesthost, sh, testInitramfs } from "./bench-lib.ts";
import { describeNetStat, netStatDelta, type QemuNetResult, qemuNet } from "./bench-net-qemu.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "12" } } });
const RUNS = Number(values.runs);
const IMAGE = join(REPO, ".cache", "api-e2e-base-template");
const INTERNET = "203.0.113.10";
const BIG_MIB = 32; // per download: ~3 s each at the ~100 Mbit/s measured nested under TCG
const FETCHES = 5; // timed downloads per configuration, after one untimed (the first ran at a third of the speed)
const REQUESTS = 20; // small requests for the RTT
const UPDATES = 3; // rounds of PUT /network (3 PUTs each)
// eth0's counters in the guest: interrupts of its virtio device, rx frames, rx bytes, tx frames (the same one-liner
// as netstat() in scripts/bench-net-qemu-init.sh, so both guests are counted alike; docs/virtio.md cites them).
const NETSTAT =
  `d=$(basename "$(readlink /sys/class/net/eth0/device)"); ` +
  `echo "$(awk -v d="$d" '$NF == d || index($NF, d "-") == 1 {s += $2} END {print s + 0}' /proc/interrupts)" ` +
  `$(cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth0/statistics/rx_bytes /sys/class/net/eth0/statistics/tx_packets)`;

if (process.env.ONEBOX_TESTHOST !== "1") {
  await buildImageOutside(IMAGE, "base");
  await rerunInTesthost(`bun scripts/bench-net.ts --runs ${RUNS}`, ["--timeout", "1500", "--stall", "420", "--mem", "8192"]);
}

const root = `/tmp/obx-bench-net-${process.pid}`;
mkdirSync(root, { recursive: true });
const initrd = testInitramfs(root);
sh(`ip link add obxbench-inet type dummy && ip addr add ${INTERNET}/24 dev obxbench-inet && ip link set obxbench-inet up`);
const big = new Uint8Array(BIG_MIB << 20);
const http = Bun.serve({ hostname: INTERNET, port: 80, fetch: (req) => new Response(new URL(req.url).pathname === "/big" ? big : "ok\n") });

const T0 = performance.now();
const say = (s: string) => note(`bench-net: [+${Math.round((performance.now() - T0) / 1000)}s] ${s}`);

async function daemon(network: boolean): Promise<TestDaemon> {
  // The dummy-link server is one of the test host's own addresses, always denied to sandboxes unless opened.
  const d = await startTestDaemon({ network, warmPoolSize: 0, bootTimeoutMs: 600_000, netAllowPrivate: ["203.0.113.0/24"] }, mkdtempSync(join(root, "data-")));
  if (d.config.network !== network) throw new Error(`the daemon's networking is ${d.config.network}, wanted ${network}`);
  await registerTemplate(d.state, d.dataDir, { name: "bench-net", from: IMAGE, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 256, diskSizeMb: 2048 });
  await d.manager.warmTemplates(); // the template snapshot, before the timed creates
  say(`daemon with networking ${network ? "on" : "off"}: template snapshot ready`);
  return d;
}

type Net = { allowOut?: string[]; denyOut?: string[] };
// 100 entries: 98 addresses nobody uses (TEST-NET-2), the server, and deny-all (E2B's allowlist shape).
const POLICY: Net = {
  allowOut: [...Array.from({ length: 98 }, (_, i) => `198.51.100.${i + 1}`), INTERNET],
  denyOut: ["0.0.0.0/0"],
};
const DENY_ALL: Net = { denyOut: ["0.0.0.0/0"] };

/** RUNS timed creates for each entry of `networks` (interleaved, so drift hits all alike), each killed after. */
async function creates(d: TestDaemon, networks: (Net | undefined)[]): Promise<number[][]> {
  const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 600_000 };
  await (await Sandbox.create("bench-net", opts)).kill(); // first create after the snapshot: not timed
  const ms: number[][] = networks.map(() => []);
  for (let i = 0; i < RUNS; i++)
    for (const [j, network] of networks.entries()) {
      const t0 = performance.now();
      const s = await Sandbox.create("bench-net", { ...opts, ...(network ? { network } : {}) });
      ms[j]!.push(performance.now() - t0);
      await s.kill();
    }
  return ms;
}

const round = (x: number) => Math.round(x * 100) / 100;
const mbitList = (bytesPerS: number[]) => bytesPerS.map((x) => round((x * 8) / 1e6)).join(", ");

/** One boot of the QEMU baseline guest; a failure costs only its fields (null), not the run. */
async function baseline(): Promise<QemuNetResult | null> {
  const r = await qemuNet({
    root,
    kernel: process.env.ONEBOX_TEST_KERNEL ?? "",
    modules: process.env.ONEBOX_TEST_MODULES ?? "",
    rootfs: join(IMAGE, "rootfs.ext4"),
    bigUrl: `http://${INTERNET}/big`,
    smallUrl: `http://${INTERNET}/`,
    fetches: FETCHES,
    requests: REQUESTS,
  }).catch((e: unknown) => {
    say(`QEMU baseline failed: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  });
  if (r) say(`QEMU virtio-net: ${mbitList(r.speeds)} Mbit/s; RTT p50 ${pct(r.rtts, 50)} ms; untimed download: ${describeNetStat(r.rx)}`);
  return r;
}
const mbps = (bytesPerS: number[]) => round((pct(bytesPerS, 50) * 8) / 1e6);
try {
  const off = await daemon(false);
  const [nonet] = await creates(off, [undefined]);
  await off.stop();
  say(`creates without networking: ${nonet!.map(round).join(", ")} ms`);

  const on = await daemon(true);
  await on.network?.pool.whenFilled();
  const slotSetupMs = on.network?.pool.stats().lastMakeMs ?? null;
  const [net, withPolicy] = await creates(on, [undefined, POLICY]);
  say(`creates with networking: ${net!.map(round).join(", ")} ms`);
  say(`creates with networking and a 100-entry policy: ${withPolicy!.map(round).join(", ")} ms`);

  // The baseline right before and right after the sandbox's downloads (the shared machine's load drifts; run 2
  // measured creates 3x slower than run 1), both boots' figures pooled.
  const qemuBefore = await baseline();
  const opts = { apiKey: on.key, apiUrl: on.url, sandboxUrl: on.url, requestTimeoutMs: 600_000 };
  const s = await Sandbox.create("bench-net", opts);
  const run = async (cmd: string) => (await s.commands.run(cmd, { timeoutMs: 300_000 })).stdout;
  // curl's exit status as text (28: timed out, the packets dropped); commands.run throws on a non-zero exit.
  const probe = async () => (await run(`curl -sS -o /dev/null --max-time 2 http://${INTERNET}/; echo "exit=$?"`)).trim();
  const fetchBig = async () => Number(await run(`curl -sS -o /dev/null -w '%{speed_download}' http://${INTERNET}/big`));
  const put = async (network: Net) => {
    const t0 = performance.now();
    await s.updateNetwork(network); // the 204 comes after the slot's maps are written (docs/network.md)
    return performance.now() - t0;
  };
  await run(`curl -sS -o /dev/null http://${INTERNET}/`); // ARP, conntrack, page cache
  const before = await run(NETSTAT);
  await fetchBig(); // untimed, as in the QEMU guest
  say(`onebox virtio-net, untimed download: ${describeNetStat(netStatDelta(before, await run(NETSTAT)))}`);
  const open: number[] = [];
  const policed: number[] = [];
  for (let i = 0; i < FETCHES; i++) {
    open.push(await fetchBig());
    await put(POLICY);
    policed.push(await fetchBig());
    await put({});
  }
  const rtts = (await run(`for i in $(seq ${REQUESTS}); do curl -sS -o /dev/null -w '%{time_total}\\n' http://${INTERNET}/; done`))
    .trim()
    .split("\n")
    .map((x) => Number(x) * 1000);
  // PUT /network until enforced: each PUT timed, then checked from the guest (deny-all: the server times out).
  const updates: number[] = [];
  for (let i = 0; i < UPDATES; i++) {
    for (const [network, want] of [[POLICY, "exit=0"], [DENY_ALL, "exit=28"], [{}, "exit=0"]] as const) {
      updates.push(await put(network));
      const got = await probe();
      if (got !== want) throw new Error(`after PUT /network ${JSON.stringify(network).slice(0, 80)}: curl ${got}, wanted ${want}`);
    }
  }
  await s.kill();
  const qemuAfter = await baseline();
  const qemu = qemuBefore && qemuAfter ? { speeds: [...qemuBefore.speeds, ...qemuAfter.speeds], rtts: [...qemuBefore.rtts, ...qemuAfter.rtts] } : (qemuBefore ?? qemuAfter);
  await on.stop();
  say(`downloads: ${mbitList(open)} Mbit/s; with the policy ${mbitList(policed)}`);
  say(`PUT /network: ${updates.map(round).join(", ")} ms`);

  const tcpMbps = mbps(open);
  const qemuMbps = qemu ? mbps(qemu.speeds) : null;
  const out = {
    runs: RUNS,
    create_net_p50_ms: pct(net!, 50),
    create_net_p99_ms: pct(net!, 99),
    create_nonet_p50_ms: pct(nonet!, 50),
    create_nonet_p99_ms: pct(nonet!, 99),
    create_net_ratio: round(pct(net!, 50) / pct(nonet!, 50)),
    tcp_mbps: tcpMbps,
    qemu_tcp_mbps: qemuMbps,
    throughput_ratio_vs_qemu: qemuMbps ? round(tcpMbps / qemuMbps) : null,
    rtt_p50_ms: pct(rtts, 50),
    rtt_p99_ms: pct(rtts, 99),
    qemu_rtt_p50_ms: qemu ? pct(qemu.rtts, 50) : null,
    slot_setup_ms: slotSetupMs === null ? null : round(slotSetupMs),
    create_policy_p50_ms: pct(withPolicy!, 50),
    create_policy_ratio: round(pct(withPolicy!, 50) / pct(net!, 50)),
    policy_update_ms: pct(updates, 50),
    policy_update_p99_ms: pct(updates, 99),
    tcp_policy_mbps: mbps(policed),
    throughput_policy_ratio: round(mbps(policed) / tcpMbps),
    emulated: true,
  };
  console.log(JSON.stringify(out));
} finally {
  http.stop(true);
  Bun.spawnSync(["ip", "link", "del", "obxbench-inet"]);
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
}
