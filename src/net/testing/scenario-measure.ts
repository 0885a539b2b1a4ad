// Scenario (scripts/bench-net-slots.ts, in its own namespaces): how long making a slot takes (TAP, route, map entry,
// clsact + two programs) and how much kernel memory a slot holds (Slab + Percpu + VmallocUsed delta over N slots).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HostNet } from "../host-net.ts";
import { makeSlot, type NetSlot } from "../slot.ts";
import { sh } from "./run-in-netns.ts";

const [work, countArg] = [process.argv[2]!, process.argv[3] ?? "200"];
const count = Number(countArg);
sh("ip link set lo up");

function kernelKib(): number {
  const m = Object.fromEntries(
    readFileSync("/proc/meminfo", "utf8").split("\n").filter(Boolean).map((l) => {
      const [k, v] = l.split(":");
      return [k!, parseInt(v!, 10)];
    }),
  );
  return (m.Slab ?? 0) + (m.Percpu ?? 0) + (m.VmallocUsed ?? 0);
}

const t0 = performance.now();
const host = await HostNet.start({ sandboxCidr: "198.18.0.0/16", bpffsRoot: join(work, "bpffs"), stateDir: join(work, "state") });
const hostStartMs = performance.now() - t0;
await makeSlot(host, 65000).then((s) => s.destroy()); // warm: first-use costs (module loads, lazy allocations)

const before = kernelKib();
const times: number[] = [];
const slots: NetSlot[] = [];
for (let i = 0; i < count; i++) {
  const s = performance.now();
  slots.push(await makeSlot(host, i));
  times.push(performance.now() - s);
}
await Bun.sleep(200);
const after = kernelKib();
const d0 = performance.now();
for (const s of slots) await s.destroy();
const destroyMs = (performance.now() - d0) / count;

// For comparison: the same route step done by spawning `ip` (what a shell-out design pays per step).
const ipTimes: number[] = [];
for (let i = 0; i < 20; i++) {
  const s = performance.now();
  sh(`ip route add 198.18.${200 + (i >> 8)}.${i & 255}/32 dev lo proto 111 && ip route del 198.18.${200 + (i >> 8)}.${i & 255}/32 dev lo`);
  ipTimes.push((performance.now() - s) / 2);
}
await host.stop({ final: true });

const sorted = [...times].sort((a, b) => a - b);
const q = (p: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(3));
const ipSorted = ipTimes.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    slots: count,
    host_start_ms: Number(hostStartMs.toFixed(1)),
    slot_setup_p50_ms: q(0.5),
    slot_setup_p99_ms: q(0.99),
    slot_destroy_ms: Number(destroyMs.toFixed(3)),
    slot_kernel_kib: Number(((after - before) / count).toFixed(1)),
    ip_route_spawn_p50_ms: Number(ipSorted[10]!.toFixed(3)),
  }),
);
