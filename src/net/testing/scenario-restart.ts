// Scenario (run by src/net/pool.test.ts in its own namespaces): a daemon takes a slot for a "VMM" and dies without
// stopping; the next daemon re-adopts that slot (its TAP, programs and pinned map entry survived), reaps what the dead
// one left, still translates for the adopted slot, and leaves nothing after release and stop.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { formatMac } from "../../util/ipv4.ts";
import { parseIpv4Frame } from "../../util/test-frames.ts";
import { HostNet } from "../host-net.ts";
import { SlotPool } from "../pool.ts";
import { leftovers, sh } from "./run-in-netns.ts";

const [work, phase] = [process.argv[2]!, process.argv[3] ?? "main"];
const opts = { sandboxCidr: "198.18.0.0/24", bpffsRoot: join(work, "bpffs"), stateDir: join(work, "state") };

if (phase === "first") {
  const host = await HostNet.start(opts);
  const pool = new SlotPool(host, { size: 2 });
  await pool.start();
  await pool.whenFilled();
  const slot = await pool.acquire();
  await pool.whenFilled();
  // The "VMM": holds the only other copy of the TAP fd, and outlives this daemon.
  const vmm = Bun.spawn([process.execPath, `${import.meta.dir}/tap-reader.ts`, join(work, "frames")], {
    stdio: ["ignore", "ignore", "inherit", slot.fd!],
  });
  vmm.unref();
  console.log(JSON.stringify({ vmmPid: vmm.pid, tap: slot.tapName, ip: slot.slotIp, taps: leftovers(opts.bpffsRoot).taps }));
  process.exit(0); // dies without stopping anything
}

sh("ip link set lo up && ip addr add 203.0.113.10/32 dev lo"); // a host address to send from
const run = (p: string) => {
  const r = Bun.spawnSync([process.execPath, import.meta.path, work, p], { stdout: "pipe", stderr: "inherit" });
  return JSON.parse(r.stdout.toString().trim().split("\n").pop()!);
};
const first = run("first");
await Bun.sleep(100);
const between = leftovers(opts.bpffsRoot);

const host = await HostNet.start(opts);
const pool = new SlotPool(host, { size: 1 });
const report = await pool.start();
await pool.whenFilled();
const adopted = report.adopted.map((s) => ({ tap: s.tapName, ip: s.slotIp, fd: s.fd }));
// The adopted slot still translates: a packet to its address goes through the egress program onto the TAP.
// The adopted slot still translates: a datagram to its address reaches the "VMM" addressed to the guest.
const udp = await Bun.udpSocket({});
udp.send("to the adopted slot", 9, first.ip);
const framesFile = join(work, "frames");
for (let t = 0; t < 150 && !existsSync(framesFile); t++) await Bun.sleep(20); // the "VMM" polls; a loaded host is slow
await Bun.sleep(50);
udp.close();
const frames = existsSync(framesFile) ? readFileSync(framesFile, "utf8").trim().split("\n").filter(Boolean) : [];
const seen = frames.map((h) => {
  const p = parseIpv4Frame(Buffer.from(h, "hex"));
  return { dstMac: formatMac(p.dstMac), src: p.src, dst: p.dst, text: new TextDecoder().decode(p.payload.subarray(8)) };
});
for (const s of report.adopted) await pool.release(s);
const afterRelease = leftovers(opts.bpffsRoot).taps;
process.kill(first.vmmPid, "SIGKILL");
await pool.stop();
const stopErrors = (await host.stop({ final: true })).map((e) => e.message);
console.log(
  JSON.stringify({
    first, between, adopted, reaped: report.reaped, seen,
    afterRelease, stopErrors, after: leftovers(opts.bpffsRoot),
  }),
);
